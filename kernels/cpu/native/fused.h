// Fused training ops for the sparse-cpu tfjs backend: layer norm and RMS norm (forward and
// backward), GELU (tanh form) and the SwiGLU gate silu(a) * b (forward and backward), and
// cross-entropy from logits (mean over rows, gradient softmax - onehot). Each replaces a chain of
// small tfjs ops (and their dispatch and allocations) with one pass over the data. Row softmax
// (optionally causal) with its backward, for attention probabilities.
//
// Determinism: every row is computed by one thread in a fixed order, and the column sums of the
// norm backward (dgamma, dbeta) are summed per fixed block of rows and then over blocks in order,
// so results never depend on the thread count or on whether the pool was busy (resume-exact runs).
// Sums run in float64 and are rounded once. Portable C++, except the activations, whose sigmoid
// makes them compute-bound: they have an AVX2 form (fused_avx2.cc), used unless the family is scalar.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace sparse {

// Layer norm (beta may be null: no bias) or, with `rms`, RMS norm (x / sqrt(mean(x²) + eps)) of the
// rows of x [rows, cols]: y = xhat * gamma (+ beta). Writes y [rows, cols], rstd [rows] and, for
// layer norm, mean [rows] (mean may be null for rms).
void fusedNormForward(bool rms, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t cols,
                      float eps, float* y, float* mean, float* rstd);

// Gradients of fusedNormForward: dx [rows, cols], dgamma [cols], and dbeta [cols] (may be null).
// mean is read for layer norm only.
void fusedNormBackward(bool rms, const float* dy, const float* x, const float* gamma, const float* mean,
                       const float* rstd, int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta);

enum class FusedAct : int { GeluTanh = 0, SwiGlu = 1, Silu = 2 };
constexpr int kFusedActs = 3;

// GeluTanh: y = x * sigmoid(x * (A + B x²)) (= 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³)))), b unused.
// SwiGlu: y = silu(x) * b = x * sigmoid(x) * b.
// Silu: y = x * sigmoid(x), b unused.
void fusedActForward(FusedAct op, const float* x, const float* b, float* y, int64_t n);
// dx (and, for SwiGlu, db) from dy.
void fusedActBackward(FusedAct op, const float* dy, const float* x, const float* b, float* dx, float* db, int64_t n);
// GELU's tanh form as x * sigmoid(x * (A + B x²)): 0.5 (1 + tanh(u)) = sigmoid(2u), so A = 2 sqrt(2/pi)
// and B = A * 0.044715.
constexpr float kGeluTanhA = 1.5957691216057308f;
constexpr float kGeluTanhB = static_cast<float>(1.5957691216057308 * 0.044715);
#if defined(SPARSE_WITH_AVX2)
// The same on eight lanes at a time (fused_avx2.cc), for one thread's range; fusedActForward and
// fusedActBackward call them when the active family is not scalar.
void fusedActForwardAvx2(FusedAct op, const float* x, const float* b, float* y, int64_t n);
void fusedActBackwardAvx2(FusedAct op, const float* dy, const float* x, const float* b, float* dx, float* db, int64_t n);
#endif

// Mean over rows of logsumexp(logits[r]) - logits[r, targets[r]]; writes lse [rows]. Targets must be
// in [0, cols) (checked by the caller).
double fusedCrossEntropyForward(const float* logits, const int32_t* targets, int64_t rows, int64_t cols, float* lse);
// dlogits[r, c] = scale * (exp(logits[r, c] - lse[r]) - [c == targets[r]]).
void fusedCrossEntropyBackward(const float* logits, const int32_t* targets, const float* lse, int64_t rows,
                               int64_t cols, float scale, float* dlogits);

// Softmax over each row of x [rows, cols] into y. With causal > 0 the rows are queries of sequences
// of `causal` tokens (row r is position r % causal) and see only columns c <= r % causal; the others
// get probability 0 (as an additive mask of -1e9 gives). Each row: its maximum subtracted, exp,
// the sum, times its reciprocal: the elementwise spans of the active family, so each step has the
// bits of the separate ops (exp as Math.exp), the sum accumulated in float64.
void fusedSoftmaxForward(const float* x, int64_t rows, int64_t cols, int64_t causal, float* y);
// dx = y * (dy - sum_c dy * y) per row over the columns the row sees (0 elsewhere), sums in float64.
void fusedSoftmaxBackward(const float* dy, const float* y, int64_t rows, int64_t cols, int64_t causal, float* dx);

// The sum of squares of every element of every span (a global gradient norm, squared), in float64.
// Spans are cut into fixed pieces summed in order, so the result never depends on the thread count.
double sumOfSquares(const std::vector<std::pair<const float*, int64_t>>& spans);

// One tensor of a multi-tensor Adam step: param, m and v updated in place from grad (n elements
// each); c1 = 1 - beta1^t and c2 = 1 - beta2^t, its own bias corrections (rounded to float32).
struct AdamTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  int64_t n = 0;
  float c1 = 1.0f, c2 = 1.0f;
};
// The step's scalars, each rounded to float32 as tfjs rounds a scalar operand.
struct AdamScalars {
  float beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps, lr;
};
// One Adam step of every tensor (fused_adam.cc): the float32 operations of the tfjs composition
// m = m*b1 + g*(1-b1); v = v*b2 + g²*(1-b2); p -= (m/c1) / (sqrt(v/c2) + eps) * lr, in that order,
// so the same bits. Elementwise, so any split over threads gives the same result.
void fusedAdamStep(const std::vector<AdamTensor>& tensors, const AdamScalars& s);

}  // namespace sparse
