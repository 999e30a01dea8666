// Drivers of the sparse-layer products (sparse_linear.h). Each call first transposes its token-major
// operands into feature-major panels, tokens contiguous, cut into strips of tokens:
// - linearCSR is then spmmCSR's strip kernel on those panels (every stored value scales the row of
//   its input feature across a strip of up to 64 tokens, 8 accumulators), blocked over K like
//   spmmCSR; each thread collects a tile of output rows x strip in L1/L2 and writes it back into the
//   token-major output through 8x8 register transposes;
// - linearCSRGradInput runs linearCSR on W^T, whose CSR form (W's CSC) is built in two parallel
//   counting passes and kept for the next calls with the same pattern: each input feature's gradient
//   row is then gathered in registers, instead of scattered through memory once per stored value;
// - sddmmCSR cuts the tokens into blocks whose X panel stays in L2, and per stored row computes its
//   entries' dot products eight at a time (one dY load feeds eight multiply-adds).
#include "sparse_linear.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "aligned_buffer.h"
#include "cpu_features.h"
#include "gemm.h"
#include "thread_pool.h"

namespace sparse {
namespace {

struct LinearDispatch {
  CsrStripKernel strip;
  TransposeKernel transpose;
  SddmmRowKernel sddmm;
};

const LinearDispatch& dispatch() {
  static const LinearDispatch d = [] {
#if defined(SPARSE_WITH_AVX2)
    if (useAvx2()) return LinearDispatch{csrStripAvx2, transposeAvx2, sddmmRowAvx2};
#endif
    return LinearDispatch{csrStripScalar, transposeScalar, sddmmRowScalar};
  }();
  return d;
}

// Tokens per strip of the products: 8 vectors of accumulators per output row.
constexpr int64_t kTokenStrip = 64;
// Output rows a thread finishes (every K block of one strip) before writing them back: the tile
// (256 x 64 floats, 64 KiB) stays in L2.
constexpr int64_t kRowChunk = 256;
// Bytes of a K block of a panel strip kept hot per thread (as spmmCSR): 384 KiB.
constexpr int64_t kPanelBlockBytes = 384 * 1024;
// Bytes of the X panel of one SDDMM token block, reread by every stored row: kept in L2.
constexpr int64_t kSddmmPanelBytes = 384 * 1024;

// The token-major In[0:tokens, 0:k] transposed into strips of tokens: strip s holds tokens
// [starts[s], starts[s] + w) as k rows of packedLd(w) floats (row f = feature f), contiguous. With
// zeroPad, the lanes of each row past w are zero, so a dot product may run over whole vectors.
class TokenPanels {
 public:
  TokenPanels(const float* in, int64_t ldIn, int64_t tokens, int64_t k, std::vector<int64_t> starts, AlignedBuffer& buffer,
              TransposeKernel transpose, bool zeroPad)
      : tokens_(tokens), starts_(std::move(starts)) {
    int64_t total = 0;
    for (size_t s = 0; s < starts_.size(); ++s) {
      offsets_.push_back(total);
      total += k * packedLd(width(static_cast<int64_t>(s)));
    }
    data_ = buffer.reserve(static_cast<size_t>(std::max<int64_t>(total, 1)));
    const double bytes = static_cast<double>(tokens) * static_cast<double>(k) * 4.0;
    // Each thread transposes a range of features across every strip: whole panel rows, so no two
    // threads write the same cache line.
    parallelRun(static_cast<int>(std::max(1.0, std::min(256.0, bytes / (1 << 20)))), [&](int t, int nt) {
      const int64_t f0 = k * t / nt, f1 = k * (t + 1) / nt;
      if (f0 >= f1) return;
      for (size_t s = 0; s < starts_.size(); ++s) {
        const int64_t w = width(static_cast<int64_t>(s)), ld = packedLd(w);
        float* panel = data_ + offsets_[s];
        transpose(in + starts_[s] * ldIn + f0, ldIn, w, f1 - f0, panel + f0 * ld, ld, 0.0f);
        if (zeroPad && w < ld) {
          for (int64_t f = f0; f < f1; ++f) std::fill(panel + f * ld + w, panel + (f + 1) * ld, 0.0f);
        }
      }
    });
  }

