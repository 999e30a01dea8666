// What the activation methods share: the site roles and the config fields that pick them, sample checks
// (typed errors naming the method and the site), per-token top-k selection, magnitude thresholds, and the
// sparsifier shell every method returns (apply = zero what `keep` drops).

import { ArgumentError, selectRank, ShapeError } from '@sparse/tensor';
import { z } from 'zod';
import type { CorrectionFactors, Site, SiteSample, SiteSparsifier, SiteWeight } from '../types.js';

/** Roles of linear-layer inputs (kind 'linear-input'). */
export const LINEAR_ROLES = [
  'attn.qkv',
  'attn.q',
  'attn.k',
  'attn.v',
  'attn.out',
  'mlp.up',
  'mlp.gate',
  'mlp.down',
  'moe.router',
  'moe.expert.up',
  'moe.expert.down',
] as const;

/** Every site role: the linear inputs and the MLP activation. */
export const SITE_ROLES = [...LINEAR_ROLES, 'mlp.act'] as const;

export type SiteRole = (typeof SITE_ROLES)[number];

/** The inputs of a dense transformer's linear layers: attention q/k/v (or fused qkv) and out, MLP up/gate/down. */
export const DENSE_LINEAR_ROLES: readonly SiteRole[] = ['attn.qkv', 'attn.q', 'attn.k', 'attn.v', 'attn.out', 'mlp.up', 'mlp.gate', 'mlp.down'];

/** A `roles` config field: the site roles a method acts on (at least one, no unknown role). */
export function rolesField(defaults: readonly SiteRole[]) {
  return z
    .array(z.enum(SITE_ROLES))
    .min(1, 'roles needs at least one site role')
    .default(() => [...defaults]);
}

/** A sparsity fraction in [0, 1). */
export function sparsityField(what: string) {
  return z.number().min(0, `${what} must be in [0, 1)`).lt(1, `${what} must be in [0, 1) (1 would drop everything)`);
}

/** Whether a config's `roles` list takes `site`. */
export function actsOnRole(roles: readonly string[], site: Site): boolean {
  return roles.includes(site.role);
}

/** Kept features of `features` at a sparsity fraction: round((1 - sparsity) * features). */
export function keepOf(features: number, sparsity: number): number {
  return Math.min(features, Math.max(0, Math.round((1 - sparsity) * features)));
}

/**
 * ⌊q·n⌋ clamped to [0, n - 1]: the 0-based rank of the q-quantile order statistic of n values. A q·n within
 * 1e-9 of an integer counts as that integer (so 0.29 of 100 is 29, not the 28.999... of floating point).
 */
export function quantileRank(n: number, q: number): number {
  const t = q * n;
  const r = Math.round(t);
  const k = Math.abs(t - r) <= 1e-9 * Math.max(1, n) ? r : Math.floor(t);
  return Math.min(n - 1, Math.max(0, k));
}

/** Checks a calibration sample's shapes (and its weight when `needsWeight`); names the method and site. */
export function checkSample(method: string, sample: SiteSample, needsWeight: boolean): void {
  const { site, x, tokens } = sample;
  if (!Number.isSafeInteger(tokens) || tokens < 0) throw new ArgumentError(`${method} at ${site.name}: tokens must be a non-negative integer, got ${String(tokens)}`);
  if (!Number.isSafeInteger(site.features) || site.features < 1) throw new ArgumentError(`${method} at ${site.name}: features must be a positive integer, got ${String(site.features)}`);
  if (!(x instanceof Float32Array)) throw new ArgumentError(`${method} at ${site.name}: x must be a Float32Array`);
  if (x.length !== tokens * site.features) {
    throw new ShapeError(`${method} at ${site.name}: x has ${x.length} values, expected tokens * features = ${tokens} * ${site.features}`);
  }
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]!)) throw new ArgumentError(`${method} at ${site.name}: x[${Math.floor(i / site.features)}, ${i % site.features}] is NaN`);
  }
  if (needsWeight) checkWeight(method, site, sample.weight);
}

