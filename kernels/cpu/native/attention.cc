// Drivers of the block-sparse attention backward and the bitmap-KV decode attention, plus the
// portable versions of their row kernels.
#include "attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "aligned_buffer.h"
#include "cpu_features.h"
#include "gemm.h"
#include "thread_pool.h"
#include "wide_kernels.h"

namespace sparse {

namespace {

constexpr double kMinWorkPerThread = 1 << 20;  // multiply-adds worth waking a thread for
constexpr int64_t kDenseBlock = 64;            // tile side of dense attention (as the forward)
constexpr int64_t kChunk = 64;                 // query rows / keys per recomputed sub-tile
constexpr int64_t kCausalPiece = 32;           // keys per piece of a sub-tile crossing the causal diagonal

int attentionThreads(double work) { return static_cast<int>(std::max(1.0, std::min(256.0, work / kMinWorkPerThread))); }

struct BackwardScratch {
  AlignedBuffer s, ds, acc1, acc2, dq;
};

BackwardScratch& backwardScratch() {
  thread_local BackwardScratch ws;
  return ws;
}

// Runs fn(item) for item in [0, total) on the pool, handing items out dynamically.
template <typename Fn>
void forEachItem(int64_t total, double work, const Fn& fn) {
  std::atomic<int64_t> next{0};
  parallelRun(std::min<int>(attentionThreads(work), static_cast<int>(std::min<int64_t>(std::max<int64_t>(total, 1), 256))), [&](int, int) {
    for (;;) {
      const int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= total) break;
      fn(i);
    }
  });
}

// Calls fn(qs, a, b) for the pieces of keys [c0, c1) against queries [q0, q1). With causal, a
// sub-tile that crosses the diagonal is cut into kCausalPiece-key pieces, each with only the queries
// that can see one of its keys (from qs = max(q0, a)): about 3/4 of the sub-tile's work.
template <typename Fn>
void causalPieces(bool causal, int64_t q0, int64_t q1, int64_t c0, int64_t c1, const Fn& fn) {
  if (!causal || c1 - 1 <= q0) {
    fn(q0, c0, c1);
    return;
  }
  for (int64_t a = c0; a < c1; a += kCausalPiece) {
    const int64_t qs = std::max(q0, a);
    if (qs >= q1) break;
    fn(qs, a, std::min(c1, a + kCausalPiece));
  }
}

struct Geometry {
  int64_t bs, nb;
};

inline uint8_t tileValue(const AttentionBackwardProblem& p, const Geometry& g, int64_t h, int64_t bi, int64_t bj) {
  if (p.mask == nullptr) return 1;
  return p.mask[(p.maskPerHead ? h * g.nb * g.nb : 0) + bi * g.nb + bj];
}

// P (into S) and dS = P * (dP - D) (into DS), both [rows, kn] with leading dimension kChunk, for
// queries [q0, q1) and keys [c0, c1) of head h; disallowed elements get P = dS = 0.
void subTile(const AttentionBackwardProblem& p, const float* D, int64_t h, int64_t q0, int64_t q1, int64_t c0, int64_t c1,
             bool partial, float* S, float* DS) {
  const AttentionKernels& kern = attentionKernels();
  const int64_t rows = q1 - q0, kn = c1 - c0, d = p.d, base = h * p.seq * d;
  const float ninf = -std::numeric_limits<float>::infinity();
  GemmArgs sg;
  sg.transB = true;
  sg.m = rows;
  sg.n = kn;
  sg.k = d;
  sg.alpha = p.scale;
  sg.a = p.q + base + q0 * d;
  sg.lda = d;
  sg.b = p.k + base + c0 * d;
  sg.ldb = d;
  sg.beta = 0.0f;
  sg.c = S;
  sg.ldc = kChunk;
  gemmSerial(sg);
  GemmArgs pg = sg;
  pg.alpha = 1.0f;
  pg.a = p.dout + base + q0 * d;
  pg.b = p.v + base + c0 * d;
  pg.c = DS;
  gemmSerial(pg);
  if (p.causal && c1 - 1 > q0) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t first = std::max(c0, q0 + r + 1);
      for (int64_t j = first; j < c1; ++j) S[r * kChunk + (j - c0)] = ninf;
    }
  }
  if (partial) {
    const int64_t ebase = p.elementMaskPerHead ? h * p.seq * p.seq : 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n0 = ebase + (q0 + r) * p.seq + c0;
      float* srow = S + r * kChunk;
      for (int64_t j = 0; j < kn; ++j) {
        const int64_t n = n0 + j;
        if (((p.elementMask[n >> 3] >> (n & 7)) & 1) == 0) srow[j] = ninf;
      }
    }
  }
  const float* lse = p.lse + h * p.seq + q0;
  for (int64_t r = 0; r < rows; ++r) {
    if (lse[r] == ninf) {
      // No allowed key in this row: no probability mass anywhere.
      std::fill(S + r * kChunk, S + r * kChunk + kn, 0.0f);
      std::fill(DS + r * kChunk, DS + r * kChunk + kn, 0.0f);
      continue;
    }
    kern.backwardRow(kn, S + r * kChunk, DS + r * kChunk, lse[r], D[h * p.seq + q0 + r]);
  }
}

