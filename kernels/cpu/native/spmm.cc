// Drivers of the sparse x dense products. CSR and N:M walk each row's stored values and scale strips
// of the matching B rows (strip kernels, AVX2 or scalar); the K dimension is cut into blocks so the
// B rows a block touches stay in cache while every row of C in a chunk passes over them.
// Block-sparse rows are dense sub-products: each block row multiplies its stored blocks, laid side
// by side, with the matching B rows gathered by pointer, through the packed GEMM.
#include "spmm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "aligned_buffer.h"
#include "cpu_features.h"
#include "gemm.h"
#include "prefetch.h"
#include "thread_pool.h"
#include "wide_kernels.h"

namespace sparse {
namespace {

// Rows of C a thread finishes (over every strip and K block) before moving on: their strips of C
// (kRowChunk x kStrip floats, 64 KiB) stay in L2 across the K blocks.
constexpr int64_t kRowChunk = 256;
// Rows of an N:M tile: its values (128 x 48 floats for 2:4, 24 KiB) and its strips of C (128 x 256
// floats for n = 256) stay in L2 while every strip passes over them.
constexpr int64_t kNmRowChunk = 128;
// Bytes of a strip's K block the N:M kernels read for every row of a tile: 24 KiB of a 32 KiB L1.
constexpr int64_t kNmBlockBytes = 24 * 1024;
// Bytes of packed B (all of K, a run of strips) one column panel of the N:M product spans: an eighth
// of a 32 MiB L3 (4 and 8 MiB measured alike at 11008x4096 x 2048; 16 MiB and the whole 32 MiB slower).
constexpr int64_t kNmPanelBytes = 4 << 20;
// Rows of a tile's first strip between two shares of the next tile's prefetch.
constexpr int64_t kNmPrefetchSlice = 16;

// Below this many multiply-adds per thread, waking another thread costs more than it saves.
constexpr double kMinFmaPerThread = 1 << 20;

// The strip kernels in use, the widest strip they take and the vector width strips are cut in.
struct SpmmDispatch {
  CsrStripKernel csr;
  NmStripKernel nm;
  int64_t maxStrip;  // widest CSR strip
  int64_t nmStrip;   // widest N:M strip
  int64_t nmVec;     // vector width of the N:M strip kernel (strips are cut in whole vectors)
};

// Whether spmmNM runs the 16-wide strips when a wide family is active. Its strips make one load per
// multiply-add, and where 512-bit loads issue as two halves (Zen 4) the 8-wide AVX2 strips measured
// about 10% faster (2:4, 4096 x 4096 x 256); the avx512-emu family (a test build) always runs them.
// SPARSE_NM_WIDE=0|1 forces the choice (for benchmarks and tests).
bool wideNm() {
  static const bool wide = [] {
    const char* env = std::getenv("SPARSE_NM_WIDE");
    if (env != nullptr && (env[0] == '0' || env[0] == '1')) return env[0] == '1';
    return activeIsa() == Isa::kAvx512Emu || !cpuFeatures().split512;
  }();
  return wide;
}

const SpmmDispatch& spmmDispatch() {
  static const SpmmDispatch d = [] {
#if defined(SPARSE_WITH_AVX2)
    if (const WideKernels* w = wideKernels()) {
      if (wideNm()) return SpmmDispatch{w->csr, w->nm, kWideStrip, kWideStrip, 16};
      return SpmmDispatch{w->csr, nmStripAvx2, kWideStrip, kStrip, 8};
    }
#endif
#if defined(SPARSE_WITH_AVX2)
    if (useAvx2()) return SpmmDispatch{csrStripAvx2, nmStripAvx2, kStrip, kStrip, 8};
#endif
    return SpmmDispatch{csrStripScalar, nmStripScalar, kStrip, kStrip, 8};
  }();
  return d;
}

}  // namespace

const char* nmStripIsa() {
  if (wideKernels() != nullptr && wideNm()) return isaName(activeIsa());
  return useAvx2() ? "avx2" : "scalar";
}

int threadsFor(double fmas) { return static_cast<int>(std::max(1.0, std::min(256.0, fmas / kMinFmaPerThread))); }

int64_t balancedSplit(const int32_t* indptr, int64_t rows, int parts, int t) {
  if (t <= 0) return 0;
  if (t >= parts) return rows;
  const int64_t total = indptr[rows];
  if (total == 0) return rows * t / parts;
  const int64_t target = total * t / parts;
  return std::lower_bound(indptr, indptr + rows + 1, target) - indptr;
}

void csrStripScalar(SPARSE_CSR_STRIP_ARGS) {
  float acc[kStrip] = {};
  for (int64_t t = 0; t < count; ++t) {
    const float v = vals[t];
    const float* row = b + (cols[t] - colBase) * ldb;
    for (int64_t j = 0; j < w; ++j) acc[j] += v * row[j];
  }
  for (int64_t j = 0; j < w; ++j) c[j] = beta == 0.0f ? alpha * acc[j] : alpha * acc[j] + beta * c[j];
}

void nmStripScalar(SPARSE_NM_STRIP_ARGS) {
  const int64_t perRow = tile.groups * tile.n;
  for (int64_t r = 0; r < tile.rows; ++r, c += ldc) {
    float acc[kStrip] = {};
    const float* vals = tile.values + r * perRow;
    const uint8_t* idx = tile.indices + r * tile.idxStride;
    for (int64_t q = 0; q < perRow; ++q) {
      const int64_t g = q / tile.n;
      const float* brow = b + (g * tile.m + nmPosition(idx, tile.idxStride, tile.bits, q)) * ldb;
      for (int64_t j = 0; j < w; ++j) acc[j] += vals[q] * brow[j];
    }
    for (int64_t j = 0; j < w; ++j) c[j] = beta == 0.0f ? alpha * acc[j] : alpha * acc[j] + beta * c[j];
  }
}

int64_t packedLd(int64_t w) { return (w + 7) / 8 * 8; }

namespace {

// B[0:k, 0:n] repacked once per call as column strips of `sw` columns: strip s holds
// B[:, s*sw : s*sw + w] as k rows of packedLd(w) floats, contiguous. The kernels then read each
// K block of a strip as one contiguous run (no cache-set conflicts between B rows a power of two
// apart, prefetcher friendly), and the copy is made once instead of once per row chunk.
class PackedB {
 public:
  // Strips of `sw` columns (the last one narrower).
  PackedB(const SpmmDense& d, int64_t k, int64_t sw) : PackedB(d, k, uniformStrips(d.n, sw)) {}

