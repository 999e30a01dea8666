// Float64 linear algebra for the pruners (SparseGPT's Hessian factor): a blocked, packed GEMM with a
// lower-triangle-only mode (the SYRK update), the blocked Cholesky factorization and the blocked
// inverse of a lower-triangular matrix built on it. Row-major throughout.
#pragma once

#include <cstdint>

namespace sparse {

// Register tile of the float64 micro-kernel: 8 rows by 16 columns.
constexpr int kDMR = 8;
constexpr int kDNR = 16;

// acc = sum_{p < kc} ap[p*kDMR + r] * bp[p*kDNR + j]; C(r, j) = alpha*acc + beta*C(r, j) over the
// whole tile (beta == 0 does not read C).
using DMicroKernel = void (*)(int64_t kc, const double* ap, const double* bp, double* c, int64_t ldc, double alpha,
                              double beta);
void dMicroKernelScalar(int64_t kc, const double* ap, const double* bp, double* c, int64_t ldc, double alpha, double beta);

struct DgemmArgs {
  bool transB = false;  // op(B)(p, j) = b[j*ldb + p] instead of b[p*ldb + j]
  int64_t m = 0, n = 0, k = 0;
  double alpha = 1.0;
  const double* a = nullptr;  // op(A) = A, [m, k]
  int64_t lda = 0;
  const double* b = nullptr;
  int64_t ldb = 0;
  double beta = 0.0;
  double* c = nullptr;
  int64_t ldc = 0;
  // Only C(i, j) with j <= i is needed: tiles wholly above the diagonal are skipped (tiles across it
  // are computed whole, so entries just above the diagonal may change).
  bool lowerOnly = false;
};

// C = alpha * A op(B) + beta * C, multithreaded on the pool.
void dgemm(const DgemmArgs& g);

// In place lower Cholesky factor of the symmetric positive definite n x n matrix a (only its lower
// triangle is read; the upper triangle is set to zero). Returns -1, or the first pivot that is not
// positive (its value in *pivot), leaving a partly factored.
int64_t choleskyLowerF64(int64_t n, double* a, int64_t lda, double* pivot);

// x = l^{-1} for a lower-triangular l (upper triangle of l not read; x's upper triangle is zero). x may
// be l itself (same pointer and leading dimension: in place) but must not overlap it otherwise.
// Returns -1, or the first diagonal entry that is zero or not finite (x then untouched).
int64_t lowerTriangularInverseF64(int64_t n, const double* l, int64_t ldl, double* x, int64_t ldx);

}  // namespace sparse
