// BatchMatMul and _FusedMatMul for the sparse-cpu backend: the native batched gemm reads the
// backend's Float32Array storage in place (transposes become gemm's transA/transB, broadcast batch
// items become repeated offsets into the same storage) and writes straight into the result array.
// Anything the native path does not cover (non-float32 dtypes, a fused bias or prelu weight whose
// broadcast would enlarge the output) goes to tfjs-backend-cpu's own kernel, unchanged.
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeGemmBatched } from '../native.js';
import { broadcastOffsets, broadcastShapes, sameShape, sizeOf } from './broadcast.js';
import { addBroadcast, applyActivationInPlace, isFusedActivation } from './epilogue.js';
import { fastKernel, float32Values, type CPUStorageBackend } from './kernel.js';
import { outputPool } from './pool.js';

/** The operands of a (batched) product, checked as tfjs checks them. */
interface Product {
  a: Float32Array;
  b: Float32Array;
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  aOffsets: Float64Array;
  bOffsets: Float64Array;
  /** Broadcast batch shape followed by [m, n]. */
  outShape: number[];
}

function planProduct(backend: CPUStorageBackend, a: TensorInfo, b: TensorInfo, transA: boolean, transB: boolean): Product | undefined {
  const av = float32Values(backend, a);
  const bv = float32Values(backend, b);
  if (av === undefined || bv === undefined || a.shape.length < 2 || b.shape.length < 2) return undefined;
  const ar = a.shape.length;
  const br = b.shape.length;
  const innerA = transA ? a.shape[ar - 2]! : a.shape[ar - 1]!;
  const innerB = transB ? b.shape[br - 1]! : b.shape[br - 2]!;
  const m = transA ? a.shape[ar - 1]! : a.shape[ar - 2]!;
  const n = transB ? b.shape[br - 2]! : b.shape[br - 1]!;
  if (innerA !== innerB) {
    throw new Error(
      `Error in matMul: inner shapes (${innerA}) and (${innerB}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transA} and transposeB=${transB} must match.`,
    );
  }
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outer = broadcastShapes(outerA, outerB);
  if (outer === undefined) {
    throw new Error(`Operands could not be broadcast together with shapes ${outerA} and ${outerB}.`);
  }
  const k = innerA;
  return {
    a: av,
    b: bv,
    transA,
    transB,
    m,
    n,
    k,
    aOffsets: broadcastOffsets(outerA, outer, m * k),
    bOffsets: broadcastOffsets(outerB, outer, k * n),
    outShape: [...outer, m, n],
  };
}

/**
 * Runs the planned product into a new (pooled) Float32Array: beta = 0, so the output is never read,
 * and an empty product (k = 0) asks for zeros.
 */
function runProduct(gemmBatched: NativeGemmBatched, p: Product): Float32Array {
  const out = outputPool.float32(sizeOf(p.outShape), p.k === 0);
  const { m, n, k } = p;
  if (m === 0 || n === 0 || p.aOffsets.length === 0) return out;
  // Row-major: A stored [m, k] (or [k, m] transposed), B stored [k, n] (or [n, k]).
  const lda = Math.max(1, p.transA ? m : k);
  const ldb = Math.max(1, p.transB ? k : n);
  gemmBatched(p.transA, p.transB, m, n, k, 1, p.a, p.aOffsets, lda, p.b, p.bOffsets, ldb, 0, out, 0, m * n, n);
  return out;
}

/** BatchMatMul served by the native gemm; `fallback` is tfjs-backend-cpu's kernel. */
export function makeBatchMatMul(gemmBatched: NativeGemmBatched, fallback: KernelFunc): KernelFunc {
  return fastKernel('batchMatMulNative', fallback, ({ inputs, attrs, backend }) => {
    const plan = planProduct(backend, inputs.a!, inputs.b!, Boolean(attrs.transposeA), Boolean(attrs.transposeB));
    if (plan === undefined) return undefined;
    return backend.makeTensorInfo(plan.outShape, 'float32', runProduct(gemmBatched, plan));
  });
}

/** _FusedMatMul: the native product, then bias and activation in place on its result. */
export function makeFusedMatMul(gemmBatched: NativeGemmBatched, fallback: KernelFunc): KernelFunc {
  return fastKernel('fusedMatMulNative', fallback, ({ inputs, attrs, backend }) => {
    const { a, b, bias, preluActivationWeights } = inputs;
    const activation = (attrs.activation as string | undefined) ?? 'linear';
    if (!isFusedActivation(activation)) return undefined;
    const plan = planProduct(backend, a!, b!, Boolean(attrs.transposeA), Boolean(attrs.transposeB));
    if (plan === undefined) return undefined;
    let biasValues: Float32Array | undefined;
    if (bias != null) {
      biasValues = float32Values(backend, bias);
      const shape = broadcastShapes(plan.outShape, bias.shape);
      // A bias that broadcasts the output to a larger shape is left to tfjs-backend-cpu.
      if (biasValues === undefined || shape === undefined || !sameShape(shape, plan.outShape)) return undefined;
    }
    let prelu: { values: Float32Array; shape: number[] } | undefined;
    if (activation === 'prelu') {
      const w = preluActivationWeights;
      const values = w == null ? undefined : float32Values(backend, w);
      const shape = w == null ? undefined : broadcastShapes(plan.outShape, w.shape);
      if (values === undefined || shape === undefined || !sameShape(shape, plan.outShape)) return undefined;
      prelu = { values, shape: w!.shape };
    }
    const out = runProduct(gemmBatched, plan);
    if (biasValues !== undefined) addBroadcast(out, plan.outShape, biasValues, bias!.shape);
    const alpha = attrs.leakyreluAlpha;
    applyActivationInPlace(out, plan.outShape, activation, prelu, typeof alpha === 'number' ? alpha : 0.2);
    return backend.makeTensorInfo(plan.outShape, 'float32', out);
  });
}
