// AVX2 + FMA strip kernels of the sparse products (compiled with -mavx2 -mfma, used only after the
// run-time CPU check). A strip is up to 64 columns of one row of C held in 8 ymm accumulators; a
// partial last vector is read and written through a lane mask, so no column past n is touched.
#include "spmm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "simd_avx2.h"

namespace sparse {

using namespace avx2;  // laneMask, hsum, hmax, exp256
namespace {

template <int NV, bool MASKED>
inline __m256 loadVec(const float* p, int k, __m256i mask) {
  if (MASKED && k == NV - 1) return _mm256_maskload_ps(p, mask);
  return _mm256_loadu_ps(p);
}

// c = alpha*acc + beta*c per vector; beta == 0 never reads c.
template <int NV, bool MASKED>
inline void storeStrip(const __m256 (&acc)[NV], float* c, __m256i mask, float alpha, float beta) {
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  _Pragma("GCC unroll 8")
  for (int k = 0; k < NV; ++k) {
    __m256 r = _mm256_mul_ps(va, acc[k]);
    if (beta != 0.0f) r = _mm256_fmadd_ps(vb, loadVec<NV, MASKED>(c + 8 * k, k, mask), r);
    if (MASKED && k == NV - 1) {
      _mm256_maskstore_ps(c + 8 * k, mask, r);
    } else {
      _mm256_storeu_ps(c + 8 * k, r);
    }
  }
}

template <int NV, bool MASKED>
inline void axpyStrip(__m256 (&acc)[NV], __m256 v, const float* row, __m256i mask) {
  _Pragma("GCC unroll 8")
  for (int k = 0; k < NV; ++k) acc[k] = _mm256_fmadd_ps(v, loadVec<NV, MASKED>(row + 8 * k, k, mask), acc[k]);
}

constexpr int64_t kCsrAhead = 8;

template <int NV, bool MASKED>
void csrStripT(int64_t count, const float* vals, const int32_t* cols, int64_t colBase, const float* b, int64_t ldb,
               __m256i mask, float alpha, float beta, float* c) {
  __m256 acc[NV], acc2[NV];
  _Pragma("GCC unroll 8")
  for (int k = 0; k < NV; ++k) acc[k] = acc2[k] = _mm256_setzero_ps();
  int64_t t = 0;
  // The B rows of a K block sit in L2 and are hit in random order: start fetching the row of the
  // value a few steps ahead (its first line only: measured faster than fetching every line, as
  // prefetches share the load ports with the multiply-adds' operands).
  for (; t + kCsrAhead < count; ++t) {
    _mm_prefetch(reinterpret_cast<const char*>(b + (cols[t + kCsrAhead] - colBase) * ldb), _MM_HINT_T0);
    if (NV == 8 || (t & 1) == 0) {
      axpyStrip<NV, MASKED>(acc, _mm256_broadcast_ss(vals + t), b + (cols[t] - colBase) * ldb, mask);
    } else {
      axpyStrip<NV, MASKED>(acc2, _mm256_broadcast_ss(vals + t), b + (cols[t] - colBase) * ldb, mask);
    }
  }
  if (NV == 8) {
    // Eight vectors: a second set would not fit the 16 registers (two spills per value pair in
    // the inner loop), and one set already has eight independent FMA chains.
    for (; t < count; ++t) axpyStrip<NV, MASKED>(acc, _mm256_broadcast_ss(vals + t), b + (cols[t] - colBase) * ldb, mask);
  }
  // Two accumulator sets so narrow strips still keep enough FMAs in flight.
  for (; t + 2 <= count; t += 2) {
    axpyStrip<NV, MASKED>(acc, _mm256_broadcast_ss(vals + t), b + (cols[t] - colBase) * ldb, mask);
    axpyStrip<NV, MASKED>(acc2, _mm256_broadcast_ss(vals + t + 1), b + (cols[t + 1] - colBase) * ldb, mask);
  }
  if (t < count) axpyStrip<NV, MASKED>(acc, _mm256_broadcast_ss(vals + t), b + (cols[t] - colBase) * ldb, mask);
  _Pragma("GCC unroll 8")
  for (int k = 0; k < NV; ++k) acc[k] = _mm256_add_ps(acc[k], acc2[k]);
  storeStrip<NV, MASKED>(acc, c, mask, alpha, beta);
}

// Every row of an N:M tile, any N, M and strip width.
template <int NV, bool MASKED>
void nmStripT(const NmTile& tile, const float* b, int64_t ldb, int64_t ldc, __m256i mask, float alpha, float beta,
              float* c) {
  const int n = tile.n;
  const int bits = tile.bits;
  const uint32_t field = (1u << bits) - 1u;
  const int64_t groupStride = tile.m * ldb;
  const int64_t perRow = tile.groups * n;
  // One 32-bit read holds a whole group's positions when they span at most 25 bits (2:4, 4:8, ...).
  const bool wholeGroup = n * bits <= 25;
  for (int64_t r = 0; r < tile.rows; ++r, c += ldc) {
    __m256 acc[NV];
    _Pragma("GCC unroll 8")
    for (int k = 0; k < NV; ++k) acc[k] = _mm256_setzero_ps();
    const float* vals = tile.values + r * perRow;
    const uint8_t* idx = tile.indices + r * tile.idxStride;
    int64_t q = 0;
    const float* bg = b;
    for (int64_t g = 0; g < tile.groups; ++g, bg += groupStride) {
      if (wholeGroup) {
        uint32_t word = readBits(idx, tile.idxStride, q * bits, n * bits);
        for (int t = 0; t < n; ++t, ++q) {
          const uint32_t pos = word & field;
          word >>= bits;
          axpyStrip<NV, MASKED>(acc, _mm256_broadcast_ss(vals + q), bg + pos * ldb, mask);
        }
      } else {
        for (int t = 0; t < n; ++t, ++q) {
          const uint32_t pos = nmPosition(idx, tile.idxStride, bits, q);
          axpyStrip<NV, MASKED>(acc, _mm256_broadcast_ss(vals + q), bg + pos * ldb, mask);
        }
      }
    }
    storeStrip<NV, MASKED>(acc, c, mask, alpha, beta);
  }
}

// Strips of 1 to 8 whole vectors (at most kNmFixedStrip columns) of the common patterns: each
// group's positions come from one or two bytes, unrolled at compile time. Two sets of accumulators
// take alternate kept values, so every accumulator sees one multiply-add per value pair: one set
// updated by every value would leave each FMA waiting on the previous one (latency 4-5 cycles
// against 2 issued per cycle).
template <int KEEP, int BITS, int NV>
void nmStripFixed(const NmTile& tile, const float* b_, int64_t ldc, float alpha, float beta, float* c) {
  constexpr int kWidth = KEEP * BITS;
  // Tile rows start at bit 0, so a group starts at most 8 - gcd(kWidth, 8) bits into its byte.
  constexpr int kMaxShift = 8 - (kWidth % 8 == 0 ? 8 : kWidth % 4 == 0 ? 4 : kWidth % 2 == 0 ? 2 : 1);
  static_assert(kMaxShift + kWidth <= 16, "a group's positions must fit in two bytes");
  constexpr uint32_t kField = (1u << BITS) - 1u;
  // Strips of NV whole vectors are packed with leading dimension 8*NV: a constant, so row offsets
  // fold into addresses.
  constexpr int64_t kLd = 8 * NV;
  const int64_t groupStride = tile.m * kLd;
  const int64_t len = tile.idxStride;
  const int64_t g1 = tile.groups;
  const __m256i all = laneMask(8);
  // Seven or eight vectors: one set (a second would not fit the 16 registers), already 7-8 chains.
  constexpr bool kTwoSets = NV <= 6;
  for (int64_t r = 0; r < tile.rows; ++r, c += ldc) {
    __m256 acc[NV], accB[NV];
    __m256(&acc2)[NV] = kTwoSets ? accB : acc;
    _Pragma("GCC unroll 8")
    for (int k = 0; k < NV; ++k) acc[k] = acc2[k] = _mm256_setzero_ps();
    const float* vals = tile.values + r * g1 * KEEP;
    const uint8_t* idx = tile.indices + r * len;
    int64_t bit = 0;
    const float* bg = b_;
    int parity = 0;
    int64_t g = 0;
    if (KEEP == 2 && kMaxShift + 2 * kWidth <= 16) {  // 2:4 (two groups' positions in two bytes)
      // Two groups' four values with one 128-bit load, each broadcast by an in-register shuffle:
      // the loop is bound by loads (NV B vectors per value), so a broadcast load per value costs.
      for (; g + 2 <= g1; g += 2, bg += 2 * groupStride, vals += 4, bit += 2 * kWidth) {
        const __m256 v4 = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(vals));
        const int64_t byte = bit >> 3;
        uint32_t word = idx[byte];
        if ((bit & 7) + 2 * kWidth > 8 && byte + 1 < len) word |= static_cast<uint32_t>(idx[byte + 1]) << 8;
        word >>= (bit & 7);
        axpyStrip<NV, false>(acc, _mm256_shuffle_ps(v4, v4, 0x00), bg + (word & kField) * kLd, all);
        axpyStrip<NV, false>(acc2, _mm256_shuffle_ps(v4, v4, 0x55), bg + ((word >> BITS) & kField) * kLd, all);
        axpyStrip<NV, false>(acc, _mm256_shuffle_ps(v4, v4, 0xAA), bg + groupStride + ((word >> (2 * BITS)) & kField) * kLd, all);
        axpyStrip<NV, false>(acc2, _mm256_shuffle_ps(v4, v4, 0xFF), bg + groupStride + ((word >> (3 * BITS)) & kField) * kLd, all);
      }
    }
    for (; g < g1; ++g, bg += groupStride, vals += KEEP, bit += kWidth) {
      const int64_t byte = bit >> 3;
      uint32_t word = idx[byte];
      // A second byte only when this group's field crosses into it (it then exists in the buffer).
      if ((bit & 7) + kWidth > 8 && byte + 1 < len) word |= static_cast<uint32_t>(idx[byte + 1]) << 8;
      word >>= (bit & 7);
      _Pragma("GCC unroll 8")
      for (int t = 0; t < KEEP; ++t) {
        const float* brow = bg + ((word >> (t * BITS)) & kField) * kLd;
        const __m256 v = _mm256_broadcast_ss(vals + t);
        if (((t + parity) & 1) == 0) {
          axpyStrip<NV, false>(acc, v, brow, all);
        } else {
          axpyStrip<NV, false>(acc2, v, brow, all);
        }
      }
      if (KEEP % 2 == 1) parity ^= 1;
    }
    if (kTwoSets) {
      _Pragma("GCC unroll 8")
      for (int k = 0; k < NV; ++k) acc[k] = _mm256_add_ps(acc[k], acc2[k]);
    }
    storeStrip<NV, false>(acc, c, all, alpha, beta);
  }
}

// Calls F<NV, MASKED> for a strip of w (1..64) columns.
#define SPARSE_STRIP_DISPATCH(F, w, ...)                                   \
  do {                                                                     \
    const int64_t nv_ = ((w) + 7) / 8;                                     \
    const bool masked_ = ((w) & 7) != 0;                                   \
    const __m256i mask_ = laneMask(masked_ ? ((w) & 7) : 8);               \
    switch (nv_ * 2 + (masked_ ? 1 : 0)) {                                 \
      case 2: return F<1, false>(__VA_ARGS__, mask_, alpha, beta, c);      \
      case 3: return F<1, true>(__VA_ARGS__, mask_, alpha, beta, c);       \
      case 4: return F<2, false>(__VA_ARGS__, mask_, alpha, beta, c);      \
      case 5: return F<2, true>(__VA_ARGS__, mask_, alpha, beta, c);       \
      case 6: return F<3, false>(__VA_ARGS__, mask_, alpha, beta, c);      \
      case 7: return F<3, true>(__VA_ARGS__, mask_, alpha, beta, c);       \
      case 8: return F<4, false>(__VA_ARGS__, mask_, alpha, beta, c);      \
      case 9: return F<4, true>(__VA_ARGS__, mask_, alpha, beta, c);       \
      case 10: return F<5, false>(__VA_ARGS__, mask_, alpha, beta, c);     \
      case 11: return F<5, true>(__VA_ARGS__, mask_, alpha, beta, c);      \
      case 12: return F<6, false>(__VA_ARGS__, mask_, alpha, beta, c);     \
      case 13: return F<6, true>(__VA_ARGS__, mask_, alpha, beta, c);      \
      case 14: return F<7, false>(__VA_ARGS__, mask_, alpha, beta, c);     \
      case 15: return F<7, true>(__VA_ARGS__, mask_, alpha, beta, c);      \
      case 16: return F<8, false>(__VA_ARGS__, mask_, alpha, beta, c);     \
      case 17: return F<8, true>(__VA_ARGS__, mask_, alpha, beta, c);      \
      default: return;                                                     \
    }                                                                      \
  } while (0)

}  // namespace

