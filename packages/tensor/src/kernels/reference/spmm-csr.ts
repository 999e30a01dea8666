import type { SpmmCSRArgs } from '../types.js';
import { validateSpmmCSRArgs } from '../validate.js';
import { scaleOutput, storeRow } from './common.js';

/** Reference CSR x dense: each stored A(i, col) adds A(i, col) * B[col, :] to row i (float64 accumulation). */
export function spmmCSRReference(args: SpmmCSRArgs): void {
  validateSpmmCSRArgs(args);
  const { a, b, bOffset, ldb, n, alpha, beta, c, cOffset, ldc } = args;
  const rows = a.shape[0];
  if (rows === 0 || n === 0) return;
  if (alpha === 0) {
    scaleOutput(c, cOffset, ldc, rows, n, beta);
    return;
  }
  const { indptr, indices, values } = a;
  const acc = new Float64Array(n);
  for (let i = 0; i < rows; i++) {
    acc.fill(0);
    for (let p = indptr[i]!, end = indptr[i + 1]!; p < end; p++) {
      const v = values[p]!;
      const bRow = bOffset + indices[p]! * ldb;
      for (let j = 0; j < n; j++) acc[j]! += v * b[bRow + j]!;
    }
    storeRow(c, cOffset + i * ldc, acc, 0, n, alpha, beta);
  }
}
