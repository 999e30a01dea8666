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

export function evaluatePerplexity(model: EvalModel, tokens: Int32Array, options: EvalOptions = {}): EvalResult {
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
    const mean = tf.tidy(() =>
      model.loss(tf.tensor2d(inputs, [chunk.length, len], 'int32'), tf.tensor2d(targets, [chunk.length, len], 'int32'), options.hooks),
    );
    // weight each batch's mean by its token count, so a short last batch counts correctly
    total += mean.dataSync()[0]! * chunk.length * len;
    mean.dispose();
  }
  const count = starts.length * len;
  const loss = total / count;
  return { perplexity: Math.exp(loss), loss, tokens: count, windows: starts.length, windowLength: len };
}
