// AVX2 + FMA inner loops of ops.cc (compiled with -mavx2 -mfma, used only after the run-time CPU
// check). Tails go through lane masks, so nothing past the given lengths is read or written.
#include "ops.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "simd_avx2.h"

#include <limits>

namespace sparse {

using namespace avx2;  // laneMask, hsum, hmax, exp256

namespace {

// The 16-wide body of axpy4: acc[j:j+16] += sum_u x_u * w_u[j:j+16]; with PREFETCH, one cache line of each
// of the four next rows is requested per 16 outputs, so the next group arrives while this one computes.
template <bool PREFETCH>
inline int64_t axpy4Blocks(int64_t len, const float* w0, const float* w1, const float* w2, const float* w3, __m256 a0, __m256 a1,
                           __m256 a2, __m256 a3, float* acc, const float* const* next) {
  int64_t j = 0;
  for (; j + 16 <= len; j += 16) {
    if (PREFETCH) {
      const int64_t b = j * static_cast<int64_t>(sizeof(float));
      for (int u = 0; u < 4; ++u) _mm_prefetch(reinterpret_cast<const char*>(next[u]) + b, _MM_HINT_T0);
    }
    __m256 c0 = _mm256_loadu_ps(acc + j), c1 = _mm256_loadu_ps(acc + j + 8);
    c0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w0 + j), c0);
    c1 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w0 + j + 8), c1);
    c0 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(w1 + j), c0);
    c1 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(w1 + j + 8), c1);
    c0 = _mm256_fmadd_ps(a2, _mm256_loadu_ps(w2 + j), c0);
    c1 = _mm256_fmadd_ps(a2, _mm256_loadu_ps(w2 + j + 8), c1);
    c0 = _mm256_fmadd_ps(a3, _mm256_loadu_ps(w3 + j), c0);
    c1 = _mm256_fmadd_ps(a3, _mm256_loadu_ps(w3 + j + 8), c1);
    _mm256_storeu_ps(acc + j, c0);
    _mm256_storeu_ps(acc + j + 8, c1);
  }
  return j;
}

}  // namespace

void axpy4Avx2(int64_t len, const float* w0, const float* w1, const float* w2, const float* w3, float x0, float x1,
               float x2, float x3, float* acc, const float* const* next) {
  const __m256 a0 = _mm256_set1_ps(x0), a1 = _mm256_set1_ps(x1), a2 = _mm256_set1_ps(x2), a3 = _mm256_set1_ps(x3);
  int64_t j = next != nullptr ? axpy4Blocks<true>(len, w0, w1, w2, w3, a0, a1, a2, a3, acc, next)
                              : axpy4Blocks<false>(len, w0, w1, w2, w3, a0, a1, a2, a3, acc, nullptr);
  for (; j < len; j += 8) {
    const __m256i mk = laneMask(len - j);
    __m256 c = _mm256_maskload_ps(acc + j, mk);
    c = _mm256_fmadd_ps(a0, _mm256_maskload_ps(w0 + j, mk), c);
    c = _mm256_fmadd_ps(a1, _mm256_maskload_ps(w1 + j, mk), c);
    c = _mm256_fmadd_ps(a2, _mm256_maskload_ps(w2 + j, mk), c);
    c = _mm256_fmadd_ps(a3, _mm256_maskload_ps(w3 + j, mk), c);
    _mm256_maskstore_ps(acc + j, mk, c);
  }
}

void gatherDot4Avx2(int64_t count, const float* w, int64_t ldw, const int32_t* idx, const float* xc, float* out) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  const float* r0 = w;
  const float* r1 = w + ldw;
  const float* r2 = w + 2 * ldw;
  const float* r3 = w + 3 * ldw;
  int64_t q = 0;
  for (; q + 8 <= count; q += 8) {
    const __m256i ix = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + q));
    const __m256 xv = _mm256_loadu_ps(xc + q);
    s0 = _mm256_fmadd_ps(_mm256_i32gather_ps(r0, ix, 4), xv, s0);
    s1 = _mm256_fmadd_ps(_mm256_i32gather_ps(r1, ix, 4), xv, s1);
    s2 = _mm256_fmadd_ps(_mm256_i32gather_ps(r2, ix, 4), xv, s2);
    s3 = _mm256_fmadd_ps(_mm256_i32gather_ps(r3, ix, 4), xv, s3);
  }
  float t0 = hsum(s0), t1 = hsum(s1), t2 = hsum(s2), t3 = hsum(s3);
  for (; q < count; ++q) {
    const int32_t p = idx[q];
    t0 += r0[p] * xc[q];
    t1 += r1[p] * xc[q];
    t2 += r2[p] * xc[q];
    t3 += r3[p] * xc[q];
  }
  out[0] = t0;
  out[1] = t1;
  out[2] = t2;
  out[3] = t3;
}

