// Software prefetch into L2 (the hint T1), for source data a kernel will read a little later.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparse {

// Prefetches the 64-byte line holding p into L2.
inline void prefetchL2(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  // GCC drops __builtin_prefetch from some loops at -O3; the instruction itself stays.
  asm volatile("prefetcht1 (%0)" : : "r"(p));
#elif defined(__GNUC__)
  __builtin_prefetch(p, 0, 2);
#else
  (void)p;
#endif
}

// Prefetches every 64-byte line of [p, p + bytes) into L2.
inline void prefetchRangeL2(const void* p, size_t bytes) {
  if (bytes == 0) return;
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + bytes;
  for (uintptr_t line = first; line < end; line += 64) prefetchL2(reinterpret_cast<const void*>(line));
}

}  // namespace sparse
