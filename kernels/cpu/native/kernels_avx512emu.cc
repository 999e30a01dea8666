// The 16-wide kernels compiled with only -mavx2 -mfma: each 16-float vector is two ymm halves. This is
// the `avx512-emu` family (SPARSE_CPU_ISA=avx512-emu), which runs the AVX-512 kernels' logic on any
// AVX2 machine so their tests do not need AVX-512 hardware.
#if defined(__AVX512F__) || !defined(__AVX2__) || !defined(__FMA__)
#error "kernels_avx512emu.cc must be compiled with -mavx2 -mfma and without -mavx512f"
#endif
#define SPARSE_WIDE_NS wide_avx512emu
#define SPARSE_WIDE_TABLE wideKernelsAvx512Emu
#include "kernels_wide.inc"
