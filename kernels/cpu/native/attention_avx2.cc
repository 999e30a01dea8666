// AVX2 + FMA row kernels of attention.cc (compiled with -mavx2 -mfma, used only after the run-time
// CPU check). Tails go through lane masks, so nothing past the given lengths is read or written.
#include "attention.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <cstring>
#include <limits>

namespace sparse {
namespace {

inline __m256i laneMask(int64_t lanes) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lanes)), idx);
}

inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

// exp(x) for float lanes (Cephes-style, as ops_avx2.cc's); below -87.3 (including -inf) exactly 0.
inline __m256 exp256(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.7228391f);
  const __m256 lo = _mm256_set1_ps(-87.3365479f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  const __m256 overflow = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i n = _mm256_cvtps_epi32(fx);
  const __m256 pow2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
  y = _mm256_mul_ps(y, pow2);
  y = _mm256_andnot_ps(underflow, y);
  return _mm256_blendv_ps(y, _mm256_set1_ps(std::numeric_limits<float>::infinity()), overflow);
}

// For each byte b of a bitmap: the permutation that moves the popcount(b) packed values to the
// positions of b's set bits, and the lanes to keep. Built at compile time (constexpr), so no code of
// this AVX2-compiled file runs at load time on a CPU without AVX2.
struct ExpandTable {
  alignas(32) int32_t perm[256][8]{};
  alignas(32) int32_t keep[256][8]{};
  constexpr ExpandTable() {
    for (int b = 0; b < 256; ++b) {
      int at = 0;
      for (int c = 0; c < 8; ++c) {
        const bool set = ((b >> c) & 1) != 0;
        perm[b][c] = set ? at : 0;
        keep[b][c] = set ? -1 : 0;
        at += set ? 1 : 0;
      }
    }
  }
};
constexpr ExpandTable kExpand{};

}  // namespace

void backwardRowAvx2(int64_t len, float* s, float* ds, float lse, float D) {
  const __m256 l = _mm256_set1_ps(lse), dv = _mm256_set1_ps(D);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    const __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), l));
    _mm256_storeu_ps(s + j, p);
    _mm256_storeu_ps(ds + j, _mm256_mul_ps(p, _mm256_sub_ps(_mm256_loadu_ps(ds + j), dv)));
  }
  if (j < len) {
    const __m256i mk = laneMask(len - j);
    const __m256 p = exp256(_mm256_sub_ps(_mm256_maskload_ps(s + j, mk), l));
    _mm256_maskstore_ps(s + j, mk, p);
    _mm256_maskstore_ps(ds + j, mk, _mm256_mul_ps(p, _mm256_sub_ps(_mm256_maskload_ps(ds + j, mk), dv)));
  }
}

void expandRowAvx2(int64_t d, const uint8_t* bits, const float* values, const float* valuesEnd, float* out) {
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) {
    const unsigned b = bits[c >> 3];
    const int count = __builtin_popcount(b);
    // A plain 8-wide load while it stays inside the array (the lanes past this byte's values are
    // dropped by the permutation and the keep mask); a masked one at the very end of the array.
    const __m256 packed = values + 8 <= valuesEnd ? _mm256_loadu_ps(values) : _mm256_maskload_ps(values, laneMask(count));
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kExpand.perm[b]));
    const __m256 keep = _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(kExpand.keep[b])));
    _mm256_storeu_ps(out + c, _mm256_and_ps(_mm256_permutevar8x32_ps(packed, perm), keep));
    values += count;
  }
  if (c < d) {
    const unsigned b = bits[c >> 3];
    for (int64_t t = 0; c + t < d; ++t) out[c + t] = ((b >> t) & 1) != 0 ? *values++ : 0.0f;
  }
}

float dotAvx2(int64_t len, const float* a, const float* b) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= len; j += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), s1);
  }
  for (; j < len; j += 8) {
    const __m256i mk = laneMask(len - j);
    s0 = _mm256_fmadd_ps(_mm256_maskload_ps(a + j, mk), _mm256_maskload_ps(b + j, mk), s0);
  }
  return hsum(_mm256_add_ps(s0, s1));
}

void axpyAvx2(int64_t len, float alpha, const float* x, float* y) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) _mm256_storeu_ps(y + j, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + j), _mm256_loadu_ps(y + j)));
  if (j < len) {
    const __m256i mk = laneMask(len - j);
    _mm256_maskstore_ps(y + j, mk, _mm256_fmadd_ps(a, _mm256_maskload_ps(x + j, mk), _mm256_maskload_ps(y + j, mk)));
  }
}

}  // namespace sparse

#endif
