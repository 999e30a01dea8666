// Float64 blocked GEMM, Cholesky and lower-triangular inverse (see linalg.h). The GEMM packs op(B) in
// KC x NC slices of kDNR-wide micro-panels and A in MC x KC blocks of kDMR-tall micro-panels, as the
// float32 GEMM does; threads each take a band of C's rows. The factorizations are right-looking with
// 96-wide blocks: the O(n^3) part of each is one GEMM per block step.
#include "linalg.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "aligned_buffer.h"
#include "cpu_features.h"
#include "thread_pool.h"
#include "wide_kernels.h"

namespace sparse {

namespace {

constexpr int64_t kDMC = 96;
constexpr int64_t kDKC = 256;
constexpr int64_t kDNC = 2048;
static_assert(kDMC % kDMR == 0 && kDNC % kDNR == 0, "blocks must hold whole micro-tiles");
// Columns of a factorization block.
constexpr int64_t kNB = 96;
// Below this many multiply-adds per thread, another thread costs more than it saves.
constexpr double kMinFmaPerThread = 1 << 20;

DMicroKernel dmicro() {
  static const DMicroKernel k = [] {
#if defined(SPARSE_WITH_AVX512)
    if (const WideKernels* w = wideKernels()) return w->dmicro;
    // The AVX2 family runs the 16-wide source's float64 kernel as compiled for AVX2 (avx512-emu).
    if (useAvx2()) return wideKernelsAvx512Emu().dmicro;
#endif
    return &dMicroKernelScalar;
  }();
  return k;
}

struct DWorkspace {
  std::vector<double> a, b;
};

void packA(const DgemmArgs& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, double* out) {
  for (int64_t ir = 0; ir < mc; ir += kDMR) {
    const int64_t mr = std::min<int64_t>(kDMR, mc - ir);
    double* dst = out + ir * kc;
    for (int64_t r = 0; r < mr; ++r) {
      const double* src = g.a + (i0 + ir + r) * g.lda + p0;
      for (int64_t p = 0; p < kc; ++p) dst[p * kDMR + r] = src[p];
    }
    for (int64_t r = mr; r < kDMR; ++r)
      for (int64_t p = 0; p < kc; ++p) dst[p * kDMR + r] = 0.0;
  }
}

void packB(const DgemmArgs& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, double* out) {
  for (int64_t jr = 0; jr < nc; jr += kDNR) {
    const int64_t nr = std::min<int64_t>(kDNR, nc - jr);
    double* dst = out + jr * kc;
    if (g.transB) {
      for (int64_t j = 0; j < nr; ++j) {
        const double* src = g.b + (j0 + jr + j) * g.ldb + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * kDNR + j] = src[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const double* src = g.b + (p0 + p) * g.ldb + j0 + jr;
        for (int64_t j = 0; j < nr; ++j) dst[p * kDNR + j] = src[j];
      }
    }
    for (int64_t j = nr; j < kDNR; ++j)
      for (int64_t p = 0; p < kc; ++p) dst[p * kDNR + j] = 0.0;
  }
}

void scaleRows(double* c, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1, double beta) {
  for (int64_t i = m0; i < m1; ++i) {
    double* row = c + i * ldc;
    for (int64_t j = n0; j < n1; ++j) row[j] = beta == 0.0 ? 0.0 : beta * row[j];
  }
}

// C[m0:m1, :] on the calling thread.
void dgemmRows(const DgemmArgs& g, int64_t m0, int64_t m1) {
  const DMicroKernel kernel = dmicro();
  thread_local DWorkspace ws;
  const int64_t nMax = g.lowerOnly ? std::min(g.n, m1) : g.n;
  if (nMax <= 0 || m0 >= m1) return;
  ws.a.resize(static_cast<size_t>(kDMC * kDKC));
  ws.b.resize(static_cast<size_t>(std::min(kDNC, (nMax + kDNR - 1) / kDNR * kDNR) * kDKC));
  alignas(64) double edge[kDMR * kDNR];
  for (int64_t jc = 0; jc < nMax; jc += kDNC) {
    const int64_t nc = std::min(kDNC, nMax - jc);
    for (int64_t pc = 0; pc < g.k; pc += kDKC) {
      const int64_t kc = std::min(kDKC, g.k - pc);
      const double beta = pc == 0 ? g.beta : 1.0;
      packB(g, pc, kc, jc, nc, ws.b.data());
      for (int64_t ic = m0; ic < m1; ic += kDMC) {
        const int64_t mc = std::min(kDMC, m1 - ic);
        // With lowerOnly, this row block needs columns below its last row only.
        if (g.lowerOnly && jc > ic + mc - 1) continue;
        packA(g, ic, mc, pc, kc, ws.a.data());
        for (int64_t ir = 0; ir < mc; ir += kDMR) {
          const int64_t mr = std::min<int64_t>(kDMR, mc - ir);
          const int64_t rowLast = ic + ir + mr - 1;
          for (int64_t jr = 0; jr < nc; jr += kDNR) {
            if (g.lowerOnly && jc + jr > rowLast) break;
            const int64_t nr = std::min<int64_t>(kDNR, nc - jr);
            const double* ap = ws.a.data() + ir * kc;
            const double* bp = ws.b.data() + jr * kc;
            double* c = g.c + (ic + ir) * g.ldc + jc + jr;
            if (mr == kDMR && nr == kDNR) {
              kernel(kc, ap, bp, c, g.ldc, g.alpha, beta);
            } else {
              kernel(kc, ap, bp, edge, kDNR, 1.0, 0.0);
              for (int64_t r = 0; r < mr; ++r)
                for (int64_t j = 0; j < nr; ++j) {
                  double& out = c[r * g.ldc + j];
                  out = beta == 0.0 ? g.alpha * edge[r * kDNR + j] : g.alpha * edge[r * kDNR + j] + beta * out;
                }
            }
          }
        }
      }
    }
  }
}

// dgemm with the arguments spelled out: C[m, n] = alpha * A op(B) + beta * C.
void dgemmCall(int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda, const double* b, int64_t ldb,
               bool transB, double beta, double* c, int64_t ldc, bool lowerOnly) {
  DgemmArgs g;
  g.transB = transB;
  g.m = m;
  g.n = n;
  g.k = k;
  g.alpha = alpha;
  g.a = a;
  g.lda = lda;
  g.b = b;
  g.ldb = ldb;
  g.beta = beta;
  g.c = c;
  g.ldc = ldc;
  g.lowerOnly = lowerOnly;
  dgemm(g);
}

}  // namespace

void dMicroKernelScalar(int64_t kc, const double* ap, const double* bp, double* c, int64_t ldc, double alpha, double beta) {
  double acc[kDMR][kDNR] = {};
  for (int64_t p = 0; p < kc; ++p)
    for (int r = 0; r < kDMR; ++r)
      for (int j = 0; j < kDNR; ++j) acc[r][j] += ap[p * kDMR + r] * bp[p * kDNR + j];
  for (int r = 0; r < kDMR; ++r)
    for (int j = 0; j < kDNR; ++j) {
      double& out = c[r * ldc + j];
      out = beta == 0.0 ? alpha * acc[r][j] : alpha * acc[r][j] + beta * out;
    }
}

void dgemm(const DgemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0 || g.alpha == 0.0) {
    for (int64_t i = 0; i < g.m; ++i) scaleRows(g.c, g.ldc, i, i + 1, 0, g.lowerOnly ? std::min(g.n, i + 1) : g.n, g.beta);
    return;
  }
  const double fmas = static_cast<double>(g.m) * static_cast<double>(g.lowerOnly ? std::min(g.m, g.n) / 2 + 1 : g.n) * static_cast<double>(g.k);
  const int wanted = static_cast<int>(std::max(1.0, std::min(256.0, fmas / kMinFmaPerThread)));
  parallelRun(wanted, [&](int t, int nt) {
    // Row bands of equal work: equal rows for a full product; for the lower triangle, row r costs
    // about r, so band t ends near m * sqrt((t + 1) / nt).
    auto edgeOf = [&](int part) -> int64_t {
      if (part >= nt) return g.m;
      const double f = g.lowerOnly ? std::sqrt(static_cast<double>(part) / nt) : static_cast<double>(part) / nt;
      return std::min<int64_t>(g.m, static_cast<int64_t>(f * static_cast<double>(g.m)) / kDMR * kDMR);
    };
    dgemmRows(g, edgeOf(t), edgeOf(t + 1));
  });
}