  // Strips starting at starts[s] (ascending, starts[0] = 0), each up to the next start or n.
  PackedB(const SpmmDense& d, int64_t k, std::vector<int64_t> starts) : k_(k), n_(d.n), starts_(std::move(starts)) {
    int64_t total = 0;
    for (size_t s = 0; s < starts_.size(); ++s) {
      offsets_.push_back(total);
      total += k_ * packedLd(width(static_cast<int64_t>(s)));
    }
    // The calling thread's buffer, kept between calls: a fresh multi-megabyte allocation would
    // page-fault on every call.
    thread_local AlignedBuffer buffer;
    data_ = buffer.reserve(static_cast<size_t>(std::max<int64_t>(total, 1)));
    const double bytes = static_cast<double>(k_) * static_cast<double>(n_) * 4.0;
    parallelRun(static_cast<int>(std::max(1.0, std::min(256.0, bytes / (1 << 20)))), [&](int t, int nt) {
      const int64_t p0 = k_ * t / nt, p1 = k_ * (t + 1) / nt;
      for (size_t s = 0; s < starts_.size(); ++s) {
        const int64_t j0 = starts_[s];
        const int64_t w = width(static_cast<int64_t>(s)), ld = packedLd(w);
        float* out = data_ + offsets_[s];
        for (int64_t p = p0; p < p1; ++p) std::memcpy(out + p * ld, d.b + p * d.ldb + j0, sizeof(float) * w);
      }
    });
  }

  int64_t strips() const { return static_cast<int64_t>(starts_.size()); }
  int64_t start(int64_t s) const { return starts_[static_cast<size_t>(s)]; }
  int64_t width(int64_t s) const {
    const size_t i = static_cast<size_t>(s);
    return (i + 1 < starts_.size() ? starts_[i + 1] : n_) - starts_[i];
  }
  // Row p0 of strip s; rows are packedLd(width(s)) floats apart.
  const float* at(int64_t s, int64_t p0) const { return data_ + offsets_[static_cast<size_t>(s)] + p0 * packedLd(width(s)); }

