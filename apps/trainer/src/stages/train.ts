// pretrain and train stages: dense, masked (pruned weights held at zero) and N:M training through
// the mask with STE / SR-STE / progressive gradient flow (@sparse/nm).

import * as tf from '@tensorflow/tfjs-core';
import { applyMask, type Mask } from '@sparse/masks';
import { nmMask, rescaleKeptRows } from '@sparse/nm';
import { adamsDecayedGradient, gradientFlowDecay, nmMaskedWeight, type MaskEstimator } from '@sparse/nm/tfjs';
import { maskToTf } from '@sparse/masks/tfjs';
import type { z } from 'zod';
import type { adamsConfigSchema, nmTrainConfigSchema } from '../recipe/methods.js';
import type { StageOf } from '../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from './common.js';
import { optimize } from './optimize.js';

type NMConfig = z.output<typeof nmTrainConfigSchema>;

export async function runTrainStage(args: StageArgs<StageOf<'pretrain'> | StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const variables = new Map(Object.entries(ctx.model.params));
  if (ctx.adapter) throw new Error(`${args.label}: an adapter is attached and not merged; set merge: true on the adapt stage before training the base`);
  if (stage.method === 'nm') return trainNM(args as StageArgs<StageOf<'train'>>, variables);
  if (stage.method === 'adams') return trainAdamS(args as StageArgs<StageOf<'train'>>, variables);
  const masked = stage.method === 'masked';
  if (masked && ctx.masks.size === 0) ctx.log.say(`${args.label}: no masks yet (nothing pruned): masked training is dense training`);
  const hooks = ctx.hooks({ maskBase: masked });
  const r = await optimize(args, stage, { variables, loss: (ids, targets) => ctx.model.loss(ids, targets, hooks) });
  if (stage.method === 'dense' && ctx.masks.size > 0) {
    // dense training regrows pruned weights: the masks no longer describe the model
    ctx.masks.clear();
    ctx.pattern = undefined;
  }
  return { summary: r.losses.length ? `final loss ${r.losses.at(-1)!.toFixed(4)}` : 'no steps' };
}

async function trainNM(args: StageArgs<StageOf<'train'>>, variables: Map<string, tf.Variable>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const cfg = stage.config as NMConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${args.index}]`);
  for (const l of layers) {
    if (l.in % cfg.m !== 0) throw new Error(`stages[${args.index}].config.m: ${l.name} has ${l.in} inputs, not a multiple of m = ${cfg.m}`);
  }
  const current = new Map<string, { mask: Mask; t: tf.Tensor }>();
  const setMask = (name: string, mask: Mask) => {
    current.get(name)?.t.dispose();
    current.set(name, { mask, t: tf.keep(maskToTf(mask)) });
  };
  // a resumed stage continues with the masks it had (saved as run masks)
  if (args.resume) for (const l of layers) if (ctx.masks.has(l.name)) setMask(l.name, ctx.masks.get(l.name)!);
  let decay = 1;
  const estimator = (): MaskEstimator =>
    cfg.estimator === 'ste' ? { kind: 'ste' } : cfg.estimator === 'sr-ste' ? { kind: 'sr-ste', lambda: cfg.lambda } : { kind: 'progressive', decay };
  const recompute = (step: number) => {
    // masks follow the weights every `recomputeEvery` steps: before steps 1, 1+k, 1+2k, ...
    const due = (step - 1) % cfg.recomputeEvery === 0;
    for (const l of layers) {
      if (due || !current.has(l.name)) setMask(l.name, nmMask(coreOf(ctx.model.params[l.name]!), { n: cfg.n, m: cfg.m }));
    }
    decay = gradientFlowDecay(step - 1, { kind: 'cosine', steps: Math.max(1, stage.steps), from: 1, to: cfg.finalDecay });
  };
  const targeted = new Set(layers.map((l) => l.name));
  const hooks = {
    weight: (name: string, p: tf.Tensor) => (targeted.has(name) ? nmMaskedWeight(p, current.get(name)!.t, estimator()) : p),
  };
  const syncRunMasks = () => {
    for (const [n, c] of current) ctx.setMask(n, c.mask);
    ctx.pattern = { n: cfg.n, m: cfg.m };
  };
  try {
    const r = await optimize(args, stage, {
      variables,
      loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
      beforeStep: recompute,
      stageState: () => {
        syncRunMasks();
        return {};
      },
    });
    // final mask from the trained weights; pruned entries become exact zeros
    for (const l of layers) {
      const v = ctx.model.params[l.name]!;
      const w = coreOf(v);
      const mask = nmMask(w, { n: cfg.n, m: cfg.m });
      assignValues(v, applyMask(mask, w).data as Float32Array);
      setMask(l.name, mask);
    }
    syncRunMasks();
    return { summary: `${cfg.n}:${cfg.m} with ${cfg.estimator}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
  } finally {
    for (const c of current.values()) c.t.dispose();
  }
}

type AdamSConfig = z.output<typeof adamsConfigSchema>;

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
