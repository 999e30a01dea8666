// Drivers of the elementwise kernels (elementwise.h) and their portable spans. The drivers split the
// output into contiguous ranges, one per pool thread when it is large enough to pay for the wake-up,
// and walk each range's broadcast offsets with an odometer. Results do not depend on the split:
// every element is computed on its own, and a row is never split between threads.
#include "elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "elementwise_exp.h"
#include "cpu_features.h"
#include "gemm.h"
#include "thread_pool.h"
#include "wide_kernels.h"

namespace sparse {
namespace {

// Elements per thread below which a second thread costs more (wake-up, cache traffic) than it saves.
constexpr int64_t kGrain = 131072;

int threadsFor(int64_t work) { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(poolSize(), work / kGrain))); }

// ---- portable spans ----

struct AddF {
  static float f(float x, float y) { return x + y; }
};
struct SubF {
  static float f(float x, float y) { return x - y; }
};
struct MulF {
  static float f(float x, float y) { return x * y; }
};
struct DivF {
  static float f(float x, float y) { return x / y; }
};

template <class Op>
void binarySpan(int64_t n, const float* a, int64_t sa, const float* b, int64_t sb, float* out) {
  if (sa != 0 && sb != 0) {
    for (int64_t i = 0; i < n; ++i) out[i] = Op::f(a[i], b[i]);
  } else if (sa != 0) {
    const float y = b[0];
    for (int64_t i = 0; i < n; ++i) out[i] = Op::f(a[i], y);
  } else if (sb != 0) {
    const float x = a[0];
    for (int64_t i = 0; i < n; ++i) out[i] = Op::f(x, b[i]);
  } else {
    const float v = Op::f(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) out[i] = v;
  }
}

void negSpan(int64_t n, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = -x[i];
}
void absSpan(int64_t n, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::fabs(x[i]);
}
void squareSpan(int64_t n, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * x[i];
}
void sqrtSpan(int64_t n, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::sqrt(x[i]);
}
// tfjs computes 1 / Math.sqrt(x) in float64 (two roundings there), then rounds to float32.
void rsqrtSpan(int64_t n, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(x[i])));
}
void reciprocalSpan(int64_t n, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = 1.0f / x[i];
}
// Math.max(0, x): +0 for ±0 and negatives, NaN stays NaN.
void reluSpan(int64_t n, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    out[i] = (v > 0.0f || v != v) ? v : 0.0f;
  }
}

void expSpan(int64_t n, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(fdlibmExp(x[i]));
}
// 1 / (1 + Math.exp(-x)) in float64, as tfjs-backend-cpu writes it.
void sigmoidSpan(int64_t n, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(1.0 / (1.0 + fdlibmExp(-static_cast<double>(x[i]))));
}

// tfjs-backend-cpu's order exactly: one float64 accumulator, left to right.
float sumRow(int64_t n, const float* x) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return static_cast<float>(s);
}

float maxRow(int64_t n, const float* x) {
  float m = x[0];
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (v != v || v > m) m = v;
  }
  return m;
}

// One thread's share [begin, end) of the flat output of a binary op.
void binaryRange(BinarySpan span, const float* a, const float* b, float* out, const BinaryPlan& p, int64_t begin,
                 int64_t end) {
  int64_t coord[kMaxBinaryRank] = {};
  int64_t ao = 0, bo = 0;
  int64_t rem = begin;
  for (int d = 0; d < p.rank; ++d) {
    coord[d] = rem % p.dims[d];
    rem /= p.dims[d];
    ao += coord[d] * p.aStep[d];
    bo += coord[d] * p.bStep[d];
  }
  const int64_t inner = p.dims[0];
  int64_t pos = begin;
  while (pos < end) {
    const int64_t n = std::min(inner - coord[0], end - pos);
    span(n, a + ao, p.aStep[0], b + bo, p.bStep[0], out + pos);
    pos += n;
    coord[0] += n;
    ao += n * p.aStep[0];
    bo += n * p.bStep[0];
    // Carry into the outer axes.
    for (int d = 0; d < p.rank && coord[d] == p.dims[d]; ++d) {
      ao -= p.dims[d] * p.aStep[d];
      bo -= p.dims[d] * p.bStep[d];
      coord[d] = 0;
      if (d + 1 < p.rank) {
        ++coord[d + 1];
        ao += p.aStep[d + 1];
        bo += p.bStep[d + 1];
      }
    }
  }
}

