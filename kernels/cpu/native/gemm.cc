// Blocked, packed GEMM in the style of Goto/BLIS: C is cut into NC-wide column panels, K into KC
// slices, rows into MC blocks; op(B) slices are packed into NR-wide micro-panels (kept in L3/L2),
// op(A) blocks into MR-tall micro-panels (kept in L2), and a register-blocked MR x NR micro-kernel
// streams them. Threads each own a rectangle of C and run this serially on it.
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "aligned_buffer.h"
#include "cpu_features.h"
#include "prefetch.h"
#include "thread_pool.h"
#include "wide_kernels.h"

#if defined(SPARSE_HAVE_OPENBLAS)
#include <cblas.h>
#endif
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace sparse {

namespace {

// Cache blocking. MC*KC floats of A (144 KiB) sit in a core's L2; KC*NR floats of B (16 KiB)
// in L1 while the MC/MR A micro-panels stream past it; KC*NC floats of B in the shared L3.
constexpr int64_t kMC = 144;
constexpr int64_t kKC = 256;
// The wide kernel's K slice. Its B micro-panel (kWideKC x 32 floats, 32 KiB) fills a Zen 4's 32 KiB
// L1, yet 128 measured no faster there (SPARSE_GEMM_KC tries others).
constexpr int64_t kWideKC = 256;
constexpr int64_t kNC = 3072;
static_assert(kMC % kMR == 0 && kNC % kNR == 0, "blocks must hold whole micro-tiles");
static_assert(kMC % kWideMR == 0 && kNC % kWideNR == 0, "blocks must hold whole wide micro-tiles");
constexpr int kMaxMR = kWideMR > kMR ? kWideMR : kMR;
constexpr int kMaxNR = kWideNR > kNR ? kWideNR : kNR;

// Below this many multiply-adds per thread, waking another thread costs more than it saves.
constexpr double kMinFmaPerThread = 1 << 20;

struct Workspace {
  AlignedBuffer a;
  AlignedBuffer b;
};

Workspace& threadWorkspace() {
  thread_local Workspace ws;
  return ws;
}

// The micro-kernel family in use and its register tile (MR x NR): 12 x 32 for the 16-wide
// kernels, 6 x 16 for AVX2 and the portable loop. Packing follows the tile.
struct Dispatch {
  int mr, nr;
  int64_t kc;  // K slice: a kc x nr micro-panel of B stays in L1 while the A micro-panels stream past
  MicroKernel kernel;
  MultiDot dot;
  MultiAxpy axpy;
};

const Dispatch& dispatch() {
  static const Dispatch d = [] {
    static const int64_t kcEnv = [] {
      const char* env = std::getenv("SPARSE_GEMM_KC");  // tuning knob for benchmarks
      return env ? std::max<int64_t>(16, std::atol(env)) : int64_t{0};
    }();
    if (const WideKernels* w = wideKernels()) return Dispatch{kWideMR, kWideNR, kcEnv ? kcEnv : kWideKC, w->micro, w->dot, w->axpy};
#if defined(SPARSE_WITH_AVX2)
    if (useAvx2()) return Dispatch{kMR, kNR, kcEnv ? kcEnv : kKC, microKernelAvx2, multiDotAvx2, multiAxpyAvx2};
#endif
    return Dispatch{kMR, kNR, kcEnv ? kcEnv : kKC, microKernelScalar, multiDotScalar, multiAxpyScalar};
  }();
  return d;
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] as MR-row micro-panels, k-major inside each (zero-padded rows).
// Both layouts are read along their contiguous direction, one source row at a time.
void packA(const GemmArgs& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* out, const int kMR) {
  if (!g.transA) {
    // op(A)(i, p) = a[i*lda + p]: each row of the block is contiguous; scatter it with stride MR.
    for (int64_t ir = 0; ir < mc; ir += kMR) {
      const int64_t mr = std::min<int64_t>(kMR, mc - ir);
      float* dst = out + ir * kc;
      int64_t r = 0;
#if defined(__SSE2__)
      // Four rows at a time: 4x4 blocks transposed in registers, one 16-byte store per k (the
      // scalar scatter below issued a load and a store per element).
      for (; r + 4 <= mr; r += 4) {
        const float* s0 = g.a + (i0 + ir + r) * g.lda + p0;
        const float* s1 = s0 + g.lda;
        const float* s2 = s1 + g.lda;
        const float* s3 = s2 + g.lda;
        int64_t p = 0;
        for (; p + 4 <= kc; p += 4) {
          __m128 a0 = _mm_loadu_ps(s0 + p), a1 = _mm_loadu_ps(s1 + p), a2 = _mm_loadu_ps(s2 + p), a3 = _mm_loadu_ps(s3 + p);
          _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
          _mm_storeu_ps(dst + p * kMR + r, a0);
          _mm_storeu_ps(dst + (p + 1) * kMR + r, a1);
          _mm_storeu_ps(dst + (p + 2) * kMR + r, a2);
          _mm_storeu_ps(dst + (p + 3) * kMR + r, a3);
        }
        for (; p < kc; ++p) {
          float* d = dst + p * kMR + r;
          d[0] = s0[p];
          d[1] = s1[p];
          d[2] = s2[p];
          d[3] = s3[p];
        }
      }
#endif
      for (; r < mr; ++r) {
        const float* src = g.a + (i0 + ir + r) * g.lda + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * kMR + r] = src[p];
      }
      for (r = mr; r < kMR; ++r)
        for (int64_t p = 0; p < kc; ++p) dst[p * kMR + r] = 0.0f;
    }
  } else {
    // op(A)(i, p) = a[p*lda + i]: row p of A holds the block's mc values for that p.
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = g.a + (p0 + p) * g.lda + i0;
      for (int64_t ir = 0; ir < mc; ir += kMR) {
        const int64_t mr = std::min<int64_t>(kMR, mc - ir);
        float* dst = out + ir * kc + p * kMR;
        int64_t r = 0;
        for (; r < mr; ++r) dst[r] = src[ir + r];
        for (; r < kMR; ++r) dst[r] = 0.0f;
      }
    }
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] as NR-column micro-panels, k-major inside each (zero-padded cols).
void packB(const GemmArgs& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* out, const int kNR) {
  if (g.bRows != nullptr || !g.transB) {
    // op(B)(p, j) = b[p*ldb + j]: stream each row of the slice once, NR values to each panel.
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = (g.bRows != nullptr ? g.bRows[p0 + p] : g.b + (p0 + p) * g.ldb) + j0;
      for (int64_t jr = 0; jr < nc; jr += kNR) {
        const int64_t nr = std::min<int64_t>(kNR, nc - jr);
        float* dst = out + jr * kc + p * kNR;
        if (nr == kNR) {
          std::memcpy(dst, src + jr, sizeof(float) * kNR);
        } else {
          int64_t j = 0;
          for (; j < nr; ++j) dst[j] = src[jr + j];
          for (; j < kNR; ++j) dst[j] = 0.0f;
        }
      }
    }
  } else {
    // op(B)(p, j) = b[j*ldb + p]: each column of op(B) is contiguous; scatter it with stride NR.
    for (int64_t jr = 0; jr < nc; jr += kNR) {
      const int64_t nr = std::min<int64_t>(kNR, nc - jr);
      float* dst = out + jr * kc;
      for (int64_t j = 0; j < nr; ++j) {
        const float* src = g.b + (j0 + jr + j) * g.ldb + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * kNR + j] = src[p];
      }
      for (int64_t j = nr; j < kNR; ++j)
        for (int64_t p = 0; p < kc; ++p) dst[p * kNR + j] = 0.0f;
    }
  }
}