// dK and dV of keys [k0, k1) (inside key block bj) of head h, over every kept query tile; with
// dQhead (head h's [seq, d] accumulator, owned by the caller's thread), also dQ += scale * dS K.
void keyChunk(const AttentionBackwardProblem& p, const Geometry& g, const float* D, int64_t h, int64_t bj, int64_t k0, int64_t k1,
              float* dQhead) {
  const int64_t kn = k1 - k0, d = p.d, base = h * p.seq * d;
  BackwardScratch& ws = backwardScratch();
  float* S = ws.s.reserve(static_cast<size_t>(kChunk * kChunk));
  float* DS = ws.ds.reserve(static_cast<size_t>(kChunk * kChunk));
  float* dK = ws.acc1.reserve(static_cast<size_t>(kn * d));
  float* dV = ws.acc2.reserve(static_cast<size_t>(kn * d));
  std::fill(dK, dK + kn * d, 0.0f);
  std::fill(dV, dV + kn * d, 0.0f);
  for (int64_t bi = p.causal ? (k0 / g.bs) : 0; bi < g.nb; ++bi) {
    const uint8_t t = tileValue(p, g, h, bi, bj);
    if (t == 0) continue;
    const bool partial = t == 2 && p.elementMask != nullptr;
    const int64_t b0 = bi * g.bs, b1 = std::min(p.seq, b0 + g.bs);
    for (int64_t q0 = b0; q0 < b1; q0 += kChunk) {
      const int64_t q1 = std::min(b1, q0 + kChunk);
      if (p.causal && q1 - 1 < k0) continue;  // every query of the chunk precedes these keys
      causalPieces(p.causal, q0, q1, k0, k1, [&](int64_t qs, int64_t a, int64_t b) {
        subTile(p, D, h, qs, q1, a, b, partial, S, DS);
        // dV += P^T dO; dK += scale * dS^T Q.
        GemmArgs gv;
        gv.transA = true;
        gv.m = b - a;
        gv.n = d;
        gv.k = q1 - qs;
        gv.alpha = 1.0f;
        gv.a = S;
        gv.lda = kChunk;
        gv.b = p.dout + base + qs * d;
        gv.ldb = d;
        gv.beta = 1.0f;
        gv.c = dV + (a - k0) * d;
        gv.ldc = d;
        gemmSerial(gv);
        GemmArgs gk = gv;
        gk.alpha = p.scale;
        gk.a = DS;
        gk.b = p.q + base + qs * d;
        gk.c = dK + (a - k0) * d;
        gemmSerial(gk);
        if (dQhead != nullptr) {
          GemmArgs gq;
          gq.m = q1 - qs;
          gq.n = d;
          gq.k = b - a;
          gq.alpha = p.scale;
          gq.a = DS;
          gq.lda = kChunk;
          gq.b = p.k + base + a * d;
          gq.ldb = d;
          gq.beta = 1.0f;
          gq.c = dQhead + qs * d;
          gq.ldc = d;
          gemmSerial(gq);
        }
      });
    }
  }
  std::memcpy(p.dk + base + k0 * d, dK, static_cast<size_t>(kn * d) * sizeof(float));
  std::memcpy(p.dv + base + k0 * d, dV, static_cast<size_t>(kn * d) * sizeof(float));
}

