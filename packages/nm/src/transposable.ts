// Transposable N:M masks: each M x M block keeps exactly N per row and N per column, so both W and W^T
// are N:M (the backward pass W^T @ dY can use sparse tensor cores too: BDWP / "Efficient N:M training").
import type { Mask } from '@sparse/masks';
import { ArgumentError, ShapeError, type Tensor } from '@sparse/tensor';
import { checkNM, readMatrix } from './internal.js';

/** Refuse pattern lists longer than this; larger (N, M) would need a flow solver instead of enumeration. */
export const MAX_TRANSPOSABLE_PATTERNS = 200_000;
/** Largest M enumerated (4:8 alone has about 1.2e11 patterns). */
export const MAX_TRANSPOSABLE_M = 6;

/** The valid M x M patterns of an (N, M) pair: `count` patterns, each N*M flat block indices (row-major). */
export interface NMPatterns {
  n: number;
  m: number;
  count: number;
  /** count * n * m kept positions, pattern p at [p * n * m, (p + 1) * n * m). */
  cells: Int32Array;
}

const patternCache = new Map<string, NMPatterns>();

/**
 * Every M x M 0/1 matrix with exactly N ones per row and per column (90 for 2:4), built row by row with
 * column counts; cached per (N, M). Throws when the list would exceed MAX_TRANSPOSABLE_PATTERNS.
 */
export function transposablePatterns(n: number, m: number): NMPatterns {
  checkNM('transposablePatterns', { n, m });
  if (m > MAX_TRANSPOSABLE_M) throw new ArgumentError(`transposablePatterns: m = ${m} is above ${MAX_TRANSPOSABLE_M}; the pattern list cannot be enumerated`);
  const key = `${n}:${m}`;
  const hit = patternCache.get(key);
  if (hit) return hit;
  // Row choices: all n-subsets of m columns as bitsets.
  const rowChoices: number[] = [];
  for (let b = 0; b < 1 << m; b++) if (popcount(b) === n) rowChoices.push(b);
  const out: number[] = [];
  let total = 0;
  const rowsSoFar: number[] = [];
  const colCount = new Int32Array(m);
  const recurse = (r: number) => {
    if (r === m) {
      if (++total > MAX_TRANSPOSABLE_PATTERNS) {
        throw new ArgumentError(`transposablePatterns: ${n}:${m} has more than ${MAX_TRANSPOSABLE_PATTERNS} patterns; use a smaller m`);
      }
      for (let i = 0; i < m; i++) for (let q = 0; q < m; q++) if ((rowsSoFar[i]! >> q) & 1) out.push(i * m + q);
      return;
    }
    const rowsLeft = m - r - 1;
    for (const b of rowChoices) {
      let ok = true;
      for (let q = 0; q < m && ok; q++) {
        const c = colCount[q]! + ((b >> q) & 1);
        // Prune: a column may not exceed n nor fall short of n with the rows left.
        if (c > n || c + rowsLeft < n) ok = false;
      }
      if (!ok) continue;
      for (let q = 0; q < m; q++) colCount[q]! += (b >> q) & 1;
      rowsSoFar.push(b);
      recurse(r + 1);
      rowsSoFar.pop();
      for (let q = 0; q < m; q++) colCount[q]! -= (b >> q) & 1;
    }
  };
  recurse(0);
  const patterns = { n, m, count: total, cells: Int32Array.from(out) };
  patternCache.set(key, patterns);
  return patterns;
}

function popcount(b: number): number {
  let c = 0;
  for (; b; b &= b - 1) c++;
  return c;
}

export interface TransposableOptions {
  n: number;
  m: number;
  /**
   * 'exact' (default): per block, the pattern with the largest kept score among all valid patterns.
   * 'greedy': the baseline below, for comparison.
   */
  method?: 'exact' | 'greedy';
  /** 'magnitude' (default) scores entries by |x|; 'value' uses them as given (must be non-negative to be meaningful). */
  rank?: 'magnitude' | 'value';
}

export interface TransposableResult {
  mask: Mask;
  /** Sum of the kept scores. */
  kept: number;
}

/** Index of the pattern with the largest sum of block scores (first wins ties). */
function bestPattern(p: NMPatterns, block: Float64Array): number {
  const k = p.n * p.m;
  let best = 0;
  let bestSum = -Infinity;
  for (let i = 0; i < p.count; i++) {
    let s = 0;
    for (let t = i * k; t < (i + 1) * k; t++) s += block[p.cells[t]!]!;
    if (s > bestSum) [best, bestSum] = [i, s];
  }
  return best;
}

/**
 * Greedy baseline: visit the block's entries by decreasing score and keep one when some valid pattern
 * still contains everything kept so far plus it (so the greedy always ends on a valid pattern). It is
 * the "largest first" heuristic, which can lose to the exact choice when an early large pick forces
 * small ones later.
 */
function greedyPattern(p: NMPatterns, block: Float64Array): number {
  const k = p.n * p.m;
  const order = [...Array(p.m * p.m).keys()].sort((a, b) => block[b]! - block[a]! || a - b);
  let alive = [...Array(p.count).keys()];
  const has = (pat: number, cell: number) => {
    for (let t = pat * k; t < (pat + 1) * k; t++) if (p.cells[t] === cell) return true;
    return false;
  };
  for (const cell of order) {
    const next = alive.filter((pat) => has(pat, cell));
    if (next.length > 0) alive = next;
    if (alive.length === 1) break;
  }
  return alive[0]!;
}

/**
 * Transposable N:M mask of a [rows, cols] matrix (both multiples of M): each M x M block gets the pattern
 * chosen by `method`, so every row group and every column group of M keeps exactly N.
 */
export function transposableNMMask(scores: Tensor, opts: TransposableOptions): TransposableResult {
  checkNM('transposableNMMask', opts);
  const { n, m } = opts;
  const method = opts.method ?? 'exact';
  if (method !== 'exact' && method !== 'greedy') throw new ArgumentError(`transposableNMMask: method must be 'exact' or 'greedy', got ${JSON.stringify(method)}`);
  const { rows, cols, data } = readMatrix(scores, 'transposableNMMask');
  if (rows % m !== 0 || cols % m !== 0) throw new ShapeError(`transposableNMMask: shape [${rows}, ${cols}] is not a multiple of m = ${m} in both dimensions`);
  const patterns = transposablePatterns(n, m);
  const bits = new Uint32Array(Math.ceil((rows * cols) / 32));
  const block = new Float64Array(m * m);
  const k = n * m;
  let kept = 0;
  for (let bi = 0; bi < rows; bi += m) {
    for (let bj = 0; bj < cols; bj += m) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) {
          const v = data[(bi + i) * cols + bj + j]!;
          block[i * m + j] = opts.rank === 'value' ? v : Math.abs(v);
        }
      }
      const pat = method === 'exact' ? bestPattern(patterns, block) : greedyPattern(patterns, block);
      for (let t = pat * k; t < (pat + 1) * k; t++) {
        const cell = patterns.cells[t]!;
        kept += block[cell]!;
        const flat = (bi + Math.floor(cell / m)) * cols + bj + (cell % m);
        bits[flat >>> 5]! |= 1 << (flat & 31);
      }
    }
  }
  return { mask: { shape: [rows, cols], bits }, kept };
}