/** Checks the weight consuming a linear-input site: [out, in] with in = site.features (and out = site.out when given). */
export function checkWeight(method: string, site: Site, weight: SiteWeight | undefined): asserts weight is SiteWeight {
  if (weight === undefined) throw new ArgumentError(`${method} at ${site.name}: needs the consuming weight (sample.weight)`);
  if (weight.in !== site.features) throw new ShapeError(`${method} at ${site.name}: weight has in = ${weight.in}, the site has ${site.features} features`);
  if (site.out !== undefined && weight.out !== site.out) throw new ShapeError(`${method} at ${site.name}: weight has out = ${weight.out}, the site has out = ${site.out}`);
  if (weight.data.length !== weight.out * weight.in) {
    throw new ShapeError(`${method} at ${site.name}: weight has ${weight.data.length} values, expected out * in = ${weight.out} * ${weight.in}`);
  }
}

/** Wᵀ [in, out] row-major, so each input channel's column of W is contiguous. */
export function transposed(w: SiteWeight): Float32Array {
  const t = new Float32Array(w.in * w.out);
  for (let o = 0; o < w.out; o++) for (let j = 0; j < w.in; j++) t[j * w.out + o] = w.data[o * w.in + j]!;
  return t;
}

/** Reads a restored state object; a wrong shape is an ArgumentError naming the method and site. */
export function readState(method: string, site: Site, state: unknown, fields: readonly string[]): Record<string, number> {
  if (typeof state !== 'object' || state === null) throw new ArgumentError(`${method} at ${site.name}: state must be an object, got ${String(state)}`);
  const s = state as Record<string, unknown>;
  const out: Record<string, number> = {};
  for (const f of fields) {
    const v = s[f];
    if (typeof v !== 'number' || Number.isNaN(v)) throw new ArgumentError(`${method} at ${site.name}: state.${f} must be a number, got ${JSON.stringify(v)}`);
    out[f] = v;
  }
  return out;
}

/**
 * Marks (keep[off + j] = 1) the k of scores[off .. off + n) with the largest score; equal scores go to the
 * lower index; a NaN score counts as +Infinity. `scratch` holds at least n values.
 */
export function markTopK(scores: ArrayLike<number>, off: number, n: number, k: number, keep: Uint8Array, scratch: Float64Array): void {
  if (k <= 0) return;
  if (k >= n) {
    keep.fill(1, off, off + n);
    return;
  }
  for (let j = 0; j < n; j++) {
    const v = scores[off + j]!;
    scratch[j] = Number.isNaN(v) ? Infinity : v;
  }
  const kth = selectRank(scratch.subarray(0, n), n - k);
  const key = (v: number) => (Number.isNaN(v) ? Infinity : v);
  let taken = 0;
  for (let j = 0; j < n; j++) {
    if (key(scores[off + j]!) > kth) {
      keep[off + j] = 1;
      taken++;
    }
  }
  for (let j = 0; j < n && taken < k; j++) {
    if (key(scores[off + j]!) === kth) {
      keep[off + j] = 1;
      taken++;
    }
  }
}

/**
 * The choice of one token's top k by score |x_j| * scale_j (NaN scores count as +Infinity): the k-th largest
 * score and how many entries equal to it are kept (the lowest-indexed ones). `score` receives the scores,
 * `work` is scratch; both hold at least n values.
 */
function rowTopK(x: Float32Array, off: number, n: number, k: number, scale: Float64Array | undefined, score: Float64Array, work: Float64Array): { kth: number; ties: number } {
  let greater = 0;
  for (let j = 0; j < n; j++) {
    const a = Math.abs(x[off + j]!) * (scale === undefined ? 1 : scale[j]!);
    const v = a !== a ? Infinity : a;
    score[j] = v;
    work[j] = v;
  }
  const kth = selectRank(work.subarray(0, n), n - k);
  for (let j = 0; j < n; j++) if (score[j]! > kth) greater++;
  return { kth, ties: k - greater };
}

/** Per-token top-k selection with scratch reused across calls (one per sparsifier). */
export class TopKSelector {
  #score = new Float64Array(0);
  #work = new Float64Array(0);

  /** `scale` (absent: 1) multiplies |x_j| before ranking: WINA's column norms. */
  constructor(
    readonly features: number,
    readonly k: number,
    readonly scale?: Float64Array,
  ) {}

  #scratch(): [Float64Array, Float64Array] {
    if (this.#score.length < this.features) {
      this.#score = new Float64Array(this.features);
      this.#work = new Float64Array(this.features);
    }
    return [this.#score, this.#work];
  }

