// Shared plumbing of the LoRA-family variants: each method gives its config schema, how to build its
// tensors from the base, and its ΔW; parsing, state checks, forward, and the masked merge/unmerge are
// the same for all of them. Each method file also exports its frozen param names (*_FROZEN), which its
// tfjs form keeps out of training and its trainableCount leaves out.
import {
  ArgumentError,
  matmul,
  ShapeError,
  svd,
  tensor,
  truncatedSVD,
  type Float32Tensor,
  type Random,
  type Tensor,
} from '@sparse/tensor';
import { z } from 'zod';
import { addMasked, checkShape, checkState, floatMatrix, mergeMask, parseWith } from './common.js';
import type { AdapterState, AdapterVariant, InitStatistic, MergeOptions, UnmergeOptions } from '../types.js';

export interface FamilySpec<C> {
  name: string;
  describe: string;
  /** The paper the variant follows (RegistryEntry.paper), and each way it departs from it (RegistryEntry.differs). */
  paper: string;
  differs: readonly string[];
  schema: z.ZodType<C>;
  /** The adapter's tensors for base W (contiguous float32 copy); ΔW must be zero for them. */
  init(base: Float32Tensor, config: C, rng: Random): Record<string, Float32Tensor>;
  /** What the state keeps as its config (default: the parsed config); drop bulky init-only inputs here. */
  stateConfig?(config: C): C;
  /** The dense ΔW [out, in]. */
  delta(state: AdapterState<C>, base: Float32Tensor): Float32Tensor;
  /** x ΔWᵀ [n, out] without forming ΔW; default: x times the dense ΔW. */
  forwardDelta?(x: Tensor, state: AdapterState<C>, base: Tensor): Float32Tensor;
  /** Trainable scalars for `shape` in closed form. */
  trainable(shape: readonly [number, number], config: C): number;
  /** The data statistics a parsed config still needs before init (see AdapterVariant.initStatistics). */
  initStatistics?(config: C): readonly InitStatistic[];
  /** Replaces the default (additive, masked) merge and unmerge, for updates that are not additive. */
  merge?(base: Float32Tensor, state: AdapterState<C>, opts: MergeOptions | undefined): Float32Tensor;
  unmerge?(merged: Float32Tensor, state: AdapterState<C>, opts: UnmergeOptions | undefined): Float32Tensor;
  /** A bias path (SSF's shift): the merged bias from a contiguous float32 base bias [out], and back. */
  mergeBias?(bias: Float32Array, state: AdapterState<C>): Float32Tensor;
  unmergeBias?(merged: Float32Array, state: AdapterState<C>): Float32Tensor;
}

/** A bias [out] as a contiguous float32 copy (zeros when absent); throws ShapeError naming `op`. */
function biasVector(b: Tensor | undefined, out: number, op: string, field: string): Float32Array {
  if (b === undefined) return new Float32Array(out);
  if (b.shape.length !== 1 || b.shape[0] !== out) throw new ShapeError(`${op}: ${field} must have shape [${out}], got [${b.shape.join(', ')}]`);
  if (b.dtype !== 'float32') throw new ArgumentError(`${op}: ${field} must be float32, got ${b.dtype}`);
  return Float32Array.from({ length: out }, (_, i) => b.data[b.offset + i * b.stride[0]!] as number);
}

