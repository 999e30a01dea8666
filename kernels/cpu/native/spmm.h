// Sparse (CSR, N:M compressed, block-sparse) times dense products: C = alpha*A*B + beta*C, with A
// sparse [rows, cols], B dense [cols, n] (leading dimension ldb) and C dense [rows, n] (ldc), all
// row-major fp32. Vectorized along n: each stored A(i, p) scales a strip of row p of B.
#pragma once

#include <cstdint>
#include <cstring>

namespace sparse {

struct SpmmDense {
  int64_t n = 0;
  float alpha = 1.0f;
  const float* b = nullptr;  // at B(0, 0)
  int64_t ldb = 0;
  float beta = 0.0f;
  float* c = nullptr;  // at C(0, 0)
  int64_t ldc = 0;
};

struct CsrMatrix {
  int64_t rows = 0, cols = 0;
  const int32_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  const float* values = nullptr;
  bool sorted = false;  // column indices ascending within each row (lets the product block over K)
};

// Each row: groups of m consecutive columns keeping n values; positions packed LSB-first at `bits`.
struct NmMatrix {
  int64_t rows = 0, cols = 0;
  int n = 0, m = 0, bits = 0;
  const float* values = nullptr;
  const uint8_t* indices = nullptr;
  int64_t indicesLength = 0;
};

// Block-sparse rows with [br, bc] blocks stored whole (edge blocks zero-padded past the matrix).
struct BsrMatrix {
  int64_t rows = 0, cols = 0, br = 0, bc = 0;
  const int32_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  const float* values = nullptr;
};

void spmmCSR(const CsrMatrix& a, const SpmmDense& d);
void spmmNM(const NmMatrix& a, const SpmmDense& d);
void spmmBlock(const BsrMatrix& a, const SpmmDense& d);

// Widest strip of C columns a strip kernel handles: 8 AVX2 vectors of accumulators.
constexpr int64_t kStrip = 64;
// Strip width of the N:M product: 6 vectors, so the unrolled kernels of the common patterns can keep
// two sets of accumulators in the 16 ymm registers.
constexpr int64_t kNmFixedStrip = 48;

// c[0:w] = alpha * sum_{t<count} vals[t] * b[(cols[t] - colBase)*ldb + 0:w] + beta*c[0:w]; beta == 0
// does not read c. b is a packed block of B rows starting at row colBase.
using CsrStripKernel = void (*)(int64_t count, const float* vals, const int32_t* cols, int64_t colBase, const float* b,
                                int64_t ldb, int64_t w, float alpha, float beta, float* c);
// The same for rows [r0, r1) of an N:M matrix over groups [g0, g1): value q sits at column
// g*m + position(q); b is a packed block of B rows starting at row g0*m; c is C(r0, strip start).
using NmStripKernel = void (*)(const NmMatrix& a, int64_t r0, int64_t r1, int64_t g0, int64_t g1, const float* b,
                               int64_t ldb, int64_t w, float alpha, float beta, float* c, int64_t ldc);

#define SPARSE_CSR_STRIP_ARGS                                                                                 \
  int64_t count, const float *vals, const int32_t *cols, int64_t colBase, const float *b, int64_t ldb, int64_t w, \
      float alpha, float beta, float *c
#define SPARSE_NM_STRIP_ARGS                                                                                 \
  const NmMatrix &a, int64_t r0, int64_t r1, int64_t g0, int64_t g1, const float *b, int64_t ldb, int64_t w, \
      float alpha, float beta, float *c, int64_t ldc

void csrStripScalar(SPARSE_CSR_STRIP_ARGS);
void nmStripScalar(SPARSE_NM_STRIP_ARGS);
#if defined(SPARSE_WITH_AVX2)
void csrStripAvx2(SPARSE_CSR_STRIP_ARGS);
void nmStripAvx2(SPARSE_NM_STRIP_ARGS);
#endif

// `width` (<= 25) bits starting at bit `bit` of a LSB-first packed buffer; never reads past `length`.
inline uint32_t readBits(const uint8_t* buf, int64_t length, int64_t bit, int width) {
  const int64_t byte = bit >> 3;
  uint32_t word = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (byte + 4 <= length) {
    std::memcpy(&word, buf + byte, 4);
  } else
#endif
  {
    for (int t = 0; t < 4 && byte + t < length; ++t) word |= static_cast<uint32_t>(buf[byte + t]) << (8 * t);
  }
  // shift <= 7 and width <= 25, so one 32-bit word always holds the field.
  return (word >> (bit & 7)) & static_cast<uint32_t>((uint64_t{1} << width) - 1u);
}

// Position (0..m-1) of kept value q of an N:M matrix (bits <= 24).
inline uint32_t nmPosition(const uint8_t* idx, int64_t length, int bits, int64_t q) {
  return readBits(idx, length, q * bits, bits);
}

}  // namespace sparse