  /** 1 for the kept entries of x [tokens, features]: each token's k largest scores, equal scores to the lower index. */
  keep(x: Float32Array, tokens: number): Uint8Array {
    const out = new Uint8Array(tokens * this.features);
    if (this.k >= this.features) return out.fill(1);
    if (this.k > 0) this.#select(x, tokens, out);
    return out;
  }

  /** Zeroes in place what `keep` drops; returns the count kept. */
  apply(x: Float32Array, tokens: number): number {
    const n = this.features;
    if (this.k >= n) return tokens * n;
    if (this.k <= 0) {
      x.fill(0, 0, tokens * n);
      return 0;
    }
    this.#select(x, tokens, undefined);
    return tokens * this.k;
  }

  /** Per token: marks the kept entries in `marks`, or (without it) zeroes the dropped ones of x. */
  #select(x: Float32Array, tokens: number, marks: Uint8Array | undefined): void {
    const n = this.features;
    const [score, work] = this.#scratch();
    for (let t = 0; t < tokens; t++) {
      const off = t * n;
      const r = rowTopK(x, off, n, this.k, this.scale, score, work);
      const kth = r.kth;
      let ties = r.ties;
      for (let j = 0; j < n; j++) {
        const v = score[j]!;
        const kept = v > kth || (v === kth && ties-- > 0);
        if (marks) {
          if (kept) marks[off + j] = 1;
        } else if (!kept) x[off + j] = 0;
      }
    }
  }
}

/** Keeps the entries with |x| >= threshold (a NaN is kept, so it stays visible). */
export function thresholdKeep(x: Float32Array, threshold: number): Uint8Array {
  const keep = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    keep[i] = Math.abs(v) >= threshold || Number.isNaN(v) ? 1 : 0;
  }
  return keep;
}

/** Zeroes in place the entries with |x| < threshold (thresholdKeep's choice); returns the count kept. */
export function thresholdApply(x: Float32Array, threshold: number): number {
  let kept = 0;
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(x[i]!) < threshold) x[i] = 0;
    else kept++;
  }
  return kept;
}

export interface SparsifierParts {
  /** Site name. */
  site: string;
  /** Features per token (x's row length). */
  features: number;
  /** Name used in errors. */
  method: string;
  keep(x: Float32Array, tokens: number): Uint8Array;
  /** Zeroes in place what `keep` drops and returns the count kept, faster than through `keep` (default: through it). */
  apply?(x: Float32Array, tokens: number): number;
  state(): unknown;
  correction?(original: Float32Array, sparse: Float32Array, tokens: number): Float32Array;
  correctionFactors?: CorrectionFactors;
}

/** The keep / apply parts of a sparsifier that keeps each token's top k by a selector. */
export function selectorParts(sel: TopKSelector): Pick<SparsifierParts, 'keep' | 'apply'> {
  return { keep: (x, tokens) => sel.keep(x, tokens), apply: (x, tokens) => sel.apply(x, tokens) };
}

/** A SiteSparsifier whose `apply` zeroes every entry `keep` drops. */
export function makeSparsifier(parts: SparsifierParts): SiteSparsifier {
  const check = (x: Float32Array, tokens: number, what: string): void => {
    if (!Number.isSafeInteger(tokens) || tokens < 0) throw new ArgumentError(`${parts.method} at ${parts.site}: tokens must be a non-negative integer, got ${String(tokens)}`);
    if (x.length !== tokens * parts.features) {
      throw new ShapeError(`${parts.method} at ${parts.site}: ${what} has ${x.length} values, expected tokens * features = ${tokens} * ${parts.features}`);
    }
  };
  const sp: SiteSparsifier = {
    site: parts.site,
    keep(x, tokens) {
      check(x, tokens, 'x');
      return parts.keep(x, tokens);
    },
    apply(x, tokens) {
      check(x, tokens, 'x');
      if (parts.apply) return parts.apply(x, tokens);
      const keep = parts.keep(x, tokens);
      let kept = 0;
      for (let i = 0; i < x.length; i++) {
        if (keep[i] === 1) kept++;
        else x[i] = 0;
      }
      return kept;
    },
    state: parts.state,
  };
  if (parts.correction !== undefined) {
    const correction = parts.correction;
    return {
      ...sp,
      correction(original, sparse, tokens) {
        check(original, tokens, 'original');
        check(sparse, tokens, 'sparse');
        return correction(original, sparse, tokens);
      },
      ...(parts.correctionFactors === undefined ? {} : { correctionFactors: parts.correctionFactors }),
    };
  }
  return sp;
}
