// The three products of a training step of a linear layer whose weight W [out, in] is sparse (CSR),
// with activations token-major (one row per token, as tfjs holds them):
//   forward         Y[T, out]  = alpha * X[T, in] * W^T + beta * Y
//   input gradient  dX[T, in]  = alpha * dY[T, out] * W + beta * dX
//   weight gradient out[p]     = alpha * sum_t dY[t, i_p] * X[t, j_p] + beta * out[p]  (SDDMM, stored p only)
// All row-major fp32. The kernels transpose the token-major operands into feature-major panels
// (tokens contiguous) inside the call, so every inner loop runs along tokens, 8 per vector.
#pragma once

#include <cstdint>

#include "spmm.h"

namespace sparse {

// The dense operands of the two products: the input [tokens, k] (k = cols of the product's sparse
// matrix) and the output [tokens, rows], which must not overlap the input or the values.
struct TokenOperands {
  int64_t tokens = 0;
  float alpha = 1.0f;
  const float* in = nullptr;  // at In(0, 0)
  int64_t ldIn = 0;
  float beta = 0.0f;
  float* out = nullptr;  // at Out(0, 0)
  int64_t ldOut = 0;
};

// Out[T, a.rows] = alpha * In[T, a.cols] * a^T + beta * Out (the forward product with a = W).
void linearCSR(const CsrMatrix& a, const TokenOperands& d);
// Out[T, a.cols] = alpha * In[T, a.rows] * a + beta * Out (the input gradient: In = dY, Out = dX).
// Runs as linearCSR on a^T, whose CSR form (= W's CSC) is built in the call.
void linearCSRGradInput(const CsrMatrix& a, const TokenOperands& d);

struct SddmmOperands {
  int64_t tokens = 0;
  float alpha = 1.0f;
  const float* dy = nullptr;  // [tokens, pattern.rows]
  int64_t lddy = 0;
  const float* x = nullptr;  // [tokens, pattern.cols]
  int64_t ldx = 0;
  float beta = 0.0f;
  float* out = nullptr;  // one value per stored entry
};

// out[p] = alpha * sum_t dy[t, i] * x[t, indices[p]] + beta * out[p] for every stored p of row i
// (pattern.values is not read); beta == 0 never reads out.
void sddmmCSR(const CsrMatrix& pattern, const SddmmOperands& d);

// ---- inner loops (scalar and AVX2) ----

// dst[c*ldd + r] = src[r*lds + c] + beta * dst[c*ldd + r] for r < rows, c < cols; beta == 0 does
// not read dst. src and dst must not overlap.
using TransposeKernel = void (*)(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd,
                                 float beta);
// out[q] = alpha * dot(row[0:len], panel[cols[q]*ld : +len]) + beta * out[q] for q < count; len is a
// multiple of 8 and row and the panel rows are 32-byte aligned; beta == 0 does not read out.
using SddmmRowKernel = void (*)(const float* row, const float* panel, int64_t ld, int64_t len, const int32_t* cols,
                                int64_t count, float alpha, float beta, float* out);

void transposeScalar(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd, float beta);
void sddmmRowScalar(const float* row, const float* panel, int64_t ld, int64_t len, const int32_t* cols, int64_t count,
                    float alpha, float beta, float* out);
#if defined(SPARSE_WITH_AVX2)
void transposeAvx2(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd, float beta);
void sddmmRowAvx2(const float* row, const float* panel, int64_t ld, int64_t len, const int32_t* cols, int64_t count,
                  float alpha, float beta, float* out);
#endif

}  // namespace sparse
