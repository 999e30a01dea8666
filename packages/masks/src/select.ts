// Turning scores into masks: top-k per tensor, per row, per column and across tensors, thresholds, and
// keep-by-sparsity. Every rule keeps an exact number of entries and breaks ties the same way:
// among equal scores, the entry with the lower flat (row-major) index is selected first.

import { ArgumentError, selectRank, sizeOf, type Tensor } from '@sparse/tensor';
import { maskWords, type Mask } from './mask.js';
import { checkCount, checkNoNaN, checkSparsity, flatValues, matrixShape } from './internal.js';

/**
 * How many entries a sparsity keeps: k = round((1 - s) * n), with Math.round (halves round up), so the
 * achieved sparsity is the closest attainable one, (n - k) / n. s must be in [0, 1).
 */
export function keepCount(n: number, sparsity: number, where = 'keepCount'): number {
  checkSparsity(where, 'sparsity', sparsity);
  if (!Number.isSafeInteger(n) || n < 0) throw new ArgumentError(`${where}: n must be a non-negative integer, got ${String(n)}`);
  return Math.min(n, Math.round((1 - sparsity) * n));
}

// ---- selection core ----

type Keys = Float32Array | Float64Array;


/**
 * Calls keep(i) for exactly k indices of `values`: the k largest (or smallest), ties to the lower index.
 * `values` is read only; a key copy is made for the selection (in `work` when given and long enough).
 * (Package-internal; not re-exported.)
 */
export function selectTopK(values: ArrayLike<number>, k: number, largest: boolean, keep: (i: number) => void, work?: Keys): void {
  const picked = new Int32Array(Math.min(Math.max(k, 0), values.length));
  const count = topKIndices(values, k, largest, picked, work);
  for (let q = 0; q < count; q++) keep(picked[q]!);
}

/**
 * Writes the indices of the k largest (or smallest) values into `out` (ties to the lower index; those
 * past the k-th key first, then the ties, each group in increasing order); returns how many (min(k, n)). Keys are the values (largest) or their negations (smallest), so "the k largest keys"
 * covers both; only the work copy that quickselect reorders is allocated, and not even that when
 * `work` is long enough.
 */
function topKIndices(values: ArrayLike<number>, k: number, largest: boolean, out: Int32Array, work?: Keys): number {
  const n = values.length;
  if (k <= 0) return 0;
  if (k >= n) {
    for (let i = 0; i < n; i++) out[i] = i;
    return n;
  }
  const keys: Keys =
    work !== undefined && work.length >= n && (work instanceof Float64Array || values instanceof Float32Array)
      ? work.subarray(0, n)
      : values instanceof Float32Array
        ? new Float32Array(n)
        : new Float64Array(n);
  if (largest) for (let i = 0; i < n; i++) keys[i] = values[i]!;
  else for (let i = 0; i < n; i++) keys[i] = -values[i]!;
  const v = selectRank(keys, n - k); // the k-th largest key
  const sign = largest ? 1 : -1;
  let taken = 0;
  for (let i = 0; i < n; i++) if (sign * values[i]! > v) out[taken++] = i;
  for (let i = 0; i < n && taken < k; i++) if (sign * values[i]! === v) out[taken++] = i;
  return taken;
}

function setBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5]! |= 1 << (i & 31);
}

function scoresOf(scores: Tensor, where: string, name: string): Float32Array | Float64Array {
  const values = flatValues(scores, where, name);
  checkNoNaN(values, scores.shape, where, name);
  return values;
}

export interface TopKOptions {
  /** Keep the largest scores (default) or the smallest (e.g. GraSP, which prunes its largest scores). */
  largest?: boolean;
}

/**
 * Keeps exactly k entries of a score tensor (any shape): those with the largest scores, or the smallest with
 * { largest: false }. Among equal scores the lower flat index is kept first. NaN scores are rejected
 * (ArgumentError with the element's index).
 */
export function topKMask(scores: Tensor, k: number, opts: TopKOptions = {}): Mask {
  const values = scoresOf(scores, 'topKMask', 'scores');
  checkCount('topKMask', 'k', k, values.length);
  const bits = new Uint32Array(maskWords(values.length));
  selectTopK(values, k, opts.largest ?? true, (i) => setBit(bits, i));
  return { shape: [...scores.shape], bits };
}

/** topKMask with k = keepCount(size, sparsity): the achieved sparsity is exact up to that rounding. */
export function topKMaskBySparsity(scores: Tensor, sparsity: number, opts: TopKOptions = {}): Mask {
  return topKMask(scores, keepCount(sizeOf(scores.shape), sparsity, 'topKMaskBySparsity'), opts);
}

/** Keeps exactly k entries in every row of a score matrix (ties: lower column index first). */
export function perRowTopKMask(scores: Tensor, k: number, opts: TopKOptions = {}): Mask {
  const [rows, cols] = matrixShape('perRowTopKMask', 'scores', scores.shape);
  const values = scoresOf(scores, 'perRowTopKMask', 'scores');
  checkCount('perRowTopKMask', 'k', k, cols);
  const bits = new Uint32Array(maskWords(rows * cols));
  // One key buffer and one index buffer for every row.
  const work = values instanceof Float32Array ? new Float32Array(cols) : new Float64Array(cols);
  const picked = new Int32Array(k);
  for (let r = 0; r < rows; r++) {
    const count = topKIndices(values.subarray(r * cols, (r + 1) * cols), k, opts.largest ?? true, picked, work);
    for (let q = 0; q < count; q++) setBit(bits, r * cols + picked[q]!);
  }
  return { shape: [rows, cols], bits };
}

