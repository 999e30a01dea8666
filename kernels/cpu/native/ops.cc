// Drivers of the activation-sparse gemv, the tiled online-softmax attention and the masked
// optimizer steps, plus the portable versions of their inner loops.
#include "ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "aligned_buffer.h"
#include "cpu_features.h"
#include "gemm.h"
#include "spmm.h"
#include "thread_pool.h"
#include "wide_kernels.h"

namespace sparse {

namespace {

// threadsFor (spmm.h): threads worth waking for this many multiply-adds (or entries x 16).

// Threads worth waking for a gemv of this many multiply-adds. Each reads its own weight from memory, so
// a gemv is bound by bandwidth, which one core cannot saturate: a second thread pays for itself from
// 256 KiB of weights on (about 20 us at one core's 13 GB/s), where threadsFor's compute-bound
// threshold (1M multiply-adds, 4 MiB) left a decode step's sparse products on one core.
constexpr double kGemvMinPerThread = 1 << 16;
int gemvThreads(double fmas) { return static_cast<int>(std::max(1.0, std::min(256.0, fmas / kGemvMinPerThread))); }

// Boundary of part t of `parts` over [0, len) in multiples of `grain`.
int64_t partPoint(int64_t len, int64_t grain, int parts, int t) {
  const int64_t units = (len + grain - 1) / grain;
  return std::min(len, (units * t / parts) * grain);
}

// y[i*ldy] = alpha*acc[i] + beta*y[i*ldy]; beta == 0 does not read y.
void storeColumn(int64_t len, const float* acc, float alpha, float beta, float* y, int64_t ldy) {
  for (int64_t i = 0; i < len; ++i) {
    float& out = y[i * ldy];
    out = beta == 0.0f ? alpha * acc[i] : alpha * acc[i] + beta * out;
  }
}

constexpr int64_t kAxpyChunk = 2048;  // outputs accumulated at once (8 KiB, stays in L1)
alignas(64) const float kZeros[kAxpyChunk] = {};

// acc[0:len] = sum over active rows q in [qa, qb) of xc[q] * W[idx[q], jc:jc+len]. Groups of four rows;
// the next group's rows are prefetched while one streams (active rows are unevenly spaced when inputs
// are skipped, which the hardware's stride prefetcher cannot follow); a last partial group reads a
// block of zeros for its missing rows, so no weight outside the active rows is touched.
// How many active rows ahead of the current group the prefetches run (a multiple of 4).
constexpr int64_t kPrefetchAhead = 4;

void accumulateRows(const OpsDispatch& d, const GemvSparseArgs& a, const std::vector<int32_t>& idx, const std::vector<float>& xc,
                    int64_t qa, int64_t qb, int64_t jc, int64_t len, float* acc) {
  std::fill(acc, acc + len, 0.0f);
  const float* next[4];
  int64_t q = qa;
  for (; q + 4 <= qb; q += 4) {
    const bool more = q + 4 + kPrefetchAhead <= qb;
    if (more) {
      for (int u = 0; u < 4; ++u) next[u] = a.w + idx[q + kPrefetchAhead + u] * a.ldw + jc;
    }
    d.axpy4(len, a.w + idx[q] * a.ldw + jc, a.w + idx[q + 1] * a.ldw + jc, a.w + idx[q + 2] * a.ldw + jc,
            a.w + idx[q + 3] * a.ldw + jc, xc[q], xc[q + 1], xc[q + 2], xc[q + 3], acc, more ? next : nullptr);
  }
  if (q < qb) {
    const float* r[4] = {kZeros, kZeros, kZeros, kZeros};
    float x[4] = {0, 0, 0, 0};
    for (int u = 0; q + u < qb; ++u) {
      r[u] = a.w + idx[q + u] * a.ldw + jc;
      x[u] = xc[q + u];
    }
    d.axpy4(len, r[0], r[1], r[2], r[3], x[0], x[1], x[2], x[3], acc, nullptr);
  }
}

// transW, n == 1: y = alpha * sum_{t} xc[t] * W[idx[t], :] + beta*y, each active row of W streamed once.
// Wide outputs split the columns between threads; outputs that fit one accumulator block (rows of at
// most kAxpyChunk floats) split the active rows instead, so each thread streams whole rows, and the
// threads' partial sums are added in a fixed order (the same result for the same thread count).
void gemvColumns(const GemvSparseArgs& a, const std::vector<int32_t>& idx, const std::vector<float>& xc) {
  const OpsDispatch& d = opsDispatch();
  const int64_t count = static_cast<int64_t>(idx.size());
  const int threads = gemvThreads(static_cast<double>(a.rows) * count);
  if (a.rows <= kAxpyChunk && threads > 1 && count >= 8 * threads) {
    AlignedBuffer buffer;
    float* partial = buffer.reserve(static_cast<size_t>(threads) * static_cast<size_t>(a.rows));
    const int used = parallelRun(threads, [&](int t, int nt) {
      const int64_t qa = partPoint(count, 4, nt, t), qb = partPoint(count, 4, nt, t + 1);
      accumulateRows(d, a, idx, xc, qa, qb, 0, a.rows, partial + static_cast<int64_t>(t) * a.rows);
    });
    float* sum = partial;
    for (int t = 1; t < used; ++t) {
      const float* p = partial + static_cast<int64_t>(t) * a.rows;
      for (int64_t i = 0; i < a.rows; ++i) sum[i] += p[i];
    }
    storeColumn(a.rows, sum, a.alpha, a.beta, a.y, a.ldy);
    return;
  }
  parallelRun(threads, [&](int t, int nt) {
    const int64_t j0 = partPoint(a.rows, 64, nt, t), j1 = partPoint(a.rows, 64, nt, t + 1);
    alignas(64) float acc[kAxpyChunk];
    for (int64_t jc = j0; jc < j1; jc += kAxpyChunk) {
      const int64_t len = std::min(kAxpyChunk, j1 - jc);
      accumulateRows(d, a, idx, xc, 0, count, jc, len, acc);
      storeColumn(len, acc, a.alpha, a.beta, a.y + jc * a.ldy, a.ldy);
    }
  });
}

// !transW, n == 1: y[i] = alpha * sum over active p of W[i, p] * x[p] + beta*y[i], four rows per
// pass. W is row-major, so every row is read whole unless very few channels are active: then the
// active weights are gathered; otherwise the row is streamed and the dropped weights are masked
// off (a dense dot product in cost, with the skipping semantics).
void gemvRows(const GemvSparseArgs& a, const std::vector<int32_t>& idx, const std::vector<float>& xc) {
  const OpsDispatch& d = opsDispatch();
  const int64_t count = static_cast<int64_t>(idx.size());
  const bool gather = count * 8 < a.cols;
  std::vector<float> xs;
  std::vector<uint32_t> keep;
  if (!gather) {
    xs.assign(static_cast<size_t>(a.cols), 0.0f);
    keep.assign(static_cast<size_t>(a.cols), 0u);
    for (int64_t q = 0; q < count; ++q) {
      xs[idx[q]] = xc[q];
      keep[idx[q]] = ~0u;
    }
  }
  parallelRun(gemvThreads(static_cast<double>(a.rows) * (gather ? count : a.cols)), [&](int t, int nt) {
    const int64_t i0 = partPoint(a.rows, 4, nt, t), i1 = partPoint(a.rows, 4, nt, t + 1);
    for (int64_t i = i0; i < i1; i += 4) {
      float out[4] = {0, 0, 0, 0};
      const int64_t nr = std::min<int64_t>(4, i1 - i);
      if (nr == 4) {
        if (gather) {
          d.gatherDot4(count, a.w + i * a.ldw, a.ldw, idx.data(), xc.data(), out);
        } else {
          d.maskedDot4(a.cols, a.w + i * a.ldw, a.ldw, xs.data(), keep.data(), out);
        }
      } else {
        for (int64_t r = 0; r < nr; ++r) {
          const float* row = a.w + (i + r) * a.ldw;
          float s = 0.0f;
          for (int64_t q = 0; q < count; ++q) s += row[idx[q]] * xc[q];
          out[r] = s;
        }
      }
      storeColumn(nr, out, a.alpha, a.beta, a.y + i * a.ldy, a.ldy);
    }
  });
}

}  // namespace

void gemvSparseInput(const GemvSparseArgs& a) {
  if (a.rows <= 0 || a.n <= 0) return;
  if (a.alpha == 0.0f || a.cols <= 0) {
    scaleC(a.rows, a.n, a.beta, a.y, a.ldy);
    return;
  }
  std::vector<int32_t> idx;
  idx.reserve(static_cast<size_t>(a.cols));
  for (int64_t p = 0; p < a.cols; ++p) {
    const float* row = a.x + p * a.ldx;
    for (int64_t j = 0; j < a.n; ++j) {
      if (row[j] != 0.0f) {  // NaN is not zero: the channel stays
        idx.push_back(static_cast<int32_t>(p));
        break;
      }
    }
  }
  const int64_t count = static_cast<int64_t>(idx.size());
  if (count == 0) {
    scaleC(a.rows, a.n, a.beta, a.y, a.ldy);
    return;
  }
  GemmArgs g;
  g.transA = a.transW;
  g.transB = false;
  g.m = a.rows;
  g.n = a.n;
  g.alpha = a.alpha;
  g.beta = a.beta;
  g.c = a.y;
  g.ldc = a.ldy;
  if (count == a.cols && !(a.n == 1 && a.transW)) {
    // Nothing to skip: the dense product (a vector times W stored [in, out] keeps the streaming
    // kernel below, which reads W faster than gemm's skinny path).
    g.k = a.cols;
    g.a = a.w;
    g.lda = a.ldw;
    g.b = a.x;
    g.ldb = a.ldx;
    gemm(g);
    return;
  }
  if (a.n == 1) {
    std::vector<float> xc(static_cast<size_t>(count));
    for (int64_t q = 0; q < count; ++q) xc[q] = a.x[idx[q] * a.ldx];
    if (a.transW) {
      gemvColumns(a, idx, xc);
    } else {
      gemvRows(a, idx, xc);
    }
    return;
  }
  // Several columns: gather the active channels (rows of X, rows or columns of W) and run the gemm.
  std::vector<float> xc(static_cast<size_t>(count * a.n));
  for (int64_t q = 0; q < count; ++q) std::memcpy(&xc[q * a.n], a.x + idx[q] * a.ldx, sizeof(float) * a.n);
  std::vector<float> wc(static_cast<size_t>(count * a.rows));
  if (a.transW) {
    for (int64_t q = 0; q < count; ++q) std::memcpy(&wc[q * a.rows], a.w + idx[q] * a.ldw, sizeof(float) * a.rows);
    g.lda = a.rows;
  } else {
    for (int64_t i = 0; i < a.rows; ++i) {
      const float* row = a.w + i * a.ldw;
      float* dst = &wc[i * count];
      for (int64_t q = 0; q < count; ++q) dst[q] = row[idx[q]];
    }
    g.lda = count;
  }
  g.k = count;
  g.a = wc.data();
  g.b = xc.data();
  g.ldb = a.n;
  gemm(g);
}

// ---------------------------------------------------------------------------------------------
// Attention

namespace {

constexpr int64_t kDenseBlock = 64;   // tile side of dense attention
constexpr int64_t kQueryChunk = 64;   // query rows per work item
constexpr int64_t kKeyChunk = 256;    // keys per score block
constexpr int64_t kCausalPiece = 32;  // keys per piece of a tile that crosses the causal diagonal

struct AttentionScratch {
  AlignedBuffer s, o, m, l;
};

AttentionScratch& attentionScratch() {
  thread_local AttentionScratch ws;
  return ws;
}

// One work item: queries [q0, q1) of head h, all inside query block bi.
void attendChunk(const AttentionProblem& p, int64_t bs, int64_t nb, int64_t h, int64_t bi, int64_t q0, int64_t q1) {
  const OpsDispatch& disp = opsDispatch();
  const int64_t rows = q1 - q0;
  const int64_t d = p.d;
  const int64_t kc = std::min(bs, kKeyChunk);
  AttentionScratch& ws = attentionScratch();
  float* S = ws.s.reserve(static_cast<size_t>(rows * kc));
  float* O = ws.o.reserve(static_cast<size_t>(rows * d));
  float* M = ws.m.reserve(static_cast<size_t>(rows));
  float* L = ws.l.reserve(static_cast<size_t>(rows));
  const float ninf = -std::numeric_limits<float>::infinity();
  std::fill(O, O + rows * d, 0.0f);
  std::fill(M, M + rows, ninf);
  std::fill(L, L + rows, 0.0f);
  const int64_t base = h * p.seq * d;
  const uint8_t* mask = p.mask == nullptr ? nullptr : p.mask + (p.maskPerHead ? h * nb * nb : 0) + bi * nb;

  const int64_t ebase = p.elementMaskPerHead ? h * p.seq * p.seq : 0;
  for (int64_t bj = 0; bj < nb; ++bj) {
    if (mask != nullptr && mask[bj] == 0) continue;
    const bool partial = mask != nullptr && mask[bj] == 2 && p.elementMask != nullptr;
    const int64_t k0 = bj * bs;
    if (p.causal && k0 > q1 - 1) break;  // this and every later tile lies after the last query
    int64_t k1 = std::min(p.seq, k0 + bs);
    if (p.causal) k1 = std::min(k1, q1);
    // A tile crossing the diagonal goes in pieces of kCausalPiece keys, each with only the rows that
    // can see one of its keys (rows [r0, rows)): about 3/4 of the tile's work instead of all of it.
    const bool crossing = p.causal && k1 - 1 > q0;
    const int64_t step = crossing ? std::min(kc, kCausalPiece) : kc;
    for (int64_t c0 = k0; c0 < k1; c0 += step) {
      const int64_t c1 = std::min(k1, c0 + step), kn = c1 - c0;
      const int64_t r0 = crossing ? std::max<int64_t>(0, c0 - q0) : 0;
      if (r0 >= rows) break;
      GemmArgs sg;
      sg.transB = true;
      sg.m = rows - r0;
      sg.n = kn;
      sg.k = d;
      sg.alpha = p.scale;
      sg.a = p.q + base + (q0 + r0) * d;
      sg.lda = d;
      sg.b = p.k + base + c0 * d;
      sg.ldb = d;
      sg.beta = 0.0f;
      sg.c = S + r0 * kc;
      sg.ldc = kc;
      gemmSerial(sg);
      if (crossing && c1 - 1 > q0 + r0) {
        // Keys after the query.
        for (int64_t r = r0; r < rows; ++r) {
          const int64_t first = std::max(c0, q0 + r + 1);
          for (int64_t j = first; j < c1; ++j) S[r * kc + (j - c0)] = ninf;
        }
      }
      if (partial) {
        // Elements the element mask disallows inside a partial tile.
        for (int64_t r = r0; r < rows; ++r) {
          const int64_t n0 = ebase + (q0 + r) * p.seq + c0;
          float* srow = S + r * kc;
          for (int64_t j = 0; j < kn; ++j) {
            const int64_t n = n0 + j;
            if (((p.elementMask[n >> 3] >> (n & 7)) & 1) == 0) srow[j] = ninf;
          }
        }
      }
      for (int64_t r = r0; r < rows; ++r) {
        float sum = 0.0f;
        const float prev = M[r];
        const float next = disp.softmaxRow(kn, S + r * kc, prev, &sum);
        if (next == ninf) continue;  // nothing allowed yet in this row; its probabilities are zero
        if (prev != ninf && prev != next) {
          const float corr = std::exp(prev - next);
          L[r] *= corr;
          float* orow = O + r * d;
          for (int64_t c = 0; c < d; ++c) orow[c] *= corr;
        }
        L[r] += sum;
        M[r] = next;
      }
      GemmArgs pv;
      pv.m = rows - r0;
      pv.n = d;
      pv.k = kn;
      pv.alpha = 1.0f;
      pv.a = S + r0 * kc;
      pv.lda = kc;
      pv.b = p.v + base + c0 * d;
      pv.ldb = d;
      pv.beta = 1.0f;
      pv.c = O + r0 * d;
      pv.ldc = d;
      gemmSerial(pv);
    }
  }
  float* out = p.out + base + q0 * d;
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = L[r] > 0.0f ? 1.0f / L[r] : 0.0f;
    for (int64_t c = 0; c < d; ++c) out[r * d + c] = L[r] > 0.0f ? O[r * d + c] * inv : 0.0f;
  }
  if (p.lse != nullptr) {
    float* lse = p.lse + h * p.seq + q0;
    for (int64_t r = 0; r < rows; ++r) lse[r] = L[r] > 0.0f ? M[r] + std::log(L[r]) : ninf;
  }
}

}  // namespace

