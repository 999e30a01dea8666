import { readPacked } from '../../layouts/packed.js';
import type { SpmmNMArgs } from '../types.js';
import { validateSpmmNMArgs } from '../validate.js';
import { scaleOutput, storeRow } from './common.js';

/** Reference N:M x dense: value q of row i, group g sits at column g*m + (packed position q). */
export function spmmNMReference(args: SpmmNMArgs): void {
  validateSpmmNMArgs(args);
  const { a, b, bOffset, ldb, n, alpha, beta, c, cOffset, ldc } = args;
  const [rows, cols] = a.shape;
  if (rows === 0 || n === 0) return;
  if (alpha === 0) {
    scaleOutput(c, cOffset, ldc, rows, n, beta);
    return;
  }
  const { values, indices, indexBits, m } = a;
  const keep = a.n;
  const groups = cols / m;
  const acc = new Float64Array(n);
  let q = 0;
  for (let i = 0; i < rows; i++) {
    acc.fill(0);
    for (let g = 0; g < groups; g++) {
      for (let t = 0; t < keep; t++, q++) {
        const v = values[q]!;
        const bRow = bOffset + (g * m + readPacked(indices, indexBits, q)) * ldb;
        for (let j = 0; j < n; j++) acc[j]! += v * b[bRow + j]!;
      }
    }
    storeRow(c, cOffset + i * ldc, acc, 0, n, alpha, beta);
  }
}
