// Float32 unary kernels as one plain loop each. tfjs-backend-cpu runs most of these through a
// generic helper that calls a closure per element (and Neg through a broadcasting multiply by -1),
// about ten times the cost of the arithmetic. Each loop here evaluates the same float64 expression
// tfjs-backend-cpu does and rounds once on store, so results are identical, NaN, ±Infinity and -0
// included. Other dtypes go to tfjs-backend-cpu's kernel.
import { backend_util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { CpuStorageBackend } from './matmul.js';

type Loop = (x: Float32Array, out: Float32Array) => void;

const { ERF_P, ERF_A1, ERF_A2, ERF_A3, ERF_A4, ERF_A5 } = backend_util;

// One function per operator keeps each loop monomorphic (no per-element call through a closure).
const LOOPS = {
  Sigmoid(x, out) {
    for (let i = 0; i < x.length; i++) out[i] = 1 / (1 + Math.exp(-x[i]!));
  },
  Exp(x, out) {
    for (let i = 0; i < x.length; i++) out[i] = Math.exp(x[i]!);
  },
  Neg(x, out) {
    // tfjs-backend-cpu multiplies by -1, which equals negation for every float (NaN stays NaN).
    for (let i = 0; i < x.length; i++) out[i] = -x[i]!;
  },
  Sqrt(x, out) {
    for (let i = 0; i < x.length; i++) out[i] = Math.sqrt(x[i]!);
  },
  Rsqrt(x, out) {
    for (let i = 0; i < x.length; i++) out[i] = 1 / Math.sqrt(x[i]!);
  },
  Square(x, out) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      out[i] = v * v;
    }
  },
  Log(x, out) {
    for (let i = 0; i < x.length; i++) out[i] = Math.log(x[i]!);
  },
  Tanh(x, out) {
    for (let i = 0; i < x.length; i++) out[i] = Math.tanh(x[i]!);
  },
  Relu(x, out) {
    // Math.max, as there: relu(-0) is +0 and relu(NaN) is NaN.
    for (let i = 0; i < x.length; i++) out[i] = Math.max(0, x[i]!);
  },
  Abs(x, out) {
    for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[i]!);
  },
  Reciprocal(x, out) {
    for (let i = 0; i < x.length; i++) out[i] = 1 / x[i]!;
  },
  Erf(x, out) {
    // Abramowitz & Stegun 7.1.26 with tfjs's constants, evaluated in tfjs-backend-cpu's order.
    for (let i = 0; i < x.length; i++) {
      const xi = x[i]!;
      const v = Math.abs(xi);
      const t = 1.0 / (1.0 + ERF_P * v);
      out[i] = Math.sign(xi) * (1.0 - (((((ERF_A5 * t + ERF_A4) * t + ERF_A3) * t + ERF_A2) * t + ERF_A1) * t * Math.exp(-v * v)));
    }
  },
} satisfies Record<string, Loop>;

export type FastUnaryOp = keyof typeof LOOPS;
export const FAST_UNARY_OPS = Object.keys(LOOPS) as FastUnaryOp[];

interface KernelArgs {
  inputs: Record<string, TensorInfo | undefined>;
}

/** A float32 unary kernel running LOOPS[op]; `fallback` (tfjs-backend-cpu's) for other dtypes. */
export function makeUnary(op: FastUnaryOp, fallback: KernelFunc): KernelFunc {
  const loop: Loop = LOOPS[op];
  const kernel: KernelFunc = (args) => {
    const x = (args as unknown as KernelArgs).inputs.x;
    const backend = args.backend as unknown as CpuStorageBackend;
    if (x === undefined || x.dtype !== 'float32') return fallback(args);
    const values = backend.data.get(x.dataId).values;
    if (!(values instanceof Float32Array)) return fallback(args);
    const out = new Float32Array(values.length);
    loop(values, out);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  };
  Object.defineProperty(kernel, 'name', { value: `${op.charAt(0).toLowerCase()}${op.slice(1)}Fast` });
  return kernel;
}