/** Keeps exactly k entries in every column of a score matrix (ties: lower row index first). */
export function perColumnTopKMask(scores: Tensor, k: number, opts: TopKOptions = {}): Mask {
  const [rows, cols] = matrixShape('perColumnTopKMask', 'scores', scores.shape);
  const values = scoresOf(scores, 'perColumnTopKMask', 'scores');
  checkCount('perColumnTopKMask', 'k', k, rows);
  const bits = new Uint32Array(maskWords(rows * cols));
  const column = values instanceof Float32Array ? new Float32Array(rows) : new Float64Array(rows);
  const work = values instanceof Float32Array ? new Float32Array(rows) : new Float64Array(rows);
  for (let c = 0; c < cols; c++) {
    for (let r = 0; r < rows; r++) column[r] = values[r * cols + c]!;
    selectTopK(column, k, opts.largest ?? true, (r) => setBit(bits, r * cols + c), work);
  }
  return { shape: [rows, cols], bits };
}

export type Granularity = 'tensor' | 'row' | 'column';

/**
 * Keep-by-sparsity at a granularity: 'tensor' keeps keepCount(size, s) entries overall, 'row' keeps
 * keepCount(cols, s) in every row, 'column' keepCount(rows, s) in every column.
 */
export function maskBySparsity(scores: Tensor, sparsity: number, granularity: Granularity = 'tensor', opts: TopKOptions = {}): Mask {
  switch (granularity) {
    case 'tensor':
      return topKMaskBySparsity(scores, sparsity, opts);
    case 'row': {
      const [, cols] = matrixShape('maskBySparsity', 'scores', scores.shape);
      return perRowTopKMask(scores, keepCount(cols, sparsity, 'maskBySparsity'), opts);
    }
    case 'column': {
      const [rows] = matrixShape('maskBySparsity', 'scores', scores.shape);
      return perColumnTopKMask(scores, keepCount(rows, sparsity, 'maskBySparsity'), opts);
    }
    default:
      throw new ArgumentError(`maskBySparsity: granularity must be 'tensor', 'row' or 'column', got ${JSON.stringify(granularity)}`);
  }
}

export type GlobalBudget = { k: number } | { sparsity: number };

/**
 * Global top-k across several score tensors (one ranking over all their entries, e.g. global magnitude
 * pruning): keeps exactly k entries in total, or keepCount(total, sparsity). Ties go to the earlier tensor,
 * then the lower flat index. Returns one mask per tensor, in order.
 */
export function globalTopKMasks(scores: readonly Tensor[], budget: GlobalBudget, opts: TopKOptions = {}): Mask[] {
  if (!Array.isArray(scores) || scores.length === 0) throw new ArgumentError('globalTopKMasks: scores must be a non-empty array of tensors');
  const parts = scores.map((s, i) => scoresOf(s, 'globalTopKMasks', `scores[${i}]`));
  const total = parts.reduce((n, p) => n + p.length, 0);
  let k: number;
  if (typeof budget === 'object' && budget !== null && 'k' in budget) k = checkCount('globalTopKMasks', 'budget.k', budget.k, total);
  else if (typeof budget === 'object' && budget !== null && 'sparsity' in budget) k = keepCount(total, budget.sparsity, 'globalTopKMasks');
  else throw new ArgumentError(`globalTopKMasks: budget must be { k } or { sparsity }, got ${JSON.stringify(budget)}`);
  const all = parts.every((p) => p instanceof Float32Array) ? new Float32Array(total) : new Float64Array(total);
  const starts: number[] = [];
  let off = 0;
  for (const p of parts) {
    starts.push(off);
    all.set(p, off);
    off += p.length;
  }
  const masks = scores.map((s, i) => ({ shape: [...s.shape], bits: new Uint32Array(maskWords(parts[i]!.length)) }));
  let t = 0;
  selectTopK(all, k, opts.largest ?? true, (i) => {
    // Indices arrive in increasing order within each pass, but two passes interleave: search each time.
    if (i < starts[t]! || (t + 1 < starts.length && i >= starts[t + 1]!)) {
      t = upperBound(starts, i) - 1;
    }
    setBit(masks[t]!.bits, i - starts[t]!);
  });
  return masks;
}

/** First position in sorted `a` whose value is > x. */
function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface ThresholdOptions {
  /** Keep scores >= threshold instead of > threshold (or <= instead of < with below). */
  inclusive?: boolean;
  /** Keep the scores below the threshold instead of above (SaRA trains the weights with |w| < threshold). */
  below?: boolean;
}

/** Keeps the entries whose score is above (default, strictly) or below a threshold. */
export function thresholdMask(scores: Tensor, threshold: number, opts: ThresholdOptions = {}): Mask {
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) {
    throw new ArgumentError(`thresholdMask: threshold must be a number, got ${String(threshold)}`);
  }
  const values = scoresOf(scores, 'thresholdMask', 'scores');
  const bits = new Uint32Array(maskWords(values.length));
  const inc = opts.inclusive ?? false;
  const below = opts.below ?? false;
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    const keep = below ? (inc ? x <= threshold : x < threshold) : inc ? x >= threshold : x > threshold;
    if (keep) setBit(bits, i);
  }
  return { shape: [...scores.shape], bits };
}
