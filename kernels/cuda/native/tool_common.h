// What both standalone programs (gpu_test, cusparselt_bench) share: the device check they start with
// (without a usable CUDA device they print why and exit with kNoDeviceExit, which scripts and tests
// read as "skipped"), and the seeded generator of their test data.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
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

// xorshift64 with a seed-dependent start: reproducible host data for the checks and benchmarks.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double uniform() { return double(next() >> 11) / double(1ull << 53); }
  float sym() { return float(uniform() * 2 - 1); }
  int below(int n) { return int(next() % uint64_t(n)); }
};

}  // namespace sparse_cuda
