// Which tokens of a sequence stay: the first `sink` and last `recent` always, and the highest-scoring of
// the rest up to a `keep` fraction of the sequence.

import { ArgumentError } from '@sparse/tensor';
import { markTopK } from '../methods/common.js';

export interface TokenSelectionOptions {
  /** Fraction of the sequence's tokens kept, in (0, 1]. */
  keep: number;
  /** Leading tokens always kept (attention sinks). */
  sink: number;
  /** Trailing tokens always kept (the local context of the tokens being predicted). */
  recent: number;
}

/**
 * Keep mask [tokens] of one sequence: max(forced, round(keep · tokens)) tokens, where the forced ones (the first
 * `sink` and last `recent`) are always in, and the rest are the highest scores among the others (equal scores
 * go to the earlier token).
 */
export function selectTokens(scores: ArrayLike<number>, opts: TokenSelectionOptions): Uint8Array {
  const { keep, sink, recent } = opts;
  if (!(keep > 0 && keep <= 1)) throw new ArgumentError(`selectTokens: keep must be in (0, 1], got ${keep}`);
  if (!Number.isInteger(sink) || sink < 0 || !Number.isInteger(recent) || recent < 0) throw new ArgumentError(`selectTokens: sink and recent must be non-negative integers, got ${sink}, ${recent}`);
  const n = scores.length;
  const mask = new Uint8Array(n);
  const lo = Math.min(sink, n);
  const hi = Math.max(lo, n - recent);
  mask.fill(1, 0, lo);
  mask.fill(1, hi, n);
  const forced = lo + (n - hi);
  const target = Math.min(n, Math.max(forced, Math.round(keep * n)));
  const middle = hi - lo;
  if (target > forced) markTopK(scores, lo, middle, target - forced, mask, new Float64Array(middle));
  return mask;
}

/** Number of tokens selectTokens keeps of a sequence of `tokens`. */
export function keptTokens(tokens: number, opts: TokenSelectionOptions): number {
  const lo = Math.min(opts.sink, tokens);
  const forced = lo + (tokens - Math.max(lo, tokens - opts.recent));
  return Math.min(tokens, Math.max(forced, Math.round(opts.keep * tokens)));
}
