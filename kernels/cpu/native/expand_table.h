// The byte-to-lanes table of the bitmap expand (attention over the bitmap KV cache): for each byte b
// of a bitmap, the permutation moving popcount(b) packed values to b's set bits, and the lanes to
// keep. Built at compile time (constexpr), so no code of the ISA-specific units that use it runs at
// load time on a CPU without their instructions.
#pragma once

#include <cstdint>

namespace sparse {

struct ExpandTable8 {
  alignas(32) int32_t perm[256][8]{};
  alignas(32) int32_t keep[256][8]{};
  constexpr ExpandTable8() {
    for (int b = 0; b < 256; ++b) {
      int at = 0;
      for (int c = 0; c < 8; ++c) {
        const bool set = ((b >> c) & 1) != 0;
        perm[b][c] = set ? at : 0;
        keep[b][c] = set ? -1 : 0;
        at += set ? 1 : 0;
      }
    }
  }
};

}  // namespace sparse