// The source region of an A block (op(A)[i0:i0+mc, p0:p0+kc]) as rows of contiguous floats, for
// prefetching it in shares. Empty past the end of the rectangle or of K.
struct ANext {
  const float* base = nullptr;
  int64_t rows = 0;    // source rows (mc without transA, kc with it)
  int64_t stride = 0;  // floats between source rows
  int64_t lines = 0;   // 64-byte lines per source row
  int64_t total() const { return rows * lines; }
  // Prefetches share `part` of `parts` of the region's lines into L2.
  void prefetchShare(int64_t part, int64_t parts) const {
    const int64_t n = total();
    if (n == 0) return;
    const int64_t l0 = n * part / parts, l1 = n * (part + 1) / parts;
    int64_t r = l0 / lines, c = l0 - r * lines;
    for (int64_t l = l0; l < l1; ++l) {
      prefetchL2(reinterpret_cast<const char*>(base + r * stride) + c * 64);
      if (++c == lines) {
        c = 0;
        ++r;
      }
    }
  }
};

ANext nextABlock(const GemmArgs& g, int64_t i0, int64_t p0, int64_t m1, int64_t kMC, int64_t kKC) {
  ANext n;
  if (p0 >= g.k || i0 >= m1) return n;
  const int64_t mc = std::min(kMC, m1 - i0), kc = std::min(kKC, g.k - p0);
  const int64_t width = g.transA ? mc : kc;
  n.rows = g.transA ? kc : mc;
  n.stride = g.lda;
  n.base = g.transA ? g.a + p0 * g.lda + i0 : g.a + i0 * g.lda + p0;
  // lines per row, counting the partial lines at both ends
  const uintptr_t first = reinterpret_cast<uintptr_t>(n.base) & ~uintptr_t{63};
  n.lines = static_cast<int64_t>((reinterpret_cast<uintptr_t>(n.base + width) + 63 - first) / 64);
  n.base = reinterpret_cast<const float*>(first);
  return n;
}

