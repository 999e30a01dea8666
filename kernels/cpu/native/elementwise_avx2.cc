// AVX2 spans of the elementwise kernels (compiled with -mavx2 -mfma, used only after the run-time
// CPU check). Each lane does the float32 operation the portable span does, so results are the same
// bits; tails go through lane masks, so nothing past the given lengths is read or written. No
// expression here has a multiply feeding an add, so FMA contraction cannot change a result.
#include "elementwise.h"
#include "elementwise_exp.h"  // also turns FMA contraction off for this file

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "simd_avx2.h"

#include <limits>

namespace sparse {

using namespace avx2;  // laneMask, hsum, hmax, exp256
namespace {

struct AddV {
  static __m256 f(__m256 x, __m256 y) { return _mm256_add_ps(x, y); }
};
struct SubV {
  static __m256 f(__m256 x, __m256 y) { return _mm256_sub_ps(x, y); }
};
struct MulV {
  static __m256 f(__m256 x, __m256 y) { return _mm256_mul_ps(x, y); }
};
struct DivV {
  static __m256 f(__m256 x, __m256 y) { return _mm256_div_ps(x, y); }
};

// Loads 8 lanes of p (S: advancing) or 8 copies of p[0]; the tail variant reads only `mk` lanes.
template <bool S>
inline __m256 load(const float* p, int64_t i) {
  return S ? _mm256_loadu_ps(p + i) : _mm256_broadcast_ss(p);
}
template <bool S>
inline __m256 loadTail(const float* p, int64_t i, __m256i mk) {
  return S ? _mm256_maskload_ps(p + i, mk) : _mm256_broadcast_ss(p);
}

template <class Op, bool SA, bool SB>
void binaryLoop(int64_t n, const float* a, const float* b, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(out + i, Op::f(load<SA>(a, i), load<SB>(b, i)));
    _mm256_storeu_ps(out + i + 8, Op::f(load<SA>(a, i + 8), load<SB>(b, i + 8)));
  }
  for (; i < n; i += 8) {
    const __m256i mk = laneMask(n - i);
    _mm256_maskstore_ps(out + i, mk, Op::f(loadTail<SA>(a, i, mk), loadTail<SB>(b, i, mk)));
  }
}

template <class Op>
void binarySpan(int64_t n, const float* a, int64_t sa, const float* b, int64_t sb, float* out) {
  if (sa != 0 && sb != 0) binaryLoop<Op, true, true>(n, a, b, out);
  else if (sa != 0) binaryLoop<Op, true, false>(n, a, b, out);
  else if (sb != 0) binaryLoop<Op, false, true>(n, a, b, out);
  else binaryLoop<Op, false, false>(n, a, b, out);
}

template <class F>
inline void unaryLoop(int64_t n, const float* x, float* out, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(out + i, f(_mm256_loadu_ps(x + i)));
    _mm256_storeu_ps(out + i + 8, f(_mm256_loadu_ps(x + i + 8)));
  }
  for (; i < n; i += 8) {
    const __m256i mk = laneMask(n - i);
    _mm256_maskstore_ps(out + i, mk, f(_mm256_maskload_ps(x + i, mk)));
  }
}

