// Per-token informativeness scores for token elimination: how much attention a token receives, how much a
// block changes it, or how far its hidden state lies from the sequence's mean.

import { ArgumentError, ShapeError } from '@sparse/tensor';

function checkRows(where: string, x: ArrayLike<number>, tokens: number, features: number): void {
  if (!Number.isInteger(tokens) || tokens < 0 || !Number.isInteger(features) || features < 1) throw new ArgumentError(`${where}: tokens and features must be integers (tokens >= 0, features >= 1)`);
  if (x.length !== tokens * features) throw new ShapeError(`${where}: got ${x.length} values, expected ${tokens} x ${features}`);
}

/**
 * Attention mass each key token receives, from causal attention probabilities probs [heads, tokens, tokens]
 * (row i = query i, column j = key j): score_j = mean over heads of Σ_{i ≥ j} p[h, i, j] / (tokens - j), the
 * mean over the queries that can see token j (so late tokens, seen by few queries, are not penalized).
 */
export function attentionReceived(probs: ArrayLike<number>, heads: number, tokens: number): Float64Array {
  if (!Number.isInteger(heads) || heads < 1) throw new ArgumentError(`attentionReceived: heads must be a positive integer, got ${heads}`);
  if (probs.length !== heads * tokens * tokens) throw new ShapeError(`attentionReceived: probs has ${probs.length} values, expected heads x tokens x tokens = ${heads * tokens * tokens}`);
  const out = new Float64Array(tokens);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < tokens; i++) {
      const row = (h * tokens + i) * tokens;
      for (let j = 0; j <= i; j++) out[j] += probs[row + j]!;
    }
  }
  for (let j = 0; j < tokens; j++) out[j] /= heads * (tokens - j);
  return out;
}

/** ‖after_t - before_t‖₂ per token: the size of the change a block makes to each token's hidden state. */
export function blockChange(before: ArrayLike<number>, after: ArrayLike<number>, tokens: number, features: number): Float64Array {
  checkRows('blockChange', before, tokens, features);
  checkRows('blockChange', after, tokens, features);
  const out = new Float64Array(tokens);
  for (let t = 0; t < tokens; t++) {
    let s = 0;
    for (let i = 0; i < features; i++) {
      const v = after[t * features + i]! - before[t * features + i]!;
      s += v * v;
    }
    out[t] = Math.sqrt(s);
  }
  return out;
}

/** ‖x_t‖₂ per token. */
export function rowNorms(x: ArrayLike<number>, tokens: number, features: number): Float64Array {
  checkRows('rowNorms', x, tokens, features);
  const out = new Float64Array(tokens);
  for (let t = 0; t < tokens; t++) {
    let s = 0;
    for (let i = 0; i < features; i++) s += x[t * features + i]! ** 2;
    out[t] = Math.sqrt(s);
  }
  return out;
}

/**
 * ‖x_t - mean_s x_s‖₂ per token of one sequence x [tokens, features]: a token whose hidden state sits at the
 * sequence's mean adds little that the others do not carry.
 */
export function deviationFromMean(x: ArrayLike<number>, tokens: number, features: number): Float64Array {
  checkRows('deviationFromMean', x, tokens, features);
  const mean = new Float64Array(features);
  for (let t = 0; t < tokens; t++) for (let i = 0; i < features; i++) mean[i] += x[t * features + i]!;
  for (let i = 0; i < features; i++) mean[i] /= Math.max(1, tokens);
  const out = new Float64Array(tokens);
  for (let t = 0; t < tokens; t++) {
    let s = 0;
    for (let i = 0; i < features; i++) s += (x[t * features + i]! - mean[i]!) ** 2;
    out[t] = Math.sqrt(s);
  }
  return out;
}
