// Dense fp32 GEMM with the BLAS contract, row-major: C = alpha*op(A)*op(B) + beta*C.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparse {

struct GemmArgs {
  bool transA = false;
  bool transB = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  const float* a = nullptr;  // already offset to op(A)(0,0)
  int64_t lda = 0;
  const float* b = nullptr;  // already offset to op(B)(0,0)
  int64_t ldb = 0;
  // When set, row p of op(B) is bRows[p] (transB must be false; b and ldb are unused). Lets
  // block-sparse products multiply by a gathered set of B rows without copying them first.
  const float* const* bRows = nullptr;
  float beta = 0.0f;
  float* c = nullptr;  // already offset to C(0,0)
  int64_t ldc = 0;
};

// Register tile of the micro-kernels: MR rows of C by NR columns.
constexpr int kMR = 6;
constexpr int kNR = 16;

// Micro-kernel: acc = sum_p Ap[p*MR + r] * Bp[p*NR + j] over p < kc, then
// C(r, j) = alpha*acc + beta*C(r, j) for the full MR x NR tile; beta == 0 writes without reading C.
using MicroKernel = void (*)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha,
                             float beta);

// Skinny kernels for shapes where packing would cost as much as the product (gemv-like).
// multiDot: out[r] = sum_{p<k} x[r*ldx + p] * y[p] for r < rows (rows <= kKernelRows).
using MultiDot = void (*)(int64_t rows, int64_t k, const float* x, int64_t ldx, const float* y, float* out);
// multiAxpy: c[r*ldc + j] += sum_{p<k} a[r*lda + p] * b[p*ldb + j] for r < rows (<= kKernelRows), j < len.
using MultiAxpy = void (*)(int64_t rows, int64_t k, int64_t len, const float* a, int64_t lda, const float* b,
                           int64_t ldb, float* c, int64_t ldc);
constexpr int kKernelRows = 4;

void microKernelScalar(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha, float beta);
void multiDotScalar(int64_t rows, int64_t k, const float* x, int64_t ldx, const float* y, float* out);
void multiAxpyScalar(int64_t rows, int64_t k, int64_t len, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc);
#if defined(SPARSE_WITH_AVX2)  // set by binding.gyp on x86 with GCC/Clang, where kernels_avx2.cc is built
void microKernelAvx2(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha, float beta);
void multiDotAvx2(int64_t rows, int64_t k, const float* x, int64_t ldx, const float* y, float* out);
void multiAxpyAvx2(int64_t rows, int64_t k, int64_t len, const float* a, int64_t lda, const float* b, int64_t ldb,
                   float* c, int64_t ldc);
#endif

// The best dense GEMM: OpenBLAS when built with it (except gemv-like shapes), else gemmBlocked.
void gemm(const GemmArgs& args);

#if defined(SPARSE_HAVE_OPENBLAS)
// OpenBLAS's cblas_sgemm, one single-threaded call per thread of our pool on its part of C.
void gemmOpenBLAS(const GemmArgs& args);
#endif

// Our own blocked GEMM, even when OpenBLAS is linked (used by tests and benchmarks for comparison).
void gemmBlocked(const GemmArgs& args);

// The blocked GEMM on the calling thread only (for callers that already split work across threads).
void gemmSerial(const GemmArgs& args);

// `count` products sharing shape, transposes, leading dimensions, alpha and beta (taken from
// `shape`, whose a/b/c are ignored): item i multiplies a[i] by b[i] into c[i]. Items that are large
// enough run one after another, each on the whole pool; small ones are spread across the threads,
// each item on one thread. The c[i] regions must not overlap one another.
void gemmBatched(const GemmArgs& shape, int64_t count, const float* const* a, const float* const* b, float* const* c);

// C := beta*C over an m x n block; beta == 0 writes zeros without reading C.
void scaleC(int64_t m, int64_t n, float beta, float* c, int64_t ldc);

}  // namespace sparse
