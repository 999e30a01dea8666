// The 16-wide kernel family: one source (kernels_wide.inc) compiled twice, as `avx512` (kernels_avx512.cc,
// -mavx512f -mavx512bw -mavx512vl) and as `avx512-emu` (kernels_avx512emu.cc, -mavx2 -mfma). The
// drivers (gemm.cc, spmm.cc, ops.cc, linalg.cc, attention.cc, elementwise.cc) take the table of the
// family cpu_features.h selected.
#pragma once

#include "attention.h"
#include "elementwise.h"
#include "gemm.h"
#include "linalg.h"
#include "ops.h"
#include "spmm.h"

namespace sparse {

// Register tile of the wide GEMM micro-kernel: 12 rows by 32 columns (24 zmm accumulators, 2 B
// vectors, broadcasts folded into the multiply-adds: 27 of the 32 zmm registers).
constexpr int kWideMR = 12;
constexpr int kWideNR = 32;
// Widest strip of C columns the wide strip kernels take: 8 vectors of 16.
constexpr int64_t kWideStrip = 128;

struct WideKernels {
  MicroKernel micro;  // kWideMR x kWideNR tile
  MultiDot dot;
  MultiAxpy axpy;
  CsrStripKernel csr;  // strips up to kWideStrip columns
  NmStripKernel nm;    // strips up to kWideStrip columns
  Axpy4 axpy4;
  GatherDot4 gatherDot4;
  MaskedDot4 maskedDot4;
  AdamSpan adamSpan;
  SgdSpan sgdSpan;
  DMicroKernel dmicro;  // kDMR x kDNR float64 tile
  AttentionKernels attention;    // the backward's and the bitmap-KV decode's row kernels
  SoftmaxRow softmaxRow;         // the attention forward's online-softmax step
  ElementwiseDispatch elementwise;  // binary, unary and row-reduction spans (same bits as the others)
};

// Defined by kernels_avx512.cc and kernels_avx512emu.cc (built when SPARSE_WITH_AVX512 is set).
const WideKernels& wideKernelsAvx512();
const WideKernels& wideKernelsAvx512Emu();

// The table of the wide family in use, or null when it is not (avx2 or scalar).
const WideKernels* wideKernels();

}  // namespace sparse
