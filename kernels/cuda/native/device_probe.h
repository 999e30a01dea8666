// The device check both standalone programs (gpu_test, cusparselt_bench) start with: without a usable
// CUDA device they print why and exit with kNoDeviceExit, which scripts and tests read as "skipped".
#pragma once

#include <cuda_runtime.h>

#include <cstdio>

namespace sparse_cuda {

constexpr int kNoDeviceExit = 77;

// True when at least one CUDA device is visible; otherwise prints "no CUDA device: <why>".
inline bool cudaDevicePresent() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess && count > 0) return true;
  std::printf("no CUDA device: %s\n", err != cudaSuccess ? cudaGetErrorString(err) : "cudaGetDeviceCount found 0 devices");
  return false;
}

}  // namespace sparse_cuda