// Serial blocked GEMM on the rectangle C[m0:m1, n0:n1].
void gemmRect(const GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const Dispatch& d = dispatch();
  const MicroKernel kernel = d.kernel;
  const int kMR = d.mr, kNR = d.nr;
  const int64_t kKC = d.kc;
  Workspace& ws = threadWorkspace();
  const int64_t mSpan = m1 - m0;
  const int64_t nSpan = n1 - n0;
  const int64_t kcMax = std::min(kKC, g.k);
  const int64_t mcMax = std::min(kMC, ((mSpan + kMR - 1) / kMR) * kMR);
  const int64_t ncMax = std::min(kNC, ((nSpan + kNR - 1) / kNR) * kNR);
  float* bufA = ws.a.reserve(static_cast<size_t>(mcMax * kcMax));
  float* bufB = ws.b.reserve(static_cast<size_t>(ncMax * kcMax));
  alignas(64) float edge[kMaxMR * kMaxNR];

  for (int64_t jc = n0; jc < n1; jc += kNC) {
    const int64_t nc = std::min(kNC, n1 - jc);
    for (int64_t pc = 0; pc < g.k; pc += kKC) {
      const int64_t kc = std::min(kKC, g.k - pc);
      // The first K slice applies the caller's beta; later slices accumulate onto it.
      const float beta = pc == 0 ? g.beta : 1.0f;
      packB(g, pc, kc, jc, nc, bufB, kNR);
      for (int64_t ic = m0; ic < m1; ic += kMC) {
        const int64_t mc = std::min(kMC, m1 - ic);
        packA(g, ic, mc, pc, kc, bufA, kMR);
        // The A block packed next (the next row block of this K slice, else the first of the next
        // slice), prefetched into L2 a share per column panel while this block computes, so that
        // packing it reads cache instead of waiting on memory row by row.
        ANext next = nextABlock(g, ic + kMC < m1 ? ic + kMC : m0, ic + kMC < m1 ? pc : pc + kKC, m1, kMC, kKC);
        const int64_t panels = (nc + kNR - 1) / kNR;
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          next.prefetchShare(jr / kNR, panels);
          const int64_t nr = std::min<int64_t>(kNR, nc - jr);
          const float* bp = bufB + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            const int64_t mr = std::min<int64_t>(kMR, mc - ir);
            const float* ap = bufA + ir * kc;
            float* c = g.c + (ic + ir) * g.ldc + jc + jr;
            if (mr == kMR && nr == kNR) {
              kernel(kc, ap, bp, c, g.ldc, g.alpha, beta);
            } else {
              // Partial tile: compute the full tile into a scratch block, then touch only valid C.
              kernel(kc, ap, bp, edge, kNR, 1.0f, 0.0f);
              for (int64_t r = 0; r < mr; ++r) {
                float* cr = c + r * g.ldc;
                const float* er = edge + r * kNR;
                if (beta == 0.0f) {
                  for (int64_t j = 0; j < nr; ++j) cr[j] = g.alpha * er[j];
                } else {
                  for (int64_t j = 0; j < nr; ++j) cr[j] = g.alpha * er[j] + beta * cr[j];
                }
              }
            }
          }
        }
      }
    }
  }
}

