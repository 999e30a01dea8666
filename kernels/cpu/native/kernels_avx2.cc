// AVX2 + FMA micro-kernels. This translation unit alone is compiled with -mavx2 -mfma; nothing in
// it runs unless cpu.cc has confirmed at run time that the CPU and OS support both.
#include "gemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace sparse {

namespace {

inline void storeRow(float* c, __m256 acc0, __m256 acc1, __m256 va, __m256 vb, int mode) {
  // mode 0: overwrite (beta == 0, C never read); 1: accumulate (beta == 1); 2: general beta.
  if (mode == 0) {
    _mm256_storeu_ps(c, _mm256_mul_ps(va, acc0));
    _mm256_storeu_ps(c + 8, _mm256_mul_ps(va, acc1));
  } else if (mode == 1) {
    _mm256_storeu_ps(c, _mm256_fmadd_ps(va, acc0, _mm256_loadu_ps(c)));
    _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, acc1, _mm256_loadu_ps(c + 8)));
  } else {
    _mm256_storeu_ps(c, _mm256_fmadd_ps(va, acc0, _mm256_mul_ps(vb, _mm256_loadu_ps(c))));
    _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, acc1, _mm256_mul_ps(vb, _mm256_loadu_ps(c + 8))));
  }
}

}  // namespace

// 6x16 tile: 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers.
void microKernelAvx2(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha, float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

  // Warm the C tile while the product runs; it is touched only at the end.
  for (int r = 0; r < kMR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNR - 1), _MM_HINT_T0);
  }

#define SPARSE_STEP(P)                                                       \
  {                                                                          \
    const __m256 b0 = _mm256_load_ps(bp + (P) * kNR);                        \
    const __m256 b1 = _mm256_load_ps(bp + (P) * kNR + 8);                    \
    __m256 a = _mm256_broadcast_ss(ap + (P) * kMR + 0);                      \
    c00 = _mm256_fmadd_ps(a, b0, c00);                                       \
    c01 = _mm256_fmadd_ps(a, b1, c01);                                       \
    a = _mm256_broadcast_ss(ap + (P) * kMR + 1);                             \
    c10 = _mm256_fmadd_ps(a, b0, c10);                                       \
    c11 = _mm256_fmadd_ps(a, b1, c11);                                       \
    a = _mm256_broadcast_ss(ap + (P) * kMR + 2);                             \
    c20 = _mm256_fmadd_ps(a, b0, c20);                                       \
    c21 = _mm256_fmadd_ps(a, b1, c21);                                       \
    a = _mm256_broadcast_ss(ap + (P) * kMR + 3);                             \
    c30 = _mm256_fmadd_ps(a, b0, c30);                                       \
    c31 = _mm256_fmadd_ps(a, b1, c31);                                       \
    a = _mm256_broadcast_ss(ap + (P) * kMR + 4);                             \
    c40 = _mm256_fmadd_ps(a, b0, c40);                                       \
    c41 = _mm256_fmadd_ps(a, b1, c41);                                       \
    a = _mm256_broadcast_ss(ap + (P) * kMR + 5);                             \
    c50 = _mm256_fmadd_ps(a, b0, c50);                                       \
    c51 = _mm256_fmadd_ps(a, b1, c51);                                       \
  }

  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(ap + 16 * kMR), _MM_HINT_T0);
    SPARSE_STEP(0)
    SPARSE_STEP(1)
    SPARSE_STEP(2)
    SPARSE_STEP(3)
    ap += 4 * kMR;
    bp += 4 * kNR;
  }
  for (; p < kc; ++p) {
    SPARSE_STEP(0)
    ap += kMR;
    bp += kNR;
  }
#undef SPARSE_STEP

  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  const int mode = beta == 0.0f ? 0 : (beta == 1.0f ? 1 : 2);
  storeRow(c + 0 * ldc, c00, c01, va, vb, mode);
  storeRow(c + 1 * ldc, c10, c11, va, vb, mode);
  storeRow(c + 2 * ldc, c20, c21, va, vb, mode);
  storeRow(c + 3 * ldc, c30, c31, va, vb, mode);
  storeRow(c + 4 * ldc, c40, c41, va, vb, mode);
  storeRow(c + 5 * ldc, c50, c51, va, vb, mode);
}

