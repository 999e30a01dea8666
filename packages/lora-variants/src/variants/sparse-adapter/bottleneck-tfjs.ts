// The tfjs side of ./bottleneck.ts (only the tfjs forms import this file; the core entry never does).
import * as tf from '@tensorflow/tfjs-core';
import type { BottleneckActivation } from './bottleneck.js';

const C = Math.sqrt(2 / Math.PI);

/** scaling · (act(x Dᵀ + bDown) Uᵀ + bUp), differentiable in D, U and the biases; GELU in its tanh form as in the core. */
export function bottleneckTermTf(x: tf.Tensor2D, d: tf.Tensor, u: tf.Tensor, bDown: tf.Tensor, bUp: tf.Tensor, scaling: number, act: BottleneckActivation): tf.Tensor2D {
  const pre = tf.add(tf.matMul(x, d, false, true), bDown);
  const h =
    act === 'relu'
      ? tf.relu(pre)
      : act === 'silu'
        ? tf.mul(pre, tf.sigmoid(pre))
        : tf.mul(tf.mul(pre, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(pre, tf.mul(tf.pow(pre, 3), 0.044715)), C))));
  return tf.mul(tf.add(tf.matMul(h, u, false, true), bUp), scaling) as tf.Tensor2D;
}
