// Input checks shared by the pruners (not exported from the package). Every error names the method and the
// layer, so a failure deep inside a model-wide run says where it happened.

import { validateMask, type Mask } from '@sparse/masks';
import { ArgumentError, cast, ShapeError, type Tensor } from '@sparse/tensor';

/** "wanda: layer 'blocks.0.fc1'" — the prefix of every message about one layer. */
export function where(method: string, layer: string): string {
  return `${method}: layer '${layer}'`;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** A dense row-major float32 copy of a weight matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

function checkTensorLike(at: string, name: string, t: unknown): asserts t is Tensor {
  const v = t as Partial<Tensor> | null;
  if (typeof v !== 'object' || v === null || !ArrayBuffer.isView(v.data) || !Array.isArray(v.shape) || !Array.isArray(v.stride)) {
    throw new ArgumentError(`${at}: ${name} must be a Tensor ({ data, shape, stride, offset, dtype })`);
  }
  if (v.dtype === 'bool') throw new ArgumentError(`${at}: ${name} must be real-valued, got dtype bool`);
}

/** "[i, j] is NaN" for flat position k of a [rows, cols] matrix (or "[k] is NaN" when cols is 0). */
export function entryIs(k: number, cols: number, value: number): string {
  return cols > 0 ? `[${Math.floor(k / cols)}, ${k % cols}] is ${value}` : `[${k}] is ${value}`;
}

/** The first non-finite entry as "[i, j] is NaN", or undefined. */
function firstNonFinite(data: ArrayLike<number>, cols: number): string | undefined {
  for (let k = 0; k < data.length; k++) {
    const x = data[k]!;
    if (!Number.isFinite(x)) return entryIs(k, cols, x);
  }
  return undefined;
}

/** Checks that a weight is a real tensor of rank 2; returns [rows, cols]. */
function weightShape(at: string, weight: unknown): [number, number] {
  checkTensorLike(at, 'weight', weight);
  if (weight.shape.length !== 2) throw new ShapeError(`${at}: weight must be a matrix [out, in], got shape ${shapeString(weight.shape)}`);
  return weight.shape as [number, number];
}

/** Copies a rank-2 weight (any real dtype and strides) into float32, rejecting NaN and infinities. */
export function readWeight(method: string, layer: string, weight: unknown): Matrix {
  const at = where(method, layer);
  const [rows, cols] = weightShape(at, weight);
  const data = cast(weight as Tensor, 'float32').data;
  const bad = firstNonFinite(data, cols);
  if (bad !== undefined) throw new ArgumentError(`${at}: weight${bad}; weights must be finite`);
  return { rows, cols, data };
}

/** A weight's own float32 storage as a row-major matrix at (offset, ld): read only, values not checked. */
export interface MatrixView extends Matrix {
  offset: number;
  ld: number;
}

/**
 * A rank-2 weight without a copy when its storage allows it (float32, rows at a positive stride of at least
 * cols, unit column stride), or undefined (then readWeight copies it). Its values are not checked.
 */
export function weightView(method: string, layer: string, weight: unknown): MatrixView | undefined {
  const [rows, cols] = weightShape(where(method, layer), weight);
  const t = weight as Tensor;
  if (t.dtype !== 'float32' || !(t.data instanceof Float32Array) || rows === 0 || cols === 0) return undefined;
  const ld = rows > 1 ? t.stride[0]! : cols;
  if ((cols > 1 && t.stride[1] !== 1) || !Number.isSafeInteger(ld) || ld < cols || !Number.isSafeInteger(t.offset) || t.offset < 0) return undefined;
  if (t.offset + (rows - 1) * ld + cols > t.data.length) return undefined;
  return { rows, cols, data: t.data, offset: t.offset, ld };
}

export interface VectorCheck {
  /** Reject negative entries (norms, variances). */
  nonNegative?: boolean;
}

/** A statistics vector of `length` entries as float64, rejecting wrong sizes, NaN and infinities. */
export function readVector(method: string, layer: string, name: string, t: unknown, length: number, check: VectorCheck = {}): Float64Array {
  const at = where(method, layer);
  checkTensorLike(at, name, t);
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.shape.length !== 1 || n !== length) {
    throw new ShapeError(`${at}: ${name} has shape ${shapeString(t.shape)} but the weight has ${length} input columns (expected [${length}])`);
  }
  const v = cast(t, 'float64').data;
  const bad = firstNonFinite(v, 0);
  if (bad !== undefined) throw new ArgumentError(`${at}: ${name}${bad}; statistics must be finite`);
  if (check.nonNegative) {
    const k = v.findIndex((x) => x < 0);
    if (k >= 0) throw new ArgumentError(`${at}: ${name}[${k}] is ${v[k]}; it must be non-negative`);
  }
  return v;
}

/** The Hessian [n, n] as a row-major float64 copy, rejecting wrong shapes, NaN and infinities. */
export function readHessian(method: string, layer: string, t: unknown, n: number): Float64Array {
  const at = where(method, layer);
  checkTensorLike(at, 'stats.hessian', t);
  if (t.shape.length !== 2 || t.shape[0] !== n || t.shape[1] !== n) {
    throw new ShapeError(`${at}: stats.hessian has shape ${shapeString(t.shape)} but the weight has ${n} input columns (expected [${n}, ${n}])`);
  }
  const h = cast(t, 'float64').data;
  const bad = firstNonFinite(h, n);
  if (bad !== undefined) throw new ArgumentError(`${at}: stats.hessian${bad}; statistics must be finite`);
  return h;
}

/** Validates an existing mask against the weight's shape. */
export function readMask(method: string, layer: string, mask: unknown, rows: number, cols: number): Mask {
  const at = where(method, layer);
  validateMask(mask, at, 'mask');
  if (mask.shape.length !== 2 || mask.shape[0] !== rows || mask.shape[1] !== cols) {
    throw new ShapeError(`${at}: mask has shape ${shapeString(mask.shape)} but the weight is [${rows}, ${cols}]`);
  }
  return mask;
}

/** A required statistic, or an ArgumentError saying which accumulator provides it. */
export function requireStat<T>(method: string, layer: string, value: T | undefined, name: string, source: string): T {
  if (value === undefined || value === null) throw new ArgumentError(`${where(method, layer)}: needs stats.${name} (${source})`);
  return value;
}

