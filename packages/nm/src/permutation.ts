// Channel permutation before N:M masking: reorder the input columns of W so that large weights stop
// competing inside the same group of M, raising the magnitude the N:M mask keeps. Permuting the
// input channels of layer L+1 is undone by permuting the output rows (and bias) of layer L the same
// way, so the network computes the same function ("Channel Permutations for N:M Sparsity", Pool & Yu,
// NeurIPS 2021; NVIDIA ASP's permutation search).
import { ArgumentError, asTensor, ShapeError, zeros, type DType, type Tensor } from '@sparse/tensor';
import { checkNM, keptSum, readMatrix } from './internal.js';

export interface PermutationSearchOptions {
  n: number;
  m: number;
  /** 'magnitude' (default) scores entries by |x|; 'value' takes them as given (e.g. Wanda scores). */
  rank?: 'magnitude' | 'value';
  /** Most swaps applied (default 4 * columns). */
  maxSwaps?: number;
}

export interface PermutationSearchResult {
  /** permutation[j] = original column placed at position j. */
  permutation: Int32Array;
  /** Kept score of row-axis N:M masking before and after permuting the columns. */
  keptBefore: number;
  keptAfter: number;
  /** Swaps applied. */
  swaps: number;
}

/**
 * Greedy column-swap local search (the "channel swap" step of Pool & Yu). Start from the identity;
 * each round evaluates every swap of two columns in different groups of M (only those two groups'
 * kept sums change, so a swap costs O(rows * M)), applies the one that raises the kept score most, and
 * stops when no swap helps or after maxSwaps. Every applied swap strictly improves, so the result never
 * keeps less than the identity. The paper's exhaustive stripe-group search and its perturbations to escape
 * local optima are not done here. O(cols^2 * rows * M) per swap: meant for layers of up to a few hundred columns.
 */
export function searchChannelPermutation(scores: Tensor, opts: PermutationSearchOptions): PermutationSearchResult {
  checkNM('searchChannelPermutation', opts);
  const { n, m } = opts;
  const { rows, cols, data } = readMatrix(scores, 'searchChannelPermutation');
  if (cols % m !== 0) throw new ShapeError(`searchChannelPermutation: ${cols} columns are not a multiple of m = ${m}`);
  const maxSwaps = opts.maxSwaps ?? 4 * cols;
  if (!Number.isSafeInteger(maxSwaps) || maxSwaps < 0) throw new ArgumentError(`searchChannelPermutation: maxSwaps must be a non-negative integer, got ${maxSwaps}`);
  const s = opts.rank === 'value' ? data : data.map(Math.abs);
  const perm = Int32Array.from({ length: cols }, (_, j) => j);
  const groups = cols / m;
  const vals = new Float64Array(m);
  const scratch = new Int32Array(n);
  // Kept sum of group g over all rows, with column `swapOut` position replaced by original column `swapIn`.
  const groupKept = (g: number, at = -1, swapIn = -1): number => {
    let total = 0;
    for (let r = 0; r < rows; r++) {
      for (let q = 0; q < m; q++) {
        const pos = g * m + q;
        vals[q] = s[r * cols + (pos === at ? swapIn : perm[pos]!)]!;
      }
      total += keptSum(vals, n, m, scratch);
    }
    return total;
  };
  const kept = Float64Array.from({ length: groups }, (_, g) => groupKept(g));
  const keptBefore = kept.reduce((a, b) => a + b, 0);
  let swaps = 0;
  while (swaps < maxSwaps) {
    let bestDelta = 0;
    let bestA = -1;
    let bestB = -1;
    let bestKa = 0;
    let bestKb = 0;
    for (let a = 0; a < cols; a++) {
      const ga = Math.floor(a / m);
      for (let b = (ga + 1) * m; b < cols; b++) {
        const gb = Math.floor(b / m);
        const ka = groupKept(ga, a, perm[b]!);
        const kb = groupKept(gb, b, perm[a]!);
        const delta = ka + kb - kept[ga]! - kept[gb]!;
        if (delta > bestDelta) [bestDelta, bestA, bestB, bestKa, bestKb] = [delta, a, b, ka, kb];
      }
    }
    // Ignore rounding-level gains so the search cannot cycle on ties.
    if (bestA < 0 || bestDelta <= 1e-12 * Math.max(1, keptBefore)) break;
    [perm[bestA], perm[bestB]] = [perm[bestB]!, perm[bestA]!];
    kept[Math.floor(bestA / m)] = bestKa;
    kept[Math.floor(bestB / m)] = bestKb;
    swaps++;
  }
  // Recompute from scratch so keptAfter carries no accumulated rounding.
  let keptAfter = 0;
  for (let g = 0; g < groups; g++) keptAfter += groupKept(g);
  return { permutation: perm, keptBefore, keptAfter, swaps };
}

function checkPermutation(where: string, perm: ArrayLike<number>, size: number): void {
  if (perm.length !== size) throw new ShapeError(`${where}: permutation has ${perm.length} entries, expected ${size}`);
  const seen = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const p = perm[i]!;
    if (!Number.isInteger(p) || p < 0 || p >= size || seen[p]) throw new ArgumentError(`${where}: entry ${i} = ${p} makes this not a permutation of 0..${size - 1}`);
    seen[p] = 1;
  }
}

/** W'[:, j] = W[:, perm[j]]: the input channels of a [out, in] weight reordered (new contiguous tensor). */
export function applyColumnPermutation<D extends DType>(weight: Tensor<D>, perm: ArrayLike<number>): Tensor<D> {
  const t = asTensor(weight) as Tensor<D>;
  if (t.shape.length !== 2) throw new ShapeError(`applyColumnPermutation: expected a matrix, got shape [${t.shape.join(', ')}]`);
  const [rows, cols] = t.shape as [number, number];
  checkPermutation('applyColumnPermutation', perm, cols);
  const out = zeros([rows, cols], t.dtype);
  const [s0, s1] = t.stride as [number, number];
  // Raw copies, so 16-bit floats keep their exact bits.
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out.data[i * cols + j] = t.data[t.offset + i * s0 + perm[j]! * s1]!;
  return out;
}

/**
 * Out'[j, ...] = Out[perm[j], ...]: the output rows of the previous layer's [out, in] weight, or the
 * entries of its [out] bias, reordered so that layer L+1 with permuted input columns computes the same.
 */
export function applyRowPermutation<D extends DType>(weightOrBias: Tensor<D>, perm: ArrayLike<number>): Tensor<D> {
  const t = asTensor(weightOrBias) as Tensor<D>;
  if (t.shape.length !== 1 && t.shape.length !== 2) throw new ShapeError(`applyRowPermutation: expected a vector or matrix, got shape [${t.shape.join(', ')}]`);
  const rows = t.shape[0]!;
  const cols = t.shape.length === 2 ? t.shape[1]! : 1;
  checkPermutation('applyRowPermutation', perm, rows);
  const out = zeros(t.shape, t.dtype);
  const s0 = t.stride[0]!;
  const s1 = t.shape.length === 2 ? t.stride[1]! : 0;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out.data[i * cols + j] = t.data[t.offset + perm[i]! * s0 + j * s1]!;
  return out;
}

/** inverse[perm[j]] = j: undoes a permutation (e.g. to restore the original channel order). */
export function invertPermutation(perm: ArrayLike<number>): Int32Array {
  checkPermutation('invertPermutation', perm, perm.length);
  const inv = new Int32Array(perm.length);
  for (let j = 0; j < perm.length; j++) inv[perm[j]!] = j;
  return inv;
}
