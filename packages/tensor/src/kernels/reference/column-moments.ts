// Reference columnMomentsF32: per-column Σx², mean and M2 of one float32 batch, in float64, rows in order.
import { validateColumnMomentsF32Args } from '../validate.js';
import type { ColumnMomentsF32Args } from '../types.js';

/** The lowest flat index t * cols + j of a non-finite entry of the [rows, cols] matrix at (offset, ld), or -1. */
function firstNonFinite(x: Float32Array, offset: number, ld: number, rows: number, cols: number): number {
  for (let i = 0; i < rows; i++) {
    const r = offset + i * ld;
    for (let j = 0; j < cols; j++) if (!Number.isFinite(x[r + j]!)) return i * cols + j;
  }
  return -1;
}

export function columnMomentsF32Reference(args: ColumnMomentsF32Args): number {
  validateColumnMomentsF32Args(args);
  const { rows, cols, x, xOffset: o, ldx, sumSquares, mean, m2 } = args;
  const bad = firstNonFinite(x, o, ldx, rows, cols);
  if (bad >= 0 || rows === 0) return bad;
  const sum = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const r = o + i * ldx;
    for (let j = 0; j < cols; j++) {
      const v = x[r + j]!;
      sumSquares[j]! += v * v;
      sum[j]! += v;
    }
  }
  for (let j = 0; j < cols; j++) sum[j]! /= rows;
  const dev = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const r = o + i * ldx;
    for (let j = 0; j < cols; j++) {
      const d = x[r + j]! - sum[j]!;
      dev[j]! += d * d;
    }
  }
  mean.set(sum.subarray(0, cols));
  m2.set(dev.subarray(0, cols));
  return -1;
}
