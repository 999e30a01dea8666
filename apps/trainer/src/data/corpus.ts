// The embedded training corpus: plain text generated deterministically from a seed.
// It mixes kinds of text whose structure a small model can learn quickly, so held-out
// perplexity visibly falls: templated English with agreement, arithmetic facts, a fixed cast of
// named entities whose facts are restated many times (in prose and as key-value records), and
// counting sequences. Same seed -> same text, byte for byte.

import { Random } from '@sparse/tensor';

export interface CorpusOptions {
  /** Seed of the generator; the cast of entities and every sentence depend on it. */
  seed?: number;
  /** Approximate size in characters (generation stops at the first line past it). */
  chars?: number;
}

export const DEFAULT_CORPUS_SEED = 1234;
export const DEFAULT_CORPUS_CHARS = 300_000;

interface Noun {
  sg: string;
  pl: string;
}
interface Verb {
  /** third-person singular present ("sees") */
  s: string;
  /** plural present ("see") */
  p: string;
  /** past tense ("saw"), the same for both numbers */
  past: string;
}

const NOUNS: Noun[] = [
  { sg: 'cat', pl: 'cats' },
  { sg: 'dog', pl: 'dogs' },
  { sg: 'bird', pl: 'birds' },
  { sg: 'farmer', pl: 'farmers' },
  { sg: 'teacher', pl: 'teachers' },
  { sg: 'child', pl: 'children' },
  { sg: 'mouse', pl: 'mice' },
  { sg: 'fox', pl: 'foxes' },
  { sg: 'horse', pl: 'horses' },
  { sg: 'owl', pl: 'owls' },
  { sg: 'sailor', pl: 'sailors' },
  { sg: 'robot', pl: 'robots' },
];
const OBJECTS: Noun[] = [
  { sg: 'ball', pl: 'balls' },
  { sg: 'apple', pl: 'apples' },
  { sg: 'book', pl: 'books' },
  { sg: 'box', pl: 'boxes' },
  { sg: 'key', pl: 'keys' },
  { sg: 'egg', pl: 'eggs' },
  { sg: 'hat', pl: 'hats' },
  { sg: 'lamp', pl: 'lamps' },
  { sg: 'orange', pl: 'oranges' },
  { sg: 'umbrella', pl: 'umbrellas' },
];
const VERBS: Verb[] = [
  { s: 'sees', p: 'see', past: 'saw' },
  { s: 'likes', p: 'like', past: 'liked' },
  { s: 'finds', p: 'find', past: 'found' },
  { s: 'carries', p: 'carry', past: 'carried' },
  { s: 'watches', p: 'watch', past: 'watched' },
  { s: 'has', p: 'have', past: 'had' },
  { s: 'wants', p: 'want', past: 'wanted' },
  { s: 'drops', p: 'drop', past: 'dropped' },
];
const ADJECTIVES = ['big', 'small', 'red', 'old', 'happy', 'quiet', 'green', 'empty', 'little', 'odd'];
const PLACES = ['in the garden', 'near the river', 'under the table', 'at the market', 'on the hill', 'in the kitchen'];
const MOODS = ['hungry', 'tired', 'happy', 'lost', 'busy', 'calm'];

const JOBS = ['baker', 'doctor', 'pilot', 'painter', 'farmer', 'engineer', 'singer', 'teacher', 'tailor'];
const PETS = ['cat', 'dog', 'parrot', 'rabbit', 'turtle', 'goat'];
const COLORS = ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'white', 'black'];
const SYLLABLES = ['ma', 'ri', 'to', 'ka', 'len', 'so', 'vi', 'ra', 'nu', 'el', 'do', 'mi', 'tan', 'be', 'lo', 'zu'];

const SMALL = [
  'zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten',
  'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** English words for 0..99 ("forty-two"). */
export function numberWords(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 99) throw new RangeError(`numberWords: ${n} is outside 0..99`);
  if (n < 20) return SMALL[n];
  const t = TENS[Math.floor(n / 10)];
  return n % 10 === 0 ? t : `${t}-${SMALL[n % 10]}`;
}

interface Entity {
  name: string;
  city: string;
  job: string;
  pet: string;
  petName: string;
  color: string;
  age: number;
}

