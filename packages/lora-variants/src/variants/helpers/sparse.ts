// Shared machinery of the sparse + low-rank variants. Every method here adds a ΔW to W, so merge and
// unmerge are the same masked add/subtract; what differs is how ΔW is parameterized and selected.
// Fixed integer data chosen at init (which entries, rows or blocks are trainable) lives in
// `state.indices`, apart from the float32 trainable `params`.
import { maskFromTensor, topKMask, maskIndices, isKept } from '@sparse/masks';
import { ArgumentError, matmul, ShapeError, tensor, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import type { z } from 'zod';
import { addMasked, checkShape, checkState, floatMatrix, mergeMask, parseWith } from './common.js';
import { loraFactors } from '../lora/variant.js';
import type { AdapterState, AdapterVariant, SupportScoring } from '../types.js';

/** An adapter state with the integer selections a sparse variant made at init (sorted where noted). */
export interface IndexedAdapterState<C = unknown> extends AdapterState<C> {
  indices: Record<string, Int32Array>;
}

/** A variant whose selection can be driven by a score matrix [out, in] (e.g. accumulated |gradient|). */
export interface ScoredAdapterVariant<C> extends AdapterVariant<C> {
  init(base: Tensor, config: unknown, rng: Random): IndexedAdapterState<C>;
  /** Like `init`, with `scores` [out, in] replacing the variant's data-free criterion (|W| or random). */
  initWithScores(base: Tensor, config: unknown, rng: Random, scores: Tensor): IndexedAdapterState<C>;
}

export interface SparseVariantSpec<C> {
  name: string;
  describe: string;
  /** The paper the variant follows (RegistryEntry.paper), and each way it departs from it (RegistryEntry.differs). */
  paper: string;
  differs: readonly string[];
  schema: z.ZodType<C>;
  /** How `create` uses a score matrix, when it does (otherwise `initWithScores` is refused). */
  supportScores?: SupportScoring;
  /** Trainable params and integer selections for `base` (contiguous float32); ΔW must be zero. */
  create(base: Float32Tensor, c: C, rng: Random, scores: Float32Tensor | undefined): { params: Record<string, Float32Tensor>; indices: Record<string, Int32Array> };
  /** Dense ΔW [out, in] (independent of W for every method here, so unmerge can pass the merged weight). */
  delta(state: IndexedAdapterState<C>, base: Float32Tensor): Float32Tensor;
  /** y += x ΔWᵀ without forming ΔW (x [n, in] contiguous, y [n, out]). */
  addForward(x: Float32Tensor, state: IndexedAdapterState<C>, y: Float32Tensor): void;
  /** Trainable scalars in closed form. */
  count(shape: readonly [number, number], c: C): number;
}

export function indexedState<C>(state: AdapterState<C>, name: string, where: string): IndexedAdapterState<C> {
  checkState(state as AdapterState, name, where);
  const idx = (state as Partial<IndexedAdapterState<C>>).indices;
  if (idx === undefined || typeof idx !== 'object') throw new ArgumentError(`${where}: adapter state has no 'indices' (made by ${name}.init?)`);
  return state as IndexedAdapterState<C>;
}

/** Builds the AdapterVariant (plus initWithScores) from a spec; merge/unmerge go through the base mask. */
export function makeSparseVariant<C>(spec: SparseVariantSpec<C>): ScoredAdapterVariant<C> {
  const { name } = spec;
  const where = (op: string) => `${name}.${op}`;
  const init = (base: Tensor, config: unknown, rng: Random, scores: Tensor | undefined): IndexedAdapterState<C> => {
    const c = parseWith(spec.schema, config, name) as C;
    const w = floatMatrix(base, where('init'), 'base');
    let s: Float32Tensor | undefined;
    if (scores !== undefined) {
      s = floatMatrix(scores, where('initWithScores'), 'scores');
      if (s.shape[0] !== w.shape[0] || s.shape[1] !== w.shape[1]) {
        throw new ShapeError(`${where('initWithScores')}: scores are [${s.shape.join(', ')}] but the base is [${w.shape.join(', ')}]`);
      }
      for (let k = 0; k < s.data.length; k++) if (Number.isNaN(s.data[k])) throw new ArgumentError(`${where('initWithScores')}: scores has NaN at flat index ${k}`);
    }
    const { params, indices } = spec.create(w, c, rng, s);
    return { variant: name, shape: [w.shape[0]!, w.shape[1]!], config: c, params, indices };
  };
  const delta = (state: AdapterState<C>, base: Tensor, op: string) => {
    const st = indexedState(state, name, where(op));
    checkShape(base, st, where(op), 'base');
    return spec.delta(st, floatMatrix(base, where(op), 'base'));
  };
  return {
    name,
    kind: 'adapter',
    describe: spec.describe,
    paper: spec.paper,
    differs: spec.differs,
    schema: spec.schema,
    ...(spec.supportScores ? { supportScores: spec.supportScores } : {}),
    parseConfig: (config) => parseWith(spec.schema, config, name) as C,
    init: (base, config, rng) => init(base, config, rng, undefined),
    initWithScores(base, config, rng, scores) {
      if (spec.supportScores === undefined) throw new ArgumentError(`${where('initWithScores')}: ${name} selects from its own values and takes no scores; use init`);
      return init(base, config, rng, scores);
    },
    delta: (state, base) => delta(state, base, 'delta'),
    forward(x, base, state) {
      const st = indexedState(state, name, where('forward'));
      checkShape(base, st, where('forward'), 'base');
      const xs = floatMatrix(x, where('forward'), 'x');
      if (xs.shape[1] !== st.shape[1]) throw new ShapeError(`${where('forward')}: x is [${xs.shape.join(', ')}] but the weight takes ${st.shape[1]} inputs`);
      const y = matmulT(xs, floatMatrix(base, where('forward'), 'base'));
      spec.addForward(xs, st, y);
      return y;
    },
    merge(base, state, opts) {
      const d = delta(state, base, 'merge');
      const w = floatMatrix(base, where('merge'), 'base');
      return addMasked(w, d, mergeMask(w, opts, where('merge')), 1);
    },
    unmerge(merged, state, opts) {
      const d = delta(state, merged, 'unmerge');
      const w = floatMatrix(merged, where('unmerge'), 'merged');
      return addMasked(w, d, mergeMask(w, opts, where('unmerge')), -1);
    },
    trainableCount(shape, config) {
      return spec.count(shape, parseWith(spec.schema, config, name) as C);
    },
  };
}

/** x [n, in] · Wᵀ with W [out, in] (the registry's gemm). */
export function matmulT(x: Float32Tensor, w: Float32Tensor): Float32Tensor {
  return matmul(x, w, { transB: true });
}

/** Number of entries a `density` in (0, 1] selects out of n: round(density · n), at least 1. */
export function countOf(n: number, density: number): number {
  return Math.max(1, Math.round(density * n));
}

/**
 * The `k` flat indices with the largest `scores` among the base's nonzeros (a pruned entry is never
 * selected: the default merge would drop it). Sorted increasing. Ties: lower index first.
 */
export function topSupport(scores: Float32Tensor, base: Float32Tensor, k: number, where: string, field: string, largest = true): Int32Array {
  const keep = maskFromTensor(base);
  const s = new Float32Array(scores.data.length);
  const excluded = largest ? -Infinity : Infinity;
  let available = 0;
  for (let q = 0; q < s.length; q++) {
    if (isKept(keep, q)) {
      s[q] = scores.data[q]!;
      available++;
    } else s[q] = excluded;
  }
  if (k > available) throw new ArgumentError(`${where}: ${field} asks for ${k} entries but the base has only ${available} nonzeros to place them on`);
  return maskIndices(topKMask(tensor(s, scores.shape), k, { largest }));
}

/** Indices of the k largest values (ties: lower index), increasing. */
export function topIndices(values: Float64Array, k: number): Int32Array {
  return maskIndices(topKMask(tensor(values, [values.length]), k));
}

/** ΔW[pos[t]] += scale · values[t]. */
export function scatterAdd(d: Float32Tensor, positions: Int32Array, values: Float32Tensor, scale = 1): void {
  for (let t = 0; t < positions.length; t++) d.data[positions[t]!] = d.data[positions[t]!]! + scale * values.data[t]!;
}

/** y += x Sᵀ for S given as (flat positions in [out, in], values): O(n · nnz), no dense S. */
export function addSparseForward(x: Float32Tensor, positions: Int32Array, values: Float32Tensor, inp: number, y: Float32Tensor): void {
  const n = x.shape[0]!;
  const out = y.shape[1]!;
  for (let t = 0; t < positions.length; t++) {
    const p = positions[t]!;
    const i = Math.floor(p / inp);
    const j = p - i * inp;
    const v = values.data[t]!;
    if (v === 0) continue;
    for (let a = 0; a < n; a++) y.data[a * out + i] = y.data[a * out + i]! + x.data[a * inp + j]! * v;
  }
}

/** LoRA factors for `base`'s shape, exactly as the `lora` variant initializes them. */
export function loraFactorsFor(base: Float32Tensor, r: number, rng: Random): { lora_A: Float32Tensor; lora_B: Float32Tensor } {
  const [out, inp] = base.shape as [number, number];
  return loraFactors(out, inp, r, rng);
}

/** d += scale · B A. */
export function addLowRank(d: Float32Tensor, b: Float32Tensor, a: Float32Tensor, scale: number): void {
  const p = matmul(b, a);
  for (let k = 0; k < d.data.length; k++) d.data[k] = d.data[k]! + scale * p.data[k]!;
}

/** y += scale · (x Aᵀ) Bᵀ: the low-rank path without forming B A. */
export function addLowRankForward(x: Float32Tensor, b: Float32Tensor, a: Float32Tensor, scale: number, y: Float32Tensor): void {
  const xa = matmulT(x, a); // [n, r]
  const up = matmulT(xa, b); // [n, out]
  for (let k = 0; k < y.data.length; k++) y.data[k] = y.data[k]! + scale * up.data[k]!;
}

export function zerosMatrix(out: number, inp: number): Float32Tensor {
  return tensor(new Float32Array(out * inp), [out, inp]);
}
