// Block-sparse flash attention, forward: one CTA of 128 threads per (32-query chunk, head), keys in
// tiles of 32 with an online softmax (running max and sum per query row, output rescaled when the max
// grows). A key tile is skipped without being loaded when the block mask has no non-zero entry for
// any (query block, key block) pair it overlaps, or when causal masking excludes all of it. Inputs
// fp32, fp16 or bf16 (converted to fp32 in shared memory); all arithmetic and the output are fp32.
// Without a block mask (null) the kernel reads no mask at all: the plain dense flash kernel of the
// benchmark.
#include <cfloat>
#include "common.cuh"
#include "kernels.h"

namespace sparse_cuda {
namespace {

constexpr int QT = 32;  // queries per CTA
constexpr int KT = 32;  // keys per tile
constexpr int ATT_THREADS = 128;

template <int TYPE>
__device__ __forceinline__ float load_elem(const void* p, size_t i) {
  if constexpr (TYPE == int(AttnType::F32)) {
    return static_cast<const float*>(p)[i];
  } else {
    return half_bits_to_float<TYPE == int(AttnType::BF16)>(static_cast<const uint16_t*>(p)[i]);
  }
}

struct MaskArgs {
  const uint8_t* block;
  bool blockPerHead;
  const uint8_t* element;
  bool elementPerHead;
  int blockSize;
  int nb;
};

/** Whether query i may attend to key j (block value and element bit; causal is checked by the caller). */
__device__ __forceinline__ bool allowed(const MaskArgs& mk, int h, int seq, int i, int j) {
  const int bi = i / mk.blockSize;
  const int bj = j / mk.blockSize;
  const uint8_t t = mk.block[(mk.blockPerHead ? size_t(h) * mk.nb * mk.nb : 0) + size_t(bi) * mk.nb + bj];
  if (t == 0) return false;
  if (t != 2) return true;
  const size_t n = (mk.elementPerHead ? size_t(h) * seq * seq : 0) + size_t(i) * seq + j;
  return (mk.element[n >> 3] >> (n & 7)) & 1;
}

/** Whether any query of [q0, q1] and key of [k0, k1] meet in a non-zero tile. */
__device__ __forceinline__ bool tile_live(const MaskArgs& mk, int h, int q0, int q1, int k0, int k1) {
  const size_t base = mk.blockPerHead ? size_t(h) * mk.nb * mk.nb : 0;
  for (int bi = q0 / mk.blockSize; bi <= q1 / mk.blockSize; bi++)
    for (int bj = k0 / mk.blockSize; bj <= k1 / mk.blockSize; bj++)
      if (mk.block[base + size_t(bi) * mk.nb + bj] != 0) return true;
  return false;
}

template <int TYPE, int DCH>
__global__ void __launch_bounds__(ATT_THREADS) attention_kernel(int seq, int dim, const void* __restrict__ Q, const void* __restrict__ K,
                                                                 const void* __restrict__ V, float* __restrict__ out, bool causal, float scale,
                                                                 MaskArgs mk, float* __restrict__ lse) {
  extern __shared__ float sm[];
  const int ldk = dim + 1;
  float* Qs = sm;                // [QT][dim + 1]
  float* Ks = Qs + QT * ldk;     // [KT][dim + 1]
  float* Vs = Ks + KT * ldk;     // [KT][dim]
  float* Ps = Vs + KT * dim;     // [QT][KT + 1]
  const int h = blockIdx.y;
  const int q0 = blockIdx.x * QT;
  const int q1 = min(q0 + QT, seq) - 1;
  const int tid = threadIdx.x;
  const int qi = tid >> 2;  // this thread's query row within the chunk
  const int sub = tid & 3;  // and its quarter of the keys / of the dims
  const int i = q0 + qi;
  const size_t headBase = size_t(h) * seq * dim;

  for (int e = tid; e < QT * dim; e += ATT_THREADS) {
    const int r = e / dim, d = e % dim;
    Qs[r * ldk + d] = q0 + r < seq ? load_elem<TYPE>(Q, headBase + size_t(q0 + r) * dim + d) * scale : 0.f;
  }
  float o[DCH];
#pragma unroll
  for (int c = 0; c < DCH; c++) o[c] = 0.f;
  float mrow = -INFINITY, lrow = 0.f;

  const int kEnd = causal ? q1 + 1 : seq;
  for (int k0 = 0; k0 < kEnd; k0 += KT) {
    const int k1 = min(k0 + KT, seq) - 1;
    if (mk.block != nullptr && !tile_live(mk, h, q0, q1, k0, k1)) continue;  // uniform across the CTA
    __syncthreads();  // the previous tile's K, V and P are no longer read
    for (int e = tid; e < KT * dim; e += ATT_THREADS) {
      const int r = e / dim, d = e % dim;
      const bool ok = k0 + r < seq;
      Ks[r * ldk + d] = ok ? load_elem<TYPE>(K, headBase + size_t(k0 + r) * dim + d) : 0.f;
      Vs[e] = ok ? load_elem<TYPE>(V, headBase + size_t(k0 + r) * dim + d) : 0.f;
    }
    __syncthreads();
    // Scores of keys sub, sub + 4, ..., sub + 28 for query i: each q element loaded once for the
    // eight keys (rows of Qs and Ks are padded to dim + 1 floats, so the eight query rows and four
    // key rows a warp reads at one d sit in distinct banks).
    float s[KT / 4];
#pragma unroll
    for (int r = 0; r < KT / 4; r++) s[r] = 0.f;
    {
      const float* qrow = Qs + qi * ldk;
      const float* krow = Ks + sub * ldk;
      for (int d = 0; d < dim; d++) {
        const float qd = qrow[d];
#pragma unroll
        for (int r = 0; r < KT / 4; r++) s[r] += qd * krow[4 * r * ldk + d];
      }
    }
    float tmax = -INFINITY;
#pragma unroll
    for (int r = 0; r < KT / 4; r++) {
      const int j = k0 + sub + 4 * r;
      bool ok = i < seq && j < seq && (!causal || j <= i);
      if (mk.block != nullptr) ok = ok && allowed(mk, h, seq, i, j);
      if (!ok) s[r] = -INFINITY;
      tmax = fmaxf(tmax, s[r]);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
    const float mnew = fmaxf(mrow, tmax);
    float psum = 0.f;
#pragma unroll
    for (int r = 0; r < KT / 4; r++) {
      const float p = mnew == -INFINITY ? 0.f : __expf(s[r] - mnew);
      Ps[qi * (KT + 1) + sub + 4 * r] = p;
      psum += p;
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    psum += __shfl_xor_sync(0xffffffffu, psum, 2);
    const float corr = mrow == -INFINITY ? 0.f : __expf(mrow - mnew);
    lrow = lrow * corr + psum;
    mrow = mnew;
    __syncwarp();  // the row's P values come from the four lanes of this warp
#pragma unroll
    for (int c = 0; c < DCH; c++) o[c] *= corr;
#pragma unroll 2
    for (int kj = 0; kj < KT; kj++) {
      const float p = Ps[qi * (KT + 1) + kj];
      const float* vrow = Vs + kj * dim + sub;
#pragma unroll
      for (int c = 0; c < DCH; c++)
        if (sub + 4 * c < dim) o[c] += p * vrow[4 * c];
    }
  }
  if (i < seq) {
    const float inv = lrow > 0.f ? 1.f / lrow : 0.f;
#pragma unroll
    for (int c = 0; c < DCH; c++) {
      const int d = sub + 4 * c;
      if (d < dim) out[headBase + size_t(i) * dim + d] = o[c] * inv;
    }
    if (lse != nullptr && sub == 0) lse[size_t(h) * seq + i] = lrow > 0.f ? mrow + logf(lrow) : -INFINITY;
  }
}

template <int TYPE, int DCH>
cudaError_t launch_attention(int heads, int seq, int dim, const void* Q, const void* K, const void* V, float* out, bool causal, float scale,
                             const MaskArgs& mk, float* lse, cudaStream_t stream) {
  auto kernel = attention_kernel<TYPE, DCH>;
  const size_t bytes = sizeof(float) * (size_t(QT) * (dim + 1) + size_t(KT) * (dim + 1) + size_t(KT) * dim + size_t(QT) * (KT + 1));
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  if (err != cudaSuccess) return err;
  const dim3 grid(unsigned((seq + QT - 1) / QT), unsigned(heads));
  kernel<<<grid, ATT_THREADS, bytes, stream>>>(seq, dim, Q, K, V, out, causal, scale, mk, lse);
  return cudaGetLastError();
}

template <int TYPE>
cudaError_t dispatch_dim(int heads, int seq, int dim, const void* Q, const void* K, const void* V, float* out, bool causal, float scale,
                         const MaskArgs& mk, float* lse, cudaStream_t stream) {
  if (dim <= 128) return launch_attention<TYPE, 32>(heads, seq, dim, Q, K, V, out, causal, scale, mk, lse, stream);
  return launch_attention<TYPE, 64>(heads, seq, dim, Q, K, V, out, causal, scale, mk, lse, stream);
}

cudaError_t dispatch_type(AttnType type, int heads, int seq, int dim, const void* Q, const void* K, const void* V, float* out, bool causal,
                          float scale, const MaskArgs& mk, float* lse, cudaStream_t stream) {
  switch (type) {
    case AttnType::F32:
      return dispatch_dim<int(AttnType::F32)>(heads, seq, dim, Q, K, V, out, causal, scale, mk, lse, stream);
    case AttnType::F16:
      return dispatch_dim<int(AttnType::F16)>(heads, seq, dim, Q, K, V, out, causal, scale, mk, lse, stream);
    case AttnType::BF16:
      return dispatch_dim<int(AttnType::BF16)>(heads, seq, dim, Q, K, V, out, causal, scale, mk, lse, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t attention_forward(AttnType type, int heads, int seq, int dim, const void* Q, const void* K, const void* V, float* out, bool causal, float scale,
                              int blockSize, const uint8_t* blockMask, bool maskPerHead, const uint8_t* elementMask, bool elementPerHead, float* lse,
                              cudaStream_t stream) {
  if (heads < 0 || seq < 0 || dim < 1 || dim > 256 || blockSize < 1) return cudaErrorInvalidValue;
  if (heads == 0 || seq == 0) return cudaSuccess;
  if (blockMask == nullptr) return dispatch_type(type, heads, seq, dim, Q, K, V, out, causal, scale, MaskArgs{}, lse, stream);
  const MaskArgs mk{blockMask, maskPerHead, elementMask, elementPerHead, blockSize, (seq + blockSize - 1) / blockSize};
  return dispatch_type(type, heads, seq, dim, Q, K, V, out, causal, scale, mk, lse, stream);
}

cudaError_t attention_forward_dense(AttnType type, int heads, int seq, int dim, const void* Q, const void* K, const void* V, float* out, bool causal,
                                    float scale, cudaStream_t stream) {
  if (heads < 0 || seq < 0 || dim < 1 || dim > 256) return cudaErrorInvalidValue;
  if (heads == 0 || seq == 0) return cudaSuccess;
  return dispatch_type(type, heads, seq, dim, Q, K, V, out, causal, scale, MaskArgs{}, nullptr, stream);
}

}  // namespace sparse_cuda
