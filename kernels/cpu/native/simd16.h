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


// ---- what the attention and elementwise kernels add ----

static inline V16 vmax(V16 a, V16 b) { return {_mm512_max_ps(a.v, b.v)}; }  // b where either is NaN
static inline V16 vmin(V16 a, V16 b) { return {_mm512_min_ps(a.v, b.v)}; }
static inline V16 vfnma(V16 a, V16 b, V16 c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }  // c - a*b, one rounding
// Sign flipped / cleared bitwise (AVX-512F has no float xor/and: the integer forms).
static inline V16 vneg(V16 a) { return {_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN)))}; }
static inline V16 vabs(V16 a) { return {_mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MAX)))}; }
static inline V16 vroundnear(V16 a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// 2^n for lanes holding integers n (the float's exponent field built directly; n in [-126, 127]).
static inline V16 vpow2i(V16 n) {
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127)), 23))};
}
static inline M16 mnone() { return {0}; }
static inline M16 mor(M16 a, M16 b) { return {static_cast<__mmask16>(a.k | b.k)}; }
static inline bool many(M16 a) { return a.k != 0; }
static inline M16 vcmplt(V16 a, V16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
static inline M16 vcmpgt(V16 a, V16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
static inline M16 vcmpunord(V16 a, V16 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_UNORD_Q)}; }
static inline V16 vsel(M16 m, V16 a, V16 b) { return {_mm512_mask_blend_ps(m.k, a.v, b.v)}; }  // m ? b : a
// Lanes of m from p, the others `fill`.
static inline V16 vloadmOr(const float* p, M16 m, V16 fill) { return {_mm512_mask_loadu_ps(fill.v, m.k, p)}; }
static inline float vhmax(V16 a) {
  __m512 t = _mm512_max_ps(a.v, _mm512_shuffle_f32x4(a.v, a.v, _MM_SHUFFLE(1, 0, 3, 2)));
  t = _mm512_max_ps(t, _mm512_shuffle_f32x4(t, t, _MM_SHUFFLE(2, 3, 0, 1)));
  __m128 x = _mm512_castps512_ps128(t);
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}
// Lane c = the next of the `count` packed values where bit c of `bits` (16 bits) is set, else 0. Reads
// values[0, count) only at the end of the array (16 plain lanes while they stay before `end`).
static inline V16 vexpand(const float* values, const float* end, uint32_t bits, int count) {
  const __m512 packed = end - values >= 16 ? _mm512_loadu_ps(values) : _mm512_maskz_loadu_ps(vtail(count).k, values);
  return {_mm512_maskz_expand_ps(static_cast<__mmask16>(bits), packed)};
}