export function defineFamilyVariant<C>(spec: FamilySpec<C>): AdapterVariant<C> {
  const { name } = spec;
  const where = (op: string) => `${name}.${op}`;
  const parse = (config: unknown) => parseWith(spec.schema, config, name) as C;
  const deltaOf = (state: AdapterState<C>, base: Tensor, op: string) => {
    checkState(state as AdapterState, name, where(op));
    checkShape(base, state as AdapterState, where(op), 'base');
    return spec.delta(state, floatMatrix(base, where(op), 'base'));
  };
  return {
    name,
    kind: 'adapter',
    describe: spec.describe,
    paper: spec.paper,
    differs: spec.differs,
    schema: spec.schema,
    ...(spec.initStatistics ? { initStatistics: (config: unknown) => spec.initStatistics!(parse(config)) } : {}),
    parseConfig: parse,
    init(base, config, rng) {
      const c = parse(config);
      const w = floatMatrix(base, where('init'), 'base');
      const params = spec.init(w, c, rng);
      return { variant: name, shape: [w.shape[0]!, w.shape[1]!], config: spec.stateConfig ? spec.stateConfig(c) : c, params };
    },
    delta: (state, base) => deltaOf(state, base, 'delta'),
    forward(x, base, state, bias) {
      checkState(state as AdapterState, name, where('forward'));
      checkShape(base, state as AdapterState, where('forward'), 'base');
      const [, k] = floatMatrix(x, where('forward'), 'x').shape as [number, number];
      if (k !== state.shape[1]) throw new ShapeError(`${where('forward')}: x has ${k} features but the weight takes ${state.shape[1]}`);
      const y = matmul(x, base, { transB: true });
      const extra = spec.forwardDelta ? spec.forwardDelta(x, state, base) : matmul(x, spec.delta(state, floatMatrix(base, where('forward'), 'base')), { transB: true });
      for (let i = 0; i < y.data.length; i++) y.data[i] = y.data[i]! + extra.data[i]!;
      if (bias !== undefined) {
        const out = state.shape[0];
        const b = biasVector(bias, out, where('forward'), 'bias');
        const bb = spec.mergeBias ? spec.mergeBias(b, state).data : b;
        for (let i = 0; i < y.data.length; i++) y.data[i] = y.data[i]! + bb[i % out]!;
      }
      return y;
    },
    merge(base, state, opts) {
      checkState(state as AdapterState, name, where('merge'));
      checkShape(base, state as AdapterState, where('merge'), 'base');
      const w = floatMatrix(base, where('merge'), 'base');
      if (spec.merge) return spec.merge(w, state, opts);
      return addMasked(w, spec.delta(state, w), mergeMask(w, opts, where('merge')), 1);
    },
    unmerge(merged, state, opts) {
      checkState(state as AdapterState, name, where('unmerge'));
      checkShape(merged, state as AdapterState, where('unmerge'), 'merged');
      const w = floatMatrix(merged, where('unmerge'), 'merged');
      if (spec.unmerge) return spec.unmerge(w, state, opts);
      // ΔW of the additive variants does not depend on the base, so the merged weight gives the same ΔW.
      return addMasked(w, spec.delta(state, w), mergeMask(w, opts, where('unmerge')), -1);
    },
    trainableCount: (shape, config) => spec.trainable(shape, parse(config)),
    ...(spec.mergeBias && spec.unmergeBias
      ? {
          mergeBias(bias: Tensor | undefined, state: AdapterState<C>) {
            checkState(state as AdapterState, name, where('mergeBias'));
            return spec.mergeBias!(biasVector(bias, state.shape[0], where('mergeBias'), 'bias'), state);
          },
          unmergeBias(merged: Tensor, state: AdapterState<C>) {
            checkState(state as AdapterState, name, where('unmergeBias'));
            return spec.unmergeBias!(biasVector(merged, state.shape[0], where('unmergeBias'), 'merged bias'), state);
          },
        }
      : {}),
  };
}

/** A zod field for a float32 matrix passed in a config (a gradient, a covariance, calibration inputs). */
export const matrixField = z.custom<Tensor>(
  (v) =>
    typeof v === 'object' &&
    v !== null &&
    (v as Tensor).dtype === 'float32' &&
    Array.isArray((v as Tensor).shape) &&
    (v as Tensor).shape.length === 2 &&
    (v as Tensor).data instanceof Float32Array,
  { message: 'expected a float32 Tensor matrix' },
);

/** Throws ArgumentError naming `field` unless rank r fits a matrix of `shape`. */
export function checkRank(r: number, shape: readonly number[], where: string, field = 'r'): void {
  const k = Math.min(shape[0]!, shape[1]!);
  if (r > k) throw new ArgumentError(`${where}: ${field} = ${r} exceeds min(out, in) = ${k} of the [${shape.join(', ')}] weight`);
}

export interface TopSVD {
  /** [m, r] left singular vectors. */
  u: Float32Tensor;
  /** [r] singular values, non-increasing. */
  s: Float32Array;
  /** [n, r] right singular vectors. */
  v: Float32Tensor;
}

/**
 * The top-r singular triplets of a: the exact (Jacobi) SVD when the sketch of the randomized one would
 * cover the whole spectrum anyway, else `truncatedSVD` seeded from `rng`.
 */
