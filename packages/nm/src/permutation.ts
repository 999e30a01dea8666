// Channel permutation before N:M masking: reorder the input columns of W so that large weights stop
// competing inside the same group of M, raising the magnitude the N:M mask keeps. Permuting the
// input channels of layer L+1 is undone by permuting the output rows (and bias) of layer L the same
// way, so the network computes the same function ("Channel Permutations for N:M Sparsity", Pool & Yu,
// NeurIPS 2021; NVIDIA ASP's permutation search).
import { ArgumentError, asTensor, ShapeError, zeros, type DType, type Tensor } from '@sparse/tensor';
import { checkNM, keptSum, readMatrix } from './internal.js';

/**
 * Default work budget of a permutation search, in score reads: evaluating one candidate swap reads
 * 2 * rows * M scores (the two groups it changes), so the default number of evaluations is this over
 * 2 * rows * M. 2^28 reads take about a second or two; a [4096, 4096] layer at 2:4 gets 8192 evaluations.
 */
export const DEFAULT_PERMUTATION_WORK = 2 ** 28;

/** Where a permutation search stands, passed to `onProgress`. */
export interface PermutationSearchProgress {
  /** Candidate swaps evaluated so far, and the most allowed. */
  evaluations: number;
  maxEvaluations: number;
  /** Swaps applied so far. */
  swaps: number;
  /** Kept score of the identity and of the current permutation. */
  keptBefore: number;
  kept: number;
  /** Milliseconds since the search started. */
  elapsedMs: number;
  /** Set on the last report: why the search ended. */
  stopped?: PermutationSearchStop;
}

/** Why a search ended: a local optimum, or one of its budgets ran out. */
export type PermutationSearchStop = 'converged' | 'maxSwaps' | 'maxEvaluations' | 'time';

export interface PermutationSearchOptions {
  n: number;
  m: number;
  /** 'magnitude' (default) scores entries by |x|; 'value' takes them as given (e.g. Wanda scores). */
  rank?: 'magnitude' | 'value';
  /** Most swaps applied (default 4 * columns). */
  maxSwaps?: number;
  /** Most candidate swaps evaluated (default DEFAULT_PERMUTATION_WORK / (2 * rows * m), at least one group pair's m^2). */
  maxEvaluations?: number;
  /** Wall-clock budget in milliseconds (default none: the result then depends only on the input). */
  timeBudgetMs?: number;
  /** Called about every `progressIntervalMs` while the search runs, and once at its end (with `stopped`). */
  onProgress?: (progress: PermutationSearchProgress) => void;
  /** Milliseconds between progress reports (default 1000). */
  progressIntervalMs?: number;
}

export interface PermutationSearchResult {
  /** permutation[j] = original column placed at position j. */
  permutation: Int32Array;
  /** Kept score of row-axis N:M masking before and after permuting the columns. */
  keptBefore: number;
  keptAfter: number;
  /** Swaps applied. */
  swaps: number;
  /** Candidate swaps evaluated. */
  evaluations: number;
  /** Why the search ended. */
  stopped: PermutationSearchStop;
}

function checkBudget(name: string, value: number | undefined, integer: boolean): void {
  if (value === undefined) return;
  const ok = typeof value === 'number' && value >= 0 && (integer ? Number.isSafeInteger(value) : !Number.isNaN(value));
  if (!ok) throw new ArgumentError(`searchChannelPermutation: ${name} must be ${integer ? 'an integer' : 'a number'} >= 0, got ${value}`);
}

/**
 * Column-swap local search (the "channel swap" step of Pool & Yu), with bounded work. Start from the
 * identity; sweep over pairs of groups of M (ordered by the score they lose to the mask), and for
 * each pair evaluate all M^2 swaps of one column of each in one pass over the rows (only those two
 * groups' kept sums change) and apply the best if it raises the kept score. Sweeps
 * repeat until one applies no swap (a local optimum), or until maxSwaps swaps, maxEvaluations
 * evaluations or timeBudgetMs have been spent. Every applied swap strictly improves, so the result
 * never keeps less than the identity, whichever budget ends it. The paper's exhaustive stripe-group
 * search and its perturbations to escape local optima are not done here.
 */
