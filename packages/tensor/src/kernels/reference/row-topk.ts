// Reference rowTopKScaledAbs: in every row, keep the k largest |w_ij| * scale_j (float64 scores; ties to the
// lower column), found by a three-way quickselect on a copy of the row's scores.
import { validateRowTopKScaledAbsArgs } from '../validate.js';
import type { RowTopKScaledAbsArgs } from '../types.js';

/** The value at position `rank` of `a` sorted ascending (reorders `a`); O(n) expected, O(n log n) at worst. */
export function selectRankF64(a: Float64Array, rank: number): number {
  let lo = 0;
  let hi = a.length - 1;
  let rounds = 2 * Math.ceil(Math.log2(a.length + 1)) + 8;
  while (lo < hi) {
    if (rounds-- === 0) return a.subarray(lo, hi + 1).sort()[rank - lo]!;
    // median of three as the pivot
    const x = a[lo]!;
    const y = a[lo + ((hi - lo) >>> 1)]!;
    const z = a[hi]!;
    const p = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    // [lo, lt) < p, [lt, i) == p, (gt, hi] > p
    let lt = lo;
    let i = lo;
    let gt = hi;
    while (i <= gt) {
      const v = a[i]!;
      if (v < p) {
        a[i] = a[lt]!;
        a[lt++] = v;
        i++;
      } else if (v > p) {
        a[i] = a[gt]!;
        a[gt--] = v;
      } else i++;
    }
    if (rank < lt) hi = lt - 1;
    else if (rank > gt) lo = gt + 1;
    else return p;
  }
  return a[lo]!;
}

export function rowTopKScaledAbsReference(args: RowTopKScaledAbsArgs): number {
  const { outOffset, ldo } = validateRowTopKScaledAbsArgs(args);
  const { rows, cols, w, wOffset, ldw, scale, k, mask, out } = args;
  for (let i = 0; i < rows; i++) {
    const r = wOffset + i * ldw;
    for (let j = 0; j < cols; j++) if (!Number.isFinite(w[r + j]!)) return i * cols + j;
  }
  const words = Math.ceil((rows * cols) / 32);
  mask.fill(0, 0, words);
  const scores = new Float64Array(cols);
  const work = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const r = wOffset + i * ldw;
    // + 0 turns a -0 scale's -0 score into +0 (they are equal; only their bits differ)
    for (let j = 0; j < cols; j++) scores[j] = Math.abs(w[r + j]!) * scale[j]! + 0;
    // Scores above the k-th largest are kept; of those equal to it, the first (k - above) in column order.
    let threshold = Infinity;
    let ties = 0;
    if (k > 0 && k < cols) {
      work.set(scores);
      threshold = selectRankF64(work, cols - k);
      let above = 0;
      for (let j = 0; j < cols; j++) if (scores[j]! > threshold) above++;
      ties = k - above;
    }
    const base = i * cols;
    for (let j = 0; j < cols; j++) {
      const s = scores[j]!;
      const kept = k === cols || (k > 0 && (s > threshold || (s === threshold && ties-- > 0)));
      if (kept) mask[Math.floor((base + j) / 32)]! |= 1 << ((base + j) & 31);
      if (out !== undefined) out[outOffset + i * ldo + j] = kept ? w[r + j]! : 0;
    }
  }
  return -1;
}
