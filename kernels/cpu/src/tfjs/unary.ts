// Float32 unary kernels as one plain loop each. tfjs-backend-cpu runs most of these through a
// generic helper that calls a closure per element (and Neg through a broadcasting multiply by -1),
// about ten times the cost of the arithmetic. Each loop here evaluates the same float64 expression
// tfjs-backend-cpu does and rounds once on store, so results are identical, NaN, ±Infinity and -0
// included. Other dtypes go to tfjs-backend-cpu's kernel. The ops whose float64 expression the addon
// evaluates exactly (all but Log, Tanh and Erf, whose Math functions it does not reproduce) run
// natively above a few elements.
import { backend_util, type KernelFunc } from '@tensorflow/tfjs-core';
import type { NativeElementwiseUnary } from '../native.js';
import { fastKernel, fastName, float32Values } from './kernel.js';
import { outputPool } from './pool.js';

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

/**
 * The addon's codes (elementwise.h UnaryOp) for the ops it computes with the same float64
 * expression: negation, |x|, x*x, sqrt and 1/x are correctly rounded float32 operations either
 * way; rsqrt and relu are evaluated there exactly as written here; Exp and Sigmoid call the addon's
 * evaluation of Math.exp's own algorithm (fdlibm's exp, which V8 ports), step by step in float64.
 */
const NATIVE_OP: Partial<Record<FastUnaryOp, number>> = { Neg: 0, Abs: 1, Square: 2, Sqrt: 3, Rsqrt: 4, Reciprocal: 5, Relu: 6, Exp: 7, Sigmoid: 8 };
export const NATIVE_UNARY_OPS = Object.keys(NATIVE_OP) as FastUnaryOp[];
/** Below this many elements the native call costs more than the JavaScript loop. */
const NATIVE_MIN_ELEMENTS = 128;

/**
 * A float32 unary kernel running LOOPS[op], or the addon's version of it when `native` is given;
 * `fallback` (tfjs-backend-cpu's) for other dtypes.
 */
export function makeUnary(op: FastUnaryOp, fallback: KernelFunc, native?: NativeElementwiseUnary): KernelFunc {
  const loop: Loop = LOOPS[op];
  const code = NATIVE_OP[op];
  const nativeLoop = native !== undefined && code !== undefined ? native : undefined;
  return fastKernel(fastName(op), fallback, ({ inputs, backend }) => {
    const x = inputs.x;
    const values = float32Values(backend, x);
    if (values === undefined) return undefined;
    const out = outputPool.float32(values.length);
    if (nativeLoop !== undefined && values.length >= NATIVE_MIN_ELEMENTS) nativeLoop(code!, values, out);
    else loop(values, out);
    return backend.makeTensorInfo(x!.shape, 'float32', out);
  });
}