  int64_t strips() const { return static_cast<int64_t>(starts_.size()); }
  int64_t start(int64_t s) const { return starts_[static_cast<size_t>(s)]; }
  int64_t width(int64_t s) const {
    const size_t i = static_cast<size_t>(s);
    return (i + 1 < starts_.size() ? starts_[i + 1] : tokens_) - starts_[i];
  }
  // Row f0 (feature f0) of strip s; rows are packedLd(width(s)) floats apart.
  const float* at(int64_t s, int64_t f0) const { return data_ + offsets_[static_cast<size_t>(s)] + f0 * packedLd(width(s)); }

 private:
  int64_t tokens_;
  std::vector<int64_t> starts_;
  std::vector<int64_t> offsets_;
  float* data_ = nullptr;
};

// balancedSplit rounded to a multiple of 8 rows (except the end), so each thread's output columns
// start on whole 8x8 transposes.
int64_t splitRows8(const int32_t* indptr, int64_t rows, int parts, int t) {
  if (t >= parts) return rows;
  return std::min(rows, (balancedSplit(indptr, rows, parts, t) + 4) / 8 * 8);
}

// Out = alpha * In * a^T + beta * Out over every token, for alpha != 0, tokens > 0 and rows > 0.
void linearCore(const CsrMatrix& a, const TokenOperands& d) {
  const LinearDispatch& k = dispatch();
  const int64_t nnz = a.indptr[a.rows];
  // K blocks as in spmmCSR: about 128 stored values per row per block, at most kPanelBlockBytes of
  // a full-width strip; unsorted rows use one block.
  int64_t kb = std::max<int64_t>(1, a.cols);
  if (a.sorted && nnz > 0) {
    const double perRow = std::max(1.0, static_cast<double>(nnz) / static_cast<double>(a.rows));
    const int64_t maxRows = kPanelBlockBytes / (static_cast<int64_t>(sizeof(float)) * kTokenStrip);
    kb = std::min({kb, maxRows, std::max<int64_t>(64, static_cast<int64_t>(128.0 * static_cast<double>(a.cols) / perRow))});
  }
  const int64_t blocks = std::max<int64_t>(1, (a.cols + kb - 1) / kb);
  thread_local AlignedBuffer panelBuffer;
  const TokenPanels panels(d.in, d.ldIn, d.tokens, a.cols, balancedStrips(d.tokens, kTokenStrip), panelBuffer, k.transpose, false);
  parallelRun(threadsFor(static_cast<double>(nnz) * static_cast<double>(d.tokens)), [&](int t, int nt) {
    const int64_t r0 = splitRows8(a.indptr, a.rows, nt, t);
    const int64_t r1 = splitRows8(a.indptr, a.rows, nt, t + 1);
    if (r0 >= r1) return;
    thread_local AlignedBuffer tileBuffer;
    float* tile = tileBuffer.reserve(static_cast<size_t>(kRowChunk * kTokenStrip));
    // split[(r - r0) * (blocks + 1) + b]: first stored value of row r in K block b (at most
    // rows * (cols / 64 + 1) entries: a quarter of the dense matrix's bytes).
    thread_local std::vector<int32_t> split;
    split.resize(static_cast<size_t>((r1 - r0) * (blocks + 1)));
    for (int64_t r = r0; r < r1; ++r) {
      int32_t* sp = &split[static_cast<size_t>((r - r0) * (blocks + 1))];
      int64_t p = a.indptr[r];
      const int64_t end = a.indptr[r + 1];
      for (int64_t b = 0; b < blocks; ++b) {
        sp[b] = static_cast<int32_t>(p);
        if (b + 1 == blocks) {
          p = end;
        } else {
          const int64_t k1 = (b + 1) * kb;
          while (p < end && a.indices[p] < k1) ++p;
        }
      }
      sp[blocks] = static_cast<int32_t>(end);
    }
    // Strips outermost: a strip's panel (its K blocks) stays in cache while every row chunk of the
    // thread passes over it, instead of being fetched again after all the other strips.
    for (int64_t s = 0; s < panels.strips(); ++s) {
      const int64_t w = panels.width(s);
      const int64_t ld = packedLd(w);
      for (int64_t rc = r0; rc < r1; rc += kRowChunk) {
        const int64_t rcEnd = std::min(r1, rc + kRowChunk);
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t k0 = b * kb;
          // The first block writes the tile; later ones add to it.
          const float beta = b == 0 ? 0.0f : 1.0f;
          const float* block = panels.at(s, k0);
          for (int64_t r = rc; r < rcEnd; ++r) {
            const int32_t* sp = &split[static_cast<size_t>((r - r0) * (blocks + 1))];
            const int64_t p0 = sp[b], p1 = sp[b + 1];
            if (p1 == p0 && b > 0) continue;
            k.strip(p1 - p0, a.values + p0, a.indices + p0, k0, block, ld, w, d.alpha, beta, tile + (r - rc) * kTokenStrip);
          }
        }
        // Tile [rows, tokens] -> Out[tokens, rows], with beta applied to what Out held.
        k.transpose(tile, kTokenStrip, rcEnd - rc, w, d.out + panels.start(s) * d.ldOut + rc, d.ldOut, d.beta);
      }
    }
  });
}

// The pattern of a^T (a's CSC) as CSR: rows = a.cols, each row's entries in increasing original
// row order (so sorted); entry q of a^T is entry perm[q] of a. Built in two passes over a's rows split
// into parts: count per column, then scatter, each part starting where the parts before it end in
// every column.
struct TransposedPattern {
  int64_t rows = 0, cols = 0;
  // a's own pattern, the cache key (compared in full before any reuse).
  std::vector<int32_t> indptr, indices;
  std::vector<int32_t> tIndptr, tIndices, perm;
  uint64_t lastUse = 0;

