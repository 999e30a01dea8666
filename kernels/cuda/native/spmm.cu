// fp32 kernels with the registry's BLAS semantics: a tiled SIMT gemm, and sparse (CSR, block-sparse
// rows, N:M) times dense products. alpha == 0 reads neither A nor B; beta == 0 does not read C.
#include "kernels.h"

namespace sparse_cuda {
namespace {

__device__ __forceinline__ void store_out(float* dst, float acc, float alpha, float beta) {
  const float v = alpha == 0.f ? 0.f : alpha * acc;
  *dst = beta == 0.f ? v : v + beta * *dst;
}

// 64 x 64 tile per CTA of 256 threads, each thread 4 x 4 outputs; k in steps of 16.
constexpr int SG_T = 64;
constexpr int SG_K = 16;

__global__ void __launch_bounds__(256) sgemm_kernel(bool transA, bool transB, int M, int N, int K, float alpha, const float* __restrict__ A, int lda,
                                                    const float* __restrict__ B, int ldb, float beta, float* __restrict__ C, int ldc) {
  __shared__ float As[SG_K][SG_T + 4];
  __shared__ float Bs[SG_K][SG_T + 4];
  const int tid = threadIdx.x;
  const int tx = tid % 16;
  const int ty = tid / 16;
  const int m0 = blockIdx.y * SG_T;
  const int n0 = blockIdx.x * SG_T;
  float acc[4][4] = {};
  if (alpha != 0.f) {
    for (int k0 = 0; k0 < K; k0 += SG_K) {
      for (int e = tid; e < SG_K * SG_T; e += 256) {
        // A tile: (i, l) with i along M; B tile: (l, j) with j along N.
        int l = transA ? e / SG_T : e % SG_K;
        int i = transA ? e % SG_T : e / SG_K;
        int gi = m0 + i, gl = k0 + l;
        As[l][i] = (gi < M && gl < K) ? (transA ? A[size_t(gl) * lda + gi] : A[size_t(gi) * lda + gl]) : 0.f;
        int lb = transB ? e % SG_K : e / SG_T;
        int j = transB ? e / SG_K : e % SG_T;
        int gj = n0 + j, glb = k0 + lb;
        Bs[lb][j] = (gj < N && glb < K) ? (transB ? B[size_t(gj) * ldb + glb] : B[size_t(glb) * ldb + gj]) : 0.f;
      }
      __syncthreads();
#pragma unroll
      for (int l = 0; l < SG_K; l++) {
        float a[4], b[4];
#pragma unroll
        for (int r = 0; r < 4; r++) a[r] = As[l][ty + 16 * r];
#pragma unroll
        for (int c = 0; c < 4; c++) b[c] = Bs[l][tx + 16 * c];
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
          for (int c = 0; c < 4; c++) acc[r][c] += a[r] * b[c];
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int r = 0; r < 4; r++) {
    const int row = m0 + ty + 16 * r;
    if (row >= M) continue;
#pragma unroll
    for (int c = 0; c < 4; c++) {
      const int col = n0 + tx + 16 * c;
      if (col < N) store_out(C + size_t(row) * ldc + col, acc[r][c], alpha, beta);
    }
  }
}

constexpr int COLS_PER_CTA = 128;

__global__ void spmm_csr_kernel(int N, const int* __restrict__ indptr, const int* __restrict__ indices, const float* __restrict__ values,
                                const float* __restrict__ B, int ldb, float alpha, float beta, float* __restrict__ C, int ldc) {
  const int row = blockIdx.x;
  const int col = blockIdx.y * COLS_PER_CTA + threadIdx.x;
  if (col >= N) return;
  float acc = 0.f;
  if (alpha != 0.f) {
    for (int p = indptr[row], end = indptr[row + 1]; p < end; p++) acc += values[p] * B[size_t(indices[p]) * ldb + col];
  }
  store_out(C + size_t(row) * ldc + col, acc, alpha, beta);
}

__global__ void spmm_bsr_kernel(int K, int N, int br, int bc, const int* __restrict__ indptr, const int* __restrict__ indices,
                                const float* __restrict__ values, const float* __restrict__ B, int ldb, float alpha, float beta, float* __restrict__ C,
                                int ldc) {
  const int row = blockIdx.x;
  const int col = blockIdx.y * COLS_PER_CTA + threadIdx.x;
  if (col >= N) return;
  const int bi = row / br;
  const int ri = row % br;
  float acc = 0.f;
  if (alpha != 0.f) {
    for (int p = indptr[bi], end = indptr[bi + 1]; p < end; p++) {
      const int c0 = indices[p] * bc;
      const int width = min(bc, K - c0);  // edge blocks: the padding never meets rows of B
      const float* blk = values + size_t(p) * br * bc + size_t(ri) * bc;
      for (int cc = 0; cc < width; cc++) acc += blk[cc] * B[size_t(c0 + cc) * ldb + col];
    }
  }
  store_out(C + size_t(row) * ldc + col, acc, alpha, beta);
}

__device__ __forceinline__ int read_packed(const uint8_t* buf, int bits, size_t k) {
  const size_t bit = k * size_t(bits);
  const size_t byte = bit >> 3;
  const int shift = int(bit & 7);
  uint32_t word = 0;
  // Up to 24 bits of index plus 7 bits of shift fit in four bytes; the caller's buffer holds
  // exactly the packed length, so read only the bytes that exist.
  const int need = (shift + bits + 7) >> 3;
  for (int i = 0; i < need; i++) word |= uint32_t(buf[byte + i]) << (8 * i);
  return int((word >> shift) & ((1u << bits) - 1));
}

__global__ void spmm_nm_kernel(int K, int N, int n, int m, int bits, const float* __restrict__ values, const uint8_t* __restrict__ indices,
                               const float* __restrict__ B, int ldb, float alpha, float beta, float* __restrict__ C, int ldc) {
  const int row = blockIdx.x;
  const int col = blockIdx.y * COLS_PER_CTA + threadIdx.x;
  if (col >= N) return;
  float acc = 0.f;
  if (alpha != 0.f) {
    const int groups = K / m;
    const size_t base = size_t(row) * groups * n;
    for (int g = 0; g < groups; g++) {
      for (int t = 0; t < n; t++) {
        const size_t k = base + size_t(g) * n + t;
        const int pos = read_packed(indices, bits, k);
        acc += values[k] * B[size_t(g * m + pos) * ldb + col];
      }
    }
  }
  store_out(C + size_t(row) * ldc + col, acc, alpha, beta);
}

dim3 row_grid(int M, int N) { return dim3(unsigned(M), unsigned((N + COLS_PER_CTA - 1) / COLS_PER_CTA)); }

}  // namespace

cudaError_t sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta, float* C,
                  int ldc, cudaStream_t stream) {
  if (M < 0 || N < 0 || K < 0) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  const dim3 grid((N + SG_T - 1) / SG_T, (M + SG_T - 1) / SG_T);
  sgemm_kernel<<<grid, 256, 0, stream>>>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return cudaGetLastError();
}

cudaError_t spmm_csr(int M, int N, const int* indptr, const int* indices, const float* values, const float* B, int ldb, float alpha, float beta, float* C,
                     int ldc, cudaStream_t stream) {
  if (M < 0 || N < 0) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  spmm_csr_kernel<<<row_grid(M, N), COLS_PER_CTA, 0, stream>>>(N, indptr, indices, values, B, ldb, alpha, beta, C, ldc);
  return cudaGetLastError();
}

cudaError_t spmm_bsr(int M, int K, int N, int br, int bc, const int* indptr, const int* indices, const float* values, const float* B, int ldb, float alpha,
                     float beta, float* C, int ldc, cudaStream_t stream) {
  if (M < 0 || N < 0 || K < 0 || br < 1 || bc < 1) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  spmm_bsr_kernel<<<row_grid(M, N), COLS_PER_CTA, 0, stream>>>(K, N, br, bc, indptr, indices, values, B, ldb, alpha, beta, C, ldc);
  return cudaGetLastError();
}

cudaError_t spmm_nm(int M, int K, int N, int n, int m, int indexBits, const float* values, const uint8_t* indices, const float* B, int ldb, float alpha,
                    float beta, float* C, int ldc, cudaStream_t stream) {
  if (M < 0 || N < 0 || K < 0 || n < 1 || m <= n || K % m != 0 || indexBits < 1 || indexBits > 24) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  spmm_nm_kernel<<<row_grid(M, N), COLS_PER_CTA, 0, stream>>>(K, N, n, m, indexBits, values, indices, B, ldb, alpha, beta, C, ldc);
  return cudaGetLastError();
}

}  // namespace sparse_cuda
