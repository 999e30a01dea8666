// Data-movement and reduction kernels where tfjs-backend-cpu converts every element's index to
// coordinates and back (Transpose, a non-contiguous Slice and the SplitV built on it) or goes through
// those (Sum over non-innermost axes, Softmax built from five kernels). The replacements walk the
// data with an odometer and produce the same numbers: moves are exact, Sum accumulates in float64 in
// tfjs-backend-cpu's order, Softmax rounds to float32 at the same steps. Other dtypes and unusual
// arguments go to tfjs-backend-cpu's kernel.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { sizeOf } from './broadcast.js';

type Numeric = Float32Array | Int32Array | Uint8Array;

interface Storage {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: string, values: Numeric): TensorInfo;
}

interface KernelArgs {
  inputs: Record<string, TensorInfo | undefined>;
  backend: unknown;
  attrs?: Record<string, unknown>;
}

/** Plain numeric storage (float32, int32, bool), or undefined (strings, complex, lazily absent). */
function numericValues(backend: Storage, t: TensorInfo | undefined): Numeric | undefined {
  if (t === undefined || !(t.dtype === 'float32' || t.dtype === 'int32' || t.dtype === 'bool')) return undefined;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array ? v : undefined;
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

function emptyLike(x: Numeric, size: number): Numeric {
  return new (x.constructor as new (n: number) => Numeric)(size);
}

/**
 * Copies a strided view of `x` into a new contiguous array: output axis d has `dims[d]` entries and
 * steps `steps[d]` elements in x, starting at `start`. The innermost axis is copied in one loop.
 */
function gather(x: Numeric, start: number, dims: readonly number[], steps: readonly number[]): Numeric {
  const size = sizeOf(dims);
  const out = emptyLike(x, size);
  if (size === 0) return out;
  const rank = dims.length;
  if (rank === 0) {
    out[0] = x[start]!;
    return out;
  }
  const n = dims[rank - 1]!;
  const step = steps[rank - 1]!;
  const count = new Array<number>(rank).fill(0);
  let at = start;
  for (let o = 0; o < size; o += n) {
    if (step === 1) out.set(x.subarray(at, at + n), o);
    else for (let j = 0, p = at; j < n; j++, p += step) out[o + j] = x[p]!;
    for (let d = rank - 2; d >= 0; d--) {
      at += steps[d]!;
      if (++count[d]! < dims[d]!) break;
      at -= steps[d]! * dims[d]!;
      count[d] = 0;
    }
  }
  return out;
}

/** x transposed by `perm` (output axis d is input axis perm[d]). */
export function transposeValues(x: Numeric, shape: readonly number[], perm: readonly number[]): Numeric {
  const strides = stridesOf(shape);
  return gather(
    x,
    0,
    perm.map((p) => shape[p]!),
    perm.map((p) => strides[p]!),
  );
}

function isPermutation(perm: unknown, rank: number): perm is number[] {
  if (!Array.isArray(perm) || perm.length !== rank) return false;
  const seen = new Set<number>();
  for (const p of perm) if (!Number.isInteger(p) || p < 0 || p >= rank || seen.has(p)) return false;
  for (const p of perm) seen.add(p);
  return seen.size === rank;
}

export function makeTranspose(fallback: KernelFunc): KernelFunc {
  return function transposeFast(args) {
    const { inputs, attrs } = args as unknown as KernelArgs;
    const backend = args.backend as unknown as Storage;
    const x = inputs.x;
    const values = numericValues(backend, x);
    const perm = attrs?.perm;
    if (values === undefined || !isPermutation(perm, x!.shape.length)) return fallback(args);
    return backend.makeTensorInfo(
      perm.map((p) => x!.shape[p]!),
      x!.dtype,
      transposeValues(values, x!.shape, perm),
    );
  };
}

/** Slice of x at `begin` with `size` (both already resolved), as a new array. */
function sliceValues(x: Numeric, shape: readonly number[], begin: readonly number[], size: readonly number[]): Numeric {
  const strides = stridesOf(shape);
  let start = 0;
  for (let d = 0; d < shape.length; d++) start += begin[d]! * strides[d]!;
  return gather(x, start, size, strides);
}

export function makeSlice(fallback: KernelFunc): KernelFunc {
  return function sliceFast(args) {
    const { inputs, attrs } = args as unknown as KernelArgs;
    const backend = args.backend as unknown as Storage;
    const x = inputs.x;
    const values = numericValues(backend, x);
    if (values === undefined) return fallback(args);
    const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, attrs!.begin as number[], attrs!.size as number[]);
    tf.slice_util.assertParamsValid(x as unknown as tf.Tensor, begin, size);
    return backend.makeTensorInfo(size, x!.dtype, sliceValues(values, x!.shape, begin, size));
  };
}

