// Compares cuSPARSELt's 2:4 GEMM with ours, where libcusparseLt is found at run time (dlopen of
// SPARSE_CUSPARSELT_LIB, libcusparseLt.so.0 or libcusparseLt.so). A separate program from gpu_test so
// that a cuSPARSELt whose interface differs from the one declared here cannot take the main run down.
//
//   cusparselt_bench [--json FILE]
//
// Exit 0 when it ran (or cuSPARSELt is absent: said so, and in the JSON), 1 when cuSPARSELt's result
// differs from ours, 77 without a CUDA device, 2 on a CUDA error. cuSPARSELt is used for this
// comparison only; the addon's kernels are ours.
//
// The interface is declared here from cuSPARSELt's public documentation for versions 0.4 and later
// (older versions take other arguments and are skipped): opaque structures are byte arrays, given
// more room than any version uses; enums are passed as ints. The compute type's numbering changed
// between versions, so the first value the matmul descriptor accepts for these types is used.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <library_types.h>

#include <algorithm>
#include <iterator>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tool_common.h"
#include "kernels.h"

using namespace sparse_cuda;

namespace {

struct alignas(16) Opaque {
  uint8_t data[16384];  // 1024 bytes in 0.1-0.3, 11024 in 0.4
};
using Status = int;
constexpr int ORDER_ROW = 2;  // cusparseOrder_t: COL = 1, ROW = 2
constexpr int OP_N = 0;       // cusparseOperation_t
constexpr int SPARSITY_50 = 0;
constexpr int ALG_DEFAULT = 0;

#define CHECK_CUDA(expr)                                                                              \
  do {                                                                                                \
    cudaError_t err_ = (expr);                                                                        \
    if (err_ != cudaSuccess) {                                                                        \
      std::fprintf(stderr, "CUDA error %s at line %d: %s\n", cudaGetErrorName(err_), __LINE__, cudaGetErrorString(err_)); \
      std::exit(2);                                                                                   \
    }                                                                                                 \
  } while (0)

struct Lt {
  void* lib = nullptr;
  std::string where;
  Status (*init)(Opaque*) = nullptr;
  Status (*destroy)(const Opaque*) = nullptr;
  Status (*getVersion)(const Opaque*, int*) = nullptr;
  Status (*denseInit)(const Opaque*, Opaque*, int64_t, int64_t, int64_t, uint32_t, int, int) = nullptr;
  Status (*structInit)(const Opaque*, Opaque*, int64_t, int64_t, int64_t, uint32_t, int, int, int) = nullptr;
  Status (*matDestroy)(const Opaque*) = nullptr;
  Status (*matmulInit)(const Opaque*, Opaque*, int, int, const Opaque*, const Opaque*, const Opaque*, const Opaque*, int) = nullptr;
  Status (*algInit)(const Opaque*, Opaque*, const Opaque*, int) = nullptr;
  Status (*planInit)(const Opaque*, Opaque*, const Opaque*, const Opaque*) = nullptr;
  Status (*planDestroy)(const Opaque*) = nullptr;
  Status (*getWorkspace)(const Opaque*, const Opaque*, size_t*) = nullptr;
  Status (*compressedSize)(const Opaque*, const Opaque*, size_t*, size_t*) = nullptr;
  Status (*compress)(const Opaque*, const Opaque*, const void*, void*, void*, cudaStream_t) = nullptr;
  Status (*matmul)(const Opaque*, const Opaque*, const void*, const void*, const void*, const void*, const void*, void*, void*, cudaStream_t*,
                   int32_t) = nullptr;
  Status (*search)(const Opaque*, Opaque*, const void*, const void*, const void*, const void*, const void*, void*, void*, cudaStream_t*,
                   int32_t) = nullptr;

