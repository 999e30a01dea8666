// The training loop: seeded batches, Adam with warmup and cosine decay, global-norm gradient
// clipping. Each step runs inside tf.tidy, so the only tensors that outlive a step are the
// parameters and the optimizer's moment estimates.

import type * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, Random } from '@sparse/tensor';
import { NamedAdam } from './adam.js';
import { runSteps, type StepInfo } from './steps.js';
import type { GPT } from '../model/gpt.js';

export { lrAt, type StepInfo } from './steps.js';

export interface TrainOptions {
  /** Training token stream (the held-out part must not be in it). */
  data: Int32Array;
  steps: number;
  batch: number;
  /** Window length; defaults to the model's context, capped by the data length. */
  ctx?: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warmup steps (default: 10% of steps, at most 100). */
  warmup?: number;
  /** Final learning rate as a fraction of the peak after cosine decay (default 0.1). */
  minLrRatio?: number;
  /** Clip the global gradient norm to this (default 1; 0 or Infinity disables). */
  clipNorm?: number;
  /** Seed of the batch sampler (ignored when `rng` is given). */
  seed?: number;
  rng?: Random;
  /** Variables to train (default: every model parameter). */
  variables?: tf.Variable[];
  /** Loss to minimize (default: the model's next-token cross-entropy). */
  loss?: (ids: tf.Tensor2D, targets: tf.Tensor2D) => tf.Scalar;
  onStep?: (info: StepInfo) => void | Promise<void>;
}

export interface TrainResult {
  losses: number[];
  tokens: number;
  elapsedMs: number;
}

export async function trainLoop(model: GPT, options: TrainOptions): Promise<TrainResult> {
  const { data, steps, batch, lr } = options;
  if (!Number.isInteger(batch) || batch < 1) throw new ArgumentError(`batch must be a positive integer, got ${batch}`);
  const len = Math.min(options.ctx ?? model.config.ctx, model.config.ctx, data.length - 1);
  if (len < 1) throw new ArgumentError(`training data has ${data.length} tokens; need at least 2`);
  const variables = options.variables ?? model.variables();
  const lossFn = options.loss ?? ((ids, targets) => model.loss(ids, targets));
  const optimizer = new NamedAdam(0.9, 0.95, 1e-8);
  try {
    return await runSteps({
      data,
      steps,
      batch,
      len,
      lr,
      warmup: options.warmup,
      minLrRatio: options.minLrRatio,
      clipNorm: options.clipNorm,
      rng: options.rng ?? new Random(options.seed ?? 0).fork('batches'),
      variables: new Map(variables.map((v) => [v.name, v])),
      optimizer,
      loss: (ids, targets) => lossFn(ids, targets),
      afterStep: options.onStep,
    });
  } finally {
    optimizer.dispose();
  }
}