// Splits C into tm x tn rectangles for nt threads, one each. Static on purpose: each thread packs
// its slice of the long operand once; finer, dynamically shared chunks would repack the short
// operand per chunk, which measured 15-20% slower here.
void chooseGrid(int64_t m, int64_t n, int nt, int* tm, int* tn) {
  const int kMR = dispatch().mr, kNR = dispatch().nr;
  const int64_t mTiles = (m + kMR - 1) / kMR;
  const int64_t nTiles = (n + kNR - 1) / kNR;
  double best = -1;
  *tm = 1;
  *tn = 1;
  for (int a = 1; a <= nt; ++a) {
    if (nt % a != 0) continue;
    const int b = nt / a;
    if (a > mTiles || b > nTiles) continue;
    // Per unit of k: the busiest rectangle's multiply-adds (whole micro-tiles) plus the rows of A
    // and columns of B it packs, each packed element costing about as much as 4 multiply-adds.
    const double rows = static_cast<double>((mTiles + a - 1) / a) * kMR;
    const double cols = static_cast<double>((nTiles + b - 1) / b) * kNR;
    const double cost = rows * cols + 4.0 * (rows + cols);
    if (best < 0 || cost < best) {
      best = cost;
      *tm = a;
      *tn = b;
    }
  }
}

// Boundary of part t of `parts` over `tiles` micro-tiles of `tile` elements, clamped to `len`.
int64_t splitPoint(int64_t len, int64_t tile, int parts, int t) {
  const int64_t tiles = (len + tile - 1) / tile;
  const int64_t point = (tiles * t / parts) * tile;
  return std::min(point, len);
}

// Up to this many rows (or columns) of C the skinny path beats packing: it reads the big operand
// once, in place, while the packed path would copy all of it for little reuse.
int64_t skinnyMax() {
  static const int64_t v = [] {
    const char* env = std::getenv("SPARSE_GEMM_SKINNY_MAX");  // tuning knob for benchmarks
    return env ? std::atol(env) : int64_t{16};
  }();
  return v;
}

// Columns (or rows) of C per skinny work item, and rows of the long operand per sweep: the C block
// and the swept block of the long operand (kSkinnyPB x kSkinnyChunk, 128 KiB) stay in L1/L2.
constexpr int64_t kSkinnyChunk = 512;
constexpr int64_t kSkinnyPB = 64;

// C(i, j) = v + beta*C(i, j), or v alone when beta == 0 (C not read).
inline void storeScaled(float* c, float v, float beta) { *c = beta == 0.0f ? v : v + beta * *c; }

// Splits [0, len) into `parts` ranges aligned to `grain` and runs fn(lo, hi) for part t.
template <typename Fn>
void forPart(int64_t len, int64_t grain, int t, int parts, Fn fn) {
  const int64_t lo = splitPoint(len, grain, parts, t), hi = splitPoint(len, grain, parts, t + 1);
  if (lo < hi) fn(lo, hi);
}

