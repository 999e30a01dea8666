// Block-sparse attention backward (flash-attention style, recomputing P from q, k and the forward's
// lse, tile by tile) and decode-time attention over a bitmap-compressed KV cache. Drivers in
// attention.cc; the row kernels have a portable version, an AVX2/FMA one in attention_avx2.cc and a
// 16-wide one in kernels_wide.inc (the avx512 and avx512-emu families).
#pragma once

#include <cstdint>

namespace sparse {

// Gradients of block-sparse attention over [heads, seq, d] operands (lse [heads, seq]); the tiles,
// element mask and causal rule are the forward's (AttentionProblem). dq, dk, dv are written.
struct AttentionBackwardProblem {
  int64_t heads = 0, seq = 0, d = 0;
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const float* out = nullptr;
  const float* dout = nullptr;
  const float* lse = nullptr;
  float* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;
  bool causal = false;
  float scale = 1.0f;
  int64_t blockSize = 64;
  const uint8_t* mask = nullptr;  // null = dense (every tile, 64 x 64)
  bool maskPerHead = false;
  const uint8_t* elementMask = nullptr;
  bool elementMaskPerHead = false;
};
void attentionBackward(const AttentionBackwardProblem& p);

// One query per head over `positions` cached rows: row r = p * kvHeads + g keeps the entries whose
// bit is set in bits[r * ceil(d/8) ...], their values at values[start[r] ...]. Query head h reads kv
// head h / (heads / kvHeads). out[h] = sum_p softmax_p(scale q_h . k^_p) v^_p (zero when positions = 0).
struct AttentionBitmapKVProblem {
  // kValuesEnd / vValuesEnd: one past the last element of the value arrays (bounds for wide loads).
  int64_t heads = 0, kvHeads = 1, d = 0, positions = 0;
  const float* q = nullptr;
  const uint8_t* kBits = nullptr;
  const float* kValues = nullptr;
  const float* kValuesEnd = nullptr;
  const int32_t* kStart = nullptr;
  const uint8_t* vBits = nullptr;
  const float* vValues = nullptr;
  const float* vValuesEnd = nullptr;
  const int32_t* vStart = nullptr;
  float* out = nullptr;
  float scale = 1.0f;
};
void attentionBitmapKV(const AttentionBitmapKVProblem& p);

// ---- row kernels ----

// s[j] = p = exp(s[j] - lse) (0 where s[j] is -inf); ds[j] = p * (ds[j] - D).
using BackwardRow = void (*)(int64_t len, float* s, float* ds, float lse, float D);
// out[0:d] = the cache row with pruned entries zero: bit c of bits (LSB-first) set takes the next
// value. values[.. valuesEnd) may be read past the row's own values (never past valuesEnd).
using ExpandRow = void (*)(int64_t d, const uint8_t* bits, const float* values, const float* valuesEnd, float* out);
using Dot = float (*)(int64_t len, const float* a, const float* b);
// y[0:len] += alpha * x[0:len]
using Axpy = void (*)(int64_t len, float alpha, const float* x, float* y);

struct AttentionKernels {
  BackwardRow backwardRow;
  ExpandRow expandRow;
  Dot dot;
  Axpy axpy;
};
const AttentionKernels& attentionKernels();

void backwardRowScalar(int64_t len, float* s, float* ds, float lse, float D);
void expandRowScalar(int64_t d, const uint8_t* bits, const float* values, const float* valuesEnd, float* out);
float dotScalar(int64_t len, const float* a, const float* b);
void axpyScalar(int64_t len, float alpha, const float* x, float* y);
#if defined(SPARSE_WITH_AVX2)
void backwardRowAvx2(int64_t len, float* s, float* ds, float lse, float D);
void expandRowAvx2(int64_t d, const uint8_t* bits, const float* values, const float* valuesEnd, float* out);
float dotAvx2(int64_t len, const float* a, const float* b);
void axpyAvx2(int64_t len, float alpha, const float* x, float* y);
#endif

}  // namespace sparse