  template <typename F>
  bool sym(F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(lib, name));
    return f != nullptr;
  }
  /** Empty string when loaded, else why not. */
  std::string load() {
    std::vector<std::string> names;
    if (const char* env = std::getenv("SPARSE_CUSPARSELT_LIB")) names.push_back(env);
    names.push_back("libcusparseLt.so.0");
    names.push_back("libcusparseLt.so");
    std::string errors;
    for (const std::string& n : names) {
      lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib) {
        where = n;
        break;
      }
      const char* e = dlerror();
      errors += (errors.empty() ? "" : "; ") + std::string(e ? e : n.c_str());
    }
    if (!lib) return "not found (" + errors + ")";
    const bool ok = sym(init, "cusparseLtInit") && sym(destroy, "cusparseLtDestroy") && sym(getVersion, "cusparseLtGetVersion") &&
                    sym(denseInit, "cusparseLtDenseDescriptorInit") && sym(structInit, "cusparseLtStructuredDescriptorInit") &&
                    sym(matDestroy, "cusparseLtMatDescriptorDestroy") && sym(matmulInit, "cusparseLtMatmulDescriptorInit") &&
                    sym(algInit, "cusparseLtMatmulAlgSelectionInit") && sym(planInit, "cusparseLtMatmulPlanInit") &&
                    sym(planDestroy, "cusparseLtMatmulPlanDestroy") && sym(getWorkspace, "cusparseLtMatmulGetWorkspace") &&
                    sym(compressedSize, "cusparseLtSpMMACompressedSize") && sym(compress, "cusparseLtSpMMACompress") &&
                    sym(matmul, "cusparseLtMatmul") && sym(search, "cusparseLtMatmulSearch");
    return ok ? "" : where + " lacks a function this program calls";
  }
};

/** Multiples of 1/8 in [-2, 2): exact in fp16 and bf16, so the conversions below are exact. */
float value(Rng& r) { return float(int(r.next() % 32) - 16) / 8.f; }
uint16_t half_bits(float x, bool bf16) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if (bf16) return uint16_t(u >> 16);
  if (x == 0.f) return uint16_t((u >> 16) & 0x8000u);
  return uint16_t(((u >> 16) & 0x8000u) | ((((u >> 23) & 0xffu) - 127 + 15) << 10) | ((u >> 13) & 0x3ffu));
}
float from_bits(uint16_t h, bool bf16) {
  if (bf16) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  const int e = (h >> 10) & 0x1f;
  const float m = float(h & 0x3ff);
  const float v = e == 0 ? m * std::ldexp(1.f, -24) : (1.f + m / 1024.f) * std::ldexp(1.f, e - 15);
  return (h & 0x8000) ? -v : v;
}

struct Row {
  std::string dtype;
  int M, N, K;
  double ltMs, oursMs;
  std::string note;
};

}  // namespace