// Doubles: lanes converted from and to floats, compares into masks, and the 64-bit integer view
// (the float64 exp builds 2^k from exponent bits).
struct DM8 {
  __mmask8 k;
};
struct I8 {
  __m512i v;
};
static inline D8 dadd(D8 a, D8 b) { return {_mm512_add_pd(a.v, b.v)}; }
static inline D8 dsub(D8 a, D8 b) { return {_mm512_sub_pd(a.v, b.v)}; }
static inline D8 ddiv(D8 a, D8 b) { return {_mm512_div_pd(a.v, b.v)}; }
static inline D8 dsqrt(D8 a) { return {_mm512_sqrt_pd(a.v)}; }
static inline D8 dneg(D8 a) { return {_mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(a.v), _mm512_set1_epi64(INT64_MIN)))}; }
static inline D8 dtrunc(D8 a) { return {_mm512_roundscale_pd(a.v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC)}; }
static inline D8 dsel(DM8 m, D8 a, D8 b) { return {_mm512_mask_blend_pd(m.k, a.v, b.v)}; }  // m ? b : a
static inline DM8 dcmpgt(D8 a, D8 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ)}; }
static inline DM8 dcmplt(D8 a, D8 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ)}; }
static inline DM8 dunord(D8 a) { return {_mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q)}; }
static inline D8 dlo(V16 a) { return {_mm512_cvtps_pd(_mm512_castps512_ps256(a.v))}; }  // lanes 0-7
static inline D8 dhi(V16 a) { return {_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1)))}; }
static inline V16 vfromd(D8 lo, D8 hi) {  // each lane rounded once to float
  const __m512d l = _mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo.v)));
  return {_mm512_castpd_ps(_mm512_insertf64x4(l, _mm256_castps_pd(_mm512_cvtpd_ps(hi.v)), 1))};
}
static inline D8 dloadf(const float* p) { return {_mm512_cvtps_pd(_mm256_loadu_ps(p))}; }  // 8 floats widened
static inline __m256d dlo4(D8 a) { return _mm512_castpd512_pd256(a.v); }
static inline __m256d dhi4(D8 a) { return _mm512_extractf64x4_pd(a.v, 1); }
static inline I8 iset(int64_t x) { return {_mm512_set1_epi64(x)}; }
static inline I8 dbits(D8 a) { return {_mm512_castpd_si512(a.v)}; }
static inline I8 ihigh(I8 a) { return {_mm512_srli_epi64(a.v, 32)}; }  // the upper 32 bits, zero-extended
static inline I8 iand(I8 a, I8 b) { return {_mm512_and_si512(a.v, b.v)}; }
static inline I8 iadd(I8 a, I8 b) { return {_mm512_add_epi64(a.v, b.v)}; }
static inline I8 imin(I8 a, I8 b) { return {_mm512_min_epi64(a.v, b.v)}; }
static inline DM8 igt(I8 a, I8 b) { return {_mm512_cmpgt_epi64_mask(a.v, b.v)}; }
static inline DM8 ieq(I8 a, I8 b) { return {_mm512_cmpeq_epi64_mask(a.v, b.v)}; }
static inline I8 dtoi(D8 a) { return {_mm512_cvtepi32_epi64(_mm512_cvttpd_epi32(a.v))}; }  // truncated, through int32
static inline D8 dpow2(I8 e) { return {_mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(e.v, _mm512_set1_epi64(0x3ff)), 52))}; }

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


// ---- what the attention and elementwise kernels add ----

