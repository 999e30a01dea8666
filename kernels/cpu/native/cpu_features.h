// Run-time CPU dispatch: which instruction sets the CPU and the OS support (cpuid + xgetbv), which
// kernel family each call runs, and the SPARSE_CPU_ISA override that forces a lower one.
//
// Families, best first:
//   avx512      16-wide kernels compiled with -mavx512f/bw/vl (needs the CPU bits and the OS saving
//               the zmm/opmask state, XCR0 bits 5-7);
//   avx512-emu  the same 16-wide kernel source compiled with only -mavx2 -mfma (each 512-bit operation
//               split in two): never picked by itself, only through SPARSE_CPU_ISA=avx512-emu, so a
//               machine without AVX-512 still runs and tests the 16-wide code;
//   avx2        the 8-wide AVX2 + FMA kernels;
//   scalar      portable C++.
// SPARSE_CPU_ISA=avx512|avx512-emu|avx2|scalar picks a family the machine supports; asking for one it
// does not support falls back to the best supported one and says why (isaNote()). The older
// SPARSE_FORCE_SCALAR=1 means SPARSE_CPU_ISA=scalar.
#pragma once

namespace sparse {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512Emu = 2, kAvx512 = 3 };

struct CpuFeatures {
  bool avx2 = false, fma = false;                            // CPU bits
  bool avx512f = false, avx512bw = false, avx512vl = false;  // CPU bits
  bool avx512bf16 = false, avx512vnni = false;               // CPU bits (reported; no kernel needs them yet)
  bool osYmm = false, osZmm = false;                         // XCR0: the OS saves ymm / zmm + opmask state
  // 512-bit loads and multiply-adds issue as two 256-bit halves (AMD Zen 4: family 0x19 with AVX-512).
  bool split512 = false;
};

// The CPU's features, read once.
const CpuFeatures& cpuFeatures();

// The kernel family in use: the best the CPU, the OS and the build support, or a lower one asked for
// with SPARSE_CPU_ISA.
Isa activeIsa();

// "avx512", "avx512-emu", "avx2" or "scalar".
const char* isaName(Isa isa);

// Why the family in use is not the one SPARSE_CPU_ISA asked for ("" when it is, or nothing was asked).
const char* isaNote();

// Whether the 8-wide AVX2 kernels run (every family above scalar uses them where no 16-wide kernel exists).
inline bool useAvx2() { return activeIsa() != Isa::kScalar; }
// Whether the 16-wide kernels run (avx512 or avx512-emu).
inline bool useWide() { return activeIsa() >= Isa::kAvx512Emu; }

}  // namespace sparse
