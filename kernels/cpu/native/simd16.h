// A 16-float vector for the wide kernels, written once and compiled two ways: with AVX-512 (one zmm
// register, opmask tails) where the translation unit is built with -mavx512f, and as two ymm halves
// where it is built with only -mavx2 -mfma (the avx512-emu family: the same kernel logic, testable on
// any AVX2 machine). Include it only from a wide translation unit, inside that unit's own namespace
// (every function here is static, so the two builds never share a definition).
#pragma once

#include <immintrin.h>

#include <cstdint>

#if defined(__AVX512F__)

struct V16 {
  __m512 v;
};
struct M16 {  // lanes [0, n) of a tail
  __mmask16 k;
};

static inline V16 vzero() { return {_mm512_setzero_ps()}; }
static inline V16 vset(float x) { return {_mm512_set1_ps(x)}; }
static inline V16 vload(const float* p) { return {_mm512_loadu_ps(p)}; }
static inline void vstore(float* p, V16 a) { _mm512_storeu_ps(p, a.v); }
static inline M16 vtail(int64_t lanes) {
  return {static_cast<__mmask16>(lanes >= 16 ? 0xFFFFu : ((1u << static_cast<unsigned>(lanes)) - 1u))};
}
static inline V16 vloadm(const float* p, M16 m) { return {_mm512_maskz_loadu_ps(m.k, p)}; }
static inline void vstorem(float* p, M16 m, V16 a) { _mm512_mask_storeu_ps(p, m.k, a.v); }
static inline V16 vfma(V16 a, V16 b, V16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
static inline V16 vadd(V16 a, V16 b) { return {_mm512_add_ps(a.v, b.v)}; }
static inline V16 vsub(V16 a, V16 b) { return {_mm512_sub_ps(a.v, b.v)}; }
static inline V16 vmul(V16 a, V16 b) { return {_mm512_mul_ps(a.v, b.v)}; }
static inline V16 vdiv(V16 a, V16 b) { return {_mm512_div_ps(a.v, b.v)}; }
static inline V16 vsqrt(V16 a) { return {_mm512_sqrt_ps(a.v)}; }
static inline V16 vand(V16 a, V16 b) { return {_mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a.v), _mm512_castps_si512(b.v)))}; }
static inline V16 vgather(const float* base, const int32_t* idx) {
  return {_mm512_i32gather_ps(_mm512_loadu_si512(idx), base, 4)};
}
static inline float vhsum(V16 a) {
  __m512 t = _mm512_add_ps(a.v, _mm512_shuffle_f32x4(a.v, a.v, _MM_SHUFFLE(1, 0, 3, 2)));
  t = _mm512_add_ps(t, _mm512_shuffle_f32x4(t, t, _MM_SHUFFLE(2, 3, 0, 1)));
  __m128 x = _mm512_castps512_ps128(t);
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}
static inline void vprefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

// Eight doubles (the float64 kernels of the linear algebra).
struct D8 {
  __m512d v;
};
static inline D8 dzero() { return {_mm512_setzero_pd()}; }
static inline D8 dset(double x) { return {_mm512_set1_pd(x)}; }
static inline D8 dload(const double* p) { return {_mm512_loadu_pd(p)}; }
static inline void dstore(double* p, D8 a) { _mm512_storeu_pd(p, a.v); }
static inline D8 dfma(D8 a, D8 b, D8 c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
static inline D8 dmul(D8 a, D8 b) { return {_mm512_mul_pd(a.v, b.v)}; }

#elif defined(__AVX2__) && defined(__FMA__)

struct V16 {
  __m256 lo, hi;
};
struct M16 {
  __m256i lo, hi;
};

static inline __m256i laneMask8(int64_t lanes) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int n = lanes < 0 ? 0 : lanes > 8 ? 8 : static_cast<int>(lanes);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

static inline V16 vzero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
static inline V16 vset(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
static inline V16 vload(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
static inline void vstore(float* p, V16 a) {
  _mm256_storeu_ps(p, a.lo);
  _mm256_storeu_ps(p + 8, a.hi);
}
static inline M16 vtail(int64_t lanes) { return {laneMask8(lanes), laneMask8(lanes - 8)}; }
static inline V16 vloadm(const float* p, M16 m) { return {_mm256_maskload_ps(p, m.lo), _mm256_maskload_ps(p + 8, m.hi)}; }
static inline void vstorem(float* p, M16 m, V16 a) {
  _mm256_maskstore_ps(p, m.lo, a.lo);
  _mm256_maskstore_ps(p + 8, m.hi, a.hi);
}
static inline V16 vfma(V16 a, V16 b, V16 c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
static inline V16 vadd(V16 a, V16 b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
static inline V16 vsub(V16 a, V16 b) { return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
static inline V16 vmul(V16 a, V16 b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
static inline V16 vdiv(V16 a, V16 b) { return {_mm256_div_ps(a.lo, b.lo), _mm256_div_ps(a.hi, b.hi)}; }
static inline V16 vsqrt(V16 a) { return {_mm256_sqrt_ps(a.lo), _mm256_sqrt_ps(a.hi)}; }
static inline V16 vand(V16 a, V16 b) { return {_mm256_and_ps(a.lo, b.lo), _mm256_and_ps(a.hi, b.hi)}; }
static inline V16 vgather(const float* base, const int32_t* idx) {
  return {_mm256_i32gather_ps(base, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)), 4),
          _mm256_i32gather_ps(base, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + 8)), 4)};
}
static inline float vhsum(V16 a) {
  const __m256 s = _mm256_add_ps(a.lo, a.hi);
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}
static inline void vprefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

struct D8 {
  __m256d lo, hi;
};
static inline D8 dzero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
static inline D8 dset(double x) { return {_mm256_set1_pd(x), _mm256_set1_pd(x)}; }
static inline D8 dload(const double* p) { return {_mm256_loadu_pd(p), _mm256_loadu_pd(p + 4)}; }
static inline void dstore(double* p, D8 a) {
  _mm256_storeu_pd(p, a.lo);
  _mm256_storeu_pd(p + 4, a.hi);
}
static inline D8 dfma(D8 a, D8 b, D8 c) { return {_mm256_fmadd_pd(a.lo, b.lo, c.lo), _mm256_fmadd_pd(a.hi, b.hi, c.hi)}; }
static inline D8 dmul(D8 a, D8 b) { return {_mm256_mul_pd(a.lo, b.lo), _mm256_mul_pd(a.hi, b.hi)}; }

#else
#error "simd16.h needs -mavx512f, or -mavx2 -mfma for the emulated build"
#endif

static inline V16 vbroadcast(const float* p) { return vset(*p); }