static inline V16 vmax(V16 a, V16 b) { return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)}; }
static inline V16 vmin(V16 a, V16 b) { return {_mm256_min_ps(a.lo, b.lo), _mm256_min_ps(a.hi, b.hi)}; }
static inline V16 vfnma(V16 a, V16 b, V16 c) { return {_mm256_fnmadd_ps(a.lo, b.lo, c.lo), _mm256_fnmadd_ps(a.hi, b.hi, c.hi)}; }
static inline V16 vneg(V16 a) {
  const __m256 s = _mm256_set1_ps(-0.0f);
  return {_mm256_xor_ps(a.lo, s), _mm256_xor_ps(a.hi, s)};
}
static inline V16 vabs(V16 a) {
  const __m256 s = _mm256_set1_ps(-0.0f);
  return {_mm256_andnot_ps(s, a.lo), _mm256_andnot_ps(s, a.hi)};
}
static inline V16 vroundnear(V16 a) {
  return {_mm256_round_ps(a.lo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), _mm256_round_ps(a.hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
static inline __m256 pow2i8(__m256 n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
static inline V16 vpow2i(V16 n) { return {pow2i8(n.lo), pow2i8(n.hi)}; }
static inline M16 mnone() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
static inline M16 mor(M16 a, M16 b) { return {_mm256_or_si256(a.lo, b.lo), _mm256_or_si256(a.hi, b.hi)}; }
static inline bool many(M16 a) { return _mm256_testz_si256(_mm256_or_si256(a.lo, a.hi), _mm256_set1_epi32(-1)) == 0; }
#define SPARSE_V16_CMP(name, pred)                                                                   \
  static inline M16 name(V16 a, V16 b) {                                                           \
    return {_mm256_castps_si256(_mm256_cmp_ps(a.lo, b.lo, pred)), _mm256_castps_si256(_mm256_cmp_ps(a.hi, b.hi, pred))}; \
  }
SPARSE_V16_CMP(vcmplt, _CMP_LT_OQ)
SPARSE_V16_CMP(vcmpgt, _CMP_GT_OQ)
SPARSE_V16_CMP(vcmpunord, _CMP_UNORD_Q)
#undef SPARSE_V16_CMP
static inline V16 vsel(M16 m, V16 a, V16 b) {
  return {_mm256_blendv_ps(a.lo, b.lo, _mm256_castsi256_ps(m.lo)), _mm256_blendv_ps(a.hi, b.hi, _mm256_castsi256_ps(m.hi))};
}
static inline V16 vloadmOr(const float* p, M16 m, V16 fill) { return vsel(m, fill, vloadm(p, m)); }
static inline float vhmax(V16 a) {
  const __m256 s = _mm256_max_ps(a.lo, a.hi);
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}
// ExpandTable8 (expand_table.h, included by kernels_wide.inc at file scope): compile-time data only.
static constexpr ExpandTable8 kExpandTable8{};
static inline __m256 expand8(const float* values, const float* end, unsigned b, int count) {
  const __m256 packed = end - values >= 8 ? _mm256_loadu_ps(values) : _mm256_maskload_ps(values, laneMask8(count));
  const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kExpandTable8.perm[b]));
  const __m256 keep = _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(kExpandTable8.keep[b])));
  return _mm256_and_ps(_mm256_permutevar8x32_ps(packed, perm), keep);
}
static inline V16 vexpand(const float* values, const float* end, uint32_t bits, int count) {
  const unsigned b0 = bits & 0xffu, b1 = (bits >> 8) & 0xffu;
  const int c0 = __builtin_popcount(b0);
  return {expand8(values, end, b0, c0), expand8(values + c0, end, b1, count - c0)};
}

