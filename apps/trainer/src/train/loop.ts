// The training loop: seeded batches, Adam with warmup and cosine decay, global-norm gradient
// clipping. Each step runs inside tf.tidy, so the only tensors that outlive a step are the
// parameters and the optimizer's moment estimates.

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, Random } from '@sparse/tensor';
import { sampleBatch } from '../data/dataset.js';
import type { Gpt } from '../model/gpt.js';

/** Adam whose learning rate can change between steps (tfjs keeps it in a protected field). */
export class ScheduledAdam extends tf.AdamOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
}

export interface StepInfo {
  /** 1-based step number. */
  step: number;
  steps: number;
  /** Training loss of this step's batch (nats per token). */
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Tokens trained on so far. */
  tokens: number;
  elapsedMs: number;
  tokensPerSec: number;
  /** Estimated time to finish, from the mean step time so far. */
  etaMs: number;
}

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

/** Learning rate at 1-based `step`: linear warmup to `lr`, then cosine decay to lr*minLrRatio. */
export function learningRateAt(step: number, steps: number, lr: number, warmup: number, minLrRatio: number): number {
  if (warmup > 0 && step <= warmup) return (lr * step) / warmup;
  const span = Math.max(1, steps - warmup);
  const progress = Math.min(1, (step - warmup) / span);
  return lr * (minLrRatio + (1 - minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export async function trainLoop(model: Gpt, options: TrainOptions): Promise<TrainResult> {
  const { data, steps, batch, lr } = options;
  if (!Number.isInteger(steps) || steps < 0) throw new ArgumentError(`steps must be a non-negative integer, got ${steps}`);
  if (!Number.isInteger(batch) || batch < 1) throw new ArgumentError(`batch must be a positive integer, got ${batch}`);
  if (!(lr > 0)) throw new ArgumentError(`lr must be positive, got ${lr}`);
  const len = Math.min(options.ctx ?? model.config.ctx, model.config.ctx, data.length - 1);
  if (len < 1) throw new ArgumentError(`training data has ${data.length} tokens; need at least 2`);
  const warmup = options.warmup ?? Math.min(100, Math.floor(steps / 10));
  const minLrRatio = options.minLrRatio ?? 0.1;
  const clip = options.clipNorm ?? 1;
  const rng = options.rng ?? new Random(options.seed ?? 0).fork('batches');
  const variables = options.variables ?? model.variables();
  const lossFn = options.loss ?? ((ids, targets) => model.loss(ids, targets));
  const optimizer = new ScheduledAdam(lr, 0.9, 0.95, 1e-8);

  const losses: number[] = [];
  const start = performance.now();
  let tokens = 0;
  try {
    for (let step = 1; step <= steps; step++) {
      const stepLr = learningRateAt(step, steps, lr, warmup, minLrRatio);
      optimizer.setLearningRate(stepLr);
      const b = sampleBatch(data, batch, len, rng);
      const [lossT, normT] = tf.tidy(() => {
        const ids = tf.tensor2d(b.inputs, [batch, len], 'int32');
        const targets = tf.tensor2d(b.targets, [batch, len], 'int32');
        const { value, grads } = tf.variableGrads(() => lossFn(ids, targets), variables);
        const norm = tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
        const n = norm.dataSync()[0];
        // scale every gradient by the same factor, keeping the update direction
        const scale = clip > 0 && Number.isFinite(clip) && n > clip ? clip / n : 1;
        optimizer.applyGradients(Object.entries(grads).map(([name, g]) => ({ name, tensor: scale === 1 ? g : tf.mul(g, scale) })));
        return [value, norm];
      });
      const loss = (await lossT.data())[0];
      const gradNorm = (await normT.data())[0];
      lossT.dispose();
      normT.dispose();
      if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at step ${step} (try a lower --lr)`);
      losses.push(loss);
      tokens += batch * len;
      const elapsedMs = performance.now() - start;
      if (options.onStep) {
        await options.onStep({
          step,
          steps,
          loss,
          lr: stepLr,
          gradNorm,
          tokens,
          elapsedMs,
          tokensPerSec: tokens / (elapsedMs / 1000),
          etaMs: (elapsedMs / step) * (steps - step),
        });
      }
    }
  } finally {
    optimizer.dispose();
  }
  return { losses, tokens, elapsedMs: performance.now() - start };
}
