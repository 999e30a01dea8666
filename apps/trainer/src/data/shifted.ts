// A second embedded task for fine-tuning: text related to the pretraining corpus (corpus.ts) but
// drawn from a different distribution — other templates, other vocabulary, counting down instead
// of up, comparisons and prices instead of sums — written only with characters the pretraining
// corpus uses, so it shares the pretraining character tokenizer. A pretrained model starts with
// a higher perplexity here, and fine-tuning on it can be measured for forgetting on the original.

import { Random } from '@sparse/tensor';
import { numberWords } from './corpus.js';

export interface ShiftedCorpusOptions {
  seed?: number;
  /** Approximate size in characters (generation stops at the first line past it). */
  chars?: number;
}

export const DEFAULT_SHIFTED_SEED = 4321;
export const DEFAULT_SHIFTED_CHARS = 100_000;

/**
 * Every character the shifted corpus may use: a subset of what the pretraining corpus contains
 * for any seed (its capitals come from fixed sentence starts and number words).
 */
export const SHIFTED_ALPHABET = '\n *+,-.0123456789:;=?BDEFIKLMNORSTVWZabcdefghijklmnopqrstuvwxyz';

const THINGS = ['boat', 'lamp post', 'bridge', 'tower', 'cart', 'barn', 'well', 'kite', 'drum', 'sled'];
const GOODS = ['cups', 'plums', 'nails', 'ropes', 'candles', 'buckets', 'pears', 'spoons', 'coats', 'jars'];
const WEATHER = ['cold', 'warm', 'grey', 'bright', 'windy', 'foggy', 'wet', 'still'];
const SKY = ['the wind', 'the sky', 'the sea', 'the lake', 'the valley', 'the road'];
const WHEN = ['On monday', 'Last night', 'Every morning', 'Sometimes', 'In winter', 'Today', 'By noon'];
const ACTIONS = ['stayed home', 'went to sea', 'fixed the roof', 'sold bread', 'slept late', 'sang loudly'];
const PEOPLE = ['the fishers', 'the miners', 'the monks', 'the twins', 'the guards', 'the weavers'];
// first letters are capitals the pretraining corpus has (B D F K L M N R S T V W Z)
const SYLLABLES = ['bo', 'di', 'ke', 'lu', 'no', 'ri', 'sa', 'te', 'vo', 'wa', 'ze', 'fi', 'ma'];

function pick<T>(rng: Random, xs: readonly T[]): T {
  return xs[rng.int(0, xs.length)];
}

function name(rng: Random): string {
  let w = '';
  for (let i = rng.int(2, 4); i > 0; i--) w += pick(rng, SYLLABLES);
  return w.charAt(0).toUpperCase() + w.slice(1);
}

function weatherLine(rng: Random): string {
  const s = `${pick(rng, WHEN)} ${pick(rng, SKY)} was ${pick(rng, WEATHER)}, so ${pick(rng, PEOPLE)} ${pick(rng, ACTIONS)}.`;
  return rng.next() < 0.3 ? `${s} ${capitalizeThe(pick(rng, THINGS))} stood ${pick(rng, WEATHER)} and quiet.` : s;
}

function capitalizeThe(thing: string): string {
  return `The ${thing}`;
}

function shopLine(rng: Random, merchants: string[]): string {
  const who = pick(rng, merchants);
  const n = rng.int(2, 13);
  const price = rng.int(1, 10);
  const good = pick(rng, GOODS);
  if (rng.next() < 0.5) return `${who} buys ${n} ${good} at ${price} coins each; total = ${n * price} coins.`;
  return `${who} sells ${numberWords(n)} ${good} for ${numberWords(Math.min(99, n * price))} coins.`;
}

function compareLine(rng: Random): string {
  const a = rng.int(0, 60);
  let b = rng.int(0, 60);
  if (b === a) b = (a + 7) % 60;
  const kind = rng.int(0, 3);
  if (kind === 0) return `Is ${a} more than ${b}? ${a > b ? 'yes' : 'no'}.`;
  if (kind === 1) return `max of ${a} and ${b} = ${Math.max(a, b)}; min = ${Math.min(a, b)}`;
  return `${a > b ? numberWords(a) : numberWords(b)} is more than ${a > b ? numberWords(b) : numberWords(a)}.`;
}

function countdownLine(rng: Random): string {
  const step = rng.int(2, 8);
  const len = rng.int(4, 9);
  const start = rng.int(step * len, 99);
  const xs: number[] = [];
  for (let k = 0; k < len; k++) xs.push(start - k * step);
  return `count down by ${step}: ${xs.join(', ')}`;
}

function itemLine(rng: Random, merchants: string[]): string {
  const i = rng.int(1, 40);
  return `item ${i} - owner: ${pick(rng, merchants)}, kind: ${pick(rng, GOODS)}, price: ${rng.int(1, 30)}, shelf: ${rng.int(1, 9)}`;
}

/** Generates the shifted corpus: newline-separated lines, deterministic for a seed. */
export function generateShiftedCorpus(options: ShiftedCorpusOptions = {}): string {
  const seed = options.seed ?? DEFAULT_SHIFTED_SEED;
  const target = options.chars ?? DEFAULT_SHIFTED_CHARS;
  if (!Number.isFinite(target) || target < 1) throw new RangeError(`generateShiftedCorpus: chars must be >= 1, got ${target}`);
  const root = new Random(seed);
  const castRng = root.fork('merchants');
  const lineRng = root.fork('lines');
  const merchants = new Set<string>();
  while (merchants.size < 12) merchants.add(name(castRng));
  const cast = [...merchants];
  const parts: string[] = [];
  let length = 0;
  while (length < target) {
    const r = lineRng.next();
    let line: string;
    if (r < 0.3) line = weatherLine(lineRng);
    else if (r < 0.55) line = shopLine(lineRng, cast);
    else if (r < 0.75) line = compareLine(lineRng);
    else if (r < 0.88) line = countdownLine(lineRng);
    else line = itemLine(lineRng, cast);
    parts.push(line);
    length += line.length + 1;
  }
  return parts.join('\n') + '\n';
}
