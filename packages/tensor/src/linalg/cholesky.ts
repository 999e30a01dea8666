// Cholesky factorization of symmetric positive definite matrices and the inverse from the factor
// (torch.linalg.cholesky / torch.cholesky_inverse), computed in float64. SparseGPT needs both.

import { ArgumentError, ShapeError } from '../errors.js';
import { getKernel } from '../kernels/registry.js';
import type { Tensor } from '../tensor.js';
import { mat, matFromTensor, matToTensor, outDType, transposeMat, type LinalgDType, type Mat } from './matrix.js';

export interface CholeskyOptions {
  /** Return the upper factor U with a = U^T U instead of the lower L with a = L L^T (default false). */
  upper?: boolean;
}

function checkSquare(a: Mat, where: string, name: string): void {
  if (a.rows !== a.cols) throw new ShapeError(`${where}: ${name} must be square, got [${a.rows}, ${a.cols}]`);
}

/**
 * Lower Cholesky factor L of a symmetric positive definite a (only its lower triangle is read), through
 * the registered `choleskyF64` kernel (the native blocked one when @sparse/kernels-cpu registered it,
 * else the row-oriented reference). Throws ArgumentError naming the first pivot that is not positive.
 */
export function choleskyMat(a: Mat, where = 'cholesky'): Mat {
  checkSquare(a, where, 'a');
  const n = a.rows;
  const l = mat(n, n);
  l.data.set(a.data);
  const failed = getKernel('choleskyF64')({ n, a: l.data, aOffset: 0, lda: n });
  if (failed !== null) {
    throw new ArgumentError(`${where}: matrix is not positive definite (pivot ${failed.index} is ${failed.pivot}); add a multiple of the identity (dampening)`);
  }
  return l;
}

/** Inverse of a lower triangular matrix with a non-zero diagonal, through the registered `triangularInverseF64` kernel. */
export function lowerTriangularInverseMat(l: Mat, where = 'lowerTriangularInverse'): Mat {
  checkSquare(l, where, 'l');
  const n = l.rows;
  const x = mat(n, n);
  const bad = getKernel('triangularInverseF64')({ n, l: l.data, lOffset: 0, ldl: n, x: x.data, xOffset: 0, ldx: n });
  if (bad >= 0) throw new ArgumentError(`${where}: diagonal entry ${bad} is ${l.data[bad * n + bad]}; the matrix is singular`);
  return x;
}

/** a^{-1} = L^{-T} L^{-1} from the lower factor L of a = L L^T, accumulated as a sum of row outer products. */
export function choleskyInverseMat(l: Mat, where = 'choleskyInverse'): Mat {
  const x = lowerTriangularInverseMat(l, where);
  const n = x.rows;
  const out = mat(n, n);
  const O = out.data;
  const X = x.data;
  // (X^T X)[a, b] = sum_k X[k, a] X[k, b]; row k of X is non-zero only in columns 0..k.
  for (let k = 0; k < n; k++) {
    const rk = k * n;
    for (let a = 0; a <= k; a++) {
      const xa = X[rk + a]!;
      if (xa === 0) continue;
      const ra = a * n;
      for (let b = 0; b <= a; b++) O[ra + b]! += xa * X[rk + b]!;
    }
  }
  for (let a = 0; a < n; a++) for (let b = 0; b < a; b++) O[b * n + a] = O[a * n + b]!;
  return out;
}

/**
 * Cholesky factor of a symmetric positive definite matrix (float64 inside; only the lower triangle of a is
 * read): lower L with a = L L^T, or with { upper: true } upper U = L^T with a = U^T U.
 * Returns float64 for a float64 input and float32 otherwise. Throws ArgumentError when a is not positive
 * definite.
 */
export function cholesky(a: Tensor, opts: CholeskyOptions = {}): Tensor<LinalgDType> {
  const l = choleskyMat(matFromTensor(a, 'cholesky', 'a'));
  return matToTensor(opts.upper ? transposeMat(l) : l, outDType(a));
}

/**
 * The inverse of a triangular matrix with a non-zero diagonal: lower by default, upper with { upper: true }
 * (the upper case through the transpose). Throws ArgumentError on a zero diagonal entry.
 */
export function triangularInverse(a: Tensor, opts: CholeskyOptions = {}): Tensor<LinalgDType> {
  const m = matFromTensor(a, 'triangularInverse', 'a');
  checkSquare(m, 'triangularInverse', 'a');
  const inv = opts.upper ? transposeMat(lowerTriangularInverseMat(transposeMat(m), 'triangularInverse')) : lowerTriangularInverseMat(m, 'triangularInverse');
  return matToTensor(inv, outDType(a));
}

/**
 * The inverse of a symmetric positive definite matrix from its Cholesky factor (torch.cholesky_inverse):
 * `factor` is the lower L of a = L L^T, or the upper U of a = U^T U with { upper: true }.
 */
export function choleskyInverse(factor: Tensor, opts: CholeskyOptions = {}): Tensor<LinalgDType> {
  const f = matFromTensor(factor, 'choleskyInverse', 'factor');
  return matToTensor(choleskyInverseMat(opts.upper ? transposeMat(f) : f), outDType(factor));
}
