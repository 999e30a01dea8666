#include "prune_select.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "thread_pool.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sparse {
namespace {

// Enough work per thread to be worth waking it: elements touched.
constexpr double kMinElementsPerThread = 1 << 16;

int threadsFor(double elements, int64_t parts) {
  const double want = std::max(1.0, std::min(static_cast<double>(parts), elements / kMinElementsPerThread));
  return static_cast<int>(std::min(want, 256.0));
}

int64_t firstNonFinite(int64_t rows, int64_t cols, const float* x, int64_t ld) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* r = x + i * ld;
    for (int64_t j = 0; j < cols; ++j) {
      if (!std::isfinite(r[j])) return i * cols + j;
    }
  }
  return -1;
}

}  // namespace

int64_t columnMomentsF32(int64_t rows, int64_t cols, const float* x, int64_t ldx, double* sumSquares, double* mean,
                         double* m2) {
  if (rows == 0 || cols == 0) return firstNonFinite(rows, cols, x, ldx);
  // Columns split in chunks of 8 (a cache line of doubles); each chunk's sums run over the rows in order,
  // as a one-column-at-a-time loop would, so the result does not depend on the thread count.
  const int64_t groups = (cols + 7) / 8;
  const int nt0 = threadsFor(static_cast<double>(rows) * static_cast<double>(cols), groups);
  std::vector<double> sq(sumSquares, sumSquares + cols), sum(cols, 0.0), dev(cols, 0.0);
  std::atomic<bool> finite{true};
  parallelRun(nt0, [&](int t, int nt) {
    const int64_t c0 = std::min(cols, groups * t / nt * 8), c1 = std::min(cols, groups * (t + 1) / nt * 8);
    if (c0 >= c1) return;
    double* q = sq.data();
    double* s = sum.data();
    for (int64_t i = 0; i < rows; ++i) {
      const float* r = x + i * ldx;
      for (int64_t j = c0; j < c1; ++j) {
        const double v = r[j];
        q[j] += v * v;
        s[j] += v;
      }
    }
    // A non-finite entry makes its column's sum of squares non-finite; finite float32 entries cannot
    // overflow it (each square is below 2^256).
    bool ok = true;
    for (int64_t j = c0; j < c1; ++j) ok = ok && std::isfinite(q[j]) && std::isfinite(s[j]);
    if (!ok) {
      finite.store(false);
      return;
    }
    const double n = static_cast<double>(rows);
    for (int64_t j = c0; j < c1; ++j) s[j] /= n;
    double* d = dev.data();
    for (int64_t i = 0; i < rows; ++i) {
      const float* r = x + i * ldx;
      for (int64_t j = c0; j < c1; ++j) {
        const double e = r[j] - s[j];
        d[j] += e * e;
      }
    }
  });
  if (!finite.load()) {
    // Either an entry is not finite, or sumSquares was not finite to begin with (then the scan finds none).
    const int64_t bad = firstNonFinite(rows, cols, x, ldx);
    if (bad >= 0) return bad;
    // Recompute serially: the chunks that stopped early left their mean and M2 unfinished.
    std::copy(sumSquares, sumSquares + cols, sq.begin());
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(dev.begin(), dev.end(), 0.0);
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        const double v = x[i * ldx + j];
        sq[j] += v * v;
        sum[j] += v;
      }
    }
    for (int64_t j = 0; j < cols; ++j) sum[j] /= static_cast<double>(rows);
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        const double e = x[i * ldx + j] - sum[j];
        dev[j] += e * e;
      }
    }
  }
  std::copy(sq.begin(), sq.end(), sumSquares);
  std::copy(sum.begin(), sum.end(), mean);
  std::copy(dev.begin(), dev.end(), m2);
  return -1;
}