void negSpan(int64_t n, const float* x, float* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  unaryLoop(n, x, out, [sign](__m256 v) { return _mm256_xor_ps(v, sign); });
}
void absSpan(int64_t n, const float* x, float* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  unaryLoop(n, x, out, [sign](__m256 v) { return _mm256_andnot_ps(sign, v); });
}
void squareSpan(int64_t n, const float* x, float* out) {
  unaryLoop(n, x, out, [](__m256 v) { return _mm256_mul_ps(v, v); });
}
void sqrtSpan(int64_t n, const float* x, float* out) {
  unaryLoop(n, x, out, [](__m256 v) { return _mm256_sqrt_ps(v); });
}
// In float64, as tfjs does: 1 / sqrt(x) rounded twice there, then to float32.
void rsqrtSpan(int64_t n, const float* x, float* out) {
  const __m256d one = _mm256_set1_pd(1.0);
  unaryLoop(n, x, out, [one](__m256 v) {
    const __m256d lo = _mm256_div_pd(one, _mm256_sqrt_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    const __m256d hi = _mm256_div_pd(one, _mm256_sqrt_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
    return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
  });
}
void reciprocalSpan(int64_t n, const float* x, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  unaryLoop(n, x, out, [one](__m256 v) { return _mm256_div_ps(one, v); });
}
// Math.max(0, x): keeps lanes that are > 0 or NaN, +0 elsewhere (-0 included).
void reluSpan(int64_t n, const float* x, float* out) {
  const __m256 zero = _mm256_setzero_ps();
  unaryLoop(n, x, out, [zero](__m256 v) {
    const __m256 keep = _mm256_or_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    return _mm256_and_ps(v, keep);
  });
}

// fdlibmExp (elementwise_exp.h) on four lanes: every branch computed, the lane's own picked, each
// with the same float64 operations in the same order, so each lane gets exactly its scalar result.
inline __m256d exp4(__m256d x) {
  const __m256i bits = _mm256_castpd_si256(x);
  const __m256i hx = _mm256_and_si256(_mm256_srli_epi64(bits, 32), _mm256_set1_epi64x(0x7fffffff));
  const __m256d negative = _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_setzero_si256(), bits));
  auto above = [&](int64_t v) { return _mm256_castsi256_pd(_mm256_cmpgt_epi64(hx, _mm256_set1_epi64x(v))); };
  const __m256d one = _mm256_set1_pd(1.0), two = _mm256_set1_pd(2.0);
  const __m256d ln2Hi = _mm256_set1_pd(kExpLn2Hi), ln2Lo = _mm256_set1_pd(kExpLn2Lo);
  // |x| in (0.5 ln2, 1.5 ln2): k = +-1, hi = x -+ ln2Hi, lo = +-ln2Lo.
  const __m256d k1 = _mm256_blendv_pd(one, _mm256_set1_pd(-1.0), negative);
  const __m256d hi1 = _mm256_sub_pd(x, _mm256_blendv_pd(ln2Hi, _mm256_set1_pd(-kExpLn2Hi), negative));
  const __m256d lo1 = _mm256_blendv_pd(ln2Lo, _mm256_set1_pd(-kExpLn2Lo), negative);
  // Larger |x|: k = trunc(x / ln2 +- 0.5), hi = x - k ln2Hi, lo = k ln2Lo.
  const __m256d half = _mm256_blendv_pd(_mm256_set1_pd(0.5), _mm256_set1_pd(-0.5), negative);
  const __m256d kb = _mm256_round_pd(_mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(kExpInvLn2), x), half), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256d hiB = _mm256_sub_pd(x, _mm256_mul_pd(kb, ln2Hi));
  const __m256d loB = _mm256_mul_pd(kb, ln2Lo);
  const __m256d big = above(0x3FF0A2B2 - 1);  // hx >= 0x3FF0A2B2
  const __m256d reduced = above(0x3fd62e42);  // hx > 0x3fd62e42: k != 0
  const __m256d k = _mm256_and_pd(reduced, _mm256_blendv_pd(k1, kb, big));
  const __m256d hi = _mm256_blendv_pd(hi1, hiB, big);
  const __m256d lo = _mm256_blendv_pd(lo1, loB, big);
  const __m256d r = _mm256_blendv_pd(x, _mm256_sub_pd(hi, lo), reduced);
  const __m256d t = _mm256_mul_pd(r, r);
  __m256d p = _mm256_add_pd(_mm256_set1_pd(kExpP4), _mm256_mul_pd(t, _mm256_set1_pd(kExpP5)));
  p = _mm256_add_pd(_mm256_set1_pd(kExpP3), _mm256_mul_pd(t, p));
  p = _mm256_add_pd(_mm256_set1_pd(kExpP2), _mm256_mul_pd(t, p));
  p = _mm256_add_pd(_mm256_set1_pd(kExpP1), _mm256_mul_pd(t, p));
  const __m256d c = _mm256_sub_pd(r, _mm256_mul_pd(t, p));
  const __m256d rc = _mm256_mul_pd(r, c);
  // k == 0: 1 - (r c / (c - 2) - r).
  const __m256d y0 = _mm256_sub_pd(one, _mm256_sub_pd(_mm256_div_pd(rc, _mm256_sub_pd(c, two)), r));
  // Otherwise y = 1 - ((lo - r c / (2 - c)) - hi), times 2^k: built from the exponent bits, in two
  // steps below 2^-1021 (a subnormal result) and as 2 * 2^1023 for k = 1024, as there.
  const __m256d y = _mm256_sub_pd(one, _mm256_sub_pd(_mm256_sub_pd(lo, _mm256_div_pd(rc, _mm256_sub_pd(two, c))), hi));
  const __m256i ki = _mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(k));
  auto pow2 = [](__m256i e) { return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(e, _mm256_set1_epi64x(0x3ff)), 52)); };
  const __m256i kNormal = _mm256_min_epi32(ki, _mm256_set1_epi64x(1023));  // k <= 1024; lanes are small
  const __m256d scaled = _mm256_mul_pd(y, pow2(kNormal));
  const __m256d scaled1024 = _mm256_mul_pd(_mm256_mul_pd(y, two), _mm256_set1_pd(kExpTwo1023));
  const __m256d scaledTiny = _mm256_mul_pd(_mm256_mul_pd(y, pow2(_mm256_add_epi64(ki, _mm256_set1_epi64x(1000)))), _mm256_set1_pd(kExpTwoM1000));
  const __m256d is1024 = _mm256_castsi256_pd(_mm256_cmpeq_epi64(ki, _mm256_set1_epi64x(1024)));
  const __m256d tiny = _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_set1_epi64x(-1021), ki));
  __m256d res = _mm256_blendv_pd(_mm256_blendv_pd(scaled, scaled1024, is1024), scaledTiny, tiny);
  res = _mm256_blendv_pd(y0, res, reduced);
  // |x| < 2^-28: 1 + x.
  res = _mm256_blendv_pd(_mm256_add_pd(one, x), res, above(0x3e300000 - 1));
  // Overflow, underflow, infinities and NaN.
  const __m256d over = _mm256_cmp_pd(x, _mm256_set1_pd(kExpOverflow), _CMP_GT_OQ);
  const __m256d under = _mm256_cmp_pd(x, _mm256_set1_pd(kExpUnderflow), _CMP_LT_OQ);
  res = _mm256_blendv_pd(res, _mm256_set1_pd(HUGE_VAL), over);
  res = _mm256_andnot_pd(under, res);
  return _mm256_blendv_pd(res, _mm256_add_pd(x, x), _mm256_cmp_pd(x, x, _CMP_UNORD_Q));
}