namespace {

inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

template <int R>
void multiDotR(int64_t k, const float* x, int64_t ldx, const float* y, float* out) {
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) {
    const __m256 y0 = _mm256_loadu_ps(y + p), y1 = _mm256_loadu_ps(y + p + 8);
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * ldx + p), y0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * ldx + p + 8), y1, acc1[r]);
    }
  }
  if (p + 8 <= k) {
    const __m256 y0 = _mm256_loadu_ps(y + p);
    for (int r = 0; r < R; ++r) acc0[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * ldx + p), y0, acc0[r]);
    p += 8;
  }
  for (int r = 0; r < R; ++r) {
    float sum = hsum(_mm256_add_ps(acc0[r], acc1[r]));
    for (int64_t q = p; q < k; ++q) sum += x[r * ldx + q] * y[q];
    out[r] = sum;
  }
}

// Sweeps the C block once per group of kAxpyPG rows of B, reading those rows contiguously (a few
// sequential streams the prefetchers follow); the C block itself stays in L1.
constexpr int64_t kAxpyPG = 8;

template <int R>
void multiAxpyR(int64_t k, int64_t len, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                int64_t ldc) {
  for (int64_t p0 = 0; p0 < k; p0 += kAxpyPG) {
    const int64_t pg = p0 + kAxpyPG < k ? kAxpyPG : k - p0;
    const float* bg = b + p0 * ldb;
    const float* ag = a + p0;
    int64_t j = 0;
    for (; j + 16 <= len; j += 16) {
      __m256 acc0[R], acc1[R];
      for (int r = 0; r < R; ++r) {
        acc0[r] = _mm256_loadu_ps(c + r * ldc + j);
        acc1[r] = _mm256_loadu_ps(c + r * ldc + j + 8);
      }
      for (int64_t q = 0; q < pg; ++q) {
        const __m256 b0 = _mm256_loadu_ps(bg + q * ldb + j), b1 = _mm256_loadu_ps(bg + q * ldb + j + 8);
        for (int r = 0; r < R; ++r) {
          const __m256 av = _mm256_broadcast_ss(ag + r * lda + q);
          acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
          acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
        }
      }
      for (int r = 0; r < R; ++r) {
        _mm256_storeu_ps(c + r * ldc + j, acc0[r]);
        _mm256_storeu_ps(c + r * ldc + j + 8, acc1[r]);
      }
    }
    for (; j < len; ++j) {
      for (int r = 0; r < R; ++r) {
        float sum = c[r * ldc + j];
        for (int64_t q = 0; q < pg; ++q) sum += ag[r * lda + q] * bg[q * ldb + j];
        c[r * ldc + j] = sum;
      }
    }
  }
}

}  // namespace

void multiDotAvx2(int64_t rows, int64_t k, const float* x, int64_t ldx, const float* y, float* out) {
  switch (rows) {
    case 1: return multiDotR<1>(k, x, ldx, y, out);
    case 2: return multiDotR<2>(k, x, ldx, y, out);
    case 3: return multiDotR<3>(k, x, ldx, y, out);
    case 4: return multiDotR<4>(k, x, ldx, y, out);
    default: return multiDotScalar(rows, k, x, ldx, y, out);
  }
}

void multiAxpyAvx2(int64_t rows, int64_t k, int64_t len, const float* a, int64_t lda, const float* b, int64_t ldb,
                   float* c, int64_t ldc) {
  switch (rows) {
    case 1: return multiAxpyR<1>(k, len, a, lda, b, ldb, c, ldc);
    case 2: return multiAxpyR<2>(k, len, a, lda, b, ldb, c, ldc);
    case 3: return multiAxpyR<3>(k, len, a, lda, b, ldb, c, ldc);
    case 4: return multiAxpyR<4>(k, len, a, lda, b, ldb, c, ldc);
    default: return multiAxpyScalar(rows, k, len, a, lda, b, ldb, c, ldc);
  }
}

}  // namespace sparse

#else
#error "kernels_avx2.cc must be compiled with -mavx2 -mfma"
#endif