  size_t bytes() const { return sizeof(int32_t) * (indptr.size() + indices.size() + tIndptr.size() + tIndices.size() + perm.size()); }
};

void buildTransposed(const CsrMatrix& a, TransposedPattern& t) {
  const int64_t nnz = a.indptr[a.rows];
  t.rows = a.rows;
  t.cols = a.cols;
  t.indptr.assign(a.indptr, a.indptr + a.rows + 1);
  t.indices.assign(a.indices, a.indices + nnz);
  t.tIndptr.assign(static_cast<size_t>(a.cols + 1), 0);
  t.tIndices.resize(static_cast<size_t>(nnz));
  t.perm.resize(static_cast<size_t>(nnz));
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(poolSize(), nnz / 65536)));
  std::vector<int32_t> counts(static_cast<size_t>(parts * a.cols));
  // Parts are fixed up front and each run walks them by index, so both passes agree on them
  // whatever number of threads the pool grants.
  parallelRun(parts, [&](int th, int nth) {
    for (int part = th; part < parts; part += nth) {
      int32_t* cnt = counts.data() + static_cast<int64_t>(part) * a.cols;
      const int64_t r0 = balancedSplit(a.indptr, a.rows, parts, part), r1 = balancedSplit(a.indptr, a.rows, parts, part + 1);
      for (int64_t p = a.indptr[r0]; p < a.indptr[r1]; ++p) ++cnt[a.indices[p]];
    }
  });
  int64_t running = 0;
  for (int64_t j = 0; j < a.cols; ++j) {
    for (int part = 0; part < parts; ++part) {
      int32_t& c = counts[static_cast<size_t>(static_cast<int64_t>(part) * a.cols + j)];
      const int32_t n = c;
      c = static_cast<int32_t>(running);
      running += n;
    }
    t.tIndptr[static_cast<size_t>(j + 1)] = static_cast<int32_t>(running);
  }
  parallelRun(parts, [&](int th, int nth) {
    for (int part = th; part < parts; part += nth) {
      int32_t* next = counts.data() + static_cast<int64_t>(part) * a.cols;
      const int64_t r0 = balancedSplit(a.indptr, a.rows, parts, part), r1 = balancedSplit(a.indptr, a.rows, parts, part + 1);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
          const int32_t q = next[a.indices[p]]++;
          t.tIndices[static_cast<size_t>(q)] = static_cast<int32_t>(r);
          t.perm[static_cast<size_t>(q)] = static_cast<int32_t>(p);
        }
      }
    }
  });
}

