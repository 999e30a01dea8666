// Order statistics of float arrays: the value at a given rank, found by quickselect. The selection rules
// of @sparse/masks, the pruning kernels' references and @sparse/activation's thresholds share it.

type Keys = Float32Array | Float64Array;

/** Swap-based median of three, returning the pivot value. */
function pivotOf(a: Keys, lo: number, hi: number): number {
  const mid = lo + ((hi - lo) >>> 1);
  const x = a[lo]!;
  const y = a[mid]!;
  const z = a[hi]!;
  return x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
}

/**
 * The value that would sit at position `rank` (0-based) if `a` were sorted ascending. Reorders `a`.
 * Quickselect with a three-way partition (many equal scores are common: zeros, ties on a grid) and a
 * median-of-three pivot; after 2 log2(n) + 8 rounds it falls back to the engine's typed-array sort on the
 * remaining range, so the worst case stays O(n log n).
 */
export function selectRank(a: Keys, rank: number): number {
  let lo = 0;
  let hi = a.length - 1;
  let budget = 2 * Math.ceil(Math.log2(a.length + 1)) + 8;
  while (lo < hi) {
    if (budget-- === 0) {
      const part = a.subarray(lo, hi + 1).sort();
      return part[rank - lo]!;
    }
    const p = pivotOf(a, lo, hi);
    // Dutch national flag: [lo, lt) < p, [lt, i) == p, (gt, hi] > p.
    let lt = lo;
    let i = lo;
    let gt = hi;
    while (i <= gt) {
      const x = a[i]!;
      if (x < p) {
        a[i] = a[lt]!;
        a[lt] = x;
        lt++;
        i++;
      } else if (x > p) {
        a[i] = a[gt]!;
        a[gt] = x;
        gt--;
      } else i++;
    }
    if (rank < lt) hi = lt - 1;
    else if (rank > gt) lo = gt + 1;
    else return p;
  }
  return a[lo]!;
}
