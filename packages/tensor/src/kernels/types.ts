import type { BSRLayout, CSRLayout, NMLayout } from '../layouts/types.js';

/**
 * Argument objects of the BLAS-like kernels. Every matrix is row-major (C order) inside a flat
 * Float32Array: element (i, j) of a matrix X with leading dimension ldx and offset xOffset lives at
 * x[xOffset + i*ldx + j]. These are exactly the arguments a native kernel takes (cblas_sgemm with
 * CblasRowMajor), so a call crosses into native code without copying.
 *
 * Scalar semantics follow BLAS: with beta === 0, C is overwritten without being read (NaN or Inf
 * already in C does not propagate); with alpha === 0, A and B are not read. C must not overlap A or B.
 */

/** C[m,n] = alpha * op(A) * op(B) + beta * C, op(X) = transX ? X^T : X. */
export interface GemmArgs {
  /** A is stored [k, m] (lda >= max(1, m)) when true, [m, k] (lda >= max(1, k)) when false. */
  transA: boolean;
  /** B is stored [n, k] (ldb >= max(1, k)) when true, [k, n] (ldb >= max(1, n)) when false. */
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha: number;
  a: Float32Array;
  aOffset: number;
  lda: number;
  b: Float32Array;
  bOffset: number;
  ldb: number;
  beta: number;
  /** Output [m, n], ldc >= max(1, n). Written in place. */
  c: Float32Array;
  cOffset: number;
  ldc: number;
}

/** The dense operands of a sparse-times-dense product: B[K,N] (K = a.shape[1]) and C[M,N] (M = a.shape[0]). */
export interface SpmmDenseArgs {
  b: Float32Array;
  bOffset: number;
  /** ldb >= max(1, n). */
  ldb: number;
  /** Columns of B and C. */
  n: number;
  alpha: number;
  beta: number;
  c: Float32Array;
  cOffset: number;
  /** ldc >= max(1, n). */
  ldc: number;
}

/** C[M,N] = alpha * A * B + beta * C with A in CSR form. */
export interface SpmmCSRArgs extends SpmmDenseArgs {
  a: CSRLayout<'float32'>;
}

/** C[M,N] = alpha * A * B + beta * C with A in N:M compressed form. */
export interface SpmmNMArgs extends SpmmDenseArgs {
  a: NMLayout<'float32'>;
}

/** C[M,N] = alpha * A * B + beta * C with A in block-sparse rows (edge blocks zero-padded). */
export interface SpmmBlockArgs extends SpmmDenseArgs {
  a: BSRLayout<'float32'>;
}

export type GemmKernel = (args: GemmArgs) => void;
export type SpmmCSRKernel = (args: SpmmCSRArgs) => void;
export type SpmmNMKernel = (args: SpmmNMArgs) => void;
export type SpmmBlockKernel = (args: SpmmBlockArgs) => void;
