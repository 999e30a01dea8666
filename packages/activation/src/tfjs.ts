// @sparse/activation/tfjs: activation sparsity inside a tfjs graph (training and evaluation). A calibrated
// SiteSparsifier decides on the values which entries to keep; the graph multiplies by that 0/1 mask as a
// constant, so the gradient reaches the kept entries only (straight through the selection, which has no
// gradient of its own). R-Sparse's correction is a product with its low-rank factors, differentiable too.
// The only entry that imports @tensorflow/tfjs-core (an optional peer dependency).

import { ArgumentError, DTypeError, ShapeError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { SiteSparsifier } from './types.js';

function readRows(where: string, sp: SiteSparsifier, x: tf.Tensor): Float32Array {
  if (sp === null || typeof sp !== 'object' || typeof sp.apply !== 'function') throw new ArgumentError(`${where}: expected a SiteSparsifier`);
  if (!(x instanceof tf.Tensor)) throw new ArgumentError(`${where}: x must be a tf.Tensor2D`);
  if (x.rank !== 2) throw new ShapeError(`${where} at ${sp.site}: x must be [tokens, features], got [${x.shape.join(', ')}]`);
  if (x.dtype !== 'float32') throw new DTypeError(`${where} at ${sp.site}: x must be float32, got ${x.dtype}`);
  return x.dataSync() as Float32Array;
}

/**
 * The 0/1 mask [tokens, features] (float32) of the entries `sp` keeps on the values of x: its `keep` when it
 * has one, else the entries its `apply` leaves non-zero plus the exact zeros of x (nothing to drop there).
 */
export function keepMaskTensor(sp: SiteSparsifier, x: tf.Tensor2D): tf.Tensor2D {
  const values = readRows('keepMaskTensor', sp, x);
  const [tokens, features] = x.shape;
  const mask = new Float32Array(values.length);
  if (typeof sp.keep === 'function') {
    const keep = sp.keep(values, tokens);
    for (let i = 0; i < mask.length; i++) mask[i] = keep[i]!;
  } else {
    const sparse = Float32Array.from(values);
    sp.apply(sparse, tokens);
    for (let i = 0; i < mask.length; i++) mask[i] = sparse[i] !== 0 || values[i] === 0 ? 1 : 0;
  }
  return tf.tensor2d(mask, [tokens, features]);
}

/** x ⊙ mask, the mask being the entries `sp` keeps (a constant: dL/dx = dL/dy ⊙ mask). */
export function sparsifyTensor(sp: SiteSparsifier, x: tf.Tensor2D): tf.Tensor2D {
  const mask = keepMaskTensor(sp, x);
  const y = tf.mul(x, mask) as tf.Tensor2D;
  mask.dispose();
  return y;
}

/**
 * The term [tokens, out] `sp` adds to sparse Wᵀ for its dropped entries, or undefined when it adds none. With
 * `correctionFactors` (R-Sparse) it is ((original - sparse) a) b in the graph, so the gradient flows to both
 * inputs; a sparsifier with only `correction` gives a constant tensor.
 */
export function correctionTensor(sp: SiteSparsifier, original: tf.Tensor2D, sparse: tf.Tensor2D): tf.Tensor2D | undefined {
  const where = 'correctionTensor';
  const f = sp.correctionFactors;
  if (f !== undefined) {
    for (const [name, t] of [['original', original], ['sparse', sparse]] as const) {
      if (!(t instanceof tf.Tensor) || t.rank !== 2 || t.shape[1] !== f.in) {
        throw new ShapeError(`${where} at ${sp.site}: ${name} must be [tokens, ${f.in}], got [${t?.shape?.join(', ')}]`);
      }
    }
    if (original.shape[0] !== sparse.shape[0]) throw new ShapeError(`${where} at ${sp.site}: original has ${original.shape[0]} tokens, sparse ${sparse.shape[0]}`);
    if (f.rank === 0) return tf.zeros([original.shape[0], f.out]);
    return tf.tidy(() => {
      const a = tf.tensor2d(f.a, [f.in, f.rank]);
      const b = tf.tensor2d(f.b, [f.rank, f.out]);
      return tf.matMul(tf.matMul(tf.sub(original, sparse), a), b) as tf.Tensor2D;
    });
  }
  if (typeof sp.correction !== 'function') return undefined;
  const o = readRows(where, sp, original);
  const s = readRows(where, sp, sparse);
  const tokens = original.shape[0];
  const c = sp.correction(o, s, tokens);
  return tf.tensor2d(c, [tokens, tokens === 0 ? 0 : c.length / tokens]);
}

/**
 * A site hook for a tfjs forward: the sparsified activations, plus the correction to add to the layer's
 * product when the sparsifier has one ({ x, add }).
 */
export function sparsifySite(sp: SiteSparsifier, x: tf.Tensor2D): tf.Tensor2D | { x: tf.Tensor2D; add: tf.Tensor2D } {
  const y = sparsifyTensor(sp, x);
  const add = correctionTensor(sp, x, y);
  return add === undefined ? y : { x: y, add };
}

// DEFT's density loss, added to the task loss during fine-tuning.
export { densityLoss } from './deft/tfjs.js';

// Training TopK sparse autoencoders on activations.
export { reconstructSAE, trainSAE, trainSAEConfigSchema } from './sae/tfjs.js';
export type { SAEStepStats, TrainSAEConfig, TrainSAEConfigInput, TrainSAEResult } from './sae/tfjs.js';
