// Float32 elementwise kernels for the sparse-cpu tfjs backend: broadcasting binary arithmetic,
// exact unary maps and last-axis reductions. Every result equals tfjs-backend-cpu's bit for bit
// (it computes each element in float64 and rounds once; for + - * / and sqrt that is the float32
// operation itself), except Sum, whose float64 accumulation order differs. Drivers (threading,
// broadcasting walks) live in elementwise.cc; spans have a portable, an AVX2 and a 16-wide version
// (kernels_wide.inc, for the avx512 and avx512-emu families); the two vector versions give the same
// bits for every span (Sum included: the same order of float64 partial sums).
#pragma once

#include <cstdint>

namespace sparse {

enum class BinaryOp : int { Add = 0, Sub = 1, Mul = 2, Div = 3 };
constexpr int kBinaryOps = 4;

// Exp and Sigmoid evaluate Math.exp's own algorithm (elementwise_exp.h) in float64.
enum class UnaryOp : int { Neg = 0, Abs = 1, Square = 2, Sqrt = 3, Rsqrt = 4, Reciprocal = 5, Relu = 6, Exp = 7, Sigmoid = 8 };
constexpr int kUnaryOps = 9;

enum class ReduceOp : int { Sum = 0, Max = 1 };
constexpr int kReduceOps = 2;

// The output as `rank` merged axes, axis 0 innermost, with each operand's step per axis in
// elements (0 where it repeats). The output itself is contiguous.
constexpr int kMaxBinaryRank = 8;
struct BinaryPlan {
  int rank = 0;
  int64_t dims[kMaxBinaryRank] = {};
  int64_t aStep[kMaxBinaryRank] = {};
  int64_t bStep[kMaxBinaryRank] = {};
};

// out[i] = a[..] op b[..] over the plan (rank 0: one element). Large outputs run on the pool.
void binaryOp(BinaryOp op, const float* a, const float* b, float* out, const BinaryPlan& plan);
// out[i] = op(x[i]) for i < n.
void unaryOp(UnaryOp op, const float* x, float* out, int64_t n);
// out[r] = reduce(x[r*cols : (r+1)*cols]) for r < rows; cols >= 1.
void reduceRows(ReduceOp op, const float* x, int64_t rows, int64_t cols, float* out);

// A strided view of 4-byte elements copied to a contiguous output (transpose, slice): output axis d
// (0 innermost) has dims[d] entries, `step[d]` elements apart in x. Bits are moved, never converted.
struct GatherPlan {
  int rank = 0;
  int64_t dims[kMaxBinaryRank] = {};
  int64_t step[kMaxBinaryRank] = {};
};
void gather32(const uint32_t* x, uint32_t* out, const GatherPlan& plan);

// ---- spans (portable, AVX2, 16-wide) ----

// out[i] = a[i*sa] op b[i*sb] for i < n, with sa, sb each 0 (repeat element 0) or 1.
using BinarySpan = void (*)(int64_t n, const float* a, int64_t sa, const float* b, int64_t sb, float* out);
using UnarySpan = void (*)(int64_t n, const float* x, float* out);
// One row: the sum (float64 accumulation, rounded once) or the max with tfjs's rules (NaN wins;
// among equal values, ±0 included, the first).
using ReduceSpan = float (*)(int64_t n, const float* x);

struct ElementwiseDispatch {
  BinarySpan binary[kBinaryOps];
  UnarySpan unary[kUnaryOps];
  ReduceSpan reduce[kReduceOps];
};
const ElementwiseDispatch& elementwiseDispatch();

// Every span of one implementation, indexed by the op enums.
ElementwiseDispatch elementwiseSpansScalar();
#if defined(SPARSE_WITH_AVX2)
ElementwiseDispatch elementwiseSpansAvx2();
#endif

}  // namespace sparse
