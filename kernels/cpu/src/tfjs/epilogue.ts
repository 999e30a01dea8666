// The epilogue of _FusedMatMul, applied in place on the product: + bias (broadcast), then the
// activation. Each formula is the one tfjs-backend-cpu uses for the same activation kernel
// (computed in float64 and rounded once on store, as there), so results agree bit for bit.
import { broadcastOffsets, sizeOf } from './broadcast.js';

/** Activations _FusedMatMul accepts (tfjs backend_util.Activation). */
export type FusedActivation = 'linear' | 'relu' | 'relu6' | 'elu' | 'leakyrelu' | 'prelu' | 'sigmoid';

export const FUSED_ACTIVATIONS: readonly FusedActivation[] = ['linear', 'relu', 'relu6', 'elu', 'leakyrelu', 'prelu', 'sigmoid'];

export function isFusedActivation(name: unknown): name is FusedActivation {
  return typeof name === 'string' && (FUSED_ACTIVATIONS as readonly string[]).includes(name);
}

/**
 * out[i] += v[i'] where v (of `shape`) broadcasts to `outShape`. Fast paths for a scalar and for a
 * trailing-suffix shape (a bias over the last axes), a general index map otherwise.
 */
export function addBroadcast(out: Float32Array, outShape: readonly number[], v: Float32Array, shape: readonly number[]): void {
  const size = v.length;
  if (size === 1) {
    const s = v[0]!;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! + s;
    return;
  }
  if (isTrailing(shape, outShape)) {
    for (let i0 = 0; i0 < out.length; i0 += size) {
      for (let j = 0; j < size; j++) out[i0 + j] = out[i0 + j]! + v[j]!;
    }
    return;
  }
  const at = broadcastOffsets(shape, outShape, 1);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! + v[at[i]!]!;
}

/** True when `shape` without leading 1s equals the same number of trailing axes of `outShape`. */
function isTrailing(shape: readonly number[], outShape: readonly number[]): boolean {
  let first = 0;
  while (first < shape.length && shape[first] === 1) first++;
  const tail = shape.slice(first);
  if (tail.length > outShape.length) return false;
  const off = outShape.length - tail.length;
  return tail.every((d, i) => d === outShape[off + i]) && sizeOf(tail) === sizeOf(shape);
}

/** Applies `activation` to x in place; prelu takes its (broadcast) weights, leakyrelu its alpha. */
export function applyActivationInPlace(
  x: Float32Array,
  shape: readonly number[],
  activation: FusedActivation,
  prelu?: { values: Float32Array; shape: readonly number[] },
  leakyreluAlpha = 0.2,
): void {
  const n = x.length;
  switch (activation) {
    case 'linear':
      return;
    case 'relu':
      for (let i = 0; i < n; i++) x[i] = Math.max(0, x[i]!);
      return;
    case 'relu6':
      for (let i = 0; i < n; i++) x[i] = Math.min(Math.max(0, x[i]!), 6);
      return;
    case 'elu':
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        if (!(v >= 0)) x[i] = Math.exp(v) - 1;
      }
      return;
    case 'leakyrelu':
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        if (v < 0) x[i] = leakyreluAlpha * v;
      }
      return;
    case 'sigmoid':
      for (let i = 0; i < n; i++) x[i] = 1 / (1 + Math.exp(-x[i]!));
      return;
    case 'prelu': {
      if (prelu === undefined) throw new Error("_FusedMatMul: activation 'prelu' needs preluActivationWeights");
      const a = prelu.values;
      if (a.length === 1) {
        const s = a[0]!;
        for (let i = 0; i < n; i++) {
          const v = x[i]!;
          if (v < 0) x[i] = s * v;
        }
        return;
      }
      const at = broadcastOffsets(prelu.shape, shape, 1);
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        if (v < 0) x[i] = a[at[i]!]! * v;
      }
      return;
    }
  }
}
