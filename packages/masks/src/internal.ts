// Helpers shared inside @sparse/masks (not exported from the package).

import { ArgumentError, asTensor, decodeValue, forEachIndex, isContiguous, ShapeError, sizeOf, type Tensor } from '@sparse/tensor';

/** "[1, 2]" for a flat row-major index into a shape, so errors point at the element a user sees. */
export function formatIndex(shape: readonly number[], flat: number): string {
  const idx = new Array<number>(shape.length);
  let rest = flat;
  for (let a = shape.length - 1; a >= 0; a--) {
    const d = shape[a]!;
    idx[a] = d > 0 ? rest % d : 0;
    rest = d > 0 ? Math.floor(rest / d) : 0;
  }
  return `[${idx.join(', ')}]`;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Throws ShapeError naming both arguments unless the shapes are equal. */
export function checkSameShape(where: string, nameA: string, a: readonly number[], nameB: string, b: readonly number[]): void {
  if (!sameShape(a, b)) {
    throw new ShapeError(`${where}: ${nameB} has shape ${shapeString(b)} but ${nameA} has shape ${shapeString(a)}`);
  }
}

export function checkShapeArg(where: string, name: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)) {
    throw new ShapeError(`${where}: ${name} must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return [...(shape as number[])];
}

/**
 * The elements of a real-valued tensor in row-major order. A contiguous float32/float64 view over exactly
 * its elements is returned as a subarray (no copy: callers must not write to it); anything else is decoded
 * into a new Float64Array (float16/bfloat16 bits become their values).
 */
export function flatValues(t: Tensor, where: string, name: string): Float32Array | Float64Array {
  let v: Tensor;
  try {
    v = asTensor(t);
  } catch (e) {
    throw new ArgumentError(`${where}: ${name} is not a tensor: ${(e as Error).message}`, { cause: e });
  }
  if (v.dtype === 'bool') throw new ArgumentError(`${where}: ${name} must be a real-valued tensor, got dtype bool`);
  const n = sizeOf(v.shape);
  if ((v.dtype === 'float32' || v.dtype === 'float64') && isContiguous(v)) {
    return (v.data as Float32Array | Float64Array).subarray(v.offset, v.offset + n);
  }
  const out = new Float64Array(n);
  const src = v.data;
  const dtype = v.dtype;
  let k = 0;
  forEachIndex(v, (pos) => {
    out[k++] = decodeValue(dtype, src[pos]!);
  });
  return out;
}

/** Throws ArgumentError with the first NaN's index; NaN has no place in an order of scores. */
export function checkNoNaN(values: ArrayLike<number>, shape: readonly number[], where: string, name: string): void {
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i]!)) {
      throw new ArgumentError(`${where}: ${name}${formatIndex(shape, i)} (flat index ${i}) is NaN`);
    }
  }
}

/** Validates a sparsity in [0, 1) (1 would prune everything), naming the argument. */
export function checkSparsity(where: string, name: string, s: unknown): number {
  if (typeof s !== 'number' || !(s >= 0 && s < 1)) {
    throw new ArgumentError(`${where}: ${name} must be a number in [0, 1), got ${String(s)}`);
  }
  return s;
}

export function checkCount(where: string, name: string, k: unknown, max: number): number {
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 0 || k > max) {
    throw new ArgumentError(`${where}: ${name} must be an integer in [0, ${max}], got ${String(k)}`);
  }
  return k;
}

export function checkStep(where: string, name: string, t: unknown): number {
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) {
    throw new ArgumentError(`${where}: ${name} must be a non-negative integer, got ${String(t)}`);
  }
  return t;
}

/** Requires a rank-2 shape; returns [rows, cols]. */
export function matrixShape(where: string, name: string, shape: readonly number[]): [number, number] {
  if (shape.length !== 2) throw new ShapeError(`${where}: ${name} must be a matrix (rank 2), got shape ${shapeString(shape)}`);
  return [shape[0]!, shape[1]!];
}
