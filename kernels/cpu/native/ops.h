// Activation-sparse gemv, dense and block-sparse attention, and masked optimizer steps. Drivers
// (threading, blocking) live in the .cc files; the inner loops have a portable version and an
// AVX2/FMA version in ops_avx2.cc, chosen at run time with the gemm kernels.
#pragma once

#include <cstdint>

namespace sparse {

// Y[rows, n] = alpha * op(W) * X[cols, n] + beta * Y, skipping input channel p when X[p, 0:n] is all
// zero (its weights are never read). op(W) = W stored [rows, cols] (transW false) or W stored
// [cols, rows] read transposed (transW true).
struct GemvSparseArgs {
  bool transW = false;
  int64_t rows = 0, cols = 0, n = 0;
  float alpha = 1.0f, beta = 0.0f;
  const float* w = nullptr;
  int64_t ldw = 0;
  const float* x = nullptr;
  int64_t ldx = 0;
  float* y = nullptr;
  int64_t ldy = 0;
};
void gemvSparseInput(const GemvSparseArgs& a);

// Attention over [heads, seq, d] operands. Tile (bi, bj) of blockSize x blockSize is computed when
// mask is null (dense) or mask[(perHead ? h*nb*nb : 0) + bi*nb + bj] != 0; causal drops keys after
// the query. Online softmax per query row; rows with no allowed key are zero.
struct AttentionProblem {
  int64_t heads = 0, seq = 0, d = 0;
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  float* out = nullptr;
  bool causal = false;
  float scale = 1.0f;
  int64_t blockSize = 64;
  const uint8_t* mask = nullptr;
  bool maskPerHead = false;
  // Consulted in tiles whose mask value is 2 (partial): bit (elementMaskPerHead ? h*seq*seq : 0) +
  // i*seq + j, LSB-first, 1 = allowed. Must be set when any tile is 2.
  const uint8_t* elementMask = nullptr;
  bool elementMaskPerHead = false;
  // When set, [heads, seq]: each row's log-sum-exp of its scaled allowed scores (-inf when none).
  float* lse = nullptr;
};
void attention(const AttentionProblem& p);

// Active entries: a strictly increasing index list, or an LSB-first bit mask over `size` entries.
struct ActiveSet {
  const int32_t* indices = nullptr;  // when not null: `count` indices
  const uint8_t* bits = nullptr;     // otherwise: ceil(size / 8) bytes
  int64_t count = 0;
  int64_t size = 0;
};

struct AdamStep {
  float lr, beta1, beta2, eps, weightDecay;
  float invC1, invC2;  // 1 / (1 - beta^step)
};
void maskedAdam(float* params, const float* grads, const ActiveSet& active, float* m, float* v, const AdamStep& s);

struct SgdStep {
  float lr, momentum, weightDecay;
  bool nesterov;
};
void maskedSgd(float* params, const float* grads, const ActiveSet& active, float* velocity, const SgdStep& s);

// ---- inner loops (portable and AVX2) ----

// acc[0:len] += x0*w0[0:len] + x1*w1[0:len] + x2*w2[0:len] + x3*w3[0:len]; `next` (four pointers, or
// null) are the rows the caller reads after these: their [0:len] is prefetched along the way, so rows
// that are not evenly spaced (skipped input channels) still stream without waiting on memory.
using Axpy4 = void (*)(int64_t len, const float* w0, const float* w1, const float* w2, const float* w3, float x0,
                       float x1, float x2, float x3, float* acc, const float* const* next);
// out[r] = sum_t w[r*ldw + idx[t]] * xc[t] for r < 4
using GatherDot4 = void (*)(int64_t count, const float* w, int64_t ldw, const int32_t* idx, const float* xc, float* out);
// out[r] = sum_{p < cols} (keep[p] ? w[r*ldw + p] : 0) * x[p] for r < 4: a dense dot product that
// still never lets a dropped weight through (NaN or Inf there included).
using MaskedDot4 = void (*)(int64_t cols, const float* w, int64_t ldw, const float* x, const uint32_t* keep, float* out);
// One step of online softmax on a row of scores s[0:len]: returns the row max (-inf when every score
// is -inf, then s is zeroed); s[j] = exp(s[j] - newMax) with newMax = max(prevMax, row max); *sum = sum of s.
using SoftmaxRow = float (*)(int64_t len, float* s, float prevMax, float* sum);
// Adam on `len` consecutive entries (params, grads, m, v all contiguous).
using AdamSpan = void (*)(int64_t len, float* p, const float* g, float* m, float* v, const AdamStep& s);
using SgdSpan = void (*)(int64_t len, float* p, const float* g, float* vel, const SgdStep& s);

struct OpsDispatch {
  Axpy4 axpy4;
  GatherDot4 gatherDot4;
  MaskedDot4 maskedDot4;
  SoftmaxRow softmaxRow;
  AdamSpan adamSpan;
  SgdSpan sgdSpan;
};
const OpsDispatch& opsDispatch();

void axpy4Scalar(int64_t len, const float* w0, const float* w1, const float* w2, const float* w3, float x0, float x1,
                 float x2, float x3, float* acc, const float* const* next);
void gatherDot4Scalar(int64_t count, const float* w, int64_t ldw, const int32_t* idx, const float* xc, float* out);
void maskedDot4Scalar(int64_t cols, const float* w, int64_t ldw, const float* x, const uint32_t* keep, float* out);
float softmaxRowScalar(int64_t len, float* s, float prevMax, float* sum);
void adamSpanScalar(int64_t len, float* p, const float* g, float* m, float* v, const AdamStep& s);
void sgdSpanScalar(int64_t len, float* p, const float* g, float* vel, const SgdStep& s);
#if defined(SPARSE_WITH_AVX2)
void axpy4Avx2(int64_t len, const float* w0, const float* w1, const float* w2, const float* w3, float x0, float x1,
               float x2, float x3, float* acc, const float* const* next);
void gatherDot4Avx2(int64_t count, const float* w, int64_t ldw, const int32_t* idx, const float* xc, float* out);
void maskedDot4Avx2(int64_t cols, const float* w, int64_t ldw, const float* x, const uint32_t* keep, float* out);
float softmaxRowAvx2(int64_t len, float* s, float prevMax, float* sum);
void adamSpanAvx2(int64_t len, float* p, const float* g, float* m, float* v, const AdamStep& s);
void sgdSpanAvx2(int64_t len, float* p, const float* g, float* vel, const SgdStep& s);
#endif

// Scalar Adam / SGD on one entry (shared by the portable span and the gathered index paths).
static inline void adamOne(float& p, float g, float& m, float& v, const AdamStep& s);
static inline void sgdOne(float& p, float g, float* vel, const SgdStep& s);

}  // namespace sparse

#include <cmath>

namespace sparse {

static inline void adamOne(float& p, float g, float& m, float& v, const AdamStep& s) {
  m = s.beta1 * m + (1.0f - s.beta1) * g;
  v = s.beta2 * v + (1.0f - s.beta2) * g * g;
  const float mhat = m * s.invC1;
  const float vhat = v * s.invC2;
  p = p - s.lr * (mhat / (std::sqrt(vhat) + s.eps) + s.weightDecay * p);
}

static inline void sgdOne(float& p, float g, float* vel, const SgdStep& s) {
  g = g + s.weightDecay * p;
  if (vel != nullptr) {
    const float b = s.momentum * *vel + g;
    *vel = b;
    g = s.nesterov ? g + s.momentum * b : b;
  }
  p = p - s.lr * g;
}

}  // namespace sparse
