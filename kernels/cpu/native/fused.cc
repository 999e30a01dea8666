// Fused training ops (see fused.h). Portable C++: each loop is one streaming pass, so the work is
// bounded by memory traffic, not arithmetic; the compiler's vectorization of the plain loops is
// enough and no AVX2 variant is kept.
#include "fused.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_features.h"
#include "elementwise.h"
#include "thread_pool.h"

namespace sparse {
namespace {

// Rows per block of the column sums (fixed, so the summation order never depends on threads).
constexpr int64_t kBlockRows = 32;
// Roughly how many elements one thread should get before another one is worth waking.
constexpr int64_t kGrain = 1 << 15;

int threadsFor(int64_t elements) {
  const int64_t want = elements / kGrain + 1;
  return static_cast<int>(std::min<int64_t>(want, 1 << 10));
}

// Runs body(first, last) over [0, count) in contiguous parts on the pool.
template <typename Body>
void forRanges(int64_t count, int64_t elementsPerItem, const Body& body) {
  if (count <= 0) return;
  const int wanted = threadsFor(count * std::max<int64_t>(elementsPerItem, 1));
  parallelRun(std::min<int64_t>(wanted, count), [&](int t, int nt) {
    const int64_t first = count * t / nt;
    const int64_t last = count * (t + 1) / nt;
    if (first < last) body(first, last);
  });
}

inline float sigmoidF(float z) { return 1.0f / (1.0f + std::exp(-z)); }


}  // namespace

void fusedNormForward(bool rms, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t cols,
                      float eps, float* y, float* mean, float* rstd) {
  if (cols <= 0) return;
  forRanges(rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      double mu = 0.0;
      if (!rms) {
        double s = 0.0;
        for (int64_t c = 0; c < cols; ++c) s += xr[c];
        mu = s / static_cast<double>(cols);
      }
      double ss = 0.0;
      for (int64_t c = 0; c < cols; ++c) {
        const double d = xr[c] - mu;
        ss += d * d;
      }
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(cols) + static_cast<double>(eps));
      const float m = static_cast<float>(mu);
      const float is = static_cast<float>(inv);
      if (mean != nullptr) mean[r] = m;
      rstd[r] = is;
      if (beta != nullptr) {
        for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - m) * is * gamma[c] + beta[c];
      } else {
        for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - m) * is * gamma[c];
      }
    }
  });
}

void fusedNormBackward(bool rms, const float* dy, const float* x, const float* gamma, const float* mean,
                       const float* rstd, int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta) {
  if (cols <= 0) return;
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  // Per block: the block's dgamma sums, then its dbeta sums.
  std::vector<double> partial(static_cast<size_t>(blocks * cols * 2), 0.0);
  forRanges(blocks, kBlockRows * cols, [&](int64_t b0, int64_t b1) {
    std::vector<float> xhat(static_cast<size_t>(cols));
    for (int64_t blk = b0; blk < b1; ++blk) {
      double* pg = partial.data() + blk * cols * 2;
      double* pb = pg + cols;
      const int64_t rEnd = std::min(rows, (blk + 1) * kBlockRows);
      for (int64_t r = blk * kBlockRows; r < rEnd; ++r) {
        const float* xr = x + r * cols;
        const float* dyr = dy + r * cols;
        float* dxr = dx + r * cols;
        const float m = rms ? 0.0f : mean[r];
        const float is = rstd[r];
        // sums of g = dy * gamma and of g * xhat over the row
        double sg = 0.0, sgx = 0.0;
        for (int64_t c = 0; c < cols; ++c) {
          const float xh = (xr[c] - m) * is;
          xhat[c] = xh;
          const double g = static_cast<double>(dyr[c]) * gamma[c];
          sg += g;
          sgx += g * xh;
          pg[c] += static_cast<double>(dyr[c]) * xh;
          pb[c] += dyr[c];
        }
        const double n = static_cast<double>(cols);
        const float a = static_cast<float>(rms ? 0.0 : sg / n);
        const float bcoef = static_cast<float>(sgx / n);
        for (int64_t c = 0; c < cols; ++c) dxr[c] = is * (dyr[c] * gamma[c] - a - xhat[c] * bcoef);
      }
    }
  });
  // Column sums over blocks, in block order.
  forRanges(cols, blocks * 2, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double g = 0.0, b = 0.0;
      for (int64_t blk = 0; blk < blocks; ++blk) {
        g += partial[static_cast<size_t>(blk * cols * 2 + c)];
        b += partial[static_cast<size_t>(blk * cols * 2 + cols + c)];
      }
      dgamma[c] = static_cast<float>(g);
      if (dbeta != nullptr) dbeta[c] = static_cast<float>(b);
    }
  });
}

