// prune method 'cfsp': CFSP structured pruning of MLP neurons (Wang et al.), which sees several layers
// at once: block influence from
// calibration data sets each block's share of the neuron budget (coarse step), activation-weighted
// channel scores pick the neurons inside each block (fine step). A pruned neuron is a column of the
// down projection and the matching rows of the up (and gate) projection, all masked.

import * as tf from '@tensorflow/tfjs-core';
import { maskFromPredicate } from '@sparse/masks';
import { BlockInfluenceAccumulator, cfspBlockDensities, cfspConfigSchema, channelScores, ColumnNormAccumulator, type CFSPConfig } from '@sparse/pruners';
import { tensor } from '@sparse/tensor';
import type { StageOf } from '../../recipe/schema.js';
import { calibrationBatches } from '../../stages/calibration.js';
import { assignValues, coreOf, type StageArgs, type StageOutcome } from '../../stages/common.js';
import type { TrainerMethod } from '../types.js';

export const cfspMethod: TrainerMethod<'prune'> = {
  kind: 'prune',
  name: 'cfsp',
  describe: 'CFSP structured pruning of MLP neurons: per-block budget from block influence, neurons by activation-weighted importance',
  paper: 'Wang et al. 2024, CFSP: An Efficient Structured Pruning Framework for LLMs with Coarse-to-Fine Activation Information',
  differs: [],
  schema: cfspConfigSchema,
  from: '@sparse/pruners',
  run: runCFSP,
};

function applyMaskTo(args: StageArgs, name: string, keep: (row: number, col: number) => boolean): void {
  const v = args.ctx.model.params[name]!;
  const [rows, cols] = v.shape as [number, number];
  const mask = maskFromPredicate([rows, cols], (_, idx) => keep(idx[0]!, idx[1]!));
  const w = v.dataSync() as Float32Array;
  assignValues(v, Float32Array.from(w, (x, k) => (keep(Math.floor(k / cols), k % cols) ? x : 0)));
  args.ctx.setMask(name, mask);
}

async function runCFSP(args: StageArgs<StageOf<'prune'>>): Promise<StageOutcome> {
  const { ctx, stage, index } = args;
  const cfg = stage.config as CFSPConfig;
  const all = ctx.linears();
  const blocks = [...new Set(all.map((l) => l.block))].sort((a, b) => a - b);
  const downs = blocks.map((b) => all.find((l) => l.block === b && l.role === 'mlp.down' && l.expert === undefined));
  if (downs.some((d) => d === undefined)) throw new Error(`stages[${index}].method: 'cfsp' prunes dense MLP neurons; this model's blocks have none (a mixture of experts?)`);
  const d = ctx.model.spec.d as number;
  const influence = blocks.map((b) => new BlockInfluenceAccumulator(d, { name: `block ${b}`, metric: cfg.blockMetric }));
  const norms = downs.map((l) => new ColumnNormAccumulator(l!.in, { name: l!.name }));
  const inputs = new Map<number, Float32Array>();
  const hooks = {
    blockInput: (b: number, h: tf.Tensor2D) => void inputs.set(b, Float32Array.from(h.dataSync() as Float32Array)),
    blockOutput: (b: number, h: tf.Tensor2D) => {
      const n = h.shape[0];
      influence[b]!.add(tensor(inputs.get(b)!, [n, d]), tensor(Float32Array.from(h.dataSync() as Float32Array), [n, d]));
    },
    linearInput: (info: { name: string; block: number }, x: tf.Tensor2D) => {
      const i = downs.findIndex((l) => l!.name === info.name);
      if (i >= 0) norms[i]!.add(tensor(Float32Array.from(x.dataSync() as Float32Array), [...x.shape]));
    },
  };
  for (const { ids, b, len } of calibrationBatches(ctx, index, stage.data)) tf.tidy(() => void ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), { ...ctx.hooks(), ...hooks }));
  const importance = influence.map((a) => a.importance());
  const densities = cfspBlockDensities(importance, cfg.sparsity, { a: cfg.a, sizes: downs.map((l) => l!.in) });
  const lines: string[] = [];
  downs.forEach((down, i) => {
    const producers = all.filter((l) => l.block === down!.block && (l.role === 'mlp.up' || l.role === 'mlp.gate') && l.expert === undefined);
    const scores = channelScores({
      name: down!.name,
      consumer: coreOf(ctx.model.params[down!.name]!),
      columnNorms: norms[i]!.norms(),
      producers: producers.map((p) => coreOf(ctx.model.params[p.name]!)),
      metric: cfg.metric,
    });
    const keep = Math.max(1, Math.round(densities[i]! * down!.in));
    const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
    const kept = new Uint8Array(down!.in);
    for (const ch of order.slice(0, keep)) kept[ch] = 1;
    applyMaskTo(args, down!.name, (_, c) => kept[c] === 1);
    for (const p of producers) {
      applyMaskTo(args, p.name, (r) => kept[r] === 1);
      if (p.bias) {
        const bv = ctx.model.params[p.bias]!;
        assignValues(bv, Float32Array.from(bv.dataSync() as Float32Array, (x, r) => (kept[r] ? x : 0)));
      }
    }
    lines.push(`block ${down!.block}: influence ${importance[i]!.toFixed(4)}, keeps ${keep}/${down!.in} neurons`);
  });
  ctx.pattern = undefined;
  ctx.log.say(`${args.label}: CFSP ${(cfg.sparsity * 100).toFixed(0)}% of MLP neurons: ${lines.join('; ')}`);
  ctx.log.event({ event: 'cfsp', stage: index, importance, densities });
  return { summary: `CFSP ${(cfg.sparsity * 100).toFixed(0)}% of MLP neurons (${lines.join('; ')})` };
}
