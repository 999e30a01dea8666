// The 16-wide kernels compiled for AVX-512 (-mavx512f -mavx512bw -mavx512vl -mfma). Nothing here runs
// unless cpu_features.cc has found AVX-512 F/BW/VL in the CPU and zmm state saved by the OS.
#if !defined(__AVX512F__)
#error "kernels_avx512.cc must be compiled with -mavx512f"
#endif
// GCC 12's avx512fintrin.h initializes its "undefined" operands from themselves, which its own
// -Wuninitialized then reports at every inlined intrinsic; the values are never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define SPARSE_WIDE_NS wide_avx512
#define SPARSE_WIDE_TABLE wideKernelsAvx512
#include "kernels_wide.inc"