void fusedActForward(FusedAct op, const float* x, const float* b, float* y, int64_t n) {
  forRanges(n, 1, [&](int64_t i0, int64_t i1) {
#if defined(SPARSE_WITH_AVX2)
    if (useAvx2()) {
      fusedActForwardAvx2(op, x + i0, b != nullptr ? b + i0 : nullptr, y + i0, i1 - i0);
      return;
    }
#endif
    if (op == FusedAct::GeluTanh) {
      for (int64_t i = i0; i < i1; ++i) {
        const float v = x[i];
        y[i] = v * sigmoidF(v * (kGeluTanhA + kGeluTanhB * v * v));
      }
    } else if (op == FusedAct::Silu) {
      for (int64_t i = i0; i < i1; ++i) {
        const float v = x[i];
        y[i] = v * sigmoidF(v);
      }
    } else {
      for (int64_t i = i0; i < i1; ++i) {
        const float v = x[i];
        y[i] = v * sigmoidF(v) * b[i];
      }
    }
  });
}

void fusedActBackward(FusedAct op, const float* dy, const float* x, const float* b, float* dx, float* db, int64_t n) {
  forRanges(n, 1, [&](int64_t i0, int64_t i1) {
#if defined(SPARSE_WITH_AVX2)
    if (useAvx2()) {
      fusedActBackwardAvx2(op, dy + i0, x + i0, b != nullptr ? b + i0 : nullptr, dx + i0, db != nullptr ? db + i0 : nullptr, i1 - i0);
      return;
    }
#endif
    if (op == FusedAct::GeluTanh) {
      for (int64_t i = i0; i < i1; ++i) {
        const float v = x[i];
        const float v2 = v * v;
        const float s = sigmoidF(v * (kGeluTanhA + kGeluTanhB * v2));
        // d/dx x s(u(x)) = s + x s (1 - s) u'(x), u' = A + 3 B x²
        dx[i] = dy[i] * (s + v * s * (1.0f - s) * (kGeluTanhA + 3.0f * kGeluTanhB * v2));
      }
    } else if (op == FusedAct::Silu) {
      for (int64_t i = i0; i < i1; ++i) {
        const float v = x[i];
        const float s = sigmoidF(v);
        dx[i] = dy[i] * (s + v * s * (1.0f - s));
      }
    } else {
      for (int64_t i = i0; i < i1; ++i) {
        const float v = x[i];
        const float s = sigmoidF(v);
        const float silu = v * s;
        dx[i] = dy[i] * b[i] * (s + silu * (1.0f - s));
        db[i] = dy[i] * silu;
      }
    }
  });
}

double fusedCrossEntropyForward(const float* logits, const int32_t* targets, int64_t rows, int64_t cols, float* lse) {
  if (rows <= 0 || cols <= 0) return 0.0;
  std::vector<double> perRow(static_cast<size_t>(rows));
  forRanges(rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* lr = logits + r * cols;
      float m = lr[0];
      for (int64_t c = 1; c < cols; ++c) m = lr[c] > m ? lr[c] : m;
      double s = 0.0;
      for (int64_t c = 0; c < cols; ++c) s += std::exp(static_cast<double>(lr[c]) - m);
      const double l = static_cast<double>(m) + std::log(s);
      lse[r] = static_cast<float>(l);
      perRow[static_cast<size_t>(r)] = l - lr[targets[r]];
    }
  });
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) total += perRow[static_cast<size_t>(r)];
  return total / static_cast<double>(rows);
}