// dQ of queries [q0, q1) (inside query block bi) of head h, over every kept key tile.
void queryChunk(const AttentionBackwardProblem& p, const Geometry& g, const float* D, int64_t h, int64_t bi, int64_t q0, int64_t q1) {
  const int64_t rows = q1 - q0, d = p.d, base = h * p.seq * d;
  BackwardScratch& ws = backwardScratch();
  float* S = ws.s.reserve(static_cast<size_t>(kChunk * kChunk));
  float* DS = ws.ds.reserve(static_cast<size_t>(kChunk * kChunk));
  float* dQ = ws.acc1.reserve(static_cast<size_t>(rows * d));
  std::fill(dQ, dQ + rows * d, 0.0f);
  for (int64_t bj = 0; bj < g.nb; ++bj) {
    const uint8_t t = tileValue(p, g, h, bi, bj);
    if (t == 0) continue;
    const int64_t b0 = bj * g.bs;
    if (p.causal && b0 > q1 - 1) break;
    const bool partial = t == 2 && p.elementMask != nullptr;
    const int64_t b1 = std::min(p.seq, b0 + g.bs);
    for (int64_t c0 = b0; c0 < b1; c0 += kChunk) {
      if (p.causal && c0 > q1 - 1) break;
      const int64_t c1 = std::min(b1, c0 + kChunk);
      causalPieces(p.causal, q0, q1, c0, c1, [&](int64_t qs, int64_t a, int64_t b) {
        subTile(p, D, h, qs, q1, a, b, partial, S, DS);
        // dQ += scale * dS K.
        GemmArgs gq;
        gq.m = q1 - qs;
        gq.n = d;
        gq.k = b - a;
        gq.alpha = p.scale;
        gq.a = DS;
        gq.lda = kChunk;
        gq.b = p.k + base + a * d;
        gq.ldb = d;
        gq.beta = 1.0f;
        gq.c = dQ + (qs - q0) * d;
        gq.ldc = d;
        gemmSerial(gq);
      });
    }
  }
  std::memcpy(p.dq + base + q0 * d, dQ, static_cast<size_t>(rows * d) * sizeof(float));
}

}  // namespace

