// Multi-tensor Adam for the sparse-cpu tfjs backend (fused.h): every parameter of a model updated in
// place in one call, with the float32 operations of the tfjs composition it replaces in the same
// order (each rounded once, as tfjs-backend-cpu rounds each op), so results are the same bits:
//   m = m*b1 + g*(1-b1); v = v*b2 + (g*g)*(1-b2); p = p - ((m/c1) / (sqrt(v/c2) + eps)) * lr.
// No fused multiply-adds: contraction would change the bits.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cmath>
#include <vector>

#include "fused.h"
#include "thread_pool.h"

namespace sparse {

void fusedAdamStep(const std::vector<AdamTensor>& tensors, const AdamScalars& s) {
  // flatten into (tensor, first, last) pieces of about kPiece elements, then hand pieces to threads
  constexpr int64_t kPiece = 1 << 14;
  struct Piece {
    size_t tensor;
    int64_t first, last;
  };
  std::vector<Piece> pieces;
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    for (int64_t f = 0; f < tensors[i].n; f += kPiece) pieces.push_back({i, f, std::min(tensors[i].n, f + kPiece)});
    total += tensors[i].n;
  }
  if (pieces.empty()) return;
  const int wanted = static_cast<int>(std::min<int64_t>(static_cast<int64_t>(pieces.size()), total / (1 << 15) + 1));
  const float b1 = s.beta1, omb1 = s.oneMinusBeta1, b2 = s.beta2, omb2 = s.oneMinusBeta2, eps = s.eps, lr = s.lr;
  parallelRun(wanted, [&](int t, int nt) {
    const size_t p0 = pieces.size() * t / nt, p1 = pieces.size() * (t + 1) / nt;
    for (size_t q = p0; q < p1; ++q) {
      const AdamTensor& a = tensors[pieces[q].tensor];
      const float c1 = a.c1, c2 = a.c2;
      for (int64_t i = pieces[q].first; i < pieces[q].last; ++i) {
        const float g = a.grad[i];
        const float mi = a.m[i] * b1 + g * omb1;
        const float gg = g * g;
        const float vi = a.v[i] * b2 + gg * omb2;
        a.m[i] = mi;
        a.v[i] = vi;
        const float step = (mi / c1) / (std::sqrt(vi / c2) + eps);
        a.param[i] = a.param[i] - step * lr;
      }
    }
  });
}

}  // namespace sparse
