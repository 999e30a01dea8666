// Helpers shared by the sparse layout converters (internal; not re-exported from the package).

import { DType, isDType, storageMatches } from '../dtype.js';
import { LayoutError, ShapeError } from '../errors.js';
import { asTensor, Tensor } from '../tensor.js';

/**
 * Whether a raw storage element is exactly zero. Both +0 and -0 count (for float16/bfloat16 the bits
 * 0x0000 and 0x8000); NaN is not zero. Layouts drop these entries, so -0 comes back as +0.
 */
export function isZeroRaw(dtype: DType, raw: number): boolean {
  return dtype === 'float16' || dtype === 'bfloat16' ? (raw & 0x7fff) === 0 : raw === 0;
}

/** Accepts a Tensor or ndarray-like view and requires rank 2; returns it with [rows, cols]. */
export function matrixInput<D extends DType>(dense: Tensor<D>, where: string): [Tensor<D>, number, number] {
  const t = asTensor<D>(dense);
  if (t.shape.length !== 2) {
    throw new ShapeError(`${where}: expected a 2-D tensor, got shape [${t.shape.join(', ')}]`);
  }
  return [t, t.shape[0]!, t.shape[1]!];
}

export function layoutFail(where: string, message: string): never {
  throw new LayoutError(`${where}: ${message}`);
}

/** Checks what every layout has: format tag, dtype, value storage and a valid shape (of `rank` dims if given). */
export function checkLayoutBase(
  layout: unknown,
  format: string,
  where: string,
  rank?: number,
): asserts layout is { format: string; shape: number[]; dtype: DType; values: ArrayLike<number> } {
  if (typeof layout !== 'object' || layout === null) layoutFail(where, 'layout must be an object');
  const l = layout as Record<string, unknown>;
  if (l.format !== format) layoutFail(where, `format must be '${format}', got ${JSON.stringify(l.format)}`);
  if (!isDType(l.dtype)) layoutFail(where, `dtype ${JSON.stringify(l.dtype)} is not a known dtype`);
  if (!storageMatches(l.dtype as DType, l.values)) {
    layoutFail(where, `values must be the storage array of dtype ${String(l.dtype)}, got ${describeValue(l.values)}`);
  }
  const shape = l.shape;
  if (!Array.isArray(shape)) layoutFail(where, 'shape must be an array');
  if (rank !== undefined && shape.length !== rank) layoutFail(where, `shape must have ${rank} entries, got [${shape.join(', ')}]`);
  shape.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || (d as number) < 0) layoutFail(where, `shape[${i}] must be a non-negative integer, got ${String(d)}`);
  });
}

export function checkArray(where: string, field: string, value: unknown, ctor: { new (n: number): unknown; name: string }): void {
  if (!(value instanceof ctor)) layoutFail(where, `${field} must be a ${ctor.name}, got ${describeValue(value)}`);
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value as object).constructor?.name ?? 'object';
}

/** The indptr/indices checks shared by CSR (over columns) and BSR (over block columns). */
export function checkCompressedRows(
  where: string,
  indptr: Int32Array,
  indices: Int32Array,
  rows: number,
  cols: number,
  rowName: string,
  colName: string,
): void {
  if (indptr.length !== rows + 1) layoutFail(where, `indptr has ${indptr.length} entries, expected ${rows} ${rowName}s + 1`);
  if (indptr[0] !== 0) layoutFail(where, `indptr[0] must be 0, got ${indptr[0]}`);
  for (let r = 0; r < rows; r++) {
    const a = indptr[r]!;
    const b = indptr[r + 1]!;
    if (b < a) layoutFail(where, `indptr[${r + 1}] = ${b} is less than indptr[${r}] = ${a} (must not decrease)`);
    if (b > indices.length) layoutFail(where, `indptr[${r + 1}] = ${b} exceeds indices length ${indices.length}`);
    for (let p = a; p < b; p++) {
      const c = indices[p]!;
      if (c < 0 || c >= cols) layoutFail(where, `indices[${p}] = ${c} is outside [0, ${cols}) (${rowName} ${r})`);
      if (p > a && c <= indices[p - 1]!) {
        layoutFail(where, `indices[${p}] = ${c} is not greater than indices[${p - 1}] = ${indices[p - 1]} (${rowName} ${r}: ${colName}s must increase)`);
      }
    }
  }
  if (indptr[rows] !== indices.length) {
    layoutFail(where, `indptr[${rows}] = ${indptr[rows]} must equal the number of stored entries ${indices.length}`);
  }
}