// Float32 lanes widened to float64 in two halves, f applied, narrowed with one rounding each.
template <class F>
inline __m256 viaDouble(__m256 v, F f) {
  const __m256d lo = f(_mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  const __m256d hi = f(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
}

// Math.exp(x), rounded to float32.
void expSpan(int64_t n, const float* x, float* out) {
  unaryLoop(n, x, out, [](__m256 v) { return viaDouble(v, exp4); });
}
// 1 / (1 + Math.exp(-x)) in float64, rounded to float32.
void sigmoidSpan(int64_t n, const float* x, float* out) {
  const __m256d one = _mm256_set1_pd(1.0), sign = _mm256_set1_pd(-0.0);
  unaryLoop(n, x, out, [=](__m256 v) {
    return viaDouble(v, [=](__m256d d) { return _mm256_div_pd(one, _mm256_add_pd(one, exp4(_mm256_xor_pd(d, sign)))); });
  });
}

inline double hsumPd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

// Float64 accumulation in four interleaved vectors (16 columns apart), rounded once at the end.
float sumRow(int64_t n, const float* x) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
    s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
    s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
  }
  double s = hsumPd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
  for (; i < n; ++i) s += x[i];
  return static_cast<float>(s);
}

// NaN anywhere gives NaN; otherwise the largest value, and when that is zero the first zero of the
// row, so its sign is the one tfjs-backend-cpu's left-to-right scan keeps.
float maxRow(int64_t n, const float* x) {
  const __m256 negInf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m0 = negInf, m1 = negInf;
  __m256 nan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));
    m0 = _mm256_max_ps(m0, v0);
    m1 = _mm256_max_ps(m1, v1);
  }
  for (; i < n; i += 8) {
    const __m256i mk = laneMask(n - i);
    const __m256 v = _mm256_blendv_ps(negInf, _mm256_maskload_ps(x + i, mk), _mm256_castsi256_ps(mk));
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    m0 = _mm256_max_ps(m0, v);
  }
  if (_mm256_movemask_ps(nan) != 0) return std::numeric_limits<float>::quiet_NaN();
  __m256 m = _mm256_max_ps(m0, m1);
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  const float best = _mm_cvtss_f32(h);
  if (best == 0.0f) {
    for (int64_t j = 0; j < n; ++j)
      if (x[j] == 0.0f) return x[j];
  }
  return best;
}

}  // namespace

// In the order of the op enums (elementwise.h).
ElementwiseDispatch elementwiseSpansAvx2() {
  return ElementwiseDispatch{{binarySpan<AddV>, binarySpan<SubV>, binarySpan<MulV>, binarySpan<DivV>},
                             {negSpan, absSpan, squareSpan, sqrtSpan, rsqrtSpan, reciprocalSpan, reluSpan, expSpan, sigmoidSpan},
                             {sumRow, maxRow}};
}

}  // namespace sparse

#endif