struct DM8 {
  __m256d lo, hi;
};
struct I8 {
  __m256i lo, hi;
};
static inline D8 dadd(D8 a, D8 b) { return {_mm256_add_pd(a.lo, b.lo), _mm256_add_pd(a.hi, b.hi)}; }
static inline D8 dsub(D8 a, D8 b) { return {_mm256_sub_pd(a.lo, b.lo), _mm256_sub_pd(a.hi, b.hi)}; }
static inline D8 ddiv(D8 a, D8 b) { return {_mm256_div_pd(a.lo, b.lo), _mm256_div_pd(a.hi, b.hi)}; }
static inline D8 dsqrt(D8 a) { return {_mm256_sqrt_pd(a.lo), _mm256_sqrt_pd(a.hi)}; }
static inline D8 dneg(D8 a) {
  const __m256d s = _mm256_set1_pd(-0.0);
  return {_mm256_xor_pd(a.lo, s), _mm256_xor_pd(a.hi, s)};
}
static inline D8 dtrunc(D8 a) {
  return {_mm256_round_pd(a.lo, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC), _mm256_round_pd(a.hi, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC)};
}
static inline D8 dsel(DM8 m, D8 a, D8 b) { return {_mm256_blendv_pd(a.lo, b.lo, m.lo), _mm256_blendv_pd(a.hi, b.hi, m.hi)}; }
static inline DM8 dcmpgt(D8 a, D8 b) { return {_mm256_cmp_pd(a.lo, b.lo, _CMP_GT_OQ), _mm256_cmp_pd(a.hi, b.hi, _CMP_GT_OQ)}; }
static inline DM8 dcmplt(D8 a, D8 b) { return {_mm256_cmp_pd(a.lo, b.lo, _CMP_LT_OQ), _mm256_cmp_pd(a.hi, b.hi, _CMP_LT_OQ)}; }
static inline DM8 dunord(D8 a) { return {_mm256_cmp_pd(a.lo, a.lo, _CMP_UNORD_Q), _mm256_cmp_pd(a.hi, a.hi, _CMP_UNORD_Q)}; }
static inline D8 dlo(V16 a) { return {_mm256_cvtps_pd(_mm256_castps256_ps128(a.lo)), _mm256_cvtps_pd(_mm256_extractf128_ps(a.lo, 1))}; }
static inline D8 dhi(V16 a) { return {_mm256_cvtps_pd(_mm256_castps256_ps128(a.hi)), _mm256_cvtps_pd(_mm256_extractf128_ps(a.hi, 1))}; }
static inline V16 vfromd(D8 lo, D8 hi) {
  return {_mm256_set_m128(_mm256_cvtpd_ps(lo.hi), _mm256_cvtpd_ps(lo.lo)), _mm256_set_m128(_mm256_cvtpd_ps(hi.hi), _mm256_cvtpd_ps(hi.lo))};
}
static inline D8 dloadf(const float* p) { return {_mm256_cvtps_pd(_mm_loadu_ps(p)), _mm256_cvtps_pd(_mm_loadu_ps(p + 4))}; }
static inline __m256d dlo4(D8 a) { return a.lo; }
static inline __m256d dhi4(D8 a) { return a.hi; }
static inline I8 iset(int64_t x) { return {_mm256_set1_epi64x(x), _mm256_set1_epi64x(x)}; }
static inline I8 dbits(D8 a) { return {_mm256_castpd_si256(a.lo), _mm256_castpd_si256(a.hi)}; }
static inline I8 ihigh(I8 a) { return {_mm256_srli_epi64(a.lo, 32), _mm256_srli_epi64(a.hi, 32)}; }
static inline I8 iand(I8 a, I8 b) { return {_mm256_and_si256(a.lo, b.lo), _mm256_and_si256(a.hi, b.hi)}; }
static inline I8 iadd(I8 a, I8 b) { return {_mm256_add_epi64(a.lo, b.lo), _mm256_add_epi64(a.hi, b.hi)}; }
static inline I8 imin(I8 a, I8 b) {
  return {_mm256_blendv_epi8(a.lo, b.lo, _mm256_cmpgt_epi64(a.lo, b.lo)), _mm256_blendv_epi8(a.hi, b.hi, _mm256_cmpgt_epi64(a.hi, b.hi))};
}
static inline DM8 igt(I8 a, I8 b) { return {_mm256_castsi256_pd(_mm256_cmpgt_epi64(a.lo, b.lo)), _mm256_castsi256_pd(_mm256_cmpgt_epi64(a.hi, b.hi))}; }
static inline DM8 ieq(I8 a, I8 b) { return {_mm256_castsi256_pd(_mm256_cmpeq_epi64(a.lo, b.lo)), _mm256_castsi256_pd(_mm256_cmpeq_epi64(a.hi, b.hi))}; }
static inline I8 dtoi(D8 a) { return {_mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(a.lo)), _mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(a.hi))}; }
static inline __m256i pow2e4(__m256i e) { return _mm256_slli_epi64(_mm256_add_epi64(e, _mm256_set1_epi64x(0x3ff)), 52); }
static inline D8 dpow2(I8 e) { return {_mm256_castsi256_pd(pow2e4(e.lo)), _mm256_castsi256_pd(pow2e4(e.hi))}; }

#else
#error "simd16.h needs -mavx512f, or -mavx2 -mfma for the emulated build"
#endif

static inline V16 vbroadcast(const float* p) { return vset(*p); }
// ((a lanes 0-3 + a lanes 4-7) + (b lanes 0-3 + b lanes 4-7)), then (l0 + l2) + (l1 + l3): the order of
// the AVX2 row sum's four accumulators, so both families give the same bits.
static inline double dsumQuads(D8 a, D8 b) {
  const __m256d s = _mm256_add_pd(_mm256_add_pd(dlo4(a), dhi4(a)), _mm256_add_pd(dlo4(b), dhi4(b)));
  __m128d x = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  x = _mm_add_sd(x, _mm_unpackhi_pd(x, x));
  return _mm_cvtsd_f64(x);
}