int64_t choleskyLowerF64(int64_t n, double* a, int64_t lda, double* pivot) {
  for (int64_t k0 = 0; k0 < n; k0 += kNB) {
    const int64_t k1 = std::min(n, k0 + kNB);
    // The diagonal block, unblocked and row-oriented: L(i, j) from the dot product of rows i and j.
    for (int64_t i = k0; i < k1; ++i) {
      double* ri = a + i * lda;
      for (int64_t j = k0; j <= i; ++j) {
        const double* rj = a + j * lda;
        double s = ri[j];
        for (int64_t t = k0; t < j; ++t) s -= ri[t] * rj[t];
        if (j < i) {
          ri[j] = s / rj[j];
        } else {
          if (!(s > 0.0)) {  // not positive definite to working precision (NaN included)
            *pivot = s;
            return i;
          }
          ri[i] = std::sqrt(s);
        }
      }
    }
    if (k1 == n) break;
    // The panel below it: row i of A21 becomes the solution x of x L11^T = a (forward substitution).
    const int64_t rows = n - k1, w = k1 - k0;
    parallelRun(static_cast<int>(std::max(1.0, std::min(256.0, static_cast<double>(rows) * w * w / 2 / kMinFmaPerThread))), [&](int t, int nt) {
      const int64_t r0 = k1 + rows * t / nt, r1 = k1 + rows * (t + 1) / nt;
      for (int64_t i = r0; i < r1; ++i) {
        double* ri = a + i * lda;
        for (int64_t j = k0; j < k1; ++j) {
          const double* rj = a + j * lda;
          double s = ri[j];
          for (int64_t t2 = k0; t2 < j; ++t2) s -= ri[t2] * rj[t2];
          ri[j] = s / rj[j];
        }
      }
    });
    // The trailing matrix: A22 -= L21 L21^T, lower triangle only.
    const double* l21 = a + k1 * lda + k0;
    dgemmCall(rows, rows, w, -1.0, l21, lda, l21, lda, true, 1.0, a + k1 * lda + k1, lda, true);
  }
  for (int64_t i = 0; i < n; ++i) std::fill(a + i * lda + i + 1, a + i * lda + n, 0.0);
  return -1;
}