void fusedCrossEntropyBackward(const float* logits, const int32_t* targets, const float* lse, int64_t rows,
                               int64_t cols, float scale, float* dlogits) {
  forRanges(rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* lr = logits + r * cols;
      float* dr = dlogits + r * cols;
      const float l = lse[r];
      for (int64_t c = 0; c < cols; ++c) dr[c] = scale * std::exp(lr[c] - l);
      dr[targets[r]] -= scale;
    }
  });
}

double sumOfSquares(const std::vector<std::pair<const float*, int64_t>>& spans) {
  // pieces of at most kPiece elements, each summed by one thread, then the pieces in order
  constexpr int64_t kPiece = 1 << 14;
  struct Piece {
    const float* x;
    int64_t n;
  };
  std::vector<Piece> pieces;
  for (const auto& [x, n] : spans) {
    for (int64_t first = 0; first < n; first += kPiece) pieces.push_back({x + first, std::min(kPiece, n - first)});
  }
  std::vector<double> partial(pieces.size(), 0.0);
  forRanges(static_cast<int64_t>(pieces.size()), kPiece, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const Piece& piece = pieces[static_cast<size_t>(p)];
      double s = 0.0;
      for (int64_t i = 0; i < piece.n; ++i) s += static_cast<double>(piece.x[i]) * piece.x[i];
      partial[static_cast<size_t>(p)] = s;
    }
  });
  double total = 0.0;
  for (const double s : partial) total += s;
  return total;
}

namespace {

// Columns row r of a causal softmax sees (all of them without causal).
inline int64_t visibleColumns(int64_t r, int64_t cols, int64_t causal) {
  return causal > 0 ? std::min<int64_t>(cols, r % causal + 1) : cols;
}

}  // namespace

void fusedSoftmaxForward(const float* x, int64_t rows, int64_t cols, int64_t causal, float* y) {
  if (rows <= 0 || cols <= 0) return;
  const ElementwiseDispatch& ew = elementwiseDispatch();
  const ReduceSpan maxOf = ew.reduce[static_cast<int>(ReduceOp::Max)];
  const ReduceSpan sumOf = ew.reduce[static_cast<int>(ReduceOp::Sum)];
  const BinarySpan sub = ew.binary[static_cast<int>(BinaryOp::Sub)];
  const BinarySpan mul = ew.binary[static_cast<int>(BinaryOp::Mul)];
  const UnarySpan expSpan = ew.unary[static_cast<int>(UnaryOp::Exp)];
  forRanges(rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      const int64_t n = visibleColumns(r, cols, causal);
      const float m = maxOf(n, xr);
      sub(n, xr, 1, &m, 0, yr);
      expSpan(n, yr, yr);
      // the reciprocal as tfjs computes it: in float64, rounded once
      const float inv = static_cast<float>(1.0 / static_cast<double>(sumOf(n, yr)));
      mul(n, yr, 1, &inv, 0, yr);
      std::fill(yr + n, yr + cols, 0.0f);
    }
  });
}

void fusedSoftmaxBackward(const float* dy, const float* y, int64_t rows, int64_t cols, int64_t causal, float* dx) {
  if (rows <= 0 || cols <= 0) return;
  forRanges(rows, cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* dyr = dy + r * cols;
      const float* yr = y + r * cols;
      float* dxr = dx + r * cols;
      const int64_t n = visibleColumns(r, cols, causal);
      double dot = 0.0;
      for (int64_t c = 0; c < n; ++c) dot += static_cast<double>(dyr[c]) * yr[c];
      const float t = static_cast<float>(dot);
      for (int64_t c = 0; c < n; ++c) dxr[c] = yr[c] * (dyr[c] - t);
      std::fill(dxr + n, dxr + cols, 0.0f);
    }
  });
}

}  // namespace sparse
