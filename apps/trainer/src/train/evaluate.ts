// Held-out perplexity: exp of the mean next-token cross-entropy over a fixed, deterministic set
// of held-out windows, computed in batches.

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError } from '@sparse/tensor';
import { evalWindowStarts } from '../data/dataset.js';
import type { ForwardHooks } from '../model/types.js';

/** What evaluation needs of a model: its context length and a loss that honours forward hooks. */
export interface EvalModel {
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, hooks?: ForwardHooks): tf.Scalar;
  spec?: { ctx: number };
  config?: { ctx: number };
}

export interface EvalOptions {
  /** Window length (default: the model context, capped by the data length). */
  ctx?: number;
  /** Windows per forward pass (default 32). */
  batch?: number;
  /** Evaluate at most this many evenly spaced windows (default: all of them). */
  maxWindows?: number;
  /** Forward hooks (masked or adapted weights). */
  hooks?: ForwardHooks;
}

export interface EvalResult {
  perplexity: number;
  /** Mean cross-entropy in nats per token. */
  loss: number;
  /** Number of predicted tokens the mean is over. */
  tokens: number;
  windows: number;
  windowLength: number;
}

/** The held-out windows in batches: calls fn with each batch's inputs and targets [rows, len]; returns the sum of fn's nats. */
function overWindows(model: EvalModel, tokens: Int32Array, options: EvalOptions, fn: (inputs: Int32Array, targets: Int32Array, rows: number, len: number) => number): EvalResult {
  const ctx = model.spec?.ctx ?? model.config?.ctx;
  if (ctx === undefined) throw new ArgumentError('evaluatePerplexity: the model has no context length (spec.ctx)');
  const len = Math.min(options.ctx ?? ctx, ctx, tokens.length - 1);
  if (len < 1) throw new ArgumentError(`held-out data has ${tokens.length} tokens; need at least 2`);
  const batch = options.batch ?? 32;
  const starts = evalWindowStarts(tokens, len, options.maxWindows);
  let total = 0;
  for (let i = 0; i < starts.length; i += batch) {
    const chunk = starts.slice(i, i + batch);
    const inputs = new Int32Array(chunk.length * len);
    const targets = new Int32Array(chunk.length * len);
    chunk.forEach((s, r) => {
      inputs.set(tokens.subarray(s, s + len), r * len);
      targets.set(tokens.subarray(s + 1, s + len + 1), r * len);
    });
    total += fn(inputs, targets, chunk.length, len);
  }
  const count = starts.length * len;
  const loss = total / count;
  return { perplexity: Math.exp(loss), loss, tokens: count, windows: starts.length, windowLength: len };
}

export function evaluatePerplexity(model: EvalModel, tokens: Int32Array, options: EvalOptions = {}): EvalResult {
  return overWindows(model, tokens, options, (inputs, targets, rows, len) => {
    const mean = tf.tidy(() => model.loss(tf.tensor2d(inputs, [rows, len], 'int32'), tf.tensor2d(targets, [rows, len], 'int32'), options.hooks));
    // weight each batch's mean by its token count, so a short last batch counts correctly
    const nats = mean.dataSync()[0]! * rows * len;
    mean.dispose();
    return nats;
  });
}

/** What the ensemble needs of a model besides EvalModel: next-token logits [B*T, V] under hooks. */
export interface EnsembleEvalModel extends EvalModel {
  logits2d(ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor2D;
}

export interface EnsembleEvalOptions extends Omit<EvalOptions, 'hooks'> {
  /** Number of forward passes whose predicted probabilities are averaged. */
  samples: number;
  /** The forward hooks of pass n (0 ≤ n < samples), e.g. one sampled dropout mask each. */
  hooksFor: (sample: number) => ForwardHooks;
}

/**
 * Test-time ensemble perplexity: for each held-out token, the mean over `samples` passes of the
 * predicted next-token probabilities (softmax of each pass's logits), then exp of the mean of
 * −log p̄(target). The same windows as evaluatePerplexity.
 */
export function evaluateEnsemblePerplexity(model: EnsembleEvalModel, tokens: Int32Array, options: EnsembleEvalOptions): EvalResult {
  const { samples, hooksFor } = options;
  if (!Number.isInteger(samples) || samples < 1) throw new ArgumentError(`evaluateEnsemblePerplexity: samples must be a positive integer, got ${String(samples)}`);
  return overWindows(model, tokens, options, (inputs, targets, rows, len) => {
    const nats = tf.tidy(() => {
      const ids = tf.tensor2d(inputs, [rows, len], 'int32');
      let sum = tf.softmax(model.logits2d(ids, hooksFor(0)));
      for (let n = 1; n < samples; n++) sum = tf.add(sum, tf.softmax(model.logits2d(ids, hooksFor(n))));
      const mean = tf.div(sum, samples) as tf.Tensor2D;
      const picked = tf.sum(tf.mul(mean, tf.oneHot(tf.tensor1d(targets, 'int32'), mean.shape[1])), 1);
      return tf.neg(tf.sum(tf.log(picked)));
    });
    const v = nats.dataSync()[0]!;
    nats.dispose();
    return v;
  });
}
