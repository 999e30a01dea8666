// An activation sparsifier inside the tfjs forward: the sparsifier decides on the values which entries
// to keep; the forward multiplies by that 0/1 mask, so the gradient flows through the kept entries
// only (the mask itself is constant, as in the papers that fine-tune with a sparsifier active).

import * as tf from '@tensorflow/tfjs-core';
import type { SiteSparsifier } from '@sparse/activation';

export interface SparsifiedActivations {
  /** x with the dropped entries zeroed (x ⊙ mask). */
  x: tf.Tensor2D;
  /** Entries kept. */
  kept: number;
  /** The sparsifier's product term [N, out] for the dropped entries (R-Sparse), as a constant. */
  add?: tf.Tensor2D;
}

/** Applies `sp` to x [N, features]. */
export function sparsifyActivations(sp: SiteSparsifier, x: tf.Tensor2D): SparsifiedActivations {
  const [n, f] = x.shape;
  const original = x.dataSync() as Float32Array;
  const sparse = Float32Array.from(original);
  const kept = sp.apply(sparse, n);
  const mask = new Float32Array(sparse.length);
  for (let i = 0; i < sparse.length; i++) mask[i] = sparse[i] !== 0 || original[i] === 0 ? 1 : 0;
  const out = tf.mul(x, tf.tensor2d(mask, [n, f])) as tf.Tensor2D;
  if (!sp.correction) return { x: out, kept };
  const c = sp.correction(original, sparse, n);
  return { x: out, kept, add: tf.tensor2d(c, [n, c.length / Math.max(1, n)]) };
}