// acc[r*ldAcc + j] += sum_p small[r*k + p] * big[p*ldBig + j] for r < rows, j < w; big is swept
// once per kSkinnyPB rows while every kKernelRows-row group of `small` uses that block.
void skinnyAxpy(const Dispatch& d, int64_t rows, int64_t k, int64_t w, const float* small, const float* big,
                int64_t ldBig, float* acc, int64_t ldAcc) {
  for (int64_t p0 = 0; p0 < k; p0 += kSkinnyPB) {
    const int64_t pb = std::min(kSkinnyPB, k - p0);
    for (int64_t r0 = 0; r0 < rows; r0 += kKernelRows) {
      const int64_t rr = std::min<int64_t>(kKernelRows, rows - r0);
      d.axpy(rr, pb, w, small + r0 * k + p0, k, big + p0 * ldBig, ldBig, acc + r0 * ldAcc, ldAcc);
    }
  }
}

// out[r] = dot(small row r, y) for r < rows.
void skinnyDot(const Dispatch& d, int64_t rows, int64_t k, const float* small, const float* y, float* out) {
  for (int64_t r0 = 0; r0 < rows; r0 += kKernelRows) {
    d.dot(std::min<int64_t>(kKernelRows, rows - r0), k, small + r0 * k, k, y, out + r0);
  }
}

// GEMM where m or n is at most skinnyMax(): bound by reading the big operand, which is streamed
// in place (no packing) through multiDot / multiAxpy. The small operand is copied, scaled by
// alpha, into a contiguous buffer.
void gemmSkinny(const GemmArgs& g, int wanted) {
  const Dispatch& d = dispatch();
  std::vector<float> small;
  if (g.m <= skinnyMax()) {
    // small[i*k + p] = alpha * op(A)(i, p)
    small.resize(static_cast<size_t>(g.m * g.k));
    for (int64_t i = 0; i < g.m; ++i)
      for (int64_t p = 0; p < g.k; ++p)
        small[i * g.k + p] = g.alpha * (g.transA ? g.a[p * g.lda + i] : g.a[i * g.lda + p]);
    const float* as = small.data();
    parallelRun(wanted, [&](int t, int nt) {
      forPart(g.n, kNR, t, nt, [&](int64_t j0, int64_t j1) {
        if (!g.transB) {
          // C(i, :) = beta*C(i, :) + sum_p as(i, p) * B(p, :), chunk by chunk.
          for (int64_t jc = j0; jc < j1; jc += kSkinnyChunk) {
            const int64_t w = std::min(kSkinnyChunk, j1 - jc);
            scaleC(g.m, w, g.beta, g.c + jc, g.ldc);
            skinnyAxpy(d, g.m, g.k, w, as, g.b + jc, g.ldb, g.c + jc, g.ldc);
          }
        } else {
          // C(i, j) = dot(as(i, :), row j of B) + beta*C(i, j).
          std::vector<float> out(static_cast<size_t>(g.m));
          for (int64_t j = j0; j < j1; ++j) {
            skinnyDot(d, g.m, g.k, as, g.b + j * g.ldb, out.data());
            for (int64_t i = 0; i < g.m; ++i) storeScaled(g.c + i * g.ldc + j, out[i], g.beta);
          }
        }
      });
    });
    return;
  }
  // n <= skinnyMax(): small[j*k + p] = alpha * op(B)(p, j)
  small.resize(static_cast<size_t>(g.n * g.k));
  for (int64_t j = 0; j < g.n; ++j)
    for (int64_t p = 0; p < g.k; ++p)
      small[j * g.k + p] = g.alpha * (g.transB ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j]);
  const float* bs = small.data();
  parallelRun(wanted, [&](int t, int nt) {
    forPart(g.m, kMR, t, nt, [&](int64_t i0, int64_t i1) {
      if (!g.transA) {
        // C(i, j) = dot(row i of A, bs(j, :)) + beta*C(i, j).
        std::vector<float> out(static_cast<size_t>(g.n));
        for (int64_t i = i0; i < i1; ++i) {
          skinnyDot(d, g.n, g.k, bs, g.a + i * g.lda, out.data());
          for (int64_t j = 0; j < g.n; ++j) storeScaled(g.c + i * g.ldc + j, out[j], g.beta);
        }
      } else {
        // Column j of C is sum_p bs(j, p) * row p of A: accumulate C^T in a scratch block.
        std::vector<float> tmp(static_cast<size_t>(g.n * kSkinnyChunk));
        for (int64_t ic = i0; ic < i1; ic += kSkinnyChunk) {
          const int64_t w = std::min(kSkinnyChunk, i1 - ic);
          std::fill(tmp.begin(), tmp.end(), 0.0f);
          skinnyAxpy(d, g.n, g.k, w, bs, g.a + ic, g.lda, tmp.data(), kSkinnyChunk);
          for (int64_t i = 0; i < w; ++i)
            for (int64_t j = 0; j < g.n; ++j)
              storeScaled(g.c + (ic + i) * g.ldc + j, tmp[j * kSkinnyChunk + i], g.beta);
        }
      }
    });
  });
}

}  // namespace

