// Principal weights (LIFT, "LIFT the Veil for the Truth", Liu et al. 2025): the entries that are largest
// in magnitude after a low-rank approximation of the weight, not in the raw weight.

import { ArgumentError, lowRankApproximation, tensor, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import { checkNoNaN, flatValues, matrixShape } from '../internal.js';

export interface PrincipalWeightOptions {
  /** Seeded generator for the randomized SVD's test matrix (default: a fixed seed, so results are reproducible). */
  rng?: Random;
  /** Subspace iterations of the randomized SVD (default 4). */
  iters?: number;
  /** Oversampling columns of the randomized SVD (default 10). */
  oversample?: number;
}

/**
 * |W_r| with W_r = U_r diag(s_r) V_r^T the rank-r approximation of the matrix W, computed by
 * `truncatedSVD` of @sparse/tensor (randomized subspace iteration). LIFT fine-tunes only the top entries
 * of these scores (e.g. 5%).
 */
export function principalWeightScores(weight: Tensor, rank: number, opts: PrincipalWeightOptions = {}): Float32Tensor {
  const [rows, cols] = matrixShape('principalWeightScores', 'weight', weight.shape);
  const v = flatValues(weight, 'principalWeightScores', 'weight');
  checkNoNaN(v, weight.shape, 'principalWeightScores', 'weight');
  const kmax = Math.min(rows, cols);
  if (!Number.isInteger(rank) || rank < 1 || rank > kmax) {
    throw new ArgumentError(`principalWeightScores: rank must be an integer in [1, ${kmax}] for a [${rows}, ${cols}] weight, got ${String(rank)}`);
  }
  const approx = lowRankApproximation(weight, rank, opts);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = Math.abs(approx.data[i]!);
  return tensor(out, [rows, cols]);
}