export function searchChannelPermutation(scores: Tensor, opts: PermutationSearchOptions): PermutationSearchResult {
  checkNM('searchChannelPermutation', opts);
  const { n, m } = opts;
  const { rows, cols, data } = readMatrix(scores, 'searchChannelPermutation');
  if (cols % m !== 0) throw new ShapeError(`searchChannelPermutation: ${cols} columns are not a multiple of m = ${m}`);
  const maxSwaps = opts.maxSwaps ?? 4 * cols;
  if (!Number.isSafeInteger(maxSwaps) || maxSwaps < 0) throw new ArgumentError(`searchChannelPermutation: maxSwaps must be a non-negative integer, got ${maxSwaps}`);
  checkBudget('maxEvaluations', opts.maxEvaluations, true);
  checkBudget('timeBudgetMs', opts.timeBudgetMs, false);
  checkBudget('progressIntervalMs', opts.progressIntervalMs, false);
  const maxEvaluations = opts.maxEvaluations ?? Math.max(m * m, Math.floor(DEFAULT_PERMUTATION_WORK / Math.max(1, 2 * rows * m)));
  const timeBudget = opts.timeBudgetMs ?? Infinity;
  const interval = opts.progressIntervalMs ?? 1000;
  const started = performance.now();
  // Scores column-major (s[c * rows + r]), so a group's columns are read as contiguous runs.
  const s = new Float64Array(rows * cols);
  const abs = opts.rank !== 'value';
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) s[c * rows + r] = abs ? Math.abs(data[r * cols + c]!) : data[r * cols + c]!;
  const perm = Int32Array.from({ length: cols }, (_, j) => j);
  const groups = cols / m;
  const vals = new Float64Array(m);
  const scratch = new Int32Array(n);
  const sorted = new Float64Array(m);
  // Kept sum of group g over all rows: its n largest values per row, added largest first (keptSum's
  // selection, which also handles NaN, when a row holds NaN).
  const groupKept = (g: number): number => {
    let total = 0;
    for (let r = 0; r < rows; r++) {
      let nan = false;
      for (let q = 0; q < m; q++) {
        const v = s[perm[g * m + q]! * rows + r]!;
        vals[q] = v;
        if (v !== v) nan = true;
        let j = q - 1;
        while (j >= 0 && sorted[j]! < v) {
          sorted[j + 1] = sorted[j]!;
          j--;
        }
        sorted[j + 1] = v;
      }
      if (nan) {
        total += keptSum(vals, n, m, scratch);
      } else {
        let kept = 0;
        for (let i = 0; i < n; i++) kept += sorted[i]!;
        total += kept;
      }
    }
    return total;
  };
  // Score of group g over all rows (kept or not): fixed by its columns, so swaps move it with them.
  const groupTotal = (g: number): number => {
    let total = 0;
    for (let r = 0; r < rows; r++) for (let q = 0; q < m; q++) total += s[perm[g * m + q]! * rows + r]!;
    return total;
  };
  // For one row's group values x: with position q replaced by a value v, the group keeps
  // base[q] + max(0, v - t[q]) (base: the top n of the other m - 1 values; t: the smallest of those n).
  const xa = new Float64Array(m);
  const xb = new Float64Array(m);
  const baseA = new Float64Array(m);
  const baseB = new Float64Array(m);
  const tA = new Float64Array(m);
  const tB = new Float64Array(m);
  const idx = new Int32Array(m);
  const sums = new Float64Array(m * m);
  const replaced = (x: Float64Array, base: Float64Array, t: Float64Array): void => {
    for (let q = 0; q < m; q++) idx[q] = q;
    // Insertion sort of positions by value, largest first (m is small).
    for (let i = 1; i < m; i++) {
      const q = idx[i]!;
      let j = i - 1;
      while (j >= 0 && x[idx[j]!]! < x[q]!) {
        idx[j + 1] = idx[j]!;
        j--;
      }
      idx[j + 1] = q;
    }
    let top = 0;
    for (let i = 0; i < n; i++) top += x[idx[i]!]!;
    const nth = x[idx[n - 1]!]!; // smallest kept
    const next = x[idx[n]!]!; // largest dropped (n < m)
    for (let i = 0; i < m; i++) {
      const q = idx[i]!;
      if (i < n) {
        base[q] = top - x[q]! + next;
        t[q] = next;
      } else {
        base[q] = top;
        t[q] = nth;
      }
    }
  };
  // sums[qa * m + qb] = kept of ga plus kept of gb after swapping positions qa of ga and qb of gb.
  const pairSums = (ga: number, gb: number): void => {
    sums.fill(0);
    for (let r = 0; r < rows; r++) {
      for (let q = 0; q < m; q++) {
        xa[q] = s[perm[ga * m + q]! * rows + r]!;
        xb[q] = s[perm[gb * m + q]! * rows + r]!;
      }
      replaced(xa, baseA, tA);
      replaced(xb, baseB, tB);
      for (let qa = 0; qa < m; qa++) {
        const ba = baseA[qa]!;
        const ta = tA[qa]!;
        const va = xa[qa]!;
        for (let qb = 0; qb < m; qb++) {
          const vb = xb[qb]!;
          sums[qa * m + qb] += ba + (vb > ta ? vb - ta : 0) + baseB[qb]! + (va > tB[qb]! ? va - tB[qb]! : 0);
        }
      }
    }
  };
  const kept = Float64Array.from({ length: groups }, (_, g) => groupKept(g));
  const totals = Float64Array.from({ length: groups }, (_, g) => groupTotal(g));
  const keptBefore = kept.reduce((a, b) => a + b, 0);
  const minGain = 1e-12 * Math.max(1, keptBefore);
  let keptNow = keptBefore;
  let swaps = 0;
  let evaluations = 0;
  let lastReport = started;
  let stopped: PermutationSearchStop | undefined;
  const report = (end?: PermutationSearchStop): void => {
    if (!opts.onProgress) return;
    const now = performance.now();
    if (end === undefined && now - lastReport < interval) return;
    lastReport = now;
    const p: PermutationSearchProgress = { evaluations, maxEvaluations, swaps, keptBefore, kept: keptNow, elapsedMs: now - started };
    if (end !== undefined) p.stopped = end;
    opts.onProgress(p);
  };
  const order = Int32Array.from({ length: groups }, (_, g) => g);
  while (stopped === undefined) {
    // Groups losing the most score to the mask first: they have the most to gain from a swap.
    const dropped = Float64Array.from({ length: groups }, (_, g) => totals[g]! - kept[g]!);
    order.sort((x, y) => dropped[y]! - dropped[x]! || x - y);
    let applied = 0;
    // Every pair of groups once per sweep, as (i, i + k) cyclically for k = 1, 2, ...: an early stop
    // has spread its evaluations over all groups rather than spent them on the first one.
    sweep: for (let k = 1; 2 * k <= groups; k++) {
      for (let i = 0; i < groups; i++) {
        if (2 * k === groups && i >= k) break;
        if (swaps >= maxSwaps) stopped = 'maxSwaps';
        else if (evaluations + m * m > maxEvaluations) stopped = 'maxEvaluations';
        else if (timeBudget !== Infinity && performance.now() - started >= timeBudget) stopped = 'time';
        if (stopped !== undefined) break sweep;
        const ga = order[i]!;
        const gb = order[(i + k) % groups]!;
        // All m^2 swaps of a column of ga with one of gb at once, one pass over the rows.
        pairSums(ga, gb);
        let bestDelta = minGain;
        let bestA = -1;
        let bestB = -1;
        for (let qa = 0; qa < m; qa++) {
          for (let qb = 0; qb < m; qb++) {
            const delta = sums[qa * m + qb]! - kept[ga]! - kept[gb]!;
            if (delta > bestDelta) [bestDelta, bestA, bestB] = [delta, ga * m + qa, gb * m + qb];
          }
        }
        evaluations += m * m;
        if (bestA >= 0) {
          [perm[bestA], perm[bestB]] = [perm[bestB]!, perm[bestA]!];
          // Exact kept sums of the two groups; a swap whose gain was only rounding is undone.
          const ka = groupKept(ga);
          const kb = groupKept(gb);
          if (ka + kb - kept[ga]! - kept[gb]! > minGain) {
            keptNow += ka + kb - kept[ga]! - kept[gb]!;
            kept[ga] = ka;
            kept[gb] = kb;
            totals[ga] = groupTotal(ga);
            totals[gb] = groupTotal(gb);
            swaps++;
            applied++;
          } else {
            [perm[bestA], perm[bestB]] = [perm[bestB]!, perm[bestA]!];
          }
        }
        report();
      }
    }
    if (stopped === undefined && applied === 0) stopped = 'converged';
  }
  // Recompute from scratch so keptAfter carries no accumulated rounding.
  let keptAfter = 0;
  for (let g = 0; g < groups; g++) keptAfter += groupKept(g);
  keptNow = keptAfter;
  report(stopped);
  return { permutation: perm, keptBefore, keptAfter, swaps, evaluations, stopped };
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