void attention(const AttentionProblem& p) {
  if (p.heads <= 0 || p.seq <= 0 || p.d <= 0) return;
  const int64_t bs = p.mask != nullptr ? p.blockSize : kDenseBlock;
  const int64_t nb = (p.seq + bs - 1) / bs;
  const int64_t qc = std::min(bs, kQueryChunk);
  const int64_t perBlock = (bs + qc - 1) / qc;
  // Work items: (head, query block, chunk of the block), handed out dynamically (causal rows and
  // sparse masks make their costs uneven).
  struct Item {
    int64_t h, bi, q0, q1;
  };
  std::vector<Item> items;
  items.reserve(static_cast<size_t>(p.heads * nb * perBlock));
  for (int64_t h = 0; h < p.heads; ++h) {
    for (int64_t bi = 0; bi < nb; ++bi) {
      const int64_t b0 = bi * bs, b1 = std::min(p.seq, b0 + bs);
      for (int64_t q0 = b0; q0 < b1; q0 += qc) items.push_back({h, bi, q0, std::min(b1, q0 + qc)});
    }
  }
  const double work = static_cast<double>(p.heads) * p.seq * p.seq * p.d * 2.0;
  std::atomic<int64_t> next{0};
  const int64_t total = static_cast<int64_t>(items.size());
  parallelRun(std::min<int>(threadsFor(work), static_cast<int>(std::min<int64_t>(total, 256))), [&](int, int) {
    for (;;) {
      const int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= total) break;
      const Item& it = items[static_cast<size_t>(i)];
      attendChunk(p, bs, nb, it.h, it.bi, it.q0, it.q1);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Masked optimizer steps

namespace {

// Runs fn(lo, hi, kStart) over parts of the active set: index positions [lo, hi) for an index list
// (kStart = lo), or entries [lo, hi) for a bit mask (kStart = active entries before lo).
template <typename Fn>
void forActiveParts(const ActiveSet& s, Fn fn) {
  const int64_t span = s.indices != nullptr ? s.count : s.size;
  const int wanted = threadsFor(static_cast<double>(s.count) * 16.0);
  if (s.indices != nullptr) {
    parallelRun(wanted, [&](int t, int nt) {
      const int64_t lo = partPoint(span, 8, nt, t), hi = partPoint(span, 8, nt, t + 1);
      if (lo < hi) fn(lo, hi, lo);
    });
    return;
  }
  // Bit mask: parts on byte boundaries; each needs the number of active entries before it.
  const int nt = std::max(1, std::min(wanted, poolSize()));
  std::vector<int64_t> bounds(static_cast<size_t>(nt) + 1), before(static_cast<size_t>(nt) + 1, 0);
  for (int t = 0; t <= nt; ++t) bounds[t] = partPoint(span, 64, nt, t);
  for (int t = 0; t < nt; ++t) {
    int64_t c = 0;
    for (int64_t b = bounds[t] / 8; b < (bounds[t + 1] + 7) / 8; ++b) c += __builtin_popcount(s.bits[b]);
    before[t + 1] = before[t] + c;
  }
  parallelRun(nt, [&](int t, int parts) {
    // The pool may run fewer parts than planned (busy pool): then this part does all of them.
    const int first = parts == nt ? t : 0;
    const int last = parts == nt ? t + 1 : nt;
    for (int u = first; u < last; ++u) {
      if (bounds[u] < bounds[u + 1]) fn(bounds[u], bounds[u + 1], before[u]);
    }
  });
}

// Calls span(i0, len, k0) for runs of consecutive active entries and one(i, k) for isolated ones.
template <typename Span, typename One>
void walkActive(const ActiveSet& s, int64_t lo, int64_t hi, int64_t k, Span span, One one) {
  if (s.indices != nullptr) {
    int64_t q = lo;
    while (q < hi) {
      // Longest run of consecutive indices from q.
      int64_t e = q + 1;
      while (e < hi && s.indices[e] == s.indices[e - 1] + 1) ++e;
      if (e - q >= 8) {
        span(s.indices[q], e - q, q);
      } else {
        for (int64_t u = q; u < e; ++u) one(s.indices[u], u);
      }
      q = e;
    }
    return;
  }
  // Bit mask over entries [lo, hi), lo a multiple of 8: full bytes form runs.
  int64_t i = lo;
  while (i < hi) {
    const int64_t b = i >> 3;
    const uint8_t byte = s.bits[b];
    if (byte == 0xFF && i + 8 <= hi) {
      int64_t e = i + 8;
      while (e + 8 <= hi && s.bits[e >> 3] == 0xFF) e += 8;
      span(i, e - i, k);
      k += e - i;
      i = e;
      continue;
    }
    const int64_t end = std::min(hi, i + 8);
    for (int64_t u = i; u < end; ++u) {
      if ((byte >> (u & 7)) & 1) one(u, k++);
    }
    i = end;
  }
}

}  // namespace

void maskedAdam(float* params, const float* grads, const ActiveSet& active, float* m, float* v, const AdamStep& s) {
  if (active.count == 0) return;
  const OpsDispatch& d = opsDispatch();
  forActiveParts(active, [&](int64_t lo, int64_t hi, int64_t k0) {
    walkActive(
        active, lo, hi, k0, [&](int64_t i, int64_t len, int64_t k) { d.adamSpan(len, params + i, grads + i, m + k, v + k, s); },
        [&](int64_t i, int64_t k) { adamOne(params[i], grads[i], m[k], v[k], s); });
  });
}

void maskedSgd(float* params, const float* grads, const ActiveSet& active, float* velocity, const SgdStep& s) {
  if (active.count == 0) return;
  const OpsDispatch& d = opsDispatch();
  forActiveParts(active, [&](int64_t lo, int64_t hi, int64_t k0) {
    walkActive(
        active, lo, hi, k0,
        [&](int64_t i, int64_t len, int64_t k) { d.sgdSpan(len, params + i, grads + i, velocity ? velocity + k : nullptr, s); },
        [&](int64_t i, int64_t k) { sgdOne(params[i], grads[i], velocity ? velocity + k : nullptr, s); });
  });
}

// ---------------------------------------------------------------------------------------------
// Portable inner loops and dispatch

void axpy4Scalar(int64_t len, const float* w0, const float* w1, const float* w2, const float* w3, float x0, float x1,
                 float x2, float x3, float* acc, const float* const* next) {
  (void)next;  // the portable loop leaves prefetching to the hardware
  for (int64_t j = 0; j < len; ++j) acc[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j];
}

void gatherDot4Scalar(int64_t count, const float* w, int64_t ldw, const int32_t* idx, const float* xc, float* out) {
  for (int r = 0; r < 4; ++r) {
    const float* row = w + r * ldw;
    float s = 0.0f;
    for (int64_t q = 0; q < count; ++q) s += row[idx[q]] * xc[q];
    out[r] = s;
  }
}

void maskedDot4Scalar(int64_t cols, const float* w, int64_t ldw, const float* x, const uint32_t* keep, float* out) {
  for (int r = 0; r < 4; ++r) {
    const float* row = w + r * ldw;
    float s = 0.0f;
    for (int64_t p = 0; p < cols; ++p) {
      if (keep[p] != 0) s += row[p] * x[p];
    }
    out[r] = s;
  }
}

float softmaxRowScalar(int64_t len, float* s, float prevMax, float* sum) {
  float mx = prevMax;
  for (int64_t j = 0; j < len; ++j) mx = std::max(mx, s[j]);
  float total = 0.0f;
  if (mx == -std::numeric_limits<float>::infinity()) {
    std::fill(s, s + len, 0.0f);
  } else {
    for (int64_t j = 0; j < len; ++j) {
      s[j] = std::exp(s[j] - mx);
      total += s[j];
    }
  }
  *sum = total;
  return mx;
}

void adamSpanScalar(int64_t len, float* p, const float* g, float* m, float* v, const AdamStep& s) {
  for (int64_t j = 0; j < len; ++j) adamOne(p[j], g[j], m[j], v[j], s);
}

void sgdSpanScalar(int64_t len, float* p, const float* g, float* vel, const SgdStep& s) {
  for (int64_t j = 0; j < len; ++j) sgdOne(p[j], g[j], vel ? vel + j : nullptr, s);
}

const OpsDispatch& opsDispatch() {
  static const OpsDispatch d = [] {
#if defined(SPARSE_WITH_AVX2)
    if (const WideKernels* w = wideKernels()) {
      return OpsDispatch{w->axpy4, w->gatherDot4, w->maskedDot4, w->softmaxRow, w->adamSpan, w->sgdSpan};
    }
    if (useAvx2()) {
      return OpsDispatch{axpy4Avx2, gatherDot4Avx2, maskedDot4Avx2, softmaxRowAvx2, adamSpanAvx2, sgdSpanAvx2};
    }
#endif
    return OpsDispatch{axpy4Scalar, gatherDot4Scalar, maskedDot4Scalar, softmaxRowScalar, adamSpanScalar, sgdSpanScalar};
  }();
  return d;
}

}  // namespace sparse