void scaleC(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + n, 0.0f);
    } else if (beta != 1.0f) {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

void microKernelScalar(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, float alpha, float beta) {
  float acc[kMR][kNR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* a = ap + p * kMR;
    const float* b = bp + p * kNR;
    for (int r = 0; r < kMR; ++r)
      for (int j = 0; j < kNR; ++j) acc[r][j] += a[r] * b[j];
  }
  for (int r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < kNR; ++j) cr[j] = alpha * acc[r][j];
    } else {
      for (int j = 0; j < kNR; ++j) cr[j] = alpha * acc[r][j] + beta * cr[j];
    }
  }
}

void multiDotScalar(int64_t rows, int64_t k, const float* x, int64_t ldx, const float* y, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float sum = 0.0f;
    for (int64_t p = 0; p < k; ++p) sum += xr[p] * y[p];
    out[r] = sum;
  }
}

void multiAxpyScalar(int64_t rows, int64_t k, int64_t len, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc) {
  for (int64_t r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    for (int64_t p = 0; p < k; ++p) {
      const float av = a[r * lda + p];
      const float* bp = b + p * ldb;
      for (int64_t j = 0; j < len; ++j) cr[j] += av * bp[j];
    }
  }
}

void gemmBlocked(const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0 || g.alpha == 0.0f) {
    // BLAS: with alpha == 0 (or an empty sum) A and B are not read.
    scaleC(g.m, g.n, g.beta, g.c, g.ldc);
    return;
  }
  const double fmas = static_cast<double>(g.m) * g.n * g.k;
  const int wanted = static_cast<int>(std::max(1.0, std::min(256.0, fmas / kMinFmaPerThread)));
  if (g.m <= skinnyMax() || g.n <= skinnyMax()) {
    gemmSkinny(g, wanted);
    return;
  }
  parallelRun(wanted, [&](int t, int nt) {
    int tm = 1, tn = 1;
    chooseGrid(g.m, g.n, nt, &tm, &tn);
    if (t >= tm * tn) return;
    const int ti = t / tn;
    const int tj = t % tn;
    const int mr = dispatch().mr, nr = dispatch().nr;
    const int64_t m0 = splitPoint(g.m, mr, tm, ti);
    const int64_t m1 = splitPoint(g.m, mr, tm, ti + 1);
    const int64_t n0 = splitPoint(g.n, nr, tn, tj);
    const int64_t n1 = splitPoint(g.n, nr, tn, tj + 1);
    if (m0 < m1 && n0 < n1) gemmRect(g, m0, m1, n0, n1);
  });
}

void gemmSerial(const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0 || g.alpha == 0.0f) {
    scaleC(g.m, g.n, g.beta, g.c, g.ldc);
    return;
  }
  gemmRect(g, 0, g.m, 0, g.n);
}