  static std::vector<int64_t> uniformStrips(int64_t n, int64_t sw) {
    std::vector<int64_t> out;
    for (int64_t j0 = 0; j0 < n; j0 += sw) out.push_back(j0);
    return out;
  }

 private:
  int64_t k_, n_;
  std::vector<int64_t> starts_;
  std::vector<int64_t> offsets_;
  float* data_ = nullptr;
};

}  // namespace

std::vector<int64_t> balancedStrips(int64_t n, int64_t maxWidth, int64_t vec) {
  std::vector<int64_t> starts;
  const int64_t vecs = n / vec;
  const int64_t maxVecs = maxWidth / vec;
  const int64_t count = (vecs + maxVecs - 1) / maxVecs;
  int64_t j0 = 0;
  for (int64_t s = 0; s < count; ++s) {
    starts.push_back(j0);
    j0 += vec * (vecs / count + (s < vecs % count ? 1 : 0));
  }
  if (j0 < n) starts.push_back(j0);
  return starts;
}

namespace {

// Bytes of packed B the CSR kernel keeps hot per thread: three quarters of a 512 KiB L2.
constexpr int64_t kCsrBlockBytes = 384 * 1024;
// How many rows ahead the CSR product prefetches each row's stored values and columns.
constexpr int64_t kCsrPrefetchRows = 4;

}  // namespace

void spmmCSR(const CsrMatrix& a, const SpmmDense& d) {
  if (a.rows <= 0 || d.n <= 0) return;
  if (d.alpha == 0.0f || a.cols == 0) {
    scaleC(a.rows, d.n, d.beta, d.c, d.ldc);  // an empty product leaves beta*C
    return;
  }
  const CsrStripKernel strip = spmmDispatch().csr;
  const int64_t maxStrip = spmmDispatch().maxStrip;
  const int64_t nnz = a.indptr[a.rows];
  // K block: about 128 stored values per row per block, so each pass over a strip of C does real
  // work, but at most kCsrBlockBytes of packed B at full strip width (measured at 4096 x 4096 x 256:
  // 128 per block ran 15% faster than 64 at 70-90% sparsity; narrower strips or blocks that fit L1
  // ran slower). Finding a row's values inside a block needs sorted indices; unsorted rows use one block.
  int64_t kb = a.cols;
  if (a.sorted && nnz > 0) {
    const double perRow = std::max(1.0, static_cast<double>(nnz) / static_cast<double>(a.rows));
    const int64_t maxRows = kCsrBlockBytes / (static_cast<int64_t>(sizeof(float)) * maxStrip);
    kb = std::min({a.cols, maxRows, std::max<int64_t>(64, static_cast<int64_t>(128.0 * static_cast<double>(a.cols) / perRow))});
  }
  const int64_t blocks = (a.cols + kb - 1) / kb;
  // Strip width: the packed block (kb rows of the strip) fits in the budget.
  const int64_t fit = kCsrBlockBytes / (static_cast<int64_t>(sizeof(float)) * kb) / 8 * 8;
  const int64_t strip_w = std::max<int64_t>(8, std::min<int64_t>(maxStrip, fit));
  const PackedB packed(d, a.cols, strip_w);
  parallelRun(threadsFor(static_cast<double>(nnz) * static_cast<double>(d.n)), [&](int t, int nt) {
    const int64_t r0 = balancedSplit(a.indptr, a.rows, nt, t);
    const int64_t r1 = balancedSplit(a.indptr, a.rows, nt, t + 1);
    if (r0 >= r1) return;
    // split[(r - rc) * (blocks + 1) + b]: first stored value of row r in K block b (found once per
    // row chunk, reused by every strip).
    const int64_t rowChunk = kRowChunk;
    std::vector<int64_t> split(static_cast<size_t>(std::min(rowChunk, r1 - r0) * (blocks + 1)));
    for (int64_t rc = r0; rc < r1; rc += rowChunk) {
      const int64_t rcEnd = std::min(r1, rc + rowChunk);
      for (int64_t r = rc; r < rcEnd; ++r) {
        int64_t* sp = &split[static_cast<size_t>((r - rc) * (blocks + 1))];
        int64_t p = a.indptr[r];
        const int64_t end = a.indptr[r + 1];
        for (int64_t b = 0; b < blocks; ++b) {
          sp[b] = p;
          const int64_t k1 = std::min(a.cols, (b + 1) * kb);
          if (b + 1 == blocks) {
            p = end;
          } else {
            while (p < end && a.indices[p] < k1) ++p;
          }
        }
        sp[blocks] = end;
      }
      for (int64_t j0 = 0, s = 0; j0 < d.n; j0 += strip_w, ++s) {
        const int64_t w = std::min(strip_w, d.n - j0);
        const int64_t ld = packedLd(w);
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t k0 = b * kb;
          // The first block applies beta; later ones add to what it left.
          const float beta = b == 0 ? d.beta : 1.0f;
          const float* block = packed.at(s, k0);
          for (int64_t r = rc; r < rcEnd; ++r) {
            const int64_t* sp = &split[static_cast<size_t>((r - rc) * (blocks + 1))];
            const int64_t p0 = sp[b], p1 = sp[b + 1];
            if (r + kCsrPrefetchRows < rcEnd) {
              // The values and columns of a row a few ahead, in this K block: each row's run is short,
              // and the hardware prefetchers do not fetch across rows (about 5% at 90% sparsity).
              const int64_t* sq = sp + kCsrPrefetchRows * (blocks + 1);
              prefetchRangeL2(a.values + sq[b], sizeof(float) * static_cast<size_t>(sq[b + 1] - sq[b]));
              prefetchRangeL2(a.indices + sq[b], sizeof(int32_t) * static_cast<size_t>(sq[b + 1] - sq[b]));
            }
            if (p1 == p0 && beta == 1.0f) continue;
            strip(p1 - p0, a.values + p0, a.indices + p0, k0, block, ld, w, d.alpha, beta, d.c + r * d.ldc + j0);
          }
        }
      }
    }
  });
}

