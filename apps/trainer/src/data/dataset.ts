// Token streams: the train/held-out split, seeded batch sampling, and the fixed held-out windows
// that perplexity is measured on.

import { ArgumentError, Random } from '@sparse/tensor';
import { generateCorpus, DEFAULT_CORPUS_CHARS, DEFAULT_CORPUS_SEED } from './corpus.js';
import { DEFAULT_SHIFTED_CHARS, DEFAULT_SHIFTED_SEED, generateShiftedCorpus } from './shifted.js';
import { ByteTokenizer, CharTokenizer, type Tokenizer } from './tokenizer.js';

export interface Split {
  train: Int32Array;
  heldOut: Int32Array;
}

/** The last `fraction` of the stream is held out; training never sees it. */
export function splitHeldOut(tokens: Int32Array, fraction = 0.1): Split {
  if (!(fraction > 0 && fraction < 1)) throw new ArgumentError(`held-out fraction must be in (0, 1), got ${fraction}`);
  const cut = tokens.length - Math.max(1, Math.round(tokens.length * fraction));
  return { train: tokens.subarray(0, cut), heldOut: tokens.subarray(cut) };
}

export interface Batch {
  /** Inputs, row-major [batch, len]. */
  inputs: Int32Array;
  /** Next-token targets, row-major [batch, len]. */
  targets: Int32Array;
  batch: number;
  len: number;
}

/** `batch` windows of `len` tokens at uniformly random offsets (targets shifted by one). */
export function sampleBatch(tokens: Int32Array, batch: number, len: number, rng: Random): Batch {
  if (tokens.length < len + 1) throw new ArgumentError(`need at least ${len + 1} tokens for windows of ${len}, have ${tokens.length}`);
  const inputs = new Int32Array(batch * len);
  const targets = new Int32Array(batch * len);
  for (let i = 0; i < batch; i++) {
    const s = rng.int(0, tokens.length - len);
    inputs.set(tokens.subarray(s, s + len), i * len);
    targets.set(tokens.subarray(s + 1, s + len + 1), i * len);
  }
  return { inputs, targets, batch, len };
}

/**
 * Start offsets of non-overlapping windows of `len` tokens (plus one target) covering `tokens`;
 * when there are more than `maxWindows`, an evenly spaced subset. Deterministic.
 */
export function evalWindowStarts(tokens: Int32Array, len: number, maxWindows = Infinity): number[] {
  const count = Math.floor((tokens.length - 1) / len);
  const take = Math.min(count, maxWindows);
  const starts: number[] = [];
  for (let i = 0; i < take; i++) starts.push(Math.floor((i * count) / take) * len);
  return starts;
}

export interface TextData {
  /** "embedded corpus (seed 1234)" or the file path. */
  source: string;
  tokenizer: Tokenizer;
  tokens: Int32Array;
  train: Int32Array;
  heldOut: Int32Array;
}

/** Splits an already tokenized stream into train and held-out parts. */
export function prepareTokens(tokens: Int32Array, source: string, tokenizer: Tokenizer, heldOut = 0.1): TextData {
  return { source, tokenizer, tokens, ...splitHeldOut(tokens, heldOut) };
}

/** Tokenizes (byte-level by default) and splits a text. */
export function prepareText(text: string, source: string, tokenizer: Tokenizer = new ByteTokenizer(), heldOut = 0.1): TextData {
  return prepareTokens(tokenizer.encode(text), source, tokenizer, heldOut);
}

/** The embedded corpus with its character-level tokenizer; the last `heldOut` fraction (default 0.1) held out. */
export function embeddedData(options: { seed?: number; chars?: number; heldOut?: number } = {}): TextData {
  const seed = options.seed ?? DEFAULT_CORPUS_SEED;
  const text = generateCorpus({ seed, chars: options.chars ?? DEFAULT_CORPUS_CHARS });
  return prepareText(text, `embedded corpus (seed ${seed})`, CharTokenizer.fromText(text), options.heldOut ?? 0.1);
}

/**
 * The shifted fine-tuning task (shifted.ts), tokenized with the pretraining corpus's character
 * tokenizer: `tokenizer` (pass embeddedData().tokenizer), by default that of the default corpus.
 */
export function embeddedShiftedData(options: { seed?: number; chars?: number; tokenizer?: Tokenizer } = {}): TextData {
  const seed = options.seed ?? DEFAULT_SHIFTED_SEED;
  const text = generateShiftedCorpus({ seed, chars: options.chars ?? DEFAULT_SHIFTED_CHARS });
  const tokenizer = options.tokenizer ?? CharTokenizer.fromText(generateCorpus());
  return prepareText(text, `embedded shifted task (seed ${seed})`, tokenizer);
}
