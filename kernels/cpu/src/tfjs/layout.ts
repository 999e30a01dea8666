// Data-movement and reduction kernels where tfjs-backend-cpu converts every element's index to
// coordinates and back (Transpose, a non-contiguous Slice and the SplitV built on it) or goes through
// those (Sum over non-innermost axes, Softmax built from five kernels). The replacements walk the
// data with an odometer and produce the same numbers: moves are exact, Max is exact, Softmax rounds to
// float32 at the same steps. Sum and Max reduce over the innermost axes after the same transpose
// tfjs-backend-cpu does; natively (AVX2, rows split across threads) when the addon has the kernel.
// Sum accumulates in float64 in tfjs-backend-cpu's order in JavaScript; the native sum keeps four
// float64 partial sums per row, so it may differ from tfjs-backend-cpu's by an ulp of the float32
// result (both are within n * 2^-53 * sum |x| of the exact sum before the final rounding). Other
// dtypes and unusual arguments go to tfjs-backend-cpu's kernel.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc } from '@tensorflow/tfjs-core';
import type { NativeGather32, NativeReduceLastAxis } from '../native.js';
import { sizeOf } from './broadcast.js';
import { fastKernel, float32Values, numericValues, type Numeric } from './kernel.js';
import { outputPool } from './pool.js';

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
  if (x instanceof Float32Array) return outputPool.float32(size);
  return new (x.constructor as new (n: number) => Numeric)(size);
}

/** The addon's strided copy of 4-byte elements, when it has one. */
export type NativeGather = NativeGather32;

/** Below this many elements the native call costs more than the JavaScript loop. */
const NATIVE_MIN_ELEMENTS = 128;
const NATIVE_MAX_RANK = 8;
// The plan handed to the addon, reused: dims, then steps, innermost axis first.
const nativePlan = new Float64Array(2 * NATIVE_MAX_RANK);

/**
 * Copies a strided view of `x` into a new contiguous array: output axis d has `dims[d]` entries and
 * steps `steps[d]` elements in x, starting at `start`. Float32 and int32 data go to the addon's copy
 * (axes merged where they are contiguous in x) when `native` is given and the view is not tiny.
 */
function gather(x: Numeric, start: number, dims: readonly number[], steps: readonly number[], native?: NativeGather): Numeric {
  const size = sizeOf(dims);
  const out = emptyLike(x, size);
  if (size === 0) return out;
  const rank = dims.length;
  if (rank === 0) {
    out[0] = x[start]!;
    return out;
  }
  if (native !== undefined && size >= NATIVE_MIN_ELEMENTS && !(x instanceof Uint8Array)) {
    // Innermost first; size-1 axes dropped; an axis continuing the one inside it merged into it.
    let r = 0;
    for (let d = rank - 1; d >= 0; d--) {
      const n = dims[d]!;
      if (n === 1) continue;
      if (r > 0 && steps[d] === nativePlan[NATIVE_MAX_RANK + r - 1]! * nativePlan[r - 1]!) {
        nativePlan[r - 1] = nativePlan[r - 1]! * n;
        continue;
      }
      if (r === NATIVE_MAX_RANK) {
        r = -1;
        break;
      }
      nativePlan[r] = n;
      nativePlan[NATIVE_MAX_RANK + r] = steps[d]!;
      r++;
    }
    if (r >= 0) {
      // The plan's steps follow its dims directly.
      if (r < NATIVE_MAX_RANK) nativePlan.copyWithin(r, NATIVE_MAX_RANK, NATIVE_MAX_RANK + r);
      const as32 = (v: Numeric) => (v instanceof Float32Array ? v : new Float32Array(v.buffer, v.byteOffset, v.length));
      native(as32(x), start, as32(out), r, nativePlan);
      return out;
    }
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
export function transposeValues(x: Numeric, shape: readonly number[], perm: readonly number[], native?: NativeGather): Numeric {
  const strides = stridesOf(shape);
  return gather(
    x,
    0,
    perm.map((p) => shape[p]!),
    perm.map((p) => strides[p]!),
    native,
  );
}

function isPermutation(perm: unknown, rank: number): perm is number[] {
  if (!Array.isArray(perm) || perm.length !== rank) return false;
  const seen = new Set<number>();
  for (const p of perm) if (!Number.isInteger(p) || p < 0 || p >= rank || seen.has(p)) return false;
  for (const p of perm) seen.add(p);
  return seen.size === rank;
}

export function makeTranspose(fallback: KernelFunc, native?: NativeGather): KernelFunc {
  return fastKernel('transposeFast', fallback, ({ inputs, attrs, backend }) => {
    const x = inputs.x;
    const values = numericValues(backend, x);
    const perm = attrs.perm;
    if (values === undefined || !isPermutation(perm, x!.shape.length)) return undefined;
    return backend.makeTensorInfo(
      perm.map((p) => x!.shape[p]!),
      x!.dtype,
      transposeValues(values, x!.shape, perm, native),
    );
  });
}

/** Slice of x at `begin` with `size` (both already resolved), as a new array. */
function sliceValues(x: Numeric, shape: readonly number[], begin: readonly number[], size: readonly number[], native?: NativeGather): Numeric {
  const strides = stridesOf(shape);
  let start = 0;
  for (let d = 0; d < shape.length; d++) start += begin[d]! * strides[d]!;
  return gather(x, start, size, strides, native);
}

export function makeSlice(fallback: KernelFunc, native?: NativeGather): KernelFunc {
  return fastKernel('sliceFast', fallback, ({ inputs, attrs, backend }) => {
    const x = inputs.x;
    const values = numericValues(backend, x);
    if (values === undefined) return undefined;
    const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, attrs.begin as number[], attrs.size as number[]);
    tf.slice_util.assertParamsValid(x as unknown as tf.Tensor, begin, size);
    return backend.makeTensorInfo(size, x!.dtype, sliceValues(values, x!.shape, begin, size, native));
  });
}

export function makeSplitV(fallback: KernelFunc, native?: NativeGather): KernelFunc {
  return fastKernel('splitVFast', fallback, ({ inputs, attrs, backend }) => {
    const x = inputs.x;
    const values = numericValues(backend, x);
    if (values === undefined) return undefined;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x!.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, attrs.numOrSizeSplits as number | number[], axis);
    const begin = new Array<number>(x!.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x!.shape];
      size[axis] = s;
      const out = backend.makeTensorInfo(size, x!.dtype, sliceValues(values, x!.shape, begin, size, native));
      begin[axis]! += s;
      return out;
    });
  });
}

