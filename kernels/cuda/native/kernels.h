// Host entry points of the CUDA kernels. Every pointer is a device pointer; every call is
// asynchronous on `stream` (0 = the legacy default stream) and returns the launch error, if any.
// Matrices are row-major. Used by the test program (gpu_test.cu) and the Node addon (addon.cc).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#ifdef __CUDACC__
#define SPARSE_HD __host__ __device__
#else
#define SPARSE_HD
#endif

namespace sparse_cuda {

/** Element type of half-precision operands: IEEE fp16 or bfloat16 (raw 16-bit storage either way). */
enum class Half16 { F16 = 0, BF16 = 1 };

/** Logical columns rounded up to a multiple of 32 (the k-extent of one mma.sp.m16n8k32). */
SPARSE_HD inline int padded_cols24(int cols) { return (cols + 31) / 32 * 32; }
/** Words of tensor-core 2:4 metadata for a [rows, cols] matrix: ceil(rows/16) * paddedCols/32 * 16. */
inline size_t meta_words24(int rows, int cols) { return size_t((rows + 15) / 16) * (padded_cols24(cols) / 32) * 16; }

/**
 * Compresses a dense fp16/bf16 [rows, cols] matrix (leading dimension ld) that is 2:4 sparse into
 * values [rows, paddedCols/2] and metadata in the tensor-core layout (see src/tensor-core-24.ts for
 * the description). *bad (device int, set to INT32_MAX by the caller) receives the smallest
 * row * (paddedCols/4) + chunk of a group with more than two non-zeros.
 */
cudaError_t compress24(Half16 type, const void* dense, int rows, int cols, int ld, void* values, uint32_t* meta, int* bad, cudaStream_t stream);

/**
 * C[M,N] = alpha * A * B + beta * C on the sparse tensor cores (mma.sp m16n8k32, fp32 accumulate):
 * A is 2:4 sparse [M,K] in the tensor-core layout (values [M, paddedCols/2], meta), B dense [K,N]
 * (ldb), C float32 [M,N] (ldc). beta == 0 does not read C.
 */
cudaError_t gemm24(Half16 type, int M, int N, int K, const void* values, const uint32_t* meta, const void* B, int ldb, float* C, int ldc, float alpha, float beta, cudaStream_t stream);

/**
 * Diagnostic: one mma.sp.m16n8k32 (selector 0) on a single tile, fragments loaded by formula:
 * avals = compressed A [16][16], b = B [32][8] row-major, e = the metadata word of each of the 32
 * lanes, c = float32 [16][8].
 */
cudaError_t probe_mma_sp(Half16 type, const void* avals, const void* b, const uint32_t* e, float* c, cudaStream_t stream);

/** The same kernel structure with dense A [M,K] (lda) on mma.sync m16n8k16: the like-for-like baseline. */
cudaError_t gemm_dense_tc(Half16 type, int M, int N, int K, const void* A, int lda, const void* B, int ldb, float* C, int ldc, float alpha, float beta, cudaStream_t stream);

/** fp32 SIMT gemm, BLAS semantics: C = alpha op(A) op(B) + beta C (beta == 0: C not read). */
cudaError_t sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc, cudaStream_t stream);

/** C[M,N] = alpha * A * B + beta * C with A CSR [M, K] (indptr M+1, indices, values), B [K,N] (ldb). */
cudaError_t spmm_csr(int M, int N, const int* indptr, const int* indices, const float* values, const float* B, int ldb, float alpha, float beta, float* C, int ldc, cudaStream_t stream);

/** Same with A in block-sparse rows: blocks br x bc, block row i holds blocks indptr[i]..indptr[i+1], values block-major row-major within. */
cudaError_t spmm_bsr(int M, int K, int N, int br, int bc, const int* indptr, const int* indices, const float* values, const float* B, int ldb, float alpha, float beta, float* C, int ldc, cudaStream_t stream);

/** Same with A in N:M form: values [M, K/m*n], positions packed LSB-first at indexBits each. */
cudaError_t spmm_nm(int M, int K, int N, int n, int m, int indexBits, const float* values, const uint8_t* indices, const float* B, int ldb, float alpha, float beta, float* C, int ldc, cudaStream_t stream);

/** Element type of attention inputs. */
enum class AttnType { F32 = 0, F16 = 1, BF16 = 2 };

/**
 * Block-sparse flash attention forward over [heads, seq, dim] Q, K, V (outputs float32 [heads, seq,
 * dim]). blockMask: null (dense), [nb, nb] shared or [heads, nb, nb] (maskPerHead), nb =
 * ceil(seq/blockSize): 0 skip, 2 partial (elementMask bits, LSB-first, [seq, seq] or [heads, seq,
 * seq]), other = full. lse (float32 [heads, seq]) written when non-null. dim <= 256.
 * Scores are scale * q.k; a query with no allowed key gets zeros (lse -inf).
 */
cudaError_t attention_forward(AttnType type, int heads, int seq, int dim, const void* Q, const void* K, const void* V, float* out, bool causal, float scale, int blockSize, const uint8_t* blockMask, bool maskPerHead, const uint8_t* elementMask, bool elementPerHead, float* lse, cudaStream_t stream);

/** The same forward with no mask reads at all (plain dense flash attention, for the benchmark). */
cudaError_t attention_forward_dense(AttnType type, int heads, int seq, int dim, const void* Q, const void* K, const void* V, float* out, bool causal, float scale, cudaStream_t stream);

/**
 * Masked Adam (AdamW with weightDecay > 0) on the active entries: either `indices` (count entries,
 * increasing) or `bits` (size bits, LSB-first; count = popcount). m, v hold one value per active entry.
 * `scratch` must hold scratch_words_adam(size) ints when bits are used.
 */
cudaError_t masked_adam(float* params, const float* grads, size_t size, const int* indices, size_t count, const uint8_t* bits, float* m, float* v, double step, float lr, float beta1, float beta2, float eps, float weightDecay, int* scratch, size_t scratchBytes, cudaStream_t stream);
/** Bytes of scratch masked_adam needs for a bit mask over `size` entries. */
size_t masked_adam_scratch_bytes(size_t size);

}  // namespace sparse_cuda
