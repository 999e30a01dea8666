// Sparse (CSR, N:M compressed, block-sparse) times dense products: C = alpha*A*B + beta*C, with A
// sparse [rows, cols], B dense [cols, n] (leading dimension ldb) and C dense [rows, n] (ldc), all
// row-major fp32. Vectorized along n: each stored A(i, p) scales a strip of row p of B.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

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

// Helpers shared by the sparse drivers (spmm.cc, sparse_linear.cc).
// Threads worth waking for `fmas` multiply-adds (at least 1M each), before the pool's own cap.
int threadsFor(double fmas);
// First row of part t when `rows` rows are split into `parts` of about equal stored-value counts.
int64_t balancedSplit(const int32_t* indptr, int64_t rows, int parts, int t);
// Leading dimension of a packed strip w columns wide: whole vectors, so rows start 32-byte apart.
int64_t packedLd(int64_t w);
// Starts of strips of whole vectors, at most `maxWidth` columns, as equal as possible (256 columns
// with at most 48: 48, 48, 40, 40, 40, 40), so no narrow leftover strip pays the per-value overhead
// for little work; only a final n % vec columns get a strip of their own.
std::vector<int64_t> balancedStrips(int64_t n, int64_t maxWidth, int64_t vec = 8);
void spmmNM(const NmMatrix& a, const SpmmDense& d);
// The family spmmNM's strips run: the active family's, except on CPUs that split 512-bit operations
// (Zen 4), where the avx512 family runs the AVX2 strips (see spmm.cc; SPARSE_NM_WIDE forces either).
const char* nmStripIsa();
void spmmBlock(const BsrMatrix& a, const SpmmDense& d);

// Widest strip of C columns a strip kernel handles: 8 AVX2 vectors of accumulators.
constexpr int64_t kStrip = 64;
// Strip width of the N:M product: 8 vectors, one accumulator each (8 independent FMA chains cover
// the FMA latency), so each broadcast value feeds 8 multiply-adds.
constexpr int64_t kNmFixedStrip = 64;

// c[0:w] = alpha * sum_{t<count} vals[t] * b[(cols[t] - colBase)*ldb + 0:w] + beta*c[0:w]; beta == 0
// does not read c. b is a packed block of B rows starting at row colBase.
using CsrStripKernel = void (*)(int64_t count, const float* vals, const int32_t* cols, int64_t colBase, const float* b,
                                int64_t ldb, int64_t w, float alpha, float beta, float* c);
// A tile of an N:M matrix copied into contiguous buffers: `rows` rows by `groups` groups. Row r's
// values are values[r*groups*n ...] and its positions are packed LSB-first at `bits` from bit 0 of
// indices + r*idxStride (idxStride bytes each). The copy turns rows a (often power-of-two) row
// stride apart, which thrash cache sets, into one contiguous run every strip of C rereads.
struct NmTile {
  int n = 0, m = 0, bits = 0;
  int64_t rows = 0, groups = 0;
  const float* values = nullptr;
  const uint8_t* indices = nullptr;
  int64_t idxStride = 0;
};
// C[r, 0:w] = alpha * sum over the tile's row r of value * b[(g*m + position)*ldb + 0:w] + beta*C[r, 0:w]
// for r < rows; b is a packed block of B rows starting at the tile's first column; c is C(row 0, strip start).
using NmStripKernel = void (*)(const NmTile& t, const float* b, int64_t ldb, int64_t w, float alpha, float beta,
                               float* c, int64_t ldc);

#define SPARSE_CSR_STRIP_ARGS                                                                                 \
  int64_t count, const float *vals, const int32_t *cols, int64_t colBase, const float *b, int64_t ldb, int64_t w, \
      float alpha, float beta, float *c
#define SPARSE_NM_STRIP_ARGS \
  const NmTile &tile, const float *b, int64_t ldb, int64_t w, float alpha, float beta, float *c, int64_t ldc

void csrStripScalar(SPARSE_CSR_STRIP_ARGS);
void nmStripScalar(SPARSE_NM_STRIP_ARGS);
#if defined(SPARSE_WITH_AVX2)
void csrStripAvx2(SPARSE_CSR_STRIP_ARGS);
void nmStripAvx2(SPARSE_NM_STRIP_ARGS);
#endif

// `width` (<= 25) bits starting at bit `bit` of a LSB-first packed buffer; never reads past `length`.
static inline uint32_t readBits(const uint8_t* buf, int64_t length, int64_t bit, int width) {
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
static inline uint32_t nmPosition(const uint8_t* idx, int64_t length, int bits, int64_t q) {
  return readBits(idx, length, q * bits, bits);
}

}  // namespace sparse
