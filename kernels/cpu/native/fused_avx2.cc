// The fused activations (GELU tanh form, SiLU, the SwiGLU gate) on AVX2 + FMA, eight lanes at a
// time: the portable loops call the C library's expf once per value, which made them compute-bound
// (about 2 ns a value); here the sigmoid uses exp256 (simd_avx2.h, 1-2 ulp). The last partial
// vector goes through masked loads and stores, so every value is computed by the same code.
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "fused.h"
#include "simd_avx2.h"

namespace sparse {
namespace {

using namespace avx2;  // laneMask, exp256

// 1 / (1 + exp(-z)): 0 for z below about -88 (exp overflows to inf), 1 above about 87.
inline __m256 sigmoid256(__m256 z) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), z))));
}

// Runs body(offset, mask, lanes) over [0, n) in vectors of eight, the tail masked.
template <typename Body>
inline void vectorLoop(int64_t n, const Body& body) {
  const __m256i all = laneMask(8);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) body(i, all, false);
  if (i < n) body(i, laneMask(n - i), true);
}

inline __m256 load(const float* p, __m256i mask, bool masked) { return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p); }
inline void store(float* p, __m256 v, __m256i mask, bool masked) {
  if (masked) {
    _mm256_maskstore_ps(p, mask, v);
  } else {
    _mm256_storeu_ps(p, v);
  }
}

}  // namespace

void fusedActForwardAvx2(FusedAct op, const float* x, const float* b, float* y, int64_t n) {
  const __m256 ga = _mm256_set1_ps(kGeluTanhA);
  const __m256 gb = _mm256_set1_ps(kGeluTanhB);
  vectorLoop(n, [&](int64_t i, __m256i mask, bool masked) {
    const __m256 v = load(x + i, mask, masked);
    __m256 out;
    if (op == FusedAct::GeluTanh) {
      out = _mm256_mul_ps(v, sigmoid256(_mm256_mul_ps(v, _mm256_fmadd_ps(gb, _mm256_mul_ps(v, v), ga))));
    } else if (op == FusedAct::Silu) {
      out = _mm256_mul_ps(v, sigmoid256(v));
    } else {
      out = _mm256_mul_ps(_mm256_mul_ps(v, sigmoid256(v)), load(b + i, mask, masked));
    }
    store(y + i, out, mask, masked);
  });
}

void fusedActBackwardAvx2(FusedAct op, const float* dy, const float* x, const float* b, float* dx, float* db, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 ga = _mm256_set1_ps(kGeluTanhA);
  const __m256 gb = _mm256_set1_ps(kGeluTanhB);
  const __m256 gb3 = _mm256_set1_ps(3.0f * kGeluTanhB);
  vectorLoop(n, [&](int64_t i, __m256i mask, bool masked) {
    const __m256 v = load(x + i, mask, masked);
    const __m256 g = load(dy + i, mask, masked);
    if (op == FusedAct::GeluTanh) {
      // d/dx x s(u(x)) = s + x s (1 - s) u'(x), u = x (A + B x²), u' = A + 3 B x²
      const __m256 v2 = _mm256_mul_ps(v, v);
      const __m256 s = sigmoid256(_mm256_mul_ps(v, _mm256_fmadd_ps(gb, v2, ga)));
      const __m256 du = _mm256_fmadd_ps(gb3, v2, ga);
      const __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(v, s), _mm256_sub_ps(one, s)), du, s);
      store(dx + i, _mm256_mul_ps(g, d), mask, masked);
    } else if (op == FusedAct::Silu) {
      const __m256 s = sigmoid256(v);
      const __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(v, s), _mm256_sub_ps(one, s), s);
      store(dx + i, _mm256_mul_ps(g, d), mask, masked);
    } else {
      const __m256 s = sigmoid256(v);
      const __m256 silu = _mm256_mul_ps(v, s);
      const __m256 d = _mm256_fmadd_ps(silu, _mm256_sub_ps(one, s), s);
      store(dx + i, _mm256_mul_ps(_mm256_mul_ps(g, load(b + i, mask, masked)), d), mask, masked);
      store(db + i, _mm256_mul_ps(g, silu), mask, masked);
    }
  });
}

}  // namespace sparse

#else
#error "fused_avx2.cc must be compiled with -mavx2 -mfma"
#endif