export function makeSplitV(fallback: KernelFunc): KernelFunc {
  return function splitVFast(args) {
    const { inputs, attrs } = args as unknown as KernelArgs;
    const backend = args.backend as unknown as Storage;
    const x = inputs.x;
    const values = numericValues(backend, x);
    if (values === undefined) return fallback(args);
    const axis = tf.util.parseAxisParam(attrs!.axis as number, x!.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, attrs!.numOrSizeSplits as number | number[], axis);
    const begin = new Array<number>(x!.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x!.shape];
      size[axis] = s;
      const out = backend.makeTensorInfo(size, x!.dtype, sliceValues(values, x!.shape, begin, size));
      begin[axis]! += s;
      return out;
    }) as unknown as TensorInfo;
  };
}

/** Sum over `axes` of float32 x, accumulated in float64 in tfjs-backend-cpu's order. */
export function makeSum(fallback: KernelFunc): KernelFunc {
  return function sumFast(args) {
    const { inputs, attrs } = args as unknown as KernelArgs;
    const backend = args.backend as unknown as Storage;
    const x = inputs.x;
    const values = numericValues(backend, x);
    if (values === undefined || !(values instanceof Float32Array)) return fallback(args);
    const shape = x!.shape;
    const rank = shape.length;
    const axes = tf.util.parseAxisParam(attrs!.axis as number | number[], shape);
    // Reduced axes moved innermost (keeping their order), as tfjs-backend-cpu does.
    const perm = tf.backend_util.getAxesPermutation(axes, rank);
    const moved = perm == null ? values : transposeValues(values, shape, perm);
    const kept = [...Array(rank).keys()].filter((d) => !axes.includes(d));
    const outShape = kept.map((d) => shape[d]!);
    const reduceSize = sizeOf(axes.map((d) => shape[d]!));
    const out = new Float32Array(sizeOf(outShape));
    for (let i = 0; i < out.length; i++) {
      const offset = i * reduceSize;
      let sum = 0;
      for (let j = 0; j < reduceSize; j++) sum += moved[offset + j]!;
      out[i] = sum;
    }
    const finalShape = attrs!.keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    return backend.makeTensorInfo(finalShape, 'float32', out);
  };
}

/**
 * Softmax over the last axis of float32 logits, rounding where tfjs-backend-cpu's five kernels
 * store float32: x - max, exp of that, the sum of exps, and the quotient.
 */
export function makeSoftmax(fallback: KernelFunc): KernelFunc {
  return function softmaxFast(args) {
    const { inputs, attrs } = args as unknown as KernelArgs;
    const backend = args.backend as unknown as Storage;
    const x = inputs.logits;
    const values = numericValues(backend, x);
    const rank = x?.shape.length ?? 0;
    const dim = attrs?.dim;
    if (values === undefined || !(values instanceof Float32Array) || rank === 0 || !(dim === -1 || dim === rank - 1)) return fallback(args);
    const n = x!.shape[rank - 1]!;
    const out = new Float32Array(values.length);
    const fround = Math.fround;
    for (let o = 0; o < values.length; o += n) {
      let max = values[o]!;
      for (let j = 0; j < n; j++) {
        const v = values[o + j]!;
        if (Number.isNaN(v) || v > max) max = v;
      }
      let sum = 0;
      for (let j = 0; j < n; j++) {
        const e = fround(Math.exp(fround(values[o + j]! - max)));
        out[o + j] = e;
        sum += e;
      }
      const s = fround(sum);
      for (let j = 0; j < n; j++) out[o + j] = out[o + j]! / s;
    }
    return backend.makeTensorInfo(x!.shape, 'float32', out);
  };
}
