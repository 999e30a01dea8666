// Test-only: the additive causal mask the attention used before its softmax took the mask itself
// (fusedSoftmax's causal period), kept as the reference that softmax is checked against.
import * as tf from '@tensorflow/tfjs-core';

/** Additive causal mask [reps*T, T]: 0 on and below the diagonal, a large negative number above; repeated `reps` times down the rows. */
export function causalMask(t: number, reps = 1): tf.Tensor2D {
  const m = new Float32Array(reps * t * t);
  for (let r = 0; r < reps; r++) for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[(r * t + i) * t + j] = -1e9;
  return tf.tensor2d(m, [reps * t, t]);
}
