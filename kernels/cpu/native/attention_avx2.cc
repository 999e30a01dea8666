// AVX2 + FMA row kernels of attention.cc (compiled with -mavx2 -mfma, used only after the run-time
// CPU check). Tails go through lane masks, so nothing past the given lengths is read or written.
#include "attention.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "expand_table.h"
#include "simd_avx2.h"

#include <cstring>
#include <limits>

namespace sparse {

using namespace avx2;  // laneMask, hsum, hmax, exp256
namespace {

constexpr ExpandTable8 kExpand{};

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