void spmmNM(const NmMatrix& a, const SpmmDense& d) {
  if (a.rows <= 0 || d.n <= 0) return;
  const int64_t groups = a.m > 0 ? a.cols / a.m : 0;
  if (d.alpha == 0.0f || groups == 0) {
    scaleC(a.rows, d.n, d.beta, d.c, d.ldc);
    return;
  }
  const NmStripKernel strip = spmmDispatch().nm;
  static const int64_t nmStrip = [] {
    // A tuning knob for benchmarks, kept to whole vectors within what the strip kernel takes (a wider
    // strip would fall outside its dispatch and leave C unwritten).
    const char* env = std::getenv("SPARSE_NM_STRIP");
    const int64_t vec = spmmDispatch().nmVec, widest = spmmDispatch().nmStrip;
    return env ? std::clamp<int64_t>(std::atol(env) / vec * vec, vec, widest) : widest;
  }();
  static const int64_t nmBlockBytes = [] {
    const char* env = std::getenv("SPARSE_NM_BLOCK");  // tuning knob for benchmarks
    return env ? std::atol(env) : kNmBlockBytes;
  }();
  const std::vector<int64_t> starts = balancedStrips(d.n, nmStrip, spmmDispatch().nmVec);
  int64_t widest = 0;
  for (size_t s = 0; s < starts.size(); ++s) widest = std::max(widest, (s + 1 < starts.size() ? starts[s + 1] : d.n) - starts[s]);
  // K block: the rows of the widest strip that fit kNmBlockBytes (96 rows of 64 columns), in L1.
  const int64_t gpb = std::max<int64_t>(1, nmBlockBytes / (static_cast<int64_t>(sizeof(float)) * packedLd(widest)) / a.m);
  const int64_t blockBits = gpb * a.n * a.bits;
  // Bytes per tile row: whole 32-bit words, so a kernel's 4-byte reads stay inside its row.
  const int64_t idxStride = (blockBits + 31) / 32 * 4;

  const double fmas = static_cast<double>(a.rows) * static_cast<double>(groups) * a.n * static_cast<double>(d.n);
  const PackedB packed(d, a.cols, starts);
  // Column panels: runs of strips whose packed B (every K row) fits kNmPanelBytes. Each panel is
  // finished by every row before the next starts, so the B rows the row chunks keep re-reading stay
  // in L3 when B is wide (at 2048 columns and K = 4096, all of packed B is 32 MiB and would stream
  // from memory once per row chunk); the tiles' values are re-read once per panel instead.
  static const int64_t panelBytes = [] {
    const char* env = std::getenv("SPARSE_NM_PANEL");  // tuning knob for benchmarks
    return env ? std::atol(env) : kNmPanelBytes;
  }();
  std::vector<int64_t> panels{0};
  for (int64_t s = 0, bytes = 0; s < packed.strips(); ++s) {
    const int64_t b = a.cols * packedLd(packed.width(s)) * static_cast<int64_t>(sizeof(float));
    if (bytes > 0 && bytes + b > panelBytes) {
      panels.push_back(s);
      bytes = 0;
    }
    bytes += b;
  }
  panels.push_back(packed.strips());
  parallelRun(threadsFor(fmas), [&](int t, int nt) {
    const int64_t r0 = a.rows * t / nt;
    const int64_t r1 = a.rows * (t + 1) / nt;
    if (r0 >= r1) return;
    const int64_t chunk = std::min(kNmRowChunk, r1 - r0);
    thread_local AlignedBuffer valueBuf;
    thread_local std::vector<uint8_t> indexBuf;
    float* tileValues = valueBuf.reserve(static_cast<size_t>(chunk * gpb * a.n));
    indexBuf.assign(static_cast<size_t>(chunk * idxStride), 0);
    for (size_t pi = 0; pi + 1 < panels.size(); ++pi) {
      const int64_t s0 = panels[pi], s1 = panels[pi + 1];
      for (int64_t rc = r0; rc < r1; rc += chunk) {
        const int64_t rows = std::min(chunk, r1 - rc);
        for (int64_t g0 = 0; g0 < groups; g0 += gpb) {
          const int64_t gc = std::min(gpb, groups - g0);
          const int64_t perRow = gc * a.n;
          const int64_t bits = perRow * a.bits;
          // Copy the tile's values and positions once; every strip below rereads them.
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t q = ((rc + r) * groups + g0) * a.n;
            std::memcpy(tileValues + r * perRow, a.values + q, sizeof(float) * static_cast<size_t>(perRow));
            uint8_t* dst = indexBuf.data() + r * idxStride;
            const int64_t bit0 = q * a.bits;
            if ((bit0 & 7) == 0) {
              const int64_t byte0 = bit0 >> 3;
              const int64_t bytes = std::min((bits + 7) / 8, a.indicesLength - byte0);
              std::memcpy(dst, a.indices + byte0, static_cast<size_t>(bytes));
            } else {
              for (int64_t o = 0; o < bits; o += 8) {
                dst[o >> 3] = static_cast<uint8_t>(readBits(a.indices, a.indicesLength, bit0 + o, static_cast<int>(std::min<int64_t>(8, bits - o))));
              }
            }
          }
          NmTile tile;
          tile.n = a.n;
          tile.m = a.m;
          tile.bits = a.bits;
          tile.rows = rows;
          tile.groups = gc;
          tile.values = tileValues;
          tile.indices = indexBuf.data();
          tile.idxStride = idxStride;
          const float beta = g0 == 0 ? d.beta : 1.0f;
          // The tile after this one in this thread's order. The first strip runs in slices of rows,
          // and after each slice a share of that tile's values and positions is prefetched into L2,
          // so the copy at its start does not wait on memory: the rows are short runs a row stride
          // apart, which the hardware prefetchers do not fetch ahead (measured at 4096 x 4096 x 256,
          // 2:4: the copy without this took about a tenth of the product's time).
          int64_t nrc = rc, ng0 = g0 + gpb;
          bool hasNext = true;
          if (ng0 >= groups) {
            ng0 = 0;
            nrc = rc + chunk;
            if (nrc >= r1) {
              nrc = r0;
              hasNext = pi + 2 < panels.size();
            }
          }
          const int64_t nextRows = std::min(chunk, r1 - nrc), nextPerRow = std::min(gpb, groups - ng0) * a.n;
          const auto prefetchNext = [&](int64_t i0, int64_t i1) {
            for (int64_t r = i0; r < i1; ++r) {
              const int64_t q = ((nrc + r) * groups + ng0) * a.n;
              prefetchRangeL2(a.values + q, sizeof(float) * static_cast<size_t>(nextPerRow));
              prefetchRangeL2(a.indices + ((q * a.bits) >> 3), static_cast<size_t>((nextPerRow * a.bits + 7) / 8));
            }
          };
          for (int64_t s = s0; s < s1; ++s) {
            const int64_t j0 = packed.start(s);
            const int64_t w = packed.width(s);
            const float* block = packed.at(s, g0 * a.m);
            if (s > s0 || !hasNext) {
              strip(tile, block, packedLd(w), w, d.alpha, beta, d.c + rc * d.ldc + j0, d.ldc);
              continue;
            }
            for (int64_t i = 0; i < rows; i += kNmPrefetchSlice) {
              NmTile slice = tile;
              slice.rows = std::min(kNmPrefetchSlice, rows - i);
              slice.values += i * perRow;
              slice.indices += i * idxStride;
              strip(slice, block, packedLd(w), w, d.alpha, beta, d.c + (rc + i) * d.ldc + j0, d.ldc);
              prefetchNext(nextRows * i / rows, nextRows * (i + slice.rows) / rows);
            }
          }
        }
      }
    }
  });
}