bool samePattern(const TransposedPattern& t, const CsrMatrix& a) {
  const int64_t nnz = a.indptr[a.rows];
  return t.rows == a.rows && t.cols == a.cols && static_cast<int64_t>(t.indices.size()) == nnz &&
         std::memcmp(t.indptr.data(), a.indptr, sizeof(int32_t) * static_cast<size_t>(a.rows + 1)) == 0 &&
         std::memcmp(t.indices.data(), a.indices, sizeof(int32_t) * static_cast<size_t>(nnz)) == 0;
}

// The transposed patterns of the last few weights seen by the calling thread. A weight whose mask
// is fixed between updates pays the transposition once: later calls compare its indptr and indices
// in full with the copy kept here (a read of the pattern, several times cheaper than the scatter of
// a new transposition) and only gather the current values. At most kCacheEntries patterns and
// kCacheBytes bytes; the least recently used go first, and a pattern larger than the budget is
// built for the call alone.
constexpr size_t kCacheEntries = 4;
constexpr size_t kCacheBytes = size_t{256} << 20;

class TransposeCache {
 public:
  const TransposedPattern& get(const CsrMatrix& a) {
    ++clock_;
    for (auto& e : entries_) {
      if (samePattern(*e, a)) {
        e->lastUse = clock_;
        return *e;
      }
    }
    auto fresh = std::make_unique<TransposedPattern>();
    buildTransposed(a, *fresh);
    fresh->lastUse = clock_;
    if (fresh->bytes() > kCacheBytes) {
      uncached_ = std::move(fresh);
      return *uncached_;
    }
    uncached_.reset();
    entries_.push_back(std::move(fresh));
    for (;;) {
      size_t total = 0;
      for (const auto& e : entries_) total += e->bytes();
      if (entries_.size() <= kCacheEntries && total <= kCacheBytes) break;
      auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const auto& x, const auto& y) { return x->lastUse < y->lastUse; });
      entries_.erase(oldest);
    }
    return *entries_.back();
  }

 private:
  std::vector<std::unique_ptr<TransposedPattern>> entries_;
  std::unique_ptr<TransposedPattern> uncached_;
  uint64_t clock_ = 0;
};

}  // namespace

void transposeScalar(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd, float beta) {
  // 8x8 tiles, so both sides are walked a cache line at a time.
  for (int64_t r0 = 0; r0 < rows; r0 += 8) {
    const int64_t r1 = std::min(rows, r0 + 8);
    for (int64_t c0 = 0; c0 < cols; c0 += 8) {
      const int64_t c1 = std::min(cols, c0 + 8);
      for (int64_t c = c0; c < c1; ++c) {
        float* out = dst + c * ldd;
        for (int64_t r = r0; r < r1; ++r) out[r] = beta == 0.0f ? src[r * lds + c] : src[r * lds + c] + beta * out[r];
      }
    }
  }
}

void sddmmRowScalar(const float* row, const float* panel, int64_t ld, int64_t len, const int32_t* cols, int64_t count,
                    float alpha, float beta, float* out) {
  for (int64_t q = 0; q < count; ++q) {
    const float* x = panel + static_cast<int64_t>(cols[q]) * ld;
    float s = 0.0f;
    for (int64_t k = 0; k < len; ++k) s += row[k] * x[k];
    out[q] = beta == 0.0f ? alpha * s : alpha * s + beta * out[q];
  }
}

