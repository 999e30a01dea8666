// Reading activation batches for the accumulators: any real tensor whose last axis is the layer's input
// dimension, flattened to [tokens, in] the way the reference implementations reshape [batch, seq, in].

import { ArgumentError, cast, isContiguous, ShapeError, type Float32Tensor, type Tensor } from '@sparse/tensor';

export function checkFeatures(where: string, features: unknown): number {
  if (typeof features !== 'number' || !Number.isSafeInteger(features) || features < 1) {
    throw new ArgumentError(`${where}: the number of input features must be a positive integer, got ${String(features)}`);
  }
  return features;
}

export function layerLabel(name: string | undefined): string {
  return name === undefined ? '' : ` (layer '${name}')`;
}

/** The message for a non-finite activation at flat position k of a [tokens, features] batch. */
export function nonFiniteActivation(where: string, name: string | undefined, label: string, features: number, k: number, value: number): string {
  return `${where}${layerLabel(name)}: ${label} token ${Math.floor(k / features)}, feature ${k % features} is ${value}; activations must be finite`;
}

/**
 * A batch as a contiguous float32 [tokens, features] matrix; NaN and infinities are rejected with their
 * position. With `view`, the values are not checked (the caller does: columnMomentsF32 reports the first
 * non-finite entry) and a contiguous float32 batch comes back without a copy, on its own storage (to be
 * read only).
 */
export function readBatch(where: string, name: string | undefined, x: unknown, features: number, label = 'x', opts: { view?: boolean } = {}): Float32Tensor {
  const v = x as Partial<Tensor> | null;
  if (typeof v !== 'object' || v === null || !ArrayBuffer.isView(v.data) || !Array.isArray(v.shape) || !Array.isArray(v.stride)) {
    throw new ArgumentError(`${where}${layerLabel(name)}: ${label} must be a Tensor [tokens, ${features}]`);
  }
  const t = x as Tensor;
  if (t.dtype === 'bool') throw new ArgumentError(`${where}${layerLabel(name)}: ${label} must be real-valued, got dtype bool`);
  const last = t.shape[t.shape.length - 1];
  if (t.shape.length === 0 || last !== features) {
    throw new ShapeError(`${where}${layerLabel(name)}: ${label} has shape [${t.shape.join(', ')}] but the layer has ${features} input features (expected [..., ${features}])`);
  }
  const size = t.shape.reduce((a, b) => a * b, 1);
  const tokens = features > 0 ? size / features : 0;
  if (opts.view && t.dtype === 'float32' && t.data instanceof Float32Array && isContiguous(t) && t.offset + size <= t.data.length) {
    return { data: t.data.subarray(t.offset, t.offset + size), shape: [tokens, features], stride: [features, 1], offset: 0, dtype: 'float32' };
  }
  const flat = cast(t, 'float32');
  if (!opts.view) {
    for (let k = 0; k < flat.data.length; k++) {
      const value = flat.data[k]!;
      if (!Number.isFinite(value)) throw new ArgumentError(nonFiniteActivation(where, name, label, features, k, value));
    }
  }
  return { data: flat.data, shape: [tokens, features], stride: [features, 1], offset: 0, dtype: 'float32' };
}

/** A float64 array from a state field (a Float64Array or a plain number array after JSON), checked for length. */
export function stateArray(where: string, name: string, value: unknown, length: number): Float64Array {
  if (!(value instanceof Float64Array) && !Array.isArray(value)) throw new ArgumentError(`${where}: state.${name} must be a Float64Array or an array of numbers`);
  if (value.length !== length) throw new ShapeError(`${where}: state.${name} has ${value.length} entries, expected ${length}`);
  const out = Float64Array.from(value as ArrayLike<number>);
  if (out.some((x) => !Number.isFinite(x))) throw new ArgumentError(`${where}: state.${name} holds a non-finite number`);
  return out;
}

export function stateCount(where: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ArgumentError(`${where}: state.tokens must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}
