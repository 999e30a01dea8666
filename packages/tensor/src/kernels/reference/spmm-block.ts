import type { SpmmBlockArgs } from '../types.js';
import { validateSpmmBlockArgs } from '../validate.js';
import { scaleOutput, storeRow } from './common.js';

/**
 * Reference BSR x dense: each stored [br, bc] block adds block * B[block columns, :] to its block row.
 * Edge blocks are clipped to the matrix, so their zero padding is never multiplied with rows of B
 * (or written to rows of C) that do not exist.
 */
export function spmmBlockReference(args: SpmmBlockArgs): void {
  validateSpmmBlockArgs(args);
  const { a, b, bOffset, ldb, n, alpha, beta, c, cOffset, ldc } = args;
  const [rows, cols] = a.shape;
  if (rows === 0 || n === 0) return;
  if (alpha === 0) {
    scaleOutput(c, cOffset, ldc, rows, n, beta);
    return;
  }
  const [br, bc] = a.blockShape;
  const { indptr, indices, values } = a;
  const blockRows = Math.ceil(rows / br);
  const acc = new Float64Array(br * n);
  for (let I = 0; I < blockRows; I++) {
    const r0 = I * br;
    const height = Math.min(br, rows - r0);
    acc.fill(0);
    for (let p = indptr[I]!, end = indptr[I + 1]!; p < end; p++) {
      const c0 = indices[p]! * bc;
      const width = Math.min(bc, cols - c0);
      const block = p * br * bc;
      for (let rr = 0; rr < height; rr++) {
        const accRow = rr * n;
        for (let cc = 0; cc < width; cc++) {
          const v = values[block + rr * bc + cc]!;
          const bRow = bOffset + (c0 + cc) * ldb;
          for (let j = 0; j < n; j++) acc[accRow + j]! += v * b[bRow + j]!;
        }
      }
    }
    for (let rr = 0; rr < height; rr++) storeRow(c, cOffset + (r0 + rr) * ldc, acc, rr * n, n, alpha, beta);
  }
}
