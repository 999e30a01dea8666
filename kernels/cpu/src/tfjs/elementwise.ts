// Float32 kernels where tfjs-backend-cpu takes a generic path that costs far more than the arithmetic:
// broadcasting Add/Sub/Multiply/RealDiv (it converts every output index to coordinates and back when
// an operand repeats along an inner axis, e.g. x [R, C] - mean [R, 1]) and UnsortedSegmentSum (the
// gradient of an embedding lookup, built there from one masked product per segment). Results are
// the same numbers tfjs-backend-cpu produces: each element computed in float64 and rounded once on
// store (for + - * / of float32 operands that is the float32 operation itself, which the native
// kernel does with AVX2 on the pool's threads), sums accumulated in float64 in the same order.
// Other dtypes go to tfjs-backend-cpu's kernel; tiny outputs, or an addon without the kernel, to the
// JavaScript loops below.
import type { KernelFunc } from '@tensorflow/tfjs-core';
import type { NativeElementwiseBinary } from '../native.js';
import { broadcastShapes, sizeOf } from './broadcast.js';
import { fastKernel, fastName, float32Values } from './kernel.js';
import { outputPool } from './pool.js';

type Inner = (out: Float32Array, o: number, a: Float32Array, ao: number, sa: number, b: Float32Array, bo: number, sb: number, n: number) => void;

// One loop per operator keeps each call site monomorphic. sa, sb are 0 (repeat) or 1 (advance).
const INNER: Record<'Add' | 'Sub' | 'Multiply' | 'RealDiv', Inner> = {
  Add(out, o, a, ao, sa, b, bo, sb, n) {
    for (let i = 0; i < n; i++) out[o + i] = a[ao + i * sa]! + b[bo + i * sb]!;
  },
  Sub(out, o, a, ao, sa, b, bo, sb, n) {
    for (let i = 0; i < n; i++) out[o + i] = a[ao + i * sa]! - b[bo + i * sb]!;
  },
  Multiply(out, o, a, ao, sa, b, bo, sb, n) {
    for (let i = 0; i < n; i++) out[o + i] = a[ao + i * sa]! * b[bo + i * sb]!;
  },
  RealDiv(out, o, a, ao, sa, b, bo, sb, n) {
    for (let i = 0; i < n; i++) out[o + i] = a[ao + i * sa]! / b[bo + i * sb]!;
  },
};

export type FastBinaryOp = keyof typeof INNER;
export const FAST_BINARY_OPS = Object.keys(INNER) as FastBinaryOp[];

/** The addon's operator codes (elementwise.h BinaryOp). */
const NATIVE_OP: Record<FastBinaryOp, number> = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 };
/** Below this many output elements the native call costs more than the JavaScript loop. */
const NATIVE_MIN_ELEMENTS = 128;
/** Most merged axes the native kernel takes (elementwise.h kMaxBinaryRank). */
const NATIVE_MAX_RANK = 8;
// The plan handed to the addon, reused: dims, then a's steps, then b's, innermost axis first.
const nativePlan = new Float64Array(3 * NATIVE_MAX_RANK);

/**
 * The output shape as a few merged axes, with each operand's element stride per axis (0 where it
 * repeats). Adjacent axes merge when both operands step through them contiguously the same way.
 */
function plan(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[]) {
  const rank = outShape.length;
  const dims: number[] = [];
  const sa: number[] = [];
  const sb: number[] = [];
  let strideA = 1;
  let strideB = 1;
  // Walk from the innermost axis out; size-1 output axes vanish.
  for (let d = rank - 1; d >= 0; d--) {
    const size = outShape[d]!;
    if (size === 1) continue;
    const da = aShape[d - (rank - aShape.length)] ?? 1;
    const db = bShape[d - (rank - bShape.length)] ?? 1;
    const stepA = da === 1 ? 0 : strideA;
    const stepB = db === 1 ? 0 : strideB;
    const last = dims.length - 1;
    // Merge with the axis inside it when it continues the same pattern for both operands.
    if (last >= 0 && stepA === sa[last]! * dims[last]! && stepB === sb[last]! * dims[last]!) {
      dims[last] = dims[last]! * size;
    } else {
      dims.push(size);
      sa.push(stepA);
      sb.push(stepB);
    }
    strideA *= da;
    strideB *= db;
  }
  return { dims, sa, sb };
}