function pick<T>(rng: Random, xs: readonly T[]): T {
  return xs[rng.int(0, xs.length)];
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function makeWord(rng: Random, minSyl: number, maxSyl: number): string {
  const n = rng.int(minSyl, maxSyl + 1);
  let w = '';
  for (let i = 0; i < n; i++) w += pick(rng, SYLLABLES);
  return w;
}

/** A fixed cast: distinct names, each with facts that never change within one corpus. */
function makeCast(rng: Random, count: number, cities: string[]): Entity[] {
  const names = new Set<string>();
  while (names.size < count) names.add(capitalize(makeWord(rng, 2, 3)));
  return [...names].map((name) => ({
    name,
    city: pick(rng, cities),
    job: pick(rng, JOBS),
    pet: pick(rng, PETS),
    petName: capitalize(makeWord(rng, 1, 2)),
    color: pick(rng, COLORS),
    age: rng.int(18, 90),
  }));
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** "the small cats", "an old fox", "these dogs"; returns the phrase and whether it is plural. */
function nounPhrase(rng: Random, nouns: Noun[], allowIndefinite: boolean): { text: string; plural: boolean } {
  const noun = pick(rng, nouns);
  const plural = rng.next() < 0.4;
  const adj = rng.next() < 0.5 ? pick(rng, ADJECTIVES) : '';
  const head = adj ? `${adj} ${plural ? noun.pl : noun.sg}` : plural ? noun.pl : noun.sg;
  let det: string;
  if (plural) det = pick(rng, ['the', 'the', 'these', 'some', 'many']);
  else det = allowIndefinite && rng.next() < 0.4 ? article(head) : pick(rng, ['the', 'the', 'this', 'every']);
  return { text: `${det} ${head}`, plural };
}

/** Subject-verb agreement, a/an agreement, and a pronoun that agrees with the subject. */
function grammarLine(rng: Random): string {
  const subj = nounPhrase(rng, NOUNS, false);
  const verb = pick(rng, VERBS);
  const past = rng.next() < 0.25;
  const v = past ? verb.past : subj.plural ? verb.p : verb.s;
  const obj = nounPhrase(rng, OBJECTS, true);
  let s = `${capitalize(subj.text)} ${v} ${obj.text}`;
  if (rng.next() < 0.4) s += ` ${pick(rng, PLACES)}`;
  s += '.';
  if (rng.next() < 0.5) {
    const pron = subj.plural ? 'They' : 'It';
    const be = past ? (subj.plural ? 'were' : 'was') : subj.plural ? 'are' : 'is';
    s += ` ${pron} ${be} ${pick(rng, MOODS)}.`;
  }
  return s;
}

/** Addition, subtraction and small products, in digits or in words. */
function arithmeticLine(rng: Random): string {
  const kind = rng.int(0, 3);
  let a: number;
  let b: number;
  let c: number;
  let op: string;
  let word: string;
  if (kind === 0) {
    a = rng.int(0, 50);
    b = rng.int(0, 50);
    c = a + b;
    op = '+';
    word = 'plus';
  } else if (kind === 1) {
    a = rng.int(0, 99);
    b = rng.int(0, a + 1);
    c = a - b;
    op = '-';
    word = 'minus';
  } else {
    a = rng.int(1, 10);
    b = rng.int(1, 10);
    c = a * b;
    op = '*';
    word = 'times';
  }
  if (rng.next() < 0.5) return `${a} ${op} ${b} = ${c}`;
  return `${capitalize(numberWords(a))} ${word} ${numberWords(b)} is ${numberWords(c)}.`;
}

/** One fact about a cast member, in one of several phrasings. */
function entityLine(rng: Random, cast: Entity[]): string {
  const e = pick(rng, cast);
  switch (rng.int(0, 6)) {
    case 0:
      return `${e.name} lives in ${e.city}.`;
    case 1:
      return `${e.name} works as ${article(e.job)} ${e.job} in ${e.city}.`;
    case 2:
      return `${e.name} is ${e.age} years old.`;
    case 3:
      return `${e.name} has ${article(e.pet)} ${e.pet} called ${e.petName}.`;
    case 4:
      return `The favorite color of ${e.name} is ${e.color}.`;
    default:
      return `Where does ${e.name} live? ${e.name} lives in ${e.city}.`;
  }
}

/** The same facts as key-value records, so the model can link the two formats. */
function recordLine(rng: Random, cast: Entity[]): string {
  const i = rng.int(0, cast.length);
  const e = cast[i];
  const fields: [string, string][] = [
    ['name', e.name],
    ['city', e.city],
    ['job', e.job],
    ['age', String(e.age)],
    ['pet', e.pet],
    ['color', e.color],
  ];
  const keep = fields.filter((_, k) => k === 0 || rng.next() < 0.7);
  return `record ${i + 1}: ${keep.map(([k, v]) => `${k}=${v}`).join('; ')}`;
}

/** Arithmetic progressions: predictable once the step is seen. */
function sequenceLine(rng: Random): string {
  const step = rng.int(1, 6);
  const start = rng.int(0, 40);
  const len = rng.int(5, 10);
  const xs: number[] = [];
  for (let k = 0; k < len; k++) xs.push(start + k * step);
  return `count by ${step}: ${xs.join(', ')}`;
}

/**
 * Generates the embedded corpus: newline-separated lines drawn from the generators above in a
 * seeded random order, stopping once `chars` characters are reached.
 */
export function generateCorpus(options: CorpusOptions = {}): string {
  const seed = options.seed ?? DEFAULT_CORPUS_SEED;
  const target = options.chars ?? DEFAULT_CORPUS_CHARS;
  if (!Number.isFinite(target) || target < 1) throw new RangeError(`generateCorpus: chars must be >= 1, got ${target}`);
  const root = new Random(seed);
  // separate streams so the cast does not shift when the line mix changes
  const castRng = root.fork('cast');
  const lineRng = root.fork('lines');
  const cities: string[] = [];
  while (cities.length < 8) {
    const c = capitalize(makeWord(castRng, 2, 3));
    if (!cities.includes(c)) cities.push(c);
  }
  const cast = makeCast(castRng, 24, cities);

  const parts: string[] = [];
  let length = 0;
  while (length < target) {
    const r = lineRng.next();
    let line: string;
    if (r < 0.38) line = grammarLine(lineRng);
    else if (r < 0.58) line = arithmeticLine(lineRng);
    else if (r < 0.8) line = entityLine(lineRng, cast);
    else if (r < 0.92) line = recordLine(lineRng, cast);
    else line = sequenceLine(lineRng);
    parts.push(line);
    length += line.length + 1;
  }
  return parts.join('\n') + '\n';
}
