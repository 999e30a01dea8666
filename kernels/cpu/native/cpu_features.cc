#include "cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define SPARSE_X86_CPUID 1
#endif

namespace sparse {

namespace {

#if defined(SPARSE_X86_CPUID)
uint64_t readXcr0() {
  uint32_t eax = 0, edx = 0;
  // xgetbv with ecx = 0; only executed when cpuid says OSXSAVE is set.
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(SPARSE_X86_CPUID)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned maxLeaf = a;
  // "AuthenticAMD" in ebx, edx, ecx.
  const bool amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const unsigned baseFamily = (a >> 8) & 0xFu;
  const unsigned family = baseFamily == 0xFu ? baseFamily + ((a >> 20) & 0xFFu) : baseFamily;
  const bool osxsave = (c >> 27) & 1u;
  f.fma = (c >> 12) & 1u;
  if (osxsave) {
    const uint64_t xcr0 = readXcr0();
    f.osYmm = (xcr0 & 0x6u) == 0x6u;                   // SSE and AVX state
    f.osZmm = f.osYmm && (xcr0 & 0xE0u) == 0xE0u;       // opmask, ZMM_Hi256, Hi16_ZMM
  }
  if (maxLeaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = (b >> 5) & 1u;
    f.avx512f = (b >> 16) & 1u;
    f.avx512bw = (b >> 30) & 1u;
    f.avx512vl = (b >> 31) & 1u;
    f.avx512vnni = (c >> 11) & 1u;
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512bf16 = (a >> 5) & 1u;
  }
  // Zen 4 is the AMD family 0x19 part with AVX-512 (Zen 3, also 0x19, has none); Zen 5 (0x1A) runs
  // 512-bit operations whole.
  f.split512 = amd && family == 0x19u && f.avx512f;
#endif
  return f;
}

bool compiledAvx2() {
#if defined(SPARSE_WITH_AVX2)
  return true;
#else
  return false;
#endif
}

bool compiledAvx512() {
#if defined(SPARSE_WITH_AVX512)
  return true;
#else
  return false;
#endif
}

struct Choice {
  Isa isa = Isa::kScalar;
  std::string note;
};

Choice choose() {
  const CpuFeatures& f = cpuFeatures();
  const bool avx2 = compiledAvx2() && f.avx2 && f.fma && f.osYmm;
  const bool avx512 = avx2 && compiledAvx512() && f.avx512f && f.avx512bw && f.avx512vl && f.osZmm;
  const Isa best = avx512 ? Isa::kAvx512 : avx2 ? Isa::kAvx2 : Isa::kScalar;
  Choice out{best, ""};
  const char* env = std::getenv("SPARSE_CPU_ISA");
  std::string want = env != nullptr ? env : "";
  if (want.empty() && std::getenv("SPARSE_FORCE_SCALAR") != nullptr) want = "scalar";
  if (want.empty()) return out;
  if (want == "scalar") {
    out.isa = Isa::kScalar;
  } else if (want == "avx2") {
    if (avx2) out.isa = Isa::kAvx2;
    else out.note = "SPARSE_CPU_ISA=avx2 asked for, but this CPU, OS or build lacks AVX2+FMA";
  } else if (want == "avx512-emu") {
    if (avx2 && compiledAvx512()) out.isa = Isa::kAvx512Emu;
    else out.note = "SPARSE_CPU_ISA=avx512-emu asked for, but it needs AVX2+FMA and the 16-wide kernels in the build";
  } else if (want == "avx512") {
    if (avx512) out.isa = Isa::kAvx512;
    else out.note = "SPARSE_CPU_ISA=avx512 asked for, but this CPU, OS or build lacks AVX-512 F/BW/VL";
  } else {
    out.note = "SPARSE_CPU_ISA='" + want + "' is not one of avx512, avx512-emu, avx2, scalar";
  }
  return out;
}

const Choice& choice() {
  static const Choice c = choose();
  return c;
}

}  // namespace

const CpuFeatures& cpuFeatures() {
  static const CpuFeatures f = detect();
  return f;
}

Isa activeIsa() { return choice().isa; }

const char* isaNote() { return choice().note.c_str(); }

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Emu: return "avx512-emu";
    case Isa::kAvx2: return "avx2";
    case Isa::kScalar: break;
  }
  return "scalar";
}

}  // namespace sparse

#include "wide_kernels.h"

namespace sparse {

const WideKernels* wideKernels() {
#if defined(SPARSE_WITH_AVX512)
  switch (activeIsa()) {
    case Isa::kAvx512: return &wideKernelsAvx512();
    case Isa::kAvx512Emu: return &wideKernelsAvx512Emu();
    default: break;
  }
#endif
  return nullptr;
}

}  // namespace sparse