void gemmBatched(const GemmArgs& shape, int64_t count, const float* const* a, const float* const* b, float* const* c) {
  if (count <= 0 || shape.m <= 0 || shape.n <= 0) return;
  auto item = [&](int64_t i) {
    GemmArgs g = shape;
    g.a = a[i];
    g.b = b[i];
    g.c = c[i];
    g.bRows = nullptr;
    return g;
  };
  const double fmas = static_cast<double>(shape.m) * shape.n * shape.k;
  // An item worth a few of these per thread parallelizes well by itself (and may use OpenBLAS).
  if (count == 1 || fmas >= 4.0 * kMinFmaPerThread * poolSize()) {
    for (int64_t i = 0; i < count; ++i) gemm(item(i));
    return;
  }
  const double total = fmas * static_cast<double>(count);
  const int wanted = static_cast<int>(std::max(1.0, std::min({256.0, static_cast<double>(count), total / kMinFmaPerThread})));
  parallelRun(wanted, [&](int t, int nt) {
    const int64_t lo = count * t / nt, hi = count * (t + 1) / nt;
    // Nested inside the pool, gemmBlocked runs on this thread alone (skinny path included).
    for (int64_t i = lo; i < hi; ++i) gemmBlocked(item(i));
  });
}

#if defined(SPARSE_HAVE_OPENBLAS)
namespace {

// cblas_sgemm on C[m0:m1, n0:n1] of g (the caller's beta; C must not hold NaN where beta == 0).
void openblasRect(const GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const float* a = g.a + (g.transA ? m0 : m0 * g.lda);
  const float* b = g.b + (g.transB ? n0 * g.ldb : n0);
  cblas_sgemm(CblasRowMajor, g.transA ? CblasTrans : CblasNoTrans, g.transB ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m1 - m0), static_cast<blasint>(n1 - n0), static_cast<blasint>(g.k), g.alpha, a,
              static_cast<blasint>(g.lda), b, static_cast<blasint>(g.ldb), g.beta, g.c + m0 * g.ldc + n0,
              static_cast<blasint>(g.ldc));
}

}  // namespace

void gemmOpenBLAS(const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0 || g.alpha == 0.0f) {
    scaleC(g.m, g.n, g.beta, g.c, g.ldc);
    return;
  }
  const int64_t biggest = std::max({g.m, g.n, g.k, g.lda, g.ldb, g.ldc});
  if (biggest > static_cast<int64_t>(std::numeric_limits<blasint>::max()) || g.bRows != nullptr) {
    gemmBlocked(g);  // beyond OpenBLAS's integer width, or B given as gathered rows
    return;
  }
  // OpenBLAS runs on one thread per call; our pool splits C between its threads. OpenBLAS's own
  // threads would oversubscribe the cores with ours, and after each call they spin waiting for the
  // next one while our kernels run.
  static const bool singleThreaded = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)singleThreaded;
  if (g.beta == 0.0f) scaleC(g.m, g.n, 0.0f, g.c, g.ldc);  // NaN in C must not leak through 0*NaN
  const double fmas = static_cast<double>(g.m) * g.n * g.k;
  const int wanted = static_cast<int>(std::max(1.0, std::min(256.0, fmas / kMinFmaPerThread)));
  parallelRun(wanted, [&](int t, int nt) {
    // Split the longer side of C into whole 6-row (or 16-column) tiles, one part per thread.
    if (g.m >= g.n) {
      forPart(g.m, kMR, t, nt, [&](int64_t m0, int64_t m1) { openblasRect(g, m0, m1, 0, g.n); });
    } else {
      forPart(g.n, kNR, t, nt, [&](int64_t n0, int64_t n1) { openblasRect(g, 0, g.m, n0, n1); });
    }
  });
}

#endif

void gemm(const GemmArgs& g) {
#if defined(SPARSE_HAVE_OPENBLAS)
  // Gemv-like shapes stay on our skinny path, which streams the big operand once in place; the
  // OpenBLAS build here packs it like any product (measured 1.7-2.6x slower on 4096 x 4096 gemv).
  if (g.m > skinnyMax() && g.n > skinnyMax()) {
    gemmOpenBLAS(g);
    return;
  }
  gemmBlocked(g);
#else
  gemmBlocked(g);
#endif
}

}  // namespace sparse