int64_t lowerTriangularInverseF64(int64_t n, const double* l, int64_t ldl, double* x, int64_t ldx) {
  for (int64_t i = 0; i < n; ++i) {
    const double d = l[i * ldl + i];
    if (d == 0.0 || !std::isfinite(d)) return i;
  }
  // Block row I needs rows I of L and rows above it of X only, so x may be l itself (in place).
  std::vector<double> t, lrow;
  for (int64_t i0 = 0; i0 < n; i0 += kNB) {
    const int64_t i1 = std::min(n, i0 + kNB), h = i1 - i0;
    // T = L21 X[0:i0, 0:i0], before row block I of L is overwritten. X[0:i0, 0:i0] is lower
    // triangular, so column panel [j0, j1) of the product needs rows k >= j0 of it only.
    if (i0 > 0) {
      t.assign(static_cast<size_t>(h * i0), 0.0);
      for (int64_t j0 = 0; j0 < i0; j0 += kDNC) {
        const int64_t j1 = std::min(i0, j0 + kDNC);
        dgemmCall(h, j1 - j0, i0 - j0, 1.0, l + i0 * ldl + j0, ldl, x + j0 * ldx + j0, ldx, false, 0.0, t.data() + j0, i0, false);
      }
    }
    // X11 = L11^{-1}, row by row: X(i, j) = -(sum_{j <= k < i} L(i, k) X(k, j)) / L(i, i), from a copy of
    // row i of L11 (so writing row i of X over it is safe); the rest of the row is zero.
    for (int64_t i = i0; i < i1; ++i) {
      double* xi = x + i * ldx;
      lrow.assign(l + i * ldl + i0, l + i * ldl + i + 1);
      const double d = lrow[static_cast<size_t>(i - i0)];
      for (int64_t j = i0; j < i; ++j) {
        double s = 0.0;
        for (int64_t k = j; k < i; ++k) s += lrow[static_cast<size_t>(k - i0)] * x[k * ldx + j];
        xi[j] = -s / d;
      }
      xi[i] = 1.0 / d;
      std::fill(xi + i + 1, xi + n, 0.0);
    }
    if (i0 == 0) continue;
    // X21 = -X11 T, over row block I's columns left of the block.
    dgemmCall(h, i0, h, -1.0, x + i0 * ldx + i0, ldx, t.data(), i0, false, 0.0, x + i0 * ldx, ldx, false);
  }
  return -1;
}

}  // namespace sparse