void csrStripAvx2(SPARSE_CSR_STRIP_ARGS) { SPARSE_STRIP_DISPATCH(csrStripT, w, count, vals, cols, colBase, b, ldb); }

template <int KEEP, int BITS>
bool nmFixedByWidth(SPARSE_NM_STRIP_ARGS) {
  switch (w / 8) {
    case 1: nmStripFixed<KEEP, BITS, 1>(tile, b, ldc, alpha, beta, c); return true;
    case 2: nmStripFixed<KEEP, BITS, 2>(tile, b, ldc, alpha, beta, c); return true;
    case 3: nmStripFixed<KEEP, BITS, 3>(tile, b, ldc, alpha, beta, c); return true;
    case 4: nmStripFixed<KEEP, BITS, 4>(tile, b, ldc, alpha, beta, c); return true;
    case 5: nmStripFixed<KEEP, BITS, 5>(tile, b, ldc, alpha, beta, c); return true;
    case 6: nmStripFixed<KEEP, BITS, 6>(tile, b, ldc, alpha, beta, c); return true;
    case 7: nmStripFixed<KEEP, BITS, 7>(tile, b, ldc, alpha, beta, c); return true;
    case 8: nmStripFixed<KEEP, BITS, 8>(tile, b, ldc, alpha, beta, c); return true;
    default: return false;
  }
}