namespace {

// Scores of one row: s[j] = |w_j| * scale_j (float64; + 0.0 turns the -0 of a -0 scale into +0). Returns
// whether every w_j is finite.
bool scoreRow(const float* w, const double* scale, int64_t n, double* s) {
  int64_t j = 0;
  bool finite = true;
#if defined(__SSE2__)
  const __m128 absMask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
  const __m128 maxFinite = _mm_set1_ps(std::numeric_limits<float>::max());
  const __m128d zero = _mm_setzero_pd();
  int ok = 0xf;
  for (; j + 4 <= n; j += 4) {
    const __m128 m = _mm_and_ps(_mm_loadu_ps(w + j), absMask);
    ok &= _mm_movemask_ps(_mm_cmple_ps(m, maxFinite));  // NaN compares false
    const __m128d lo = _mm_cvtps_pd(m), hi = _mm_cvtps_pd(_mm_movehl_ps(m, m));
    _mm_storeu_pd(s + j, _mm_add_pd(_mm_mul_pd(lo, _mm_loadu_pd(scale + j)), zero));
    _mm_storeu_pd(s + j + 2, _mm_add_pd(_mm_mul_pd(hi, _mm_loadu_pd(scale + j + 2)), zero));
  }
  finite = ok == 0xf;
#endif
  for (; j < n; ++j) {
    const float m = std::fabs(w[j]);
    finite = finite && m <= std::numeric_limits<float>::max();
    s[j] = static_cast<double>(m) * scale[j] + 0.0;
  }
  return finite;
}

// The bit pattern of a non-negative double: such patterns order as the numbers do.
inline uint64_t keyOf(double v) {
  uint64_t k;
  std::memcpy(&k, &v, sizeof k);
  return k;
}

// Where the k-th largest of a row's scores lies: the threshold score, and how many scores are above it
// and equal to it.
struct RankSplit {
  double threshold;
  int64_t above;
  int64_t equal;
};

// The score at ascending position `rank` of the n non-negative scores at s (left unchanged), by a
// most-significant-digit radix select on their bit patterns: each round counts the keys per 11-bit digit,
// keeps only those in the bucket that holds the rank (buf: n keys; hist: 2048 counters) and adds the
// keys of higher buckets to `above`; the last few candidates go to std::nth_element. The first round's
// digit is the 16 binades below the largest score, 128 buckets each (smaller scores share bucket 0), so
// the buckets are well spread; the next rounds take bits 44..34, 33..23, ... of keys that agree above them
// (or, for bucket 0, bits 62..52, 51..41, ...). Its counting passes have no data-dependent branches, unlike
// a quickselect's comparisons of random scores.
RankSplit selectRank(const double* s, int64_t n, int64_t rank, uint64_t* buf, uint32_t* hist) {
  double top = 0.0;
  for (int64_t i = 0; i < n; ++i) top = std::max(top, s[i]);
  const uint64_t base = (keyOf(top) >> 45) > 2047 ? (keyOf(top) >> 45) - 2047 : 0;
  std::fill(hist, hist + 2048, 0u);
  for (int64_t i = 0; i < n; ++i) hist[std::max(keyOf(s[i]) >> 45, base) - base]++;
  // Scan down from the top bucket: the kept scores are usually the upper part.
  int64_t above = 0;
  uint32_t b = 2047;
  const int64_t fromTop = n - 1 - rank;  // keys above the one we want
  while (above + hist[b] <= fromTop) above += hist[b--];
  rank -= n - above - hist[b];
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t v = keyOf(s[i]);
    buf[m] = v;
    m += std::max(v >> 45, base) - base == b;
  }
  for (int shift = b == 0 && base > 0 ? 52 : 34; shift >= 8 && m > 48; shift -= 11) {
    std::fill(hist, hist + 2048, 0u);
    for (int64_t i = 0; i < m; ++i) hist[(buf[i] >> shift) & 0x7FF]++;
    int64_t below = 0;
    uint32_t d = 0;
    while (below + hist[d] <= rank) below += hist[d++];
    above += m - below - hist[d];
    rank -= below;
    int64_t c = 0;
    for (int64_t i = 0; i < m; ++i) {
      const uint64_t v = buf[i];
      buf[c] = v;  // compaction in place is safe: c <= i
      c += ((v >> shift) & 0x7FF) == d;
    }
    m = c;
  }
  std::nth_element(buf, buf + rank, buf + m);
  const uint64_t key = buf[rank];
  int64_t equal = 0;
  for (int64_t i = 0; i < m; ++i) {
    above += buf[i] > key;
    equal += buf[i] == key;
  }
  double v;
  std::memcpy(&v, &key, sizeof v);
  return {v, above, equal};
}

