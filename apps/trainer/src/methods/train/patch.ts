// train method 'patch': PATCH's learnable tile-level hybrid sparsity ("PATCH: Learnable Tile-level
// Hybrid Sparsity for LLMs", 2025). Each targeted weight is cut into tiles; a gate per tile chooses
// between dense and N:M (2:4). The gates are PatchGates of @sparse/nm/tfjs: sigmoid(logit / T), T
// annealed geometrically from tempStart to tempEnd over the stage, trained jointly with the weights on
// the task loss plus each layer's budget term budgetWeight · (sparsity − target)². The forward pass uses
// W ⊙ (1 − g ⊙ (1 − M_nm)), M_nm the N:M mask of |W| recomputed every `every` steps. At the end each
// tile is N:M where its logit is > 0 and dense otherwise, and the weights are pruned to that mask; a
// 'patch' event in metrics.jsonl lists the decisions.
// differs: the N:M pattern inside the sparse tiles is the magnitude one (the paper also learns it), and
// the budget is per layer (each layer to `target`) rather than one model-wide budget.

import * as tf from '@tensorflow/tfjs-core';
import { applyMask, type Mask } from '@sparse/masks';
import { maskToTf } from '@sparse/masks/tfjs';
import { nmMask, patchMask, patchSparsity } from '@sparse/nm';
import { patchConfigSchema, type PatchConfig } from '@sparse/nm/schemas';
import { PatchGates } from '@sparse/nm/tfjs';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { refuseAttachedAdapter } from './weights.js';

export const patchMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'patch',
  describe:
    'PATCH tile-level hybrid sparsity: a learned gate per tile chooses dense or N:M under a sparsity budget, trained with the weights (PATCH 2025; differs: magnitude N:M inside sparse tiles, per-layer budget) (@sparse/nm)',
  paper: 'Hourri et al. 2025, PATCH: Learnable Tile-level Hybrid Sparsity for LLMs',
  differs: [
    'the N:M pattern inside the sparse tiles is the magnitude one, recomputed every `every` steps (the paper can also learn it)',
    'the budget is per layer (each layer to `target`) rather than one model-wide budget',
  ],
  schema: patchConfigSchema,
  from: '@sparse/nm',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainPatch(args);
  },
};

/** Prefix of the gate logits' keys among the optimized variables (no model parameter starts with it). */
const GATES = 'patch.gates/';

/** The gate temperature before 1-based `step` of `steps`: tempStart · (tempEnd / tempStart)^((step − 1) / (steps − 1)). */
export function patchTemperature(cfg: Pick<PatchConfig, 'tempStart' | 'tempEnd'>, step: number, steps: number): number {
  const t = steps > 1 ? (step - 1) / (steps - 1) : 1;
  return cfg.tempStart * Math.pow(cfg.tempEnd / cfg.tempStart, Math.min(1, Math.max(0, t)));
}

async function trainPatch(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const cfg = stage.config as PatchConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${args.index}]`);
  const tiling = { tile: cfg.tile as [number, number], n: cfg.n, m: cfg.m };
  for (const l of layers) {
    if (l.out % cfg.tile[0] !== 0 || l.in % cfg.tile[1] !== 0) throw new Error(`stages[${args.index}].config.tile: ${l.name} [${l.out}, ${l.in}] is not a whole number of [${cfg.tile[0]}, ${cfg.tile[1]}] tiles`);
  }
  const saved = args.resume?.stageState as { patchLogits?: Record<string, Float32Array>; patchNM?: Record<string, Int32Array> } | undefined;
  const gates = new Map<string, PatchGates>();
  for (const l of layers) {
    const init = saved?.patchLogits?.[l.name];
    gates.set(l.name, new PatchGates({ shape: [l.out, l.in], ...tiling, target: cfg.target, budgetWeight: cfg.budgetWeight, init: init ?? cfg.init }));
  }
  const nm = new Map<string, { mask: Mask; t: tf.Tensor }>();
  const setNM = (name: string, mask: Mask) => {
    nm.get(name)?.t.dispose();
    nm.set(name, { mask, t: tf.keep(maskToTf(mask)) });
  };
  if (saved?.patchNM) {
    for (const l of layers) {
      const bits = saved.patchNM[l.name];
      if (bits) setNM(l.name, { shape: [l.out, l.in], bits: new Uint32Array(bits.buffer, bits.byteOffset, bits.length) });
    }
  }
  let temperature = cfg.tempStart;
  const recompute = (step: number) => {
    const due = (step - 1) % cfg.every === 0;
    for (const l of layers) if (due || !nm.has(l.name)) setNM(l.name, nmMask(coreOf(ctx.model.params[l.name]!), { n: cfg.n, m: cfg.m }));
    temperature = patchTemperature(cfg, step, stage.steps);
  };
  const hooks = {
    weight: (name: string, p: tf.Tensor) => {
      const g = gates.get(name);
      return g ? g.maskedWeight(p, nm.get(name)!.t, temperature) : p;
    },
  };
  const variables = new Map<string, tf.Variable>([...Object.entries(ctx.model.params).map(([k, v]) => [k, v as tf.Variable] as const), ...[...gates].map(([k, g]) => [GATES + k, g.logits] as const)]);
  try {
    const r = await optimize(args, stage, {
      variables,
      loss: (ids, targets) => {
        let loss = ctx.model.loss(ids, targets, hooks);
        for (const g of gates.values()) loss = tf.add(loss, g.budgetLoss(temperature));
        return loss;
      },
      beforeStep: recompute,
      stageState: () => ({
        patchLogits: Object.fromEntries([...gates].map(([k, g]) => [k, Float32Array.from(g.logits.dataSync() as Float32Array)])),
        patchNM: Object.fromEntries([...nm].map(([k, x]) => [k, new Int32Array(x.mask.bits.buffer.slice(x.mask.bits.byteOffset, x.mask.bits.byteOffset + x.mask.bits.byteLength))])),
      }),
    });
    // each tile N:M where its logit is > 0, dense otherwise; the weights pruned to that mask
    let sparse = 0;
    let total = 0;
    const tiles: Record<string, string> = {};
    for (const l of layers) {
      const v = ctx.model.params[l.name]!;
      const w = coreOf(v);
      const decisions = gates.get(l.name)!.decisions();
      const mask = patchMask(w, decisions, tiling);
      assignValues(v, applyMask(mask, w).data as Float32Array);
      ctx.setMask(l.name, mask);
      sparse += patchSparsity([l.out, l.in], decisions, tiling) * l.out * l.in;
      total += l.out * l.in;
      tiles[l.name] = Array.from(decisions, (d) => (d ? 's' : 'd')).join('');
    }
    // the decisions, row-major over each weight's tile grid ('s' = N:M tile, 'd' = dense)
    ctx.log.event({ event: 'patch', stage: args.index, label: args.label, sparsity: sparse / Math.max(1, total), tiles });
    ctx.pattern = undefined; // dense tiles: not N:M as a whole
    return { summary: `PATCH ${cfg.n}:${cfg.m} tiles [${cfg.tile.join(', ')}], target ${cfg.target}, reached ${(sparse / Math.max(1, total)).toFixed(3)}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
  } finally {
    for (const g of gates.values()) g.dispose();
    for (const x of nm.values()) x.t.dispose();
  }
}