void attentionBackward(const AttentionBackwardProblem& p) {
  if (p.heads <= 0 || p.seq <= 0 || p.d <= 0) return;
  const int64_t bs = p.mask != nullptr ? p.blockSize : kDenseBlock;
  const Geometry geo{bs, (p.seq + bs - 1) / bs};
  const int64_t rowsAll = p.heads * p.seq;
  // D_i = dOut_i . out_i, for every row.
  std::vector<float> D(static_cast<size_t>(rowsAll));
  const AttentionKernels& kern = attentionKernels();
  for (int64_t r = 0; r < rowsAll; ++r) D[r] = kern.dot(p.d, p.dout + r * p.d, p.out + r * p.d);

  // Chunks: (head, block, 64 rows of the block).
  struct Item {
    int64_t h, b, x0, x1;
  };
  std::vector<Item> items;
  for (int64_t h = 0; h < p.heads; ++h) {
    for (int64_t b = 0; b < geo.nb; ++b) {
      const int64_t b0 = b * geo.bs, b1 = std::min(p.seq, b0 + geo.bs);
      for (int64_t x0 = b0; x0 < b1; x0 += kChunk) items.push_back({h, b, x0, std::min(b1, x0 + kChunk)});
    }
  }
  // Estimate of the work: the kept fraction of the dense products.
  double kept = 1.0;
  if (p.mask != nullptr) {
    const int64_t cells = (p.maskPerHead ? p.heads : 1) * geo.nb * geo.nb;
    int64_t nz = 0;
    for (int64_t t = 0; t < cells; ++t) nz += p.mask[t] != 0 ? 1 : 0;
    kept = cells > 0 ? static_cast<double>(nz) / static_cast<double>(cells) : 0.0;
  }
  const double work = static_cast<double>(p.heads) * p.seq * p.seq * p.d * 4.0 * std::max(kept, 0.01);
  const int64_t total = static_cast<int64_t>(items.size());
  if (p.heads >= 2 * static_cast<int64_t>(poolSize())) {
    // Enough heads to keep every thread busy: one item per head, a single pass over its key chunks
    // that also accumulates dQ in the thread's own buffer (5 products per sub-tile instead of 7; each
    // dQ row summed by one thread in a fixed order, so results stay deterministic).
    forEachItem(p.heads, work, [&](int64_t h) {
      const int64_t span = p.seq * p.d;
      float* dQ = backwardScratch().dq.reserve(static_cast<size_t>(span));
      std::fill(dQ, dQ + span, 0.0f);
      for (const Item& it : items) {
        if (it.h == h) keyChunk(p, geo, D.data(), it.h, it.b, it.x0, it.x1, dQ);
      }
      std::memcpy(p.dq + h * span, dQ, static_cast<size_t>(span) * sizeof(float));
    });
    return;
  }
  // Otherwise: keys then queries, each pass split into (head, 64-row chunk) items.
  forEachItem(total, work, [&](int64_t i) {
    const Item& it = items[static_cast<size_t>(i)];
    keyChunk(p, geo, D.data(), it.h, it.b, it.x0, it.x1, nullptr);
  });
  forEachItem(total, work, [&](int64_t i) {
    const Item& it = items[static_cast<size_t>(i)];
    queryChunk(p, geo, D.data(), it.h, it.b, it.x0, it.x1);
  });
}

// ---------------------------------------------------------------------------------------------
// Attention over a bitmap KV cache

