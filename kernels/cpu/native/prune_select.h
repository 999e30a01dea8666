// Pruning selection kernels (Wanda's statistics and selection): per-column moments of a float32 batch and
// the per-row top-k of |w_ij| * scale_j with its mask and pruned copy. Row-major throughout; multithreaded
// on the pool.
#pragma once

#include <cstdint>

namespace sparse {

// For the [rows, cols] float32 batch x (leading dimension ldx), in float64 with the rows in increasing
// order: sumSquares[j] += sum_i x_ij^2, mean[j] = (sum_i x_ij) / rows, m2[j] = sum_i (x_ij - mean[j])^2.
// Returns -1, or the lowest flat index i * cols + j of an entry that is not finite (nothing written then).
// rows == 0 writes nothing.
int64_t columnMomentsF32(int64_t rows, int64_t cols, const float* x, int64_t ldx, double* sumSquares, double* mean,
                         double* m2);

// In every row i of the [rows, cols] float32 matrix w (leading dimension ldw), keeps the k entries with the
// largest |w_ij| * scale_j (float64; ties to the lower column): bit i * cols + j of mask (32 to a word,
// lowest bit first) is set for kept entries and cleared otherwise, as are the bits past rows * cols in the
// last word. out (may be null, or w itself with ldo == ldw) receives w_ij for kept entries and 0 for the
// others. scale must be finite and non-negative, 0 <= k <= cols. Returns -1, or the lowest flat index of
// a weight that is not finite (mask and out are then unspecified).
int64_t rowTopKScaledAbs(int64_t rows, int64_t cols, const float* w, int64_t ldw, const double* scale, int64_t k,
                         uint32_t* mask, float* out, int64_t ldo);

}  // namespace sparse
