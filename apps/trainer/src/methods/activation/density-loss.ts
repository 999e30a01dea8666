// DEFT's density loss added to a stage's objective: the forward hooks collect every MLP activation (after
// any installed sparsifier) and the loss becomes task + weight · density surrogate of those activations
// (@sparse/activation/tfjs's densityLoss), so fine-tuning, or a parameter-efficient adapter (DEFT's setting),
// learns sparser MLP activations. The `densityLoss` field of adapt and activation stages turns it on.

import * as tf from '@tensorflow/tfjs-core';
import type { Site } from '@sparse/activation';
import { densityLoss } from '@sparse/activation/tfjs';
import type { ForwardHooks } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { RunContext } from '../../run/context.js';
import { calibrationBatches } from '../../stages/calibration.js';
import type { StageArgs } from '../../stages/common.js';

export type DensityLossField = NonNullable<StageOf<'adapt'>['densityLoss']>;

/** `base` hooks that also collect the MLP activations of a forward pass, and the loss with the density term added. */
export function withDensityLoss(base: ForwardHooks, field: DensityLossField): { hooks: ForwardHooks; total: (task: tf.Scalar) => tf.Scalar } {
  let acts: tf.Tensor2D[] = [];
  const hooks: ForwardHooks = {
    ...base,
    activation: (site: Site, x: tf.Tensor2D) => {
      const r = base.activation ? base.activation(site, x) : x;
      if (site.kind === 'mlp-activation') acts.push(r instanceof tf.Tensor ? r : r.x);
      return r;
    },
  };
  const total = (task: tf.Scalar): tf.Scalar => {
    const seen = acts;
    acts = [];
    if (seen.length === 0) return task;
    return tf.add(task, tf.mul(densityLoss(seen, { surrogate: field.surrogate, temperature: field.temperature }), field.weight)) as tf.Scalar;
  };
  return { hooks, total };
}

/** The share of nonzero MLP activations on the stage's calibration windows (what the density loss lowers). */
export function mlpDensity(ctx: RunContext, index: number): number {
  return exactDensity(ctx, calibrationBatches(ctx, index), (s) => s.kind === 'mlp-activation');
}

/** The MLP activations' nonzero share now against `before`, logged; a summary phrase. */
export function densityChange(args: StageArgs, before: number): string {
  const after = mlpDensity(args.ctx, args.index);
  args.ctx.log.event({ event: 'density-loss', stage: args.index, label: args.label, before, after });
  args.ctx.log.say(`${args.label}: nonzero MLP activations ${(100 * before).toFixed(1)}% -> ${(100 * after).toFixed(1)}% (density loss)`);
  return `, nonzero MLP activations ${(100 * before).toFixed(1)}% -> ${(100 * after).toFixed(1)}%`;
}

/** Fraction of nonzero activations at the sites `which` picks over `batches`, with the run's hooks (a sparsifier's zeros count). */
export function exactDensity(ctx: RunContext, batches: readonly { ids: Int32Array; b: number; len: number }[], which: (site: Site) => boolean): number {
  let nonzero = 0;
  let total = 0;
  const base = ctx.hooks();
  const hooks = {
    ...base,
    activation: (site: Site, x: tf.Tensor2D) => {
      const r = base.activation ? base.activation(site, x) : x;
      if (which(site)) {
        const v = (r instanceof tf.Tensor ? r : r.x).dataSync();
        for (let i = 0; i < v.length; i++) if (v[i] !== 0) nonzero++;
        total += v.length;
      }
      return r;
    },
  };
  for (const { ids, b, len } of batches) tf.tidy(() => void ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), hooks));
  return total === 0 ? 1 : nonzero / total;
}
