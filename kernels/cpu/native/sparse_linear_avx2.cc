// AVX2 + FMA inner loops of the sparse-layer products (compiled with -mavx2 -mfma, used only after
// the run-time CPU check): an 8x8 register transpose for packing token-major operands and writing
// tiles back, and the SDDMM row kernel (eight dot products at a time).
#include "sparse_linear.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <algorithm>

namespace sparse {
namespace {

// Rows r0..r7 of an 8x8 block become its columns.
inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6, __m256& r7) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r0 = _mm256_permute2f128_ps(s0, s4, 0x20);
  r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
  r2 = _mm256_permute2f128_ps(s2, s6, 0x20);
  r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
  r4 = _mm256_permute2f128_ps(s0, s4, 0x31);
  r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
  r6 = _mm256_permute2f128_ps(s2, s6, 0x31);
  r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}

template <bool BETA>
inline void storeRow(float* p, __m256 v, __m256 vb) {
  if (BETA) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), v);
  _mm256_storeu_ps(p, v);
}

// One 8x8 block: rows r..r+7 of src at column c become rows c..c+7 of dst at column r.
template <bool BETA>
inline void block8(const float* s, int64_t lds, float* d, int64_t ldd, __m256 vb) {
  __m256 v0 = _mm256_loadu_ps(s), v1 = _mm256_loadu_ps(s + lds);
  __m256 v2 = _mm256_loadu_ps(s + 2 * lds), v3 = _mm256_loadu_ps(s + 3 * lds);
  __m256 v4 = _mm256_loadu_ps(s + 4 * lds), v5 = _mm256_loadu_ps(s + 5 * lds);
  __m256 v6 = _mm256_loadu_ps(s + 6 * lds), v7 = _mm256_loadu_ps(s + 7 * lds);
  transpose8(v0, v1, v2, v3, v4, v5, v6, v7);
  storeRow<BETA>(d, v0, vb);
  storeRow<BETA>(d + ldd, v1, vb);
  storeRow<BETA>(d + 2 * ldd, v2, vb);
  storeRow<BETA>(d + 3 * ldd, v3, vb);
  storeRow<BETA>(d + 4 * ldd, v4, vb);
  storeRow<BETA>(d + 5 * ldd, v5, vb);
  storeRow<BETA>(d + 6 * ldd, v6, vb);
  storeRow<BETA>(d + 7 * ldd, v7, vb);
}

// Walks src in column bands of 16 (a whole cache line of each source row, used at once, so source
// rows a power of two apart cannot evict each other's lines between the two halves) and, inside a
// band, down the rows 8 at a time, so each destination row is written as one contiguous run.
template <bool BETA>
void transposeT(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd, float beta) {
  const __m256 vb = _mm256_set1_ps(beta);
  const int64_t rows8 = rows / 8 * 8;
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    float* d = dst + c * ldd;
    for (int64_t r = 0; r < rows8; r += 8) {
      block8<BETA>(src + r * lds + c, lds, d + r, ldd, vb);
      block8<BETA>(src + r * lds + c + 8, lds, d + 8 * ldd + r, ldd, vb);
    }
  }
  for (; c + 8 <= cols; c += 8) {
    for (int64_t r = 0; r < rows8; r += 8) block8<BETA>(src + r * lds + c, lds, dst + c * ldd + r, ldd, vb);
  }
  // The last rows % 8 rows of the banded columns, then the last cols % 8 columns.
  const int64_t cols8 = c;
  for (int64_t r = rows8; r < rows; ++r) {
    for (int64_t cc = 0; cc < cols8; ++cc) dst[cc * ldd + r] = BETA ? src[r * lds + cc] + beta * dst[cc * ldd + r] : src[r * lds + cc];
  }
  for (; c < cols; ++c) {
    float* d = dst + c * ldd;
    for (int64_t r = 0; r < rows; ++r) d[r] = BETA ? src[r * lds + c] + beta * d[r] : src[r * lds + c];
  }
}

// [sum(a0), ..., sum(a7)].
inline __m256 hsum8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6, __m256 a7) {
  const __m256 t0 = _mm256_hadd_ps(a0, a1), t1 = _mm256_hadd_ps(a2, a3);
  const __m256 t2 = _mm256_hadd_ps(a4, a5), t3 = _mm256_hadd_ps(a6, a7);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// The eight dot products of row with x[0..7] over nv vectors, summed per product.
inline __m256 dots8(const float* row, const float* const (&x)[8], int64_t nv) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (int64_t k = 0; k < 8 * nv; k += 8) {
    const __m256 d = _mm256_load_ps(row + k);
    a0 = _mm256_fmadd_ps(d, _mm256_load_ps(x[0] + k), a0);
    a1 = _mm256_fmadd_ps(d, _mm256_load_ps(x[1] + k), a1);
    a2 = _mm256_fmadd_ps(d, _mm256_load_ps(x[2] + k), a2);
    a3 = _mm256_fmadd_ps(d, _mm256_load_ps(x[3] + k), a3);
    a4 = _mm256_fmadd_ps(d, _mm256_load_ps(x[4] + k), a4);
    a5 = _mm256_fmadd_ps(d, _mm256_load_ps(x[5] + k), a5);
    a6 = _mm256_fmadd_ps(d, _mm256_load_ps(x[6] + k), a6);
    a7 = _mm256_fmadd_ps(d, _mm256_load_ps(x[7] + k), a7);
  }
  return hsum8(a0, a1, a2, a3, a4, a5, a6, a7);
}

}  // namespace

void transposeAvx2(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd, float beta) {
  if (beta == 0.0f) {
    transposeT<false>(src, lds, rows, cols, dst, ldd, beta);
  } else {
    transposeT<true>(src, lds, rows, cols, dst, ldd, beta);
  }
}

void sddmmRowAvx2(const float* row, const float* panel, int64_t ld, int64_t len, const int32_t* cols, int64_t count,
                  float alpha, float beta, float* out) {
  const int64_t nv = len / 8;
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  int64_t q = 0;
  const float* x[8];
  for (; q + 8 <= count; q += 8) {
    for (int k = 0; k < 8; ++k) x[k] = panel + static_cast<int64_t>(cols[q + k]) * ld;
    __m256 s = _mm256_mul_ps(va, dots8(row, x, nv));
    if (beta != 0.0f) s = _mm256_fmadd_ps(vb, _mm256_loadu_ps(out + q), s);
    _mm256_storeu_ps(out + q, s);
  }
  if (q < count) {
    // The last 1-7 entries: the missing ones repeat the last entry's row, and only the real lanes
    // are read and written.
    const int64_t rest = count - q;
    for (int k = 0; k < 8; ++k) x[k] = panel + static_cast<int64_t>(cols[q + std::min<int64_t>(k, rest - 1)]) * ld;
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rest)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 s = _mm256_mul_ps(va, dots8(row, x, nv));
    if (beta != 0.0f) s = _mm256_fmadd_ps(vb, _mm256_maskload_ps(out + q, mask), s);
    _mm256_maskstore_ps(out + q, mask, s);
  }
}

}  // namespace sparse

#else
#error "sparse_linear_avx2.cc must be compiled with -mavx2 -mfma"
#endif