// The mask bits (from flat position base) and pruned copy of n scores of a row: keep s[j] >= t (orEqual) or
// s[j] > t. Words shared with the neighbouring entries are ORed into (the caller cleared them).
void writeRow(const double* s, const float* w, int64_t n, double t, bool orEqual, int64_t base, uint32_t* mask,
              float* out) {
  int64_t j = 0;
  uint32_t word = 0;
  // Scalar up to a word boundary of the flat position.
  for (; j < n && ((base + j) & 31) != 0; ++j) {
    const bool keep = orEqual ? s[j] >= t : s[j] > t;
    word |= static_cast<uint32_t>(keep) << ((base + j) & 31);
    if (out != nullptr) out[j] = keep ? w[j] : 0.0f;
  }
  if (j > 0) {
    mask[(base + j - 1) >> 5] |= word;
    word = 0;
  }
#if defined(__SSE2__)
  // Whole words: 32 comparisons, 4 at a time, their sign masks packed into the word.
  const __m128d tv = _mm_set1_pd(t);
  for (; j + 32 <= n; j += 32) {
    uint32_t bits = 0;
    for (int q = 0; q < 8; ++q) {
      const double* sq = s + j + 4 * q;
      const __m128d c0 = orEqual ? _mm_cmpge_pd(_mm_loadu_pd(sq), tv) : _mm_cmpgt_pd(_mm_loadu_pd(sq), tv);
      const __m128d c1 = orEqual ? _mm_cmpge_pd(_mm_loadu_pd(sq + 2), tv) : _mm_cmpgt_pd(_mm_loadu_pd(sq + 2), tv);
      const __m128 c = _mm_shuffle_ps(_mm_castpd_ps(c0), _mm_castpd_ps(c1), _MM_SHUFFLE(2, 0, 2, 0));
      bits |= static_cast<uint32_t>(_mm_movemask_ps(c)) << (4 * q);
      if (out != nullptr) _mm_storeu_ps(out + j + 4 * q, _mm_and_ps(_mm_loadu_ps(w + j + 4 * q), c));
    }
    mask[(base + j) >> 5] = bits;
  }
#endif
  for (; j < n; ++j) {
    const bool keep = orEqual ? s[j] >= t : s[j] > t;
    word |= static_cast<uint32_t>(keep) << ((base + j) & 31);
    if (out != nullptr) out[j] = keep ? w[j] : 0.0f;
    if (((base + j) & 31) == 31 || j == n - 1) {
      mask[(base + j) >> 5] |= word;
      word = 0;
    }
  }
}

}  // namespace

int64_t rowTopKScaledAbs(int64_t rows, int64_t cols, const float* w, int64_t ldw, const double* scale, int64_t k,
                         uint32_t* mask, float* out, int64_t ldo) {
  const int64_t total = rows * cols;
  const int64_t words = (total + 31) / 32;
  if (total == 0) {
    std::fill(mask, mask + words, 0u);
    return -1;
  }
  // Threads take runs of rows that start on a mask word boundary, so no two write the same word.
  const int64_t step = 32 / std::gcd<int64_t>(cols, 32);
  const int64_t units = (rows + step - 1) / step;
  // Selection costs a few passes per element; weigh it above a plain copy.
  const int nt0 = threadsFor(8.0 * static_cast<double>(total), units);
  std::vector<int64_t> bad(static_cast<size_t>(std::max(1, nt0)), -1);
  parallelRun(nt0, [&](int t, int nt) {
    const int64_t r0 = std::min(rows, units * t / nt * step), r1 = std::min(rows, units * (t + 1) / nt * step);
    if (r0 >= r1) return;
    // The run holding the last row also clears the padding bits of the last word.
    const int64_t w0 = r0 * cols / 32, w1 = r1 == rows ? words : r1 * cols / 32;
    std::fill(mask + w0, mask + w1, 0u);
    std::vector<double> scores(static_cast<size_t>(cols));
    std::vector<uint64_t> work(static_cast<size_t>(cols));
    std::vector<uint32_t> hist(2048);
    double* s = scores.data();
    for (int64_t i = r0; i < r1; ++i) {
      const float* wr = w + i * ldw;
      if (!scoreRow(wr, scale, cols, s)) {
        int64_t j = 0;
        while (std::isfinite(wr[j])) ++j;
        bad[static_cast<size_t>(t)] = i * cols + j;
        return;
      }
      float* orow = out != nullptr ? out + i * ldo : nullptr;
      const int64_t base = i * cols;
      if (k == 0 || k == cols) {
        // Scores are >= 0: keep those >= 0 (all) or those > +inf (none).
        writeRow(s, wr, cols, k == 0 ? std::numeric_limits<double>::infinity() : 0.0, k == cols, base, mask, orow);
        continue;
      }
      // Kept: the scores above the k-th largest, then those equal to it in column order until k are kept.
      const RankSplit split = selectRank(s, cols, cols - k, work.data(), hist.data());
      const double threshold = split.threshold;
      const int64_t ties = k - split.above;
      if (ties == split.equal) {
        writeRow(s, wr, cols, threshold, true, base, mask, orow);
        continue;
      }
      // Only the first `ties` scores equal to the threshold are kept: up to the last of them keep s >= t,
      // after it s > t. (Two ranges rather than a fix-up afterwards, which would read zeroed weights when
      // out is w.)
      int64_t cut = 0;
      for (int64_t seen = 0; seen < ties; ++cut) seen += s[cut] == threshold;
      writeRow(s, wr, cut, threshold, true, base, mask, orow);
      writeRow(s + cut, wr + cut, cols - cut, threshold, false, base + cut, mask, orow != nullptr ? orow + cut : nullptr);
    }
  });
  for (int64_t b : bad) {
    if (b >= 0) return b;  // threads hold ascending row ranges: the first report is the lowest
  }
  return -1;
}

}  // namespace sparse
