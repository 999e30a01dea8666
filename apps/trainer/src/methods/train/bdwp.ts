// train method 'bdwp': N:M training with separate masks for the two products of a linear layer (BDWP,
// bidirectional weight pruning: Fang et al., "Efficient N:M Sparse DNN Training Using Algorithm,
// Architecture, and Dataflow Co-Design", 2023). The forward product x (W ⊙ M_row)ᵀ uses the N:M mask of
// |W| along each row (groups of M inputs); the input gradient dy (W ⊙ M_col) uses the N:M mask of |W|
// along each column (groups of M outputs), so both are N:M products; the weight gradient dyᵀ x is dense
// (straight-through), plus SR-STE's lambda on the forward-pruned weights. Both masks follow the weights
// every `every` steps; at the end the weights are pruned to the forward (row) mask, the one inference uses.
// differs: no hardware dataflow or sparse kernels here (the products are dense tfjs matmuls through the
// masks), and no row permutation before the column mask (Bi-Mask's refinement of the same two-mask idea).

import * as tf from '@tensorflow/tfjs-core';
import { applyMask, type Mask } from '@sparse/masks';
import { maskToTf } from '@sparse/masks/tfjs';
import { nmMask } from '@sparse/nm';
import { bdwpConfigSchema, type BDWPConfig } from '@sparse/nm/schemas';
import { bidirectionalMaskedLinear } from '@sparse/nm/tfjs';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { refuseAttachedAdapter } from './weights.js';

export const bdwpMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'bdwp',
  describe:
    'N:M training with a row-wise mask for the forward product and a column-wise mask for the input gradient (BDWP, Fang et al. 2023; differs: dense matmuls through the masks, no row permutation) (@sparse/nm)',
  paper: 'Fang et al. 2023, Efficient N:M Sparse DNN Training Using Algorithm, Architecture, and Dataflow Co-Design (BDWP)',
  differs: [
    'no hardware dataflow or sparse kernels: the products are dense tfjs matmuls through the masks',
    'no row permutation before the column mask',
  ],
  schema: bdwpConfigSchema,
  from: '@sparse/nm',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainBDWP(args);
  },
};

interface Pair {
  row: Mask;
  col: Mask;
  rowT: tf.Tensor;
  colT: tf.Tensor;
}

async function trainBDWP(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const cfg = stage.config as BDWPConfig;
  const where = `stages[${args.index}].config.m`;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${args.index}]`);
  for (const l of layers) {
    if (l.in % cfg.m !== 0) throw new Error(`${where}: ${l.name} has ${l.in} inputs, not a multiple of m = ${cfg.m} (the forward mask groups inputs)`);
    if (l.out % cfg.m !== 0) throw new Error(`${where}: ${l.name} has ${l.out} outputs, not a multiple of m = ${cfg.m} (the backward mask groups outputs)`);
  }
  const byName = new Map<string, LinearInfo>(layers.map((l) => [l.name, l]));
  const masks = new Map<string, Pair>();
  const set = (name: string, row: Mask, col: Mask) => {
    const old = masks.get(name);
    old?.rowT.dispose();
    old?.colT.dispose();
    masks.set(name, { row, col, rowT: tf.keep(maskToTf(row)), colT: tf.keep(maskToTf(col)) });
    ctx.setMask(name, row);
  };
  // a resumed stage continues with its masks: the forward ones are run masks, the backward ones in the stage state
  const savedCols = args.resume?.stageState?.bdwpColumnMasks as Record<string, Int32Array> | undefined;
  if (args.resume && savedCols) {
    for (const l of layers) {
      const row = ctx.masks.get(l.name);
      const bits = savedCols[l.name];
      if (row && bits) set(l.name, row, { shape: [l.out, l.in], bits: new Uint32Array(bits.buffer, bits.byteOffset, bits.length) });
    }
  }
  const recompute = (step: number) => {
    const due = (step - 1) % cfg.every === 0;
    for (const l of layers) {
      if (!due && masks.has(l.name)) continue;
      const w = coreOf(ctx.model.params[l.name]!);
      set(l.name, nmMask(w, { n: cfg.n, m: cfg.m, axis: 'row' }), nmMask(w, { n: cfg.n, m: cfg.m, axis: 'column' }));
    }
  };
  const hooks = {
    linearProduct: (info: LinearInfo, x: tf.Tensor2D) => {
      const p = byName.has(info.name) ? masks.get(info.name) : undefined;
      return p ? bidirectionalMaskedLinear(x, ctx.model.params[info.name] as tf.Tensor2D, p.rowT, p.colT, cfg.lambda) : undefined;
    },
  };
  try {
    const r = await optimize(args, stage, {
      variables: new Map(Object.entries(ctx.model.params)),
      loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
      beforeStep: recompute,
      stageState: () => ({ bdwpColumnMasks: Object.fromEntries([...masks].map(([k, p]) => [k, new Int32Array(p.col.bits.buffer.slice(p.col.bits.byteOffset, p.col.bits.byteOffset + p.col.bits.byteLength))])) }),
    });
    // inference uses the forward mask: prune the weights to it
    for (const l of layers) {
      const v = ctx.model.params[l.name]!;
      const w = coreOf(v);
      const row = nmMask(w, { n: cfg.n, m: cfg.m, axis: 'row' });
      assignValues(v, applyMask(row, w).data as Float32Array);
      ctx.setMask(l.name, row);
    }
    ctx.pattern = { n: cfg.n, m: cfg.m };
    return { summary: `BDWP ${cfg.n}:${cfg.m} (row mask forward, column mask backward), final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
  } finally {
    for (const p of masks.values()) {
      p.rowT.dispose();
      p.colT.dispose();
    }
  }
}