/** The addon's reduction codes (elementwise.h ReduceOp). */
const NATIVE_REDUCE = { Sum: 0, Max: 1 } as const;

/** Rows of `cols` values each, in tfjs-backend-cpu's order: one float64 accumulator, left to right. */
function sumRows(x: Float32Array, rows: number, cols: number, out: Float32Array): void {
  for (let i = 0; i < rows; i++) {
    const offset = i * cols;
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += x[offset + j]!;
    out[i] = sum;
  }
}

/** tfjs-backend-cpu's max: NaN wins, otherwise the first of the largest values (cols >= 1). */
function maxRows(x: Float32Array, rows: number, cols: number, out: Float32Array): void {
  for (let i = 0; i < rows; i++) {
    const offset = i * cols;
    let max = x[offset]!;
    for (let j = 0; j < cols; j++) {
      const v = x[offset + j]!;
      if (Number.isNaN(v) || v > max) max = v;
    }
    out[i] = max;
  }
}

/**
 * A float32 reduction over `axes` (tfjs-core's axis attribute `attr`): the reduced axes are moved
 * innermost (keeping their order) as tfjs-backend-cpu does, then each row is reduced.
 */
function makeReduce(
  op: keyof typeof NATIVE_REDUCE,
  attr: 'axis' | 'reductionIndices',
  fallback: KernelFunc,
  rowsLoop: (x: Float32Array, rows: number, cols: number, out: Float32Array) => void,
  native: NativeReduceLastAxis | undefined,
  nativeGather: NativeGather | undefined,
  minCols: number,
): KernelFunc {
  return fastKernel(`${op.toLowerCase()}Fast`, fallback, ({ inputs, attrs, backend }) => {
    const x = inputs.x;
    const values = float32Values(backend, x);
    if (values === undefined) return undefined;
    const shape = x!.shape;
    const rank = shape.length;
    const axes = tf.util.parseAxisParam(attrs[attr] as number | number[], shape);
    const perm = tf.backend_util.getAxesPermutation(axes, rank);
    const kept = [...Array(rank).keys()].filter((d) => !axes.includes(d));
    const outShape = kept.map((d) => shape[d]!);
    const cols = sizeOf(axes.map((d) => shape[d]!));
    const rows = sizeOf(outShape);
    if (cols < minCols) return undefined;
    const moved = perm == null ? values : (transposeValues(values, shape, perm, nativeGather) as Float32Array);
    const out = outputPool.float32(rows);
    if (native !== undefined && rows * cols >= NATIVE_MIN_ELEMENTS && cols > 0) native(NATIVE_REDUCE[op], moved, rows, cols, out);
    else rowsLoop(moved, rows, cols, out);
    if (moved !== values) outputPool.recycle(moved);
    const finalShape = attrs.keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    return backend.makeTensorInfo(finalShape, 'float32', out);
  });
}

/** Sum over `axes` of float32 x (an empty reduction gives 0, as there). */
export function makeSum(fallback: KernelFunc, native?: NativeReduceLastAxis, nativeGather?: NativeGather): KernelFunc {
  return makeReduce('Sum', 'axis', fallback, sumRows, native, nativeGather, 0);
}

/** Max over `axes` of float32 x; an empty reduction goes to tfjs-backend-cpu. */
export function makeMax(fallback: KernelFunc, native?: NativeReduceLastAxis, nativeGather?: NativeGather): KernelFunc {
  return makeReduce('Max', 'reductionIndices', fallback, maxRows, native, nativeGather, 1);
}

/**
 * Softmax over the last axis of float32 logits, rounding where tfjs-backend-cpu's five kernels
 * store float32: x - max, exp of that, the sum of exps, and the quotient.
 */
export function makeSoftmax(fallback: KernelFunc): KernelFunc {
  return fastKernel('softmaxFast', fallback, ({ inputs, attrs, backend }) => {
    const x = inputs.logits;
    const values = float32Values(backend, x);
    const rank = x?.shape.length ?? 0;
    const dim = attrs.dim;
    if (values === undefined || rank === 0 || !(dim === -1 || dim === rank - 1)) return undefined;
    const n = x!.shape[rank - 1]!;
    const out = outputPool.float32(values.length);
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
  });
}
