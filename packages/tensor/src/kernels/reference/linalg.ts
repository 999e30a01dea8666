// Reference float64 Cholesky factorization and lower-triangular inverse (the kernels `choleskyF64` and
// `triangularInverseF64`), unblocked and row-oriented: each inner loop runs along a contiguous row.
import { validateCholeskyF64Args, validateTriangularInverseF64Args } from '../validate.js';
import type { CholeskyF64Args, CholeskyFailure, TriangularInverseF64Args } from '../types.js';

export function choleskyF64Reference(args: CholeskyF64Args): CholeskyFailure | null {
  validateCholeskyF64Args(args);
  const { n, a, aOffset: o, lda } = args;
  for (let i = 0; i < n; i++) {
    const ri = o + i * lda;
    for (let j = 0; j <= i; j++) {
      const rj = o + j * lda;
      // L(i, j) from the dot product of rows i and j of L (entries left of column j).
      let s = a[ri + j]!;
      for (let k = 0; k < j; k++) s -= a[ri + k]! * a[rj + k]!;
      if (j < i) {
        a[ri + j] = s / a[rj + j]!;
      } else {
        if (!(s > 0)) return { index: i, pivot: s }; // not positive definite to working precision (NaN too)
        a[ri + i] = Math.sqrt(s);
      }
    }
  }
  for (let i = 0; i < n; i++) a.fill(0, o + i * lda + i + 1, o + i * lda + n);
  return null;
}

export function triangularInverseF64Reference(args: TriangularInverseF64Args): number {
  validateTriangularInverseF64Args(args);
  const { n, l, lOffset: lo, ldl, x, xOffset: xo, ldx } = args;
  for (let i = 0; i < n; i++) {
    const d = l[lo + i * ldl + i]!;
    if (d === 0 || !Number.isFinite(d)) return i;
  }
  for (let i = 0; i < n; i++) {
    const ri = xo + i * ldx;
    // Row i of l, copied before row i of x is written: x may be l itself (in place).
    const lrow = l.slice(lo + i * ldl, lo + i * ldl + i + 1);
    x.fill(0, ri, ri + n);
    // X[i, :i] = -(sum_k<i L[i, k] X[k, :]) / L[i, i]; X[k, :] is zero past column k.
    for (let k = 0; k < i; k++) {
      const lik = lrow[k]!;
      if (lik === 0) continue;
      const rk = xo + k * ldx;
      for (let j = 0; j <= k; j++) x[ri + j]! -= lik * x[rk + j]!;
    }
    const d = lrow[i]!;
    for (let j = 0; j < i; j++) x[ri + j] = x[ri + j]! / d;
    x[ri + i] = 1 / d;
  }
  return -1;
}