void attentionBitmapKV(const AttentionBitmapKVProblem& p) {
  if (p.heads <= 0 || p.d <= 0) return;
  const int64_t d = p.d, heads = p.heads, group = p.heads / p.kvHeads, rowBytes = (d + 7) / 8;
  if (p.positions <= 0) {
    std::fill(p.out, p.out + heads * d, 0.0f);
    return;
  }
  // Items: ranges of positions, each over every kv head, so the cache (position-major) is read in
  // storage order. Per query head an item keeps a running max, sum and weighted value sum, updated
  // block by block of kBlock positions (online softmax); the items are merged afterwards
  // (flash-decoding).
  constexpr int64_t kBlock = 64;
  const double work = static_cast<double>(heads) * p.positions * d * 4.0;
  const int threads = std::min(attentionThreads(work), poolSize());
  const int64_t parts = threads <= 1 ? 1 : std::max<int64_t>(1, std::min<int64_t>(threads, p.positions / (4 * kBlock)));
  std::vector<float> partM(static_cast<size_t>(parts * heads)), partL(static_cast<size_t>(parts * heads));
  std::vector<float> partAcc(static_cast<size_t>(parts * heads * d));
  const float ninf = -std::numeric_limits<float>::infinity();
  forEachItem(parts, work, [&](int64_t part) {
    const AttentionKernels& kern = attentionKernels();
    const int64_t p0 = p.positions * part / parts, p1 = p.positions * (part + 1) / parts;
    BackwardScratch& ws = backwardScratch();
    float* row = ws.acc1.reserve(static_cast<size_t>(d));
    float* S = ws.s.reserve(static_cast<size_t>(heads * kBlock));
    float* M = &partM[static_cast<size_t>(part * heads)];
    float* L = &partL[static_cast<size_t>(part * heads)];
    float* acc = &partAcc[static_cast<size_t>(part * heads * d)];
    std::fill(M, M + heads, ninf);
    std::fill(L, L + heads, 0.0f);
    std::fill(acc, acc + heads * d, 0.0f);
    for (int64_t b0 = p0; b0 < p1; b0 += kBlock) {
      const int64_t b1 = std::min(p1, b0 + kBlock), len = b1 - b0;
      for (int64_t pos = b0; pos < b1; ++pos) {
        for (int64_t g = 0; g < p.kvHeads; ++g) {
          const int64_t r = pos * p.kvHeads + g;
          kern.expandRow(d, p.kBits + r * rowBytes, p.kValues + p.kStart[r], p.kValuesEnd, row);
          for (int64_t u = 0; u < group; ++u) {
            const int64_t h = g * group + u;
            S[h * kBlock + (pos - b0)] = p.scale * kern.dot(d, p.q + h * d, row);
          }
        }
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* sh = S + h * kBlock;
        float mx = M[h];
        for (int64_t t = 0; t < len; ++t) mx = std::max(mx, sh[t]);
        if (mx == ninf) continue;  // (scores are finite for finite inputs)
        if (M[h] != ninf && M[h] != mx) {
          const float corr = std::exp(M[h] - mx);
          L[h] *= corr;
          float* ah = acc + h * d;
          for (int64_t c = 0; c < d; ++c) ah[c] *= corr;
        }
        float sum = 0.0f;
        for (int64_t t = 0; t < len; ++t) {
          sh[t] = std::exp(sh[t] - mx);
          sum += sh[t];
        }
        L[h] += sum;
        M[h] = mx;
      }
      for (int64_t pos = b0; pos < b1; ++pos) {
        for (int64_t g = 0; g < p.kvHeads; ++g) {
          const int64_t r = pos * p.kvHeads + g;
          kern.expandRow(d, p.vBits + r * rowBytes, p.vValues + p.vStart[r], p.vValuesEnd, row);
          for (int64_t u = 0; u < group; ++u) {
            const int64_t h = g * group + u;
            kern.axpy(d, S[h * kBlock + (pos - b0)], row, acc + h * d);
          }
        }
      }
    }
  });
  // Merge the parts of each query head.
  for (int64_t h = 0; h < heads; ++h) {
    float mx = ninf;
    for (int64_t part = 0; part < parts; ++part) mx = std::max(mx, partM[static_cast<size_t>(part * heads + h)]);
    float* out = p.out + h * d;
    std::fill(out, out + d, 0.0f);
    float sum = 0.0f;
    for (int64_t part = 0; part < parts; ++part) {
      const size_t at = static_cast<size_t>(part * heads + h);
      if (partM[at] == ninf) continue;
      const float w = std::exp(partM[at] - mx);
      sum += w * partL[at];
      const float* acc = &partAcc[at * static_cast<size_t>(d)];
      for (int64_t c = 0; c < d; ++c) out[c] += w * acc[c];
    }
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int64_t c = 0; c < d; ++c) out[c] *= inv;
  }
}

// ---------------------------------------------------------------------------------------------
// Portable row kernels and dispatch

void backwardRowScalar(int64_t len, float* s, float* ds, float lse, float D) {
  for (int64_t j = 0; j < len; ++j) {
    const float pj = std::exp(s[j] - lse);
    s[j] = pj;
    ds[j] = pj * (ds[j] - D);
  }
}

void expandRowScalar(int64_t d, const uint8_t* bits, const float* values, const float*, float* out) {
  for (int64_t c = 0; c < d; ++c) out[c] = ((bits[c >> 3] >> (c & 7)) & 1) != 0 ? *values++ : 0.0f;
}

float dotScalar(int64_t len, const float* a, const float* b) {
  float s = 0.0f;
  for (int64_t j = 0; j < len; ++j) s += a[j] * b[j];
  return s;
}

void axpyScalar(int64_t len, float alpha, const float* x, float* y) {
  for (int64_t j = 0; j < len; ++j) y[j] += alpha * x[j];
}

const AttentionKernels& attentionKernels() {
  static const AttentionKernels k = [] {
    if (const WideKernels* w = wideKernels()) return w->attention;
#if defined(SPARSE_WITH_AVX2)
    if (useAvx2()) return AttentionKernels{backwardRowAvx2, expandRowAvx2, dotAvx2, axpyAvx2};
#endif
    return AttentionKernels{backwardRowScalar, expandRowScalar, dotScalar, axpyScalar};
  }();
  return k;
}

}  // namespace sparse
