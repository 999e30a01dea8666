// DEFT's density loss inside a tfjs graph: add λ · densityLoss(acts) to the task loss while fine-tuning.

import { ArgumentError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { densityLossConfigSchema, HOYER_EPS, type DensityLossConfigInput } from './density.js';

/**
 * The density loss of MLP activations acts[l] [tokens, features], a scalar: the mean over layers of the
 * layer's surrogate (mean tanh(|a| / temperature) over its entries, or the mean over tokens of the Hoyer
 * ratio ‖a‖₁ / (√n ‖a‖₂)); see densityLossConfigSchema. Differentiable in every activation.
 */
export function densityLoss(acts: readonly tf.Tensor2D[], config: DensityLossConfigInput = {}): tf.Scalar {
  const c = densityLossConfigSchema.parse(config);
  if (acts.length === 0) throw new ArgumentError('densityLoss: needs at least one layer of activations');
  return tf.tidy(() => {
    const layers = acts.map((a) => {
      if (a.rank !== 2) throw new ArgumentError(`densityLoss: activations must be [tokens, features], got rank ${a.rank}`);
      if (c.surrogate === 'tanh') return tf.mean(tf.tanh(tf.div(tf.abs(a), c.temperature)));
      const n = a.shape[1];
      const l1 = tf.sum(tf.abs(a), 1);
      const l2 = tf.sqrt(tf.add(tf.sum(tf.square(a), 1), HOYER_EPS));
      return tf.mean(tf.div(l1, tf.mul(l2, Math.sqrt(n))));
    });
    return tf.div(tf.addN(layers), layers.length) as tf.Scalar;
  });
}