void nmStripAvx2(SPARSE_NM_STRIP_ARGS) {
  if (w % 8 == 0 && w <= kNmFixedStrip && ldb == w) {
    // Whole-vector strips of the common patterns get the position decoding unrolled at compile time.
    bool done = false;
    switch (tile.n * 100 + tile.bits) {
      case 202: done = nmFixedByWidth<2, 2>(tile, b, ldb, w, alpha, beta, c, ldc); break;  // 2:4
      case 102: done = nmFixedByWidth<1, 2>(tile, b, ldb, w, alpha, beta, c, ldc); break;  // 1:4
      case 302: done = nmFixedByWidth<3, 2>(tile, b, ldb, w, alpha, beta, c, ldc); break;  // 3:4
      case 203: done = nmFixedByWidth<2, 3>(tile, b, ldb, w, alpha, beta, c, ldc); break;  // 2:8
      case 103: done = nmFixedByWidth<1, 3>(tile, b, ldb, w, alpha, beta, c, ldc); break;  // 1:8
      case 403: done = nmFixedByWidth<4, 3>(tile, b, ldb, w, alpha, beta, c, ldc); break;  // 4:8
      case 101: done = nmFixedByWidth<1, 1>(tile, b, ldb, w, alpha, beta, c, ldc); break;  // 1:2
      default: break;
    }
    if (done) return;
  }
  SPARSE_STRIP_DISPATCH(nmStripT, w, tile, b, ldb, ldc);
}

}  // namespace sparse

#else
#error "spmm_avx2.cc must be compiled with -mavx2 -mfma"
#endif
