// N:M on activations (semi-structured activation sparsity, Grimaldi et al. 2023): for every token, each
// group of M consecutive features keeps its N largest |x|, so the GEMM that consumes the activations sees
// an N:M-sparse operand. This is the plain-Tensor form; @sparse/nm/tfjs has the training op.
import { applyMask, reshapeMask, type Mask } from '@sparse/masks';
import { reshape, ShapeError, toContiguous, type DType, type Tensor } from '@sparse/tensor';
import { checkNM } from './internal.js';
import { nmMask } from './mask.js';

export interface NMActivationResult<D extends DType> {
  /** x with all but the N largest |x| of every M consecutive features zeroed (same shape and dtype). */
  values: Tensor<D>;
  /** Kept entries, shaped like x. */
  mask: Mask;
}

/** The N:M mask along the last (feature) axis of x, shaped like x (checks the arguments). */
export function nmActivationMask(x: Tensor, opts: { n: number; m: number }, where = 'nmActivations'): Mask {
  checkNM(where, opts);
  if (x.shape.length < 1) throw new ShapeError(`${where}: expected at least one axis (features last), got a scalar`);
  const features = x.shape[x.shape.length - 1]!;
  if (features % opts.m !== 0) throw new ShapeError(`${where}: feature count ${features} (last axis of [${x.shape.join(', ')}]) is not a multiple of m = ${opts.m}`);
  const tokens = features === 0 ? 0 : x.shape.reduce((a, b) => a * b, 1) / features;
  const flat = reshape(toContiguous(x), [tokens, features]);
  return reshapeMask(nmMask(flat, { n: opts.n, m: opts.m, axis: 'row' }), x.shape);
}

/** N:M along the last (feature) axis of x of shape [..., features]; ties keep the lower feature index. */
export function nmActivations<D extends DType>(x: Tensor<D>, opts: { n: number; m: number }): NMActivationResult<D> {
  const mask = nmActivationMask(x, opts);
  return { values: applyMask(mask, x), mask };
}