export function topSVD(a: Tensor, r: number, rng: Random): TopSVD {
  const k = Math.min(a.shape[0]!, a.shape[1]!);
  const f = r + 10 >= k ? svd(a) : truncatedSVD(a, r, { rng });
  const [m, n] = [a.shape[0]!, a.shape[1]!];
  const kk = f.s.shape[0]!;
  const u = new Float32Array(m * r);
  const v = new Float32Array(n * r);
  for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) u[i * r + j] = f.u.data[i * kk + j]!;
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) v[i * r + j] = f.v.data[i * kk + j]!;
  return { u: tensor(u, [m, r]), s: Float32Array.from(f.s.data as Float32Array).slice(0, r), v: tensor(v, [n, r]) };
}

/** Copies a matrix, scaling column j by s[j]. */
export function scaleColumns(a: Float32Tensor, s: ArrayLike<number>): Float32Tensor {
  const [m, n] = a.shape as [number, number];
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j] = a.data[a.offset + i * a.stride[0]! + j * a.stride[1]!]! * s[j]!;
  return tensor(out, [m, n]);
}

/** The transpose as a contiguous copy. */
export function transposed(a: Float32Tensor): Float32Tensor {
  const [m, n] = a.shape as [number, number];
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = a.data[a.offset + i * a.stride[0]! + j * a.stride[1]!]!;
  return tensor(out, [n, m]);
}

/** Elementwise a - b (same shapes, contiguous). */
export function minus(a: Float32Tensor, b: Float32Tensor): Float32Tensor {
  return tensor(Float32Array.from(a.data, (x, k) => x - b.data[k]!), a.shape);
}

/** Elementwise sum of contiguous tensors of one shape. */
export function plus(a: Float32Tensor, b: Float32Tensor): Float32Tensor {
  return tensor(Float32Array.from(a.data, (x, k) => x + b.data[k]!), a.shape);
}

/** The input covariance xᵀx / n [in, in] of calibration inputs x [n, in], in float64. */
export function inputCovariance(x: Tensor): Tensor<'float64'> {
  const [n, k] = x.shape.length === 2 ? (x.shape as [number, number]) : [0, 0];
  if (x.shape.length !== 2 || n === 0) throw new ShapeError(`inputCovariance: inputs must be a non-empty matrix [n, in], got [${x.shape.join(', ')}]`);
  const xs = floatMatrix(x, 'inputCovariance', 'inputs').data;
  const c = new Float64Array(k * k);
  for (let a = 0; a < n; a++) {
    const row = a * k;
    for (let i = 0; i < k; i++) {
      const xi = xs[row + i]!;
      if (xi === 0) continue;
      for (let j = 0; j < k; j++) c[i * k + j]! += xi * xs[row + j]!;
    }
  }
  for (let i = 0; i < c.length; i++) c[i] = c[i]! / n;
  return tensor(c, [k, k]);
}

/** Calibration fields shared by the data-aware variants: a covariance [in, in] or the inputs [n, in]. */
/** A config with calibrationFields still needs the input covariance when it has neither field. */
export function needsCovariance(c: { covariance?: unknown; inputs?: unknown }): readonly InitStatistic[] {
  return c.covariance === undefined && c.inputs === undefined ? ['covariance'] : [];
}

export const calibrationFields = {
  /** Input covariance C [in, in] (e.g. xᵀx / n over calibration batches). */
  covariance: matrixField.optional(),
  /** Calibration inputs x [n, in]; C = xᵀx / n. Give this or `covariance`. */
  inputs: matrixField.optional(),
};

/** C [in, in] (float64) from config.covariance or config.inputs; errors name the field. */
export function calibrationCovariance(c: { covariance?: Tensor; inputs?: Tensor }, inp: number, where: string): Float64Array {
  if (c.covariance !== undefined && c.inputs !== undefined) throw new ArgumentError(`${where}: give config.covariance or config.inputs, not both`);
  if (c.covariance !== undefined) {
    const m = floatMatrix(c.covariance, where, 'config.covariance');
    if (m.shape[0] !== inp || m.shape[1] !== inp) throw new ShapeError(`${where}: config.covariance is [${m.shape.join(', ')}] but must be [${inp}, ${inp}]`);
    return Float64Array.from(m.data);
  }
  if (c.inputs !== undefined) {
    if (c.inputs.shape[1] !== inp) throw new ShapeError(`${where}: config.inputs is [${c.inputs.shape.join(', ')}] but must have ${inp} columns`);
    return inputCovariance(c.inputs).data;
  }
  throw new ArgumentError(`${where}: config.covariance ([${inp}, ${inp}]) or config.inputs ([n, ${inp}]) is required`);
}
