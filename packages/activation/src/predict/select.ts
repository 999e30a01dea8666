// Per-token top-k selection and the recall of a predicted selection against the true one: what every
// predictor of this folder is measured by.

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { markTopK } from '../methods/common.js';

/** A selection of `k` entries out of `n` for each of `tokens` rows: indices [tokens, k], row-major. */
export interface TopSet {
  tokens: number;
  n: number;
  k: number;
  indices: Int32Array;
}

/** How many of `n` entries a keep fraction keeps: round(fraction * n), at least 1 when n > 0. */
export function keepCount(fraction: number, n: number): number {
  if (!(fraction > 0 && fraction <= 1)) throw new ArgumentError(`keep fraction must be in (0, 1], got ${fraction}`);
  return n === 0 ? 0 : Math.min(n, Math.max(1, Math.round(fraction * n)));
}

/**
 * The k largest scores of each row of scores [tokens, n] (equal scores go to the lower index, a NaN counts
 * above every number), listed in index order.
 */
export function topRows(scores: ArrayLike<number>, tokens: number, n: number, k: number): TopSet {
  if (!Number.isInteger(tokens) || tokens < 0 || !Number.isInteger(n) || n < 0) throw new ArgumentError(`topRows: tokens and n must be non-negative integers, got ${tokens}, ${n}`);
  if (scores.length !== tokens * n) throw new ShapeError(`topRows: scores has ${scores.length} values, expected tokens * n = ${tokens * n}`);
  if (!Number.isInteger(k) || k < 0 || k > n) throw new ArgumentError(`topRows: k must be an integer in [0, ${n}], got ${k}`);
  const indices = new Int32Array(tokens * k);
  const marks = new Uint8Array(tokens * n);
  const scratch = new Float64Array(n);
  for (let t = 0; t < tokens; t++) {
    markTopK(scores, t * n, n, k, marks, scratch);
    let p = t * k;
    for (let j = 0; j < n; j++) if (marks[t * n + j] === 1) indices[p++] = j;
  }
  return { tokens, n, k, indices };
}

/** A per-row 0/1 mask [tokens, n] of a selection. */
export function selectionMask(set: TopSet): Uint8Array {
  const mask = new Uint8Array(set.tokens * set.n);
  for (let t = 0; t < set.tokens; t++) for (let i = 0; i < set.k; i++) mask[t * set.n + set.indices[t * set.k + i]!] = 1;
  return mask;
}

/**
 * Recall of a predicted selection against the true one: Σ_t |P_t ∩ T_t| / Σ_t |T_t| over all tokens
 * (1 when every truly selected entry was predicted; an empty truth counts as fully recalled).
 */
export function recall(predicted: TopSet, truth: TopSet): number {
  if (predicted.tokens !== truth.tokens || predicted.n !== truth.n) {
    throw new ShapeError(`recall: predicted is [${predicted.tokens} tokens, ${predicted.n}] but the truth is [${truth.tokens}, ${truth.n}]`);
  }
  const pm = selectionMask(predicted);
  let hit = 0;
  for (let t = 0; t < truth.tokens; t++) for (let i = 0; i < truth.k; i++) hit += pm[t * truth.n + truth.indices[t * truth.k + i]!]!;
  const total = truth.tokens * truth.k;
  return total === 0 ? 1 : hit / total;
}