void spmmBlock(const BsrMatrix& a, const SpmmDense& d) {
  if (a.rows <= 0 || d.n <= 0) return;
  if (d.alpha == 0.0f) {
    scaleC(a.rows, d.n, d.beta, d.c, d.ldc);
    return;
  }
  const int64_t blockRows = (a.rows + a.br - 1) / a.br;
  const double fmas = static_cast<double>(a.indptr[blockRows]) * a.br * a.bc * static_cast<double>(d.n);
  parallelRun(threadsFor(fmas), [&](int t, int nt) {
    const int64_t I0 = balancedSplit(a.indptr, blockRows, nt, t);
    const int64_t I1 = balancedSplit(a.indptr, blockRows, nt, t + 1);
    std::vector<float> panel;          // the block row's stored blocks side by side: h x kk
    std::vector<const float*> bRows;   // B row of each of the kk columns
    for (int64_t I = I0; I < I1; ++I) {
      const int64_t r0 = I * a.br;
      const int64_t h = std::min(a.br, a.rows - r0);
      float* c = d.c + r0 * d.ldc;
      // Columns of the stored blocks, clipped to the matrix: padding past the last column is
      // never multiplied with a B row that does not exist.
      int64_t kk = 0;
      for (int64_t p = a.indptr[I]; p < a.indptr[I + 1]; ++p) kk += std::min(a.bc, a.cols - a.indices[p] * a.bc);
      if (kk == 0) {
        scaleC(h, d.n, d.beta, c, d.ldc);
        continue;
      }
      panel.resize(static_cast<size_t>(h * kk));
      bRows.resize(static_cast<size_t>(kk));
      int64_t col = 0;
      for (int64_t p = a.indptr[I]; p < a.indptr[I + 1]; ++p) {
        const int64_t c0 = static_cast<int64_t>(a.indices[p]) * a.bc;
        const int64_t width = std::min(a.bc, a.cols - c0);
        const float* block = a.values + p * a.br * a.bc;
        for (int64_t r = 0; r < h; ++r) std::copy(block + r * a.bc, block + r * a.bc + width, panel.data() + r * kk + col);
        for (int64_t x = 0; x < width; ++x) bRows[col + x] = d.b + (c0 + x) * d.ldb;
        col += width;
      }
      GemmArgs g;
      g.m = h;
      g.n = d.n;
      g.k = kk;
      g.alpha = d.alpha;
      g.a = panel.data();
      g.lda = kk;
      g.bRows = bRows.data();
      g.beta = d.beta;
      g.c = c;
      g.ldc = d.ldc;
      gemmSerial(g);
    }
  });
}

}  // namespace sparse