// One thread's share [begin, end) of a gather.
void gatherRange(const uint32_t* x, uint32_t* out, const GatherPlan& p, int64_t begin, int64_t end) {
  int64_t coord[kMaxBinaryRank] = {};
  int64_t at = 0;
  int64_t rem = begin;
  for (int d = 0; d < p.rank; ++d) {
    coord[d] = rem % p.dims[d];
    rem /= p.dims[d];
    at += coord[d] * p.step[d];
  }
  const int64_t inner = p.dims[0], step = p.step[0];
  int64_t pos = begin;
  while (pos < end) {
    const int64_t n = std::min(inner - coord[0], end - pos);
    if (step == 1) {
      std::memcpy(out + pos, x + at, static_cast<size_t>(n) * sizeof(uint32_t));
    } else {
      for (int64_t j = 0; j < n; ++j) out[pos + j] = x[at + j * step];
    }
    pos += n;
    coord[0] += n;
    at += n * step;
    for (int d = 0; d < p.rank && coord[d] == p.dims[d]; ++d) {
      at -= p.dims[d] * p.step[d];
      coord[d] = 0;
      if (d + 1 < p.rank) {
        ++coord[d + 1];
        at += p.step[d + 1];
      }
    }
  }
}

}  // namespace

// In the order of the op enums (elementwise.h).
ElementwiseDispatch elementwiseSpansScalar() {
  return ElementwiseDispatch{{binarySpan<AddF>, binarySpan<SubF>, binarySpan<MulF>, binarySpan<DivF>},
                             {negSpan, absSpan, squareSpan, sqrtSpan, rsqrtSpan, reciprocalSpan, reluSpan, expSpan, sigmoidSpan},
                             {sumRow, maxRow}};
}

const ElementwiseDispatch& elementwiseDispatch() {
  static const ElementwiseDispatch d = [] {
    if (const WideKernels* w = wideKernels()) return w->elementwise;
#if defined(SPARSE_WITH_AVX2)
    if (useAvx2()) return elementwiseSpansAvx2();
#endif
    return elementwiseSpansScalar();
  }();
  return d;
}

void binaryOp(BinaryOp op, const float* a, const float* b, float* out, const BinaryPlan& plan) {
  BinaryPlan p = plan;
  if (p.rank == 0) {
    p.rank = 1;
    p.dims[0] = 1;
    p.aStep[0] = p.bStep[0] = 0;
  }
  int64_t total = 1;
  for (int d = 0; d < p.rank; ++d) total *= p.dims[d];
  if (total == 0) return;
  const BinarySpan span = elementwiseDispatch().binary[static_cast<int>(op)];
  const int nt = threadsFor(total);
  if (nt == 1) {
    binaryRange(span, a, b, out, p, 0, total);
    return;
  }
  parallelRun(nt, [&](int t, int n) {
    // Ranges on 64-element boundaries keep each thread's stores on its own cache lines.
    const int64_t per = ((total + n - 1) / n + 63) / 64 * 64;
    const int64_t begin = std::min(total, per * t), end = std::min(total, begin + per);
    if (begin < end) binaryRange(span, a, b, out, p, begin, end);
  });
}

void unaryOp(UnaryOp op, const float* x, float* out, int64_t n) {
  if (n == 0) return;
  const UnarySpan span = elementwiseDispatch().unary[static_cast<int>(op)];
  const int nt = threadsFor(n);
  if (nt == 1) {
    span(n, x, out);
    return;
  }
  parallelRun(nt, [&](int t, int parts) {
    const int64_t per = ((n + parts - 1) / parts + 63) / 64 * 64;
    const int64_t begin = std::min(n, per * t), end = std::min(n, begin + per);
    if (begin < end) span(end - begin, x + begin, out + begin);
  });
}

void gather32(const uint32_t* x, uint32_t* out, const GatherPlan& plan) {
  GatherPlan p = plan;
  if (p.rank == 0) {
    p.rank = 1;
    p.dims[0] = 1;
    p.step[0] = 0;
  }
  int64_t total = 1;
  for (int d = 0; d < p.rank; ++d) total *= p.dims[d];
  if (total == 0) return;
  const int nt = threadsFor(total);
  if (nt == 1) {
    gatherRange(x, out, p, 0, total);
    return;
  }
  parallelRun(nt, [&](int t, int n) {
    const int64_t per = ((total + n - 1) / n + 63) / 64 * 64;
    const int64_t begin = std::min(total, per * t), end = std::min(total, begin + per);
    if (begin < end) gatherRange(x, out, p, begin, end);
  });
}

void reduceRows(ReduceOp op, const float* x, int64_t rows, int64_t cols, float* out) {
  if (rows == 0 || cols == 0) return;
  const ReduceSpan span = elementwiseDispatch().reduce[static_cast<int>(op)];
  const int nt = static_cast<int>(std::min<int64_t>(threadsFor(rows * cols), rows));
  if (nt == 1) {
    for (int64_t r = 0; r < rows; ++r) out[r] = span(cols, x + r * cols);
    return;
  }
  parallelRun(nt, [&](int t, int parts) {
    const int64_t per = (rows + parts - 1) / parts;
    const int64_t begin = std::min(rows, per * t), end = std::min(rows, begin + per);
    for (int64_t r = begin; r < end; ++r) out[r] = span(cols, x + r * cols);
  });
}

}  // namespace sparse