void linearCSR(const CsrMatrix& a, const TokenOperands& d) {
  if (d.tokens <= 0 || a.rows <= 0) return;
  if (d.alpha == 0.0f || a.indptr[a.rows] == 0) {
    scaleC(d.tokens, a.rows, d.beta, d.out, d.ldOut);  // no product: beta * Out
    return;
  }
  linearCore(a, d);
}

void linearCSRGradInput(const CsrMatrix& a, const TokenOperands& d) {
  if (d.tokens <= 0 || a.cols <= 0) return;
  if (d.alpha == 0.0f || a.rows == 0 || a.indptr[a.rows] == 0) {
    scaleC(d.tokens, a.cols, d.beta, d.out, d.ldOut);
    return;
  }
  thread_local TransposeCache cache;
  thread_local AlignedBuffer valueBuffer;
  const TransposedPattern& t = cache.get(a);
  const int64_t nnz = a.indptr[a.rows];
  float* values = valueBuffer.reserve(static_cast<size_t>(nnz));
  // The current values in a^T's order.
  parallelRun(static_cast<int>(std::max<int64_t>(1, nnz / 65536)), [&](int th, int nth) {
    const int64_t q0 = nnz * th / nth, q1 = nnz * (th + 1) / nth;
    for (int64_t q = q0; q < q1; ++q) values[q] = a.values[t.perm[static_cast<size_t>(q)]];
  });
  CsrMatrix at;
  at.rows = a.cols;
  at.cols = a.rows;
  at.indptr = t.tIndptr.data();
  at.indices = t.tIndices.data();
  at.values = values;
  at.sorted = true;
  linearCore(at, d);
}

void sddmmCSR(const CsrMatrix& a, const SddmmOperands& d) {
  const int64_t nnz = a.rows > 0 ? a.indptr[a.rows] : 0;
  if (nnz == 0) return;
  if (d.alpha == 0.0f || d.tokens == 0) {
    for (int64_t p = 0; p < nnz; ++p) d.out[p] = d.beta == 0.0f ? 0.0f : d.beta * d.out[p];
    return;
  }
  const LinearDispatch& k = dispatch();
  // Token blocks: the X panel of a block (cols x block floats) fits kSddmmPanelBytes, but at least
  // 32 and at most 64 tokens (measured at 512 tokens, 1024 x 4096 and 4096 x 1024 at 90%: 24 tokens
  // ran 15% slower than 32, and more than 64 no faster), as equal as possible in whole vectors.
  const int64_t fit = kSddmmPanelBytes / (static_cast<int64_t>(sizeof(float)) * std::max<int64_t>(a.cols, 1)) / 8 * 8;
  const int64_t maxBlock = std::max<int64_t>(32, std::min<int64_t>(64, fit));
  thread_local AlignedBuffer dyBuffer, xBuffer;
  std::vector<int64_t> starts = balancedStrips(d.tokens, maxBlock);
  const TokenPanels dy(d.dy, d.lddy, d.tokens, a.rows, starts, dyBuffer, k.transpose, true);
  const TokenPanels x(d.x, d.ldx, d.tokens, a.cols, std::move(starts), xBuffer, k.transpose, true);
  parallelRun(threadsFor(static_cast<double>(nnz) * static_cast<double>(d.tokens)), [&](int t, int nt) {
    const int64_t r0 = balancedSplit(a.indptr, a.rows, nt, t);
    const int64_t r1 = balancedSplit(a.indptr, a.rows, nt, t + 1);
    for (int64_t s = 0; s < x.strips(); ++s) {
      const int64_t ld = packedLd(x.width(s));
      // The first block applies beta; later ones add to what it left.
      const float beta = s == 0 ? d.beta : 1.0f;
      const float* dyPanel = dy.at(s, 0);
      const float* xPanel = x.at(s, 0);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t p0 = a.indptr[r], p1 = a.indptr[r + 1];
        if (p0 == p1) continue;
        k.sddmm(dyPanel + r * ld, xPanel, ld, ld, a.indices + p0, p1 - p0, d.alpha, beta, d.out + p0);
      }
    }
  });
}

}  // namespace sparse
