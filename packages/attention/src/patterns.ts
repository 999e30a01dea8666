// Static attention patterns as composable values. Every pattern answers allowed(i, j) for one query i and
// key j, and classifies a rectangle of the score matrix as none / all / some allowed — in closed form where
// the pattern has one (bands of i - j, column sets, block diagonals), by looking at the rectangle's
// elements otherwise (compositions whose parts are both partial there). toBlockMask cuts the matrix into
// tiles and asks each tile once, so a banded pattern costs O(nb² + partial tiles × blockSize²), not seq².

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { setBitRange, TILE_FULL, TILE_PARTIAL, TILE_SKIP, type BlockMask, type TileState } from './mask.js';

/** A static attention pattern (the same for every head). */
export interface Pattern {
  /** What sort of pattern: 'causal', 'sliding-window', 'and', ... */
  readonly kind: string;
  /** The sequence length the pattern is defined for (documents, prefix sharing); undefined = any length. */
  readonly length?: number;
  /** May query i attend to key j. */
  allowed(i: number, j: number): boolean;
  /** Rows [i0, i1) × columns [j0, j1) (non-empty): 0 none allowed, 1 all allowed, 2 some. */
  classify(i0: number, i1: number, j0: number, j1: number): TileState;
  /** The parts of a composition. */
  readonly parts?: readonly Pattern[];
}