void maskedDot4Avx2(int64_t cols, const float* w, int64_t ldw, const float* x, const uint32_t* keep, float* out) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  const float* r0 = w;
  const float* r1 = w + ldw;
  const float* r2 = w + 2 * ldw;
  const float* r3 = w + 3 * ldw;
  int64_t p = 0;
  for (; p < cols; p += 8) {
    __m256 km, xv;
    __m256 w0, w1, w2, w3;
    if (p + 8 <= cols) {
      km = _mm256_loadu_ps(reinterpret_cast<const float*>(keep + p));
      xv = _mm256_loadu_ps(x + p);
      w0 = _mm256_loadu_ps(r0 + p);
      w1 = _mm256_loadu_ps(r1 + p);
      w2 = _mm256_loadu_ps(r2 + p);
      w3 = _mm256_loadu_ps(r3 + p);
    } else {
      const __m256i mk = laneMask(cols - p);
      km = _mm256_maskload_ps(reinterpret_cast<const float*>(keep + p), mk);
      xv = _mm256_maskload_ps(x + p, mk);
      w0 = _mm256_maskload_ps(r0 + p, mk);
      w1 = _mm256_maskload_ps(r1 + p, mk);
      w2 = _mm256_maskload_ps(r2 + p, mk);
      w3 = _mm256_maskload_ps(r3 + p, mk);
    }
    s0 = _mm256_fmadd_ps(_mm256_and_ps(w0, km), xv, s0);
    s1 = _mm256_fmadd_ps(_mm256_and_ps(w1, km), xv, s1);
    s2 = _mm256_fmadd_ps(_mm256_and_ps(w2, km), xv, s2);
    s3 = _mm256_fmadd_ps(_mm256_and_ps(w3, km), xv, s3);
  }
  out[0] = hsum(s0);
  out[1] = hsum(s1);
  out[2] = hsum(s2);
  out[3] = hsum(s3);
}

float softmaxRowAvx2(int64_t len, float* s, float prevMax, float* sum) {
  const float ninf = -std::numeric_limits<float>::infinity();
  __m256 vmax = _mm256_set1_ps(prevMax);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + j));
  float mx = hmax(vmax);
  for (; j < len; ++j) mx = s[j] > mx ? s[j] : mx;
  if (mx == ninf) {
    for (int64_t t = 0; t < len; ++t) s[t] = 0.0f;
    *sum = 0.0f;
    return mx;
  }
  const __m256 m = _mm256_set1_ps(mx);
  __m256 acc = _mm256_setzero_ps();
  for (j = 0; j < len; j += 8) {
    if (j + 8 <= len) {
      const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
      _mm256_storeu_ps(s + j, e);
      acc = _mm256_add_ps(acc, e);
    } else {
      const __m256i mk = laneMask(len - j);
      // Masked-off lanes load 0 - max; their exp is dropped by the masked store and the blend.
      const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(s + j, mk), m)), _mm256_castsi256_ps(mk));
      _mm256_maskstore_ps(s + j, mk, e);
      acc = _mm256_add_ps(acc, e);
    }
  }
  *sum = hsum(acc);
  return mx;
}

void adamSpanAvx2(int64_t len, float* p, const float* g, float* m, float* v, const AdamStep& s) {
  const __m256 b1 = _mm256_set1_ps(s.beta1), nb1 = _mm256_set1_ps(1.0f - s.beta1);
  const __m256 b2 = _mm256_set1_ps(s.beta2), nb2 = _mm256_set1_ps(1.0f - s.beta2);
  const __m256 c1 = _mm256_set1_ps(s.invC1), c2 = _mm256_set1_ps(s.invC2);
  const __m256 eps = _mm256_set1_ps(s.eps), lr = _mm256_set1_ps(s.lr), wd = _mm256_set1_ps(s.weightDecay);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    const __m256 gv = _mm256_loadu_ps(g + j);
    // Same operation order as adamOne (separate multiplies and adds, no fused rounding differences
    // beyond those of the multiply-add itself).
    const __m256 mv = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + j)), _mm256_mul_ps(nb1, gv));
    const __m256 vv = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + j)), _mm256_mul_ps(_mm256_mul_ps(nb2, gv), gv));
    _mm256_storeu_ps(m + j, mv);
    _mm256_storeu_ps(v + j, vv);
    const __m256 pv = _mm256_loadu_ps(p + j);
    const __m256 upd = _mm256_add_ps(_mm256_div_ps(_mm256_mul_ps(mv, c1), _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vv, c2)), eps)), _mm256_mul_ps(wd, pv));
    _mm256_storeu_ps(p + j, _mm256_sub_ps(pv, _mm256_mul_ps(lr, upd)));
  }
  for (; j < len; ++j) adamOne(p[j], g[j], m[j], v[j], s);
}

void sgdSpanAvx2(int64_t len, float* p, const float* g, float* vel, const SgdStep& s) {
  const __m256 lr = _mm256_set1_ps(s.lr), mom = _mm256_set1_ps(s.momentum), wd = _mm256_set1_ps(s.weightDecay);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    const __m256 pv = _mm256_loadu_ps(p + j);
    __m256 gv = _mm256_add_ps(_mm256_loadu_ps(g + j), _mm256_mul_ps(wd, pv));
    if (vel != nullptr) {
      const __m256 b = _mm256_add_ps(_mm256_mul_ps(mom, _mm256_loadu_ps(vel + j)), gv);
      _mm256_storeu_ps(vel + j, b);
      gv = s.nesterov ? _mm256_add_ps(gv, _mm256_mul_ps(mom, b)) : b;
    }
    _mm256_storeu_ps(p + j, _mm256_sub_ps(pv, _mm256_mul_ps(lr, gv)));
  }
  for (; j < len; ++j) sgdOne(p[j], g[j], vel ? vel + j : nullptr, s);
}

}  // namespace sparse

#endif