int main(int argc, char** argv) {
  const char* json = nullptr;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
    else {
      std::fprintf(stderr, "usage: cusparselt_bench [--json FILE]\n");
      return 64;
    }
  }
  if (!sparse_cuda::cudaDevicePresent()) return sparse_cuda::kNoDeviceExit;
  Lt lt;
  const std::string why = lt.load();
  std::vector<Row> rows;
  int version = 0, computeType = -1;
  bool checked = false, checkOk = true;
  double checkErr = 0;
  std::string status = why.empty() ? "ran" : "cuSPARSELt " + why;
  Opaque handle;
  bool haveHandle = false;
  if (why.empty()) {
    if (lt.init(&handle) != 0) status = "cusparseLtInit failed";
    else {
      haveHandle = true;
      lt.getVersion(&handle, &version);
      if (version < 400) status = "cuSPARSELt " + std::to_string(version) + " is older than 0.4 (other signatures); skipped";
    }
  }
  std::printf("cuSPARSELt: %s%s\n", status.c_str(), lt.where.empty() ? "" : (" (" + lt.where + ", version " + std::to_string(version) + ")").c_str());
  if (status == "ran") {
    struct S {
      int M, N, K;
    };
    // Bounded to finish within a minute: bf16 at the benchmark's main shapes, fp16 at the check shape.
    const S all[] = {{1024, 512, 1024}, {4096, 4096, 4096}, {8192, 8192, 8192}, {4096, 256, 11008}, {11008, 256, 4096}};
    for (bool bf : {true, false}) {
      const std::vector<S> shapes = bf ? std::vector<S>(std::begin(all), std::end(all)) : std::vector<S>{all[0]};
      const int dt = bf ? int(CUDA_R_16BF) : int(CUDA_R_16F);
      const Half16 ht = bf ? Half16::BF16 : Half16::F16;
      for (const S& s : shapes) {
        Row row{bf ? "bf16" : "fp16", s.M, s.N, s.K, NAN, NAN, ""};
        Rng rng(s.M * 3 + s.N * 5 + s.K * 7 + bf);
        std::vector<uint16_t> A(size_t(s.M) * s.K, 0), B(size_t(s.K) * s.N);
        for (int r = 0; r < s.M; r++)
          for (int c0 = 0; c0 < s.K; c0 += 4) {
            const int p = int(rng.next() % 4), q = (p + 1 + int(rng.next() % 3)) % 4;  // two distinct positions
            A[size_t(r) * s.K + c0 + p] = half_bits(value(rng), bf);
            A[size_t(r) * s.K + c0 + q] = half_bits(value(rng), bf);
          }
        for (auto& x : B) x = half_bits(value(rng), bf);
        uint16_t *dA, *dB, *dD;
        CHECK_CUDA(cudaMalloc(&dA, A.size() * 2));
        CHECK_CUDA(cudaMalloc(&dB, B.size() * 2));
        CHECK_CUDA(cudaMalloc(&dD, size_t(s.M) * s.N * 2));
        CHECK_CUDA(cudaMemcpy(dA, A.data(), A.size() * 2, cudaMemcpyHostToDevice));
        CHECK_CUDA(cudaMemcpy(dB, B.data(), B.size() * 2, cudaMemcpyHostToDevice));
        Opaque matA, matB, matC, mm, alg, plan;
        bool ok = lt.structInit(&handle, &matA, s.M, s.K, s.K, 16, dt, ORDER_ROW, SPARSITY_50) == 0 &&
                  lt.denseInit(&handle, &matB, s.K, s.N, s.N, 16, dt, ORDER_ROW) == 0 &&
                  lt.denseInit(&handle, &matC, s.M, s.N, s.N, 16, dt, ORDER_ROW) == 0;
        if (!ok) row.note = "descriptor init failed";
        if (ok) {
          ok = false;
          for (int ct = 0; ct < 5 && !ok; ct++) {
            if (lt.matmulInit(&handle, &mm, OP_N, OP_N, &matA, &matB, &matC, &matC, ct) == 0) {
              ok = true;
              computeType = ct;
            }
          }
          if (!ok) row.note = "no compute type accepted";
        }
        if (ok && (lt.algInit(&handle, &alg, &mm, ALG_DEFAULT) != 0 || lt.planInit(&handle, &plan, &mm, &alg) != 0)) {
          ok = false;
          row.note = "plan init failed";
        }
        void *dAc = nullptr, *dBuf = nullptr, *ws = nullptr;
        size_t csz = 0, cbuf = 0, wsz = 0;
        if (ok) {
          ok = lt.compressedSize(&handle, &plan, &csz, &cbuf) == 0 && lt.getWorkspace(&handle, &plan, &wsz) == 0;
          if (ok) {
            CHECK_CUDA(cudaMalloc(&dAc, std::max<size_t>(csz, 1)));
            CHECK_CUDA(cudaMalloc(&dBuf, std::max<size_t>(cbuf, 1)));
            CHECK_CUDA(cudaMalloc(&ws, std::max<size_t>(wsz, 1)));
            ok = lt.compress(&handle, &plan, dA, dAc, dBuf, 0) == 0;
          }
          if (!ok) row.note = "compression failed";
        }
        const float one = 1.f, zero = 0.f;
        cudaStream_t stream = 0;
        if (ok) {
          ok = lt.search(&handle, &plan, &one, dAc, dB, &zero, dD, dD, ws, &stream, 1) == 0;
          if (!ok) row.note = "matmul search failed";
        }
        cudaEvent_t e0, e1;
        CHECK_CUDA(cudaEventCreate(&e0));
        CHECK_CUDA(cudaEventCreate(&e1));
        auto timeIt = [&](auto fn) {
          fn();
          CHECK_CUDA(cudaDeviceSynchronize());
          std::vector<float> t;
          for (int i = 0; i < 5; i++) {
            CHECK_CUDA(cudaEventRecord(e0));
            fn();
            CHECK_CUDA(cudaEventRecord(e1));
            CHECK_CUDA(cudaEventSynchronize(e1));
            float ms;
            CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
            t.push_back(ms);
          }
          std::sort(t.begin(), t.end());
          return double(t[t.size() / 2]);
        };
        if (ok) row.ltMs = timeIt([&] { lt.matmul(&handle, &plan, &one, dAc, dB, &zero, dD, dD, ws, &stream, 1); });
        // Ours on the same operands (fp32 output).
        uint16_t* dv;
        uint32_t* dm;
        int* dbad;
        float* dC;
        CHECK_CUDA(cudaMalloc(&dv, size_t(s.M) * padded_cols24(s.K)));
        CHECK_CUDA(cudaMalloc(&dm, meta_words24(s.M, s.K) * 4));
        CHECK_CUDA(cudaMalloc(&dbad, sizeof(int)));
        CHECK_CUDA(cudaMalloc(&dC, size_t(s.M) * s.N * 4));
        CHECK_CUDA(compress24(ht, dA, s.M, s.K, s.K, dv, dm, dbad, 0));
        row.oursMs = timeIt([&] { CHECK_CUDA(gemm24(ht, s.M, s.N, s.K, dv, dm, dB, s.N, dC, s.N, 1.f, 0.f, 0)); });
        if (ok && !checked) {
          // Same product both ways: cuSPARSELt's half-precision output against ours in fp32.
          std::vector<uint16_t> D(size_t(s.M) * s.N);
          std::vector<float> C(size_t(s.M) * s.N);
          CHECK_CUDA(cudaMemcpy(D.data(), dD, D.size() * 2, cudaMemcpyDeviceToHost));
          CHECK_CUDA(cudaMemcpy(C.data(), dC, C.size() * 4, cudaMemcpyDeviceToHost));
          for (size_t i = 0; i < D.size(); i++) {
            const double err = std::fabs(double(from_bits(D[i], bf)) - C[i]) / (1.0 + std::fabs(C[i]));
            checkErr = std::max(checkErr, err);
          }
          checkOk = checkErr <= (bf ? 2e-2 : 4e-3);
          checked = true;
        }
        const double flops = 2.0 * s.M * s.N * s.K;
        std::printf("%-5s M=%6d N=%6d K=%6d | cuSPARSELt %8.1f TF/s | ours %8.1f TF/s %s\n", row.dtype.c_str(), s.M, s.N, s.K, flops / row.ltMs / 1e9,
                    flops / row.oursMs / 1e9, row.note.c_str());
        rows.push_back(row);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
        if (dAc) cudaFree(dAc);
        if (dBuf) cudaFree(dBuf);
        if (ws) cudaFree(ws);
        cudaFree(dv);
        cudaFree(dm);
        cudaFree(dbad);
        cudaFree(dC);
        cudaFree(dA);
        cudaFree(dB);
        cudaFree(dD);
      }
    }
    std::printf("check against ours: %s (max relative error %.3g)\n", checked ? (checkOk ? "agree" : "DIFFER") : "not run", checkErr);
  }
  if (haveHandle) lt.destroy(&handle);
  if (json) {
    FILE* f = std::fopen(json, "w");
    if (!f) return 2;
    std::fprintf(f, "{\n  \"status\": \"%s\", \"library\": \"%s\", \"version\": %d, \"computeType\": %d,\n", status.c_str(), lt.where.c_str(), version,
                 computeType);
    std::fprintf(f, "  \"check\": {\"run\": %s, \"agree\": %s, \"maxRelErr\": %.6g},\n  \"rows\": [\n", checked ? "true" : "false",
                 checkOk ? "true" : "false", checkErr);
    for (size_t i = 0; i < rows.size(); i++) {
      const Row& r = rows[i];
      const double flops = 2.0 * r.M * r.N * r.K;
      auto num = [](double x) { return std::isnan(x) ? std::string("null") : std::to_string(x); };
      std::fprintf(f, "    {\"dtype\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"cusparseltMs\": %s, \"cusparseltTflops\": %s, \"oursMs\": %s, \"oursTflops\": %s, \"note\": \"%s\"}%s\n",
                   r.dtype.c_str(), r.M, r.N, r.K, num(r.ltMs).c_str(), num(flops / r.ltMs / 1e9).c_str(), num(r.oursMs).c_str(),
                   num(flops / r.oursMs / 1e9).c_str(), r.note.c_str(), i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
  }
  return checkOk ? 0 : 1;
}