function int(where: string, name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ArgumentError(`${where}: ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

function intList(where: string, name: string, v: unknown, min: number): number[] {
  if (!Array.isArray(v) && !ArrayBuffer.isView(v)) throw new ArgumentError(`${where}: ${name} must be an array of integers`);
  const out = Array.from(v as ArrayLike<number>);
  out.forEach((x, k) => int(where, `${name}[${k}]`, x, min));
  return out;
}

/** Looks at every element of the rectangle (stopping once both an allowed and a refused one are seen). */
export function scanClassify(p: Pick<Pattern, 'allowed'>, i0: number, i1: number, j0: number, j1: number): TileState {
  let any = false;
  let all = true;
  for (let i = i0; i < i1; i++) {
    for (let j = j0; j < j1; j++) {
      if (p.allowed(i, j)) any = true;
      else all = false;
      if (any && !all) return TILE_PARTIAL;
    }
  }
  return all ? TILE_FULL : any ? TILE_PARTIAL : TILE_SKIP;
}

// ---- bands: allowed depends on d = i - j only, through a union of closed intervals ----

/** Sorted, merged closed intervals (adjacent ones joined). */
function mergeIntervals(list: [number, number][]): [number, number][] {
  const s = list.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function band(kind: string, intervals: [number, number][]): Pattern {
  const iv = mergeIntervals(intervals);
  return {
    kind,
    allowed: (i, j) => {
      const d = i - j;
      return iv.some(([a, b]) => a <= d && d <= b);
    },
    // A rectangle holds every d in [dmin, dmax]: all allowed iff one merged interval covers that range.
    classify(i0, i1, j0, j1) {
      const dmin = i0 - (j1 - 1);
      const dmax = i1 - 1 - j0;
      let overlap = false;
      for (const [a, b] of iv) {
        if (a <= dmin && dmax <= b) return TILE_FULL;
        if (a <= dmax && dmin <= b) overlap = true;
      }
      return overlap ? TILE_PARTIAL : TILE_SKIP;
    },
  };
}

/** Every query sees itself and the keys before it: j <= i. */
export function causal(): Pattern {
  return band('causal', [[0, Number.POSITIVE_INFINITY]]);
}

/** Every key: no masking. */
export function full(): Pattern {
  return { kind: 'full', allowed: () => true, classify: () => TILE_FULL };
}

/**
 * A local window of `window` tokens. Causal (the default): query i sees keys i - window + 1 .. i. With
 * `causal: false`: keys i - window + 1 .. i + window - 1.
 */
export function slidingWindow(window: number, opts: { causal?: boolean } = {}): Pattern {
  int('slidingWindow', 'window', window, 1);
  return band('sliding-window', opts.causal === false ? [[-(window - 1), window - 1]] : [[0, window - 1]]);
}

/**
 * Diagonal bands: query i sees key j when i - j lies in [o, o + width - 1] for one of the offsets o
 * (offsets may be negative: keys after the query). width 1 gives single diagonals.
 */
export function multiDiagonal(offsets: readonly number[], width = 1): Pattern {
  if (!Array.isArray(offsets) || offsets.length === 0) throw new ArgumentError('multiDiagonal: offsets must be a non-empty array of integers');
  offsets.forEach((o, k) => {
    if (!Number.isInteger(o)) throw new ArgumentError(`multiDiagonal: offsets[${k}] must be an integer, got ${String(o)}`);
  });
  int('multiDiagonal', 'width', width, 1);
  return band('multi-diagonal', offsets.map((o) => [o, o + width - 1]));
}

/**
 * A dilated window: query i sees `window` keys spaced `dilation` apart, i, i - dilation, ..., i - (window - 1)
 * × dilation (and the same after i with `causal: false`).
 */
export function dilated(window: number, dilation: number, opts: { causal?: boolean } = {}): Pattern {
  int('dilated', 'window', window, 1);
  int('dilated', 'dilation', dilation, 1);
  const kMin = opts.causal === false ? -(window - 1) : 0;
  const kMax = window - 1;
  const allowed = (i: number, j: number) => {
    const d = i - j;
    if (d % dilation !== 0) return false;
    const k = d / dilation;
    return kMin <= k && k <= kMax;
  };
  if (dilation === 1) return { ...band('dilated', [[kMin, kMax]]), allowed };
  return {
    kind: 'dilated',
    allowed,
    classify(i0, i1, j0, j1) {
      const dmin = i0 - (j1 - 1);
      const dmax = i1 - 1 - j0;
      if (dmin === dmax) return allowed(i0, j0) ? TILE_FULL : TILE_SKIP;
      // Two consecutive values of d cannot both be multiples of dilation > 1: never all allowed.
      const lo = Math.max(kMin, Math.ceil(dmin / dilation));
      const hi = Math.min(kMax, Math.floor(dmax / dilation));
      return lo <= hi ? TILE_PARTIAL : TILE_SKIP;
    },
  };
}

// ---- column sets: allowed depends on j only ----

function columns(kind: string, count: (j0: number, j1: number) => number, has: (j: number) => boolean): Pattern {
  return {
    kind,
    allowed: (_i, j) => has(j),
    classify(_i0, _i1, j0, j1) {
      const c = count(j0, j1);
      return c === 0 ? TILE_SKIP : c === j1 - j0 ? TILE_FULL : TILE_PARTIAL;
    },
  };
}

/** Sorted unique list: how many entries lie in [a, b). */
function countIn(sorted: readonly number[], a: number, b: number): number {
  return lowerBound(sorted, b) - lowerBound(sorted, a);
}

function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Attention sinks: every query sees the first n keys (whatever its position: compose with causal() for a
 * causal model, as patternFromSpec does).
 */
export function sinks(n: number): Pattern {
  int('sinks', 'n', n, 0);
  return columns('sinks', (a, b) => Math.max(0, Math.min(b, n) - a), (j) => j < n);
}

/**
 * Vertical stripes (key columns every query sees): an explicit list of columns, or every `every`-th column
 * starting at `offset`.
 */
export function verticalStripe(cols: readonly number[] | { every: number; offset?: number }): Pattern {
  if (Array.isArray(cols)) {
    const sorted = [...new Set(intList('verticalStripe', 'columns', cols, 0))].sort((a, b) => a - b);
    const set = new Set(sorted);
    return columns('vertical-stripe', (a, b) => countIn(sorted, a, b), (j) => set.has(j));
  }
  const spec = cols as { every: number; offset?: number };
  if (spec === null || typeof spec !== 'object') throw new ArgumentError('verticalStripe: expected a list of columns or { every, offset }');
  const every = int('verticalStripe', 'every', spec.every, 1);
  const offset = int('verticalStripe', 'offset', spec.offset ?? 0, 0);
  if (offset >= every) throw new ArgumentError(`verticalStripe: offset must be < every (${every}), got ${offset}`);
  // Columns offset, offset + every, ... below b: ceil((b - offset) / every) when b > offset.
  const below = (b: number) => (b <= offset ? 0 : Math.ceil((b - offset) / every));
  return columns('vertical-stripe', (a, b) => below(b) - below(a), (j) => j >= offset && (j - offset) % every === 0);
}

/**
 * Global tokens: the listed positions see every key and every query sees them (the other pairs are refused;
 * compose with a local pattern through or()).
 */
export function globalTokens(indices: readonly number[]): Pattern {
  const g = [...new Set(intList('globalTokens', 'indices', indices, 0))].sort((a, b) => a - b);
  const set = new Set(g);
  return {
    kind: 'global-tokens',
    allowed: (i, j) => set.has(i) || set.has(j),
    classify(i0, i1, j0, j1) {
      const rows = countIn(g, i0, i1);
      const cols = countIn(g, j0, j1);
      // Some row and some column outside the set meet at a refused element.
      if (rows === i1 - i0 || cols === j1 - j0) return TILE_FULL;
      return rows === 0 && cols === 0 ? TILE_SKIP : TILE_PARTIAL;
    },
  };
}

/** Blocks of `size` consecutive tokens that attend only within themselves. */
export function blockDiagonal(size: number): Pattern {
  int('blockDiagonal', 'size', size, 1);
  return runs('block-diagonal', (x) => Math.floor(x / size));
}

/** allowed iff run(i) === run(j) for a non-decreasing run index. */
function runs(kind: string, run: (x: number) => number, length?: number): Pattern {
  return {
    kind,
    length,
    allowed: (i, j) => run(i) === run(j),
    classify(i0, i1, j0, j1) {
      const r0 = run(i0);
      const r1 = run(i1 - 1);
      const c0 = run(j0);
      const c1 = run(j1 - 1);
      if (r1 < c0 || c1 < r0) return TILE_SKIP;
      return r0 === r1 && c0 === c1 && r0 === c0 ? TILE_FULL : TILE_PARTIAL;
    },
  };
}

/**
 * Sequence packing: query i sees key j only when both belong to the same document (equal segment ids; not
 * causal by itself). Contiguous documents are classified in closed form; ids that recur in separate runs
 * are handled element by element.
 */
export function documents(segmentIds: ArrayLike<number>): Pattern {
  if (segmentIds === null || typeof segmentIds !== 'object' || typeof segmentIds.length !== 'number' || segmentIds.length === 0) {
    throw new ArgumentError('documents: segmentIds must be a non-empty array of integers');
  }
  const ids = Array.from(segmentIds);
  ids.forEach((x, k) => {
    if (!Number.isInteger(x)) throw new ArgumentError(`documents: segmentIds[${k}] must be an integer, got ${String(x)}`);
  });
  const run = new Int32Array(ids.length);
  const seen = new Set<number>([ids[0]!]);
  let contiguous = true;
  for (let k = 1; k < ids.length; k++) {
    if (ids[k] === ids[k - 1]) {
      run[k] = run[k - 1]!;
      continue;
    }
    run[k] = run[k - 1]! + 1;
    if (seen.has(ids[k]!)) contiguous = false;
    seen.add(ids[k]!);
  }
  if (contiguous) return runs('documents', (x) => run[x]!, ids.length);
  const p: Pattern = {
    kind: 'documents',
    length: ids.length,
    allowed: (i, j) => ids[i] === ids[j],
    classify: (i0, i1, j0, j1) => scanClassify(p, i0, i1, j0, j1),
  };
  return p;
}

export interface PrefixSharing {
  /** The attention pattern over the packed sequence [prompt, response 0, response 1, ...]. */
  pattern: Pattern;
  /** Position ids: the prompt 0 .. prompt - 1, each response continuing from prompt (prompt, prompt + 1, ...). */
  positionIds: Int32Array;
  /** 0 for the prompt, r + 1 for response r. */
  segmentIds: Int32Array;
  /** Total length: prompt + the sum of the responses. */
  length: number;
}

/**
 * One shared prompt followed by several responses packed in one sequence: the prompt is causal; each
 * response sees the whole prompt and itself causally, never another response. The position ids restart
 * every response at the prompt's end, as if each had been generated alone after the prompt.
 */
export function prefixSharing(opts: { prompt: number; responses: readonly number[] }): PrefixSharing {
  if (opts === null || typeof opts !== 'object') throw new ArgumentError('prefixSharing: expected { prompt, responses }');
  const prompt = int('prefixSharing', 'prompt', opts.prompt, 1);
  const responses = intList('prefixSharing', 'responses', opts.responses, 1);
  if (responses.length === 0) throw new ArgumentError('prefixSharing: responses must list at least one response length');
  const length = prompt + responses.reduce((a, b) => a + b, 0);
  const segmentIds = new Int32Array(length);
  const positionIds = new Int32Array(length);
  for (let i = 0; i < prompt; i++) positionIds[i] = i;
  let at = prompt;
  responses.forEach((len, r) => {
    for (let t = 0; t < len; t++) {
      segmentIds[at + t] = r + 1;
      positionIds[at + t] = prompt + t;
    }
    at += len;
  });
  // causal ∧ (key in the prompt ∨ same segment): the prompt's queries have segment 0 so the second part
  // already covers them.
  const inner = and(causal(), or(sinks(prompt), documents(segmentIds)));
  const pattern: Pattern = { ...inner, kind: 'prefix-sharing', length };
  return { pattern, positionIds, segmentIds, length };
}

// ---- the algebra ----

function lengthOf(where: string, parts: readonly Pattern[]): number | undefined {
  let len: number | undefined;
  for (const p of parts) {
    if (p.length === undefined) continue;
    if (len !== undefined && len !== p.length) throw new ShapeError(`${where}: parts are defined for different lengths (${len} and ${p.length})`);
    len = p.length;
  }
  return len;
}

function checkParts(where: string, parts: readonly Pattern[]): void {
  if (parts.length === 0) throw new ArgumentError(`${where}: needs at least one pattern`);
  parts.forEach((p, k) => {
    if (p === null || typeof p !== 'object' || typeof p.allowed !== 'function' || typeof p.classify !== 'function') {
      throw new ArgumentError(`${where}: part ${k} is not a pattern`);
    }
  });
}

/** Allowed where every part allows. */
export function and(...parts: Pattern[]): Pattern {
  checkParts('and', parts);
  const length = lengthOf('and', parts);
  const p: Pattern = {
    kind: 'and',
    length,
    parts,
    allowed: (i, j) => parts.every((q) => q.allowed(i, j)),
    classify(i0, i1, j0, j1) {
      let partial = 0;
      for (const q of parts) {
        const t = q.classify(i0, i1, j0, j1);
        if (t === TILE_SKIP) return TILE_SKIP;
        if (t === TILE_PARTIAL) partial++;
      }
      if (partial === 0) return TILE_FULL;
      // One partial part and the rest full: the intersection is that part's mixed set.
      if (partial === 1) return TILE_PARTIAL;
      return scanClassify(p, i0, i1, j0, j1);
    },
  };
  return p;
}

/** Allowed where any part allows. */
export function or(...parts: Pattern[]): Pattern {
  checkParts('or', parts);
  const length = lengthOf('or', parts);
  const p: Pattern = {
    kind: 'or',
    length,
    parts,
    allowed: (i, j) => parts.some((q) => q.allowed(i, j)),
    classify(i0, i1, j0, j1) {
      let partial = 0;
      for (const q of parts) {
        const t = q.classify(i0, i1, j0, j1);
        if (t === TILE_FULL) return TILE_FULL;
        if (t === TILE_PARTIAL) partial++;
      }
      if (partial === 0) return TILE_SKIP;
      if (partial === 1) return TILE_PARTIAL;
      return scanClassify(p, i0, i1, j0, j1);
    },
  };
  return p;
}

/** Allowed where the pattern refuses. */
export function not(pattern: Pattern): Pattern {
  checkParts('not', [pattern]);
  return {
    kind: 'not',
    length: pattern.length,
    parts: [pattern],
    allowed: (i, j) => !pattern.allowed(i, j),
    classify(i0, i1, j0, j1) {
      const t = pattern.classify(i0, i1, j0, j1);
      return t === TILE_PARTIAL ? TILE_PARTIAL : t === TILE_FULL ? TILE_SKIP : TILE_FULL;
    },
  };
}

// ---- materializing ----

export interface BlockMaskOptions {
  seq: number;
  blockSize: number;
  /** Heads to give tiles for (copies of the one pattern); 1 (the default) = one mask shared by all heads. */
  heads?: number;
}

function checkLength(where: string, pattern: Pattern, seq: number): void {
  if (pattern.length !== undefined && pattern.length !== seq) throw new ShapeError(`${where}: the pattern is defined for length ${pattern.length}, got seq ${seq}`);
}

/**
 * The BlockMask of a pattern: one classify call per tile, element bits written for the full tiles (row
 * ranges) and the partial ones (element by element); no bits when no tile is partial.
 */
export function toBlockMask(pattern: Pattern, opts: BlockMaskOptions): BlockMask {
  checkParts('toBlockMask', [pattern]);
  const seq = int('toBlockMask', 'seq', opts?.seq, 1);
  const blockSize = int('toBlockMask', 'blockSize', opts.blockSize, 1);
  const heads = int('toBlockMask', 'heads', opts.heads ?? 1, 1);
  checkLength('toBlockMask', pattern, seq);
  const nb = Math.ceil(seq / blockSize);
  const one = new Uint8Array(nb * nb);
  let partial = false;
  for (let qb = 0; qb < nb; qb++) {
    const i1 = Math.min(seq, (qb + 1) * blockSize);
    for (let kb = 0; kb < nb; kb++) {
      const t = pattern.classify(qb * blockSize, i1, kb * blockSize, Math.min(seq, (kb + 1) * blockSize));
      one[qb * nb + kb] = t;
      if (t === TILE_PARTIAL) partial = true;
    }
  }
  const tiles = new Uint8Array(heads * nb * nb);
  for (let h = 0; h < heads; h++) tiles.set(one, h * nb * nb);
  if (!partial) return { seq, blockSize, heads, nb, tiles };
  const bits = new Uint8Array(Math.ceil((seq * seq) / 8));
  for (let qb = 0; qb < nb; qb++) {
    const i0 = qb * blockSize;
    const i1 = Math.min(seq, i0 + blockSize);
    for (let kb = 0; kb < nb; kb++) {
      const t = one[qb * nb + kb];
      if (t === TILE_SKIP) continue;
      const j0 = kb * blockSize;
      const j1 = Math.min(seq, j0 + blockSize);
      for (let i = i0; i < i1; i++) {
        if (t === TILE_FULL) {
          setBitRange(bits, seq, 0, i, j0, j1);
          continue;
        }
        for (let j = j0; j < j1; j++) {
          if (!pattern.allowed(i, j)) continue;
          const p = i * seq + j;
          bits[p >> 3]! |= 1 << (p & 7);
        }
      }
    }
  }
  return { seq, blockSize, heads, nb, tiles, elementBits: bits };
}

/** The pattern's element mask [seq, seq] (1 = allowed), element by element. */
export function patternToDense(pattern: Pattern, seq: number): Uint8Array {
  checkParts('patternToDense', [pattern]);
  int('patternToDense', 'seq', seq, 1);
  checkLength('patternToDense', pattern, seq);
  const out = new Uint8Array(seq * seq);
  for (let i = 0; i < seq; i++) for (let j = 0; j < seq; j++) out[i * seq + j] = pattern.allowed(i, j) ? 1 : 0;
  return out;
}
