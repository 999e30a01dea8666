// train method 'adams': N:M through CAST's AdamS: the loss sees the dense weights while the pruned
// entries of the current N:M mask are pulled to zero; at the end the hard mask, optionally with each
// row's kept weights rescaled.

import type * as tf from '@tensorflow/tfjs-core';
import { applyMask } from '@sparse/masks';
import { nmMask, rescaleKeptRows } from '@sparse/nm';
import { adamsConfigSchema, type AdamSConfig } from '@sparse/nm/schemas';
import { adamsDecayedGradient } from '@sparse/nm/tfjs';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { refuseAttachedAdapter } from './weights.js';

export const adamsMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'adams',
  describe: "N:M through CAST's AdamS: L1 decay of pruned entries during dense training, then the hard mask and row rescaling (@sparse/nm)",
  schema: adamsConfigSchema,
  from: '@sparse/nm',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainAdamS(args, new Map(Object.entries(args.ctx.model.params)));
  },
};

/** CAST's AdamS: the loss sees the dense weights; pruned entries of the current N:M mask are pulled to zero. */
async function trainAdamS(args: StageArgs<StageOf<'train'>>, variables: Map<string, tf.Variable>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const cfg = stage.config as AdamSConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${args.index}]`);
  for (const l of layers) {
    if (l.in % cfg.m !== 0) throw new Error(`stages[${args.index}].config.m: ${l.name} has ${l.in} inputs, not a multiple of m = ${cfg.m}`);
  }
  const targeted = new Set(layers.map((l) => l.name));
  // masks are run masks while the stage runs, so a checkpoint carries them; the model stays dense
  const recompute = (step: number) => {
    const due = (step - 1) % cfg.every === 0;
    for (const l of layers) if (due || !ctx.masks.has(l.name)) ctx.setMask(l.name, nmMask(coreOf(ctx.model.params[l.name]!), { n: cfg.n, m: cfg.m }));
  };
  const r = await optimize(args, stage, {
    variables,
    loss: (ids, targets) => ctx.model.loss(ids, targets),
    beforeStep: recompute,
    gradTransform: (key, variable, grad) => (targeted.has(key) ? adamsDecayedGradient(grad, variable, ctx.maskTensor(key)!, cfg.lambda) : grad),
  });
  for (const l of layers) {
    const v = ctx.model.params[l.name]!;
    const w = coreOf(v);
    const mask = nmMask(w, { n: cfg.n, m: cfg.m });
    const pruned = cfg.scale ? rescaleKeptRows(w, mask).weight : applyMask(mask, w);
    assignValues(v, pruned.data as Float32Array);
    ctx.setMask(l.name, mask);
  }
  ctx.pattern = { n: cfg.n, m: cfg.m };
  return { summary: `AdamS ${cfg.n}:${cfg.m}, lambda ${cfg.lambda}${cfg.scale ? ', rows rescaled' : ''}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
}
