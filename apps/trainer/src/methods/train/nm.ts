// train method 'nm': N:M training from the current weights through the mask, with STE, SR-STE or
// progressive gradient flow (@sparse/nm); the masks follow the weights every `every` steps.

import * as tf from '@tensorflow/tfjs-core';
import { applyMask, type Mask } from '@sparse/masks';
import { maskToTf } from '@sparse/masks/tfjs';
import { nmMask } from '@sparse/nm';
import { nmTrainingConfigSchema, type NMTrainingConfig } from '@sparse/nm/schemas';
import { gradientFlowDecay, nmMaskedWeight, type MaskEstimator } from '@sparse/nm/tfjs';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { refuseAttachedAdapter } from './weights.js';

export const nmTrainMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'nm',
  describe: 'N:M training from the current weights with STE, SR-STE or progressive gradient flow (@sparse/nm)',
  schema: nmTrainingConfigSchema,
  from: '@sparse/nm',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainNM(args, new Map(Object.entries(args.ctx.model.params)));
  },
};

async function trainNM(args: StageArgs<StageOf<'train'>>, variables: Map<string, tf.Variable>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const cfg = stage.config as NMTrainingConfig;
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
    // masks follow the weights every `every` steps: before steps 1, 1+k, 1+2k, ...
    const due = (step - 1) % cfg.every === 0;
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