/** a op b broadcast to outShape, natively when `native` is given and the output is not tiny. */
export function binaryValues(
  op: FastBinaryOp,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  outShape: readonly number[],
  native?: NativeElementwiseBinary,
): Float32Array {
  const out = outputPool.float32(sizeOf(outShape));
  if (out.length === 0) return out;
  const inner = INNER[op];
  const { dims, sa, sb } = plan(aShape, bShape, outShape);
  const rank = dims.length;
  if (native !== undefined && out.length >= NATIVE_MIN_ELEMENTS && rank <= NATIVE_MAX_RANK) {
    for (let d = 0; d < rank; d++) {
      nativePlan[d] = dims[d]!;
      nativePlan[rank + d] = sa[d]!;
      nativePlan[2 * rank + d] = sb[d]!;
    }
    native(NATIVE_OP[op], a, b, out, rank, nativePlan);
    return out;
  }
  if (dims.length === 0) {
    inner(out, 0, a, 0, 0, b, 0, 0, 1);
    return out;
  }
  const n = dims[0]!;
  const ia = sa[0]!;
  const ib = sb[0]!;
  if (dims.length === 1) {
    inner(out, 0, a, 0, ia, b, 0, ib, n);
    return out;
  }
  // Odometer over the outer merged axes; offsets into a and b move incrementally.
  const outer = dims.length - 1;
  const count = new Array<number>(outer).fill(0);
  let ao = 0;
  let bo = 0;
  for (let o = 0; o < out.length; o += n) {
    inner(out, o, a, ao, ia, b, bo, ib, n);
    for (let d = 0; d < outer; d++) {
      const ax = d + 1;
      ao += sa[ax]!;
      bo += sb[ax]!;
      if (++count[d]! < dims[ax]!) break;
      ao -= sa[ax]! * dims[ax]!;
      bo -= sb[ax]! * dims[ax]!;
      count[d] = 0;
    }
  }
  return out;
}

/**
 * A float32 binary kernel with the broadcast walk above (natively through `native` when given);
 * `fallback` (tfjs-backend-cpu's) for other dtypes and shapes that do not broadcast.
 */
export function makeBinary(op: FastBinaryOp, fallback: KernelFunc, native?: NativeElementwiseBinary): KernelFunc {
  return fastKernel(fastName(op), fallback, ({ inputs, backend }) => {
    const { a, b } = inputs;
    const av = float32Values(backend, a);
    const bv = float32Values(backend, b);
    if (av === undefined || bv === undefined) return undefined;
    const outShape = broadcastShapes(a!.shape, b!.shape);
    if (outShape === undefined) return undefined; // tfjs-backend-cpu raises its own error
    return backend.makeTensorInfo(outShape, 'float32', binaryValues(op, av, a!.shape, bv, b!.shape, outShape, native));
  });
}

/**
 * UnsortedSegmentSum for float32 x [N, ...inner] and int32 segmentIds [N] (one id per row): row i
 * is added to output row segmentIds[i]; ids outside [0, numSegments) are dropped, as there.
 */
export function makeUnsortedSegmentSum(fallback: KernelFunc): KernelFunc {
  return fastKernel('unsortedSegmentSumFast', fallback, ({ inputs, attrs, backend }) => {
    const { x, segmentIds: ids } = inputs;
    const numSegments = attrs.numSegments;
    const xv = float32Values(backend, x);
    const idv = ids == null ? undefined : backend.data.get(ids.dataId).values;
    if (
      xv === undefined ||
      ids == null ||
      ids.shape.length !== 1 ||
      x!.shape.length < 1 ||
      ids.shape[0] !== x!.shape[0] ||
      !(idv instanceof Int32Array) ||
      typeof numSegments !== 'number' ||
      !Number.isInteger(numSegments) ||
      numSegments < 0
    ) {
      return undefined;
    }
    const rows = x!.shape[0]!;
    const width = sizeOf(x!.shape.slice(1));
    const acc = new Float64Array(numSegments * width);
    for (let i = 0; i < rows; i++) {
      const s = idv[i]!;
      if (s < 0 || s >= numSegments) continue;
      const src = i * width;
      const dst = s * width;
      for (let j = 0; j < width; j++) acc[dst + j] += xv[src + j]!;
    }
    return backend.makeTensorInfo([numSegments, ...x!.shape.slice(1)], 'float32', Float32Array.from(acc));
  });
}
