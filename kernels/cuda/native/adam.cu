// Fused masked Adam / AdamW (fp32): the same update as the CPU `maskedAdam` kernel, applied to the
// active entries only. With an index list, thread k updates entry indices[k]. With a bit mask, the
// k of an active entry is its rank among the set bits: one pass counts the bits of every 32-bit word,
// an exclusive scan (CUB) turns counts into each word's first k, and the update pass walks each
// word's bits from there.
#include <cub/device/device_scan.cuh>
#include "kernels.h"

namespace sparse_cuda {
namespace {

struct AdamParams {
  float lr, beta1, beta2, eps, wd;
  double c1, c2;  // bias corrections 1 - beta^step
};

__device__ __forceinline__ void adam_entry(float* params, const float* grads, float* m, float* v, size_t i, size_t k, const AdamParams& p) {
  // Float64 per entry, rounded once per stored value, as the reference does.
  const double g = grads[i];
  const double mk = double(p.beta1) * m[k] + (1.0 - double(p.beta1)) * g;
  const double vk = double(p.beta2) * v[k] + (1.0 - double(p.beta2)) * g * g;
  m[k] = float(mk);
  v[k] = float(vk);
  const double x = params[i];
  params[i] = float(x - double(p.lr) * (mk / p.c1 / (sqrt(vk / p.c2) + double(p.eps)) + double(p.wd) * x));
}

__global__ void adam_indices_kernel(float* params, const float* grads, const int* indices, size_t count, float* m, float* v, AdamParams p) {
  const size_t k = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k < count) adam_entry(params, grads, m, v, size_t(indices[k]), k, p);
}

/** Bits of 32-bit word w of the mask (bytes past `size` bits read as zero). */
__device__ __forceinline__ uint32_t mask_word(const uint8_t* bits, size_t size, size_t w) {
  uint32_t word = 0;
  const size_t bytes = (size + 7) / 8;
  for (int b = 0; b < 4; b++) {
    const size_t byte = w * 4 + b;
    if (byte < bytes) word |= uint32_t(bits[byte]) << (8 * b);
  }
  const size_t first = w * 32;
  if (first + 32 > size) word &= size > first ? (1u << (size - first)) - 1u : 0u;
  return word;
}

__global__ void popcount_kernel(const uint8_t* bits, size_t size, size_t words, int* counts) {
  const size_t w = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (w < words) counts[w] = __popc(mask_word(bits, size, w));
}

__global__ void adam_bits_kernel(float* params, const float* grads, const uint8_t* bits, size_t size, size_t words, const int* firstK, float* m,
                                 float* v, AdamParams p) {
  const size_t w = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (w >= words) return;
  uint32_t word = mask_word(bits, size, w);
  size_t k = size_t(firstK[w]);
  while (word) {
    const int b = __ffs(word) - 1;
    word &= word - 1;
    adam_entry(params, grads, m, v, w * 32 + b, k++, p);
  }
}

size_t scan_temp_bytes(size_t words) {
  size_t bytes = 0;
  cub::DeviceScan::ExclusiveSum(nullptr, bytes, static_cast<int*>(nullptr), static_cast<int*>(nullptr), int(words));
  return bytes;
}

}  // namespace

size_t masked_adam_scratch_bytes(size_t size) {
  const size_t words = (size + 31) / 32;
  // counts and first-k arrays, then CUB's temporary storage (256-byte aligned).
  const size_t arrays = (2 * words * sizeof(int) + 255) / 256 * 256;
  return arrays + scan_temp_bytes(words) + 256;
}

cudaError_t masked_adam(float* params, const float* grads, size_t size, const int* indices, size_t count, const uint8_t* bits, float* m, float* v,
                        double step, float lr, float beta1, float beta2, float eps, float weightDecay, int* scratch, size_t scratchBytes,
                        cudaStream_t stream) {
  const AdamParams p{lr, beta1, beta2, eps, weightDecay, 1.0 - pow(double(beta1), step), 1.0 - pow(double(beta2), step)};
  const int threads = 256;
  if (bits == nullptr) {
    if (count == 0) return cudaSuccess;
    adam_indices_kernel<<<unsigned((count + threads - 1) / threads), threads, 0, stream>>>(params, grads, indices, count, m, v, p);
    return cudaGetLastError();
  }
  const size_t words = (size + 31) / 32;
  if (words == 0) return cudaSuccess;
  if (scratch == nullptr || scratchBytes < masked_adam_scratch_bytes(size)) return cudaErrorInvalidValue;
  int* counts = scratch;
  int* firstK = scratch + words;
  const size_t arrays = (2 * words * sizeof(int) + 255) / 256 * 256;
  void* temp = reinterpret_cast<char*>(scratch) + arrays;
  size_t tempBytes = scratchBytes - arrays;
  const unsigned blocks = unsigned((words + threads - 1) / threads);
  popcount_kernel<<<blocks, threads, 0, stream>>>(bits, size, words, counts);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  err = cub::DeviceScan::ExclusiveSum(temp, tempBytes, counts, firstK, int(words), stream);
  if (err != cudaSuccess) return err;
  adam_bits_kernel<<<blocks, threads, 0, stream>>>(params, grads, bits, size, words, firstK, m, v, p);
  return cudaGetLastError();
}

}  // namespace sparse_cuda
