import type { GemmArgs } from '../types.js';
import { validateGemmArgs } from '../validate.js';
import { scaleOutput, storeRow } from './common.js';

/**
 * Reference gemm: C = alpha * op(A) * op(B) + beta * C on row-major Float32Arrays, accumulating each
 * row of C in float64. Loop order keeps the innermost loop on contiguous memory for every transpose
 * combination except transA && transB, where A is walked down a column.
 */
export function gemmReference(args: GemmArgs): void {
  validateGemmArgs(args);
  const { transA, transB, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc } = args;
  if (m === 0 || n === 0) return;
  if (alpha === 0 || k === 0) {
    // BLAS quick return: A and B are not read, so NaN in them does not reach C.
    scaleOutput(c, cOffset, ldc, m, n, beta);
    return;
  }
  const acc = new Float64Array(n);
  // Stride of A along p (the k dimension) and along i (the m dimension).
  const aStepP = transA ? lda : 1;
  const aStepI = transA ? 1 : lda;
  for (let i = 0; i < m; i++) {
    const aRow = aOffset + i * aStepI;
    if (!transB) {
      // acc += A(i, p) * B[p, :], B rows contiguous.
      acc.fill(0);
      for (let p = 0; p < k; p++) {
        const aip = a[aRow + p * aStepP]!;
        const bRow = bOffset + p * ldb;
        for (let j = 0; j < n; j++) acc[j]! += aip * b[bRow + j]!;
      }
    } else {
      // B stored [n, k]: C(i, j) is a dot product of A's row i with B's stored row j.
      for (let j = 0; j < n; j++) {
        const bRow = bOffset + j * ldb;
        let s = 0;
        for (let p = 0; p < k; p++) s += a[aRow + p * aStepP]! * b[bRow + p]!;
        acc[j] = s;
      }
    }
    storeRow(c, cOffset + i * ldc, acc, 0, n, alpha, beta);
  }
}
