// Standalone test and benchmark program for the CUDA kernels (no Node).
//
//   gpu_test                 run every kernel against a CPU reference on random inputs (odd shapes,
//                            K tails, empty matrices); exit 1 on any mismatch, 0 when all pass
//   gpu_test --bench         the tests, then the benchmarks, printed side by side
//   gpu_test --json FILE     also write the results (tests and benchmarks) as JSON to FILE
//   gpu_test --quick-bench   smaller benchmark repetitions (for a tight time budget)
//   gpu_test --budget S      start no new benchmark shape after S seconds (those left are listed)
//   gpu_test --small         only the small test shapes (for compute-sanitizer)
//
// Without a usable CUDA device it prints "no CUDA device: <cudaGetErrorString>" and exits with 77.
// The dense cuBLAS baseline is loaded at run time (dlopen of libcublas; SPARSE_CUBLAS_LIB names the
// library file); when it is missing the benchmark says so and compares against the same tiled
// tensor-core kernel run on dense A.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <library_types.h>

#include <algorithm>
#include <chrono>
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

// ---------------------------------------------------------------- small utilities

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1);  // round to nearest even
  return uint16_t(u >> 16);
}
float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// IEEE half, round to nearest even; the test values stay in the normal range or are zero.
uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  int exp = int((u >> 23) & 0xff) - 127 + 15;
  uint32_t mant = u & 0x7fffffu;
  if (((u >> 23) & 0xff) == 0) return uint16_t(sign);
  if (exp >= 31) return uint16_t(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000u;
    const int shift = 14 - exp;
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return uint16_t(sign | half);
  }
  uint32_t half = sign | (uint32_t(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) half++;
  return uint16_t(half);
}
float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  int exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {
      exp = 1;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        exp--;
      }
      mant &= 0x3ffu;
      u = sign | (uint32_t(exp - 15 + 127) << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | (uint32_t(exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t to_half(Half16 t, float f) { return t == Half16::BF16 ? f32_to_bf16(f) : f32_to_f16(f); }
float from_half(Half16 t, uint16_t h) { return t == Half16::BF16 ? bf16_to_f32(h) : f16_to_f32(h); }
const char* half_name(Half16 t) { return t == Half16::BF16 ? "bf16" : "fp16"; }

#define CHECK_CUDA(expr)                                                                                  \
  do {                                                                                                    \
    cudaError_t err_ = (expr);                                                                            \
    if (err_ != cudaSuccess) {                                                                            \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorName(err_), __FILE__, __LINE__, \
                   cudaGetErrorString(err_));                                                            \
      std::exit(2);                                                                                       \
    }                                                                                                     \
  } while (0)

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
  explicit Dev(size_t count) : n(count) { CHECK_CUDA(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T))); }
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { up(h); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() {
    if (p) cudaFree(p);
  }
  void up(const std::vector<T>& h) {
    if (!h.empty()) CHECK_CUDA(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> down() const {
    std::vector<T> h(n);
    if (n) CHECK_CUDA(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

// ---------------------------------------------------------------- results

struct TestResult {
  std::string name;
  bool pass;
  double maxErr;
  std::string detail;
};
std::vector<TestResult> g_tests;

/**
 * The float64 reference of C = alpha * A B + beta * C0 for an M x N result with inner dimension K, A(i, k)
 * and B(k, j) read through `a` and `b`, and each element's error scale |alpha| sum |a b| + |beta C0|;
 * beta = 0 never reads C0 (it may hold NaN there).
 */
template <class FA, class FB>
void referenceProduct(int M, int N, int K, FA a, FB b, float alpha, float beta, const std::vector<float>& C0, std::vector<double>& want,
                      std::vector<double>& scale) {
  want.assign(size_t(M) * N, 0.0);
  scale.assign(size_t(M) * N, 0.0);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0, abs = 0;
      for (int k = 0; k < K; k++) {
        const double x = a(i, k) * b(k, j);
        s += x;
        abs += std::fabs(x);
      }
      const double c = beta == 0.f ? 0.0 : double(beta) * C0[size_t(i) * N + j];
      want[size_t(i) * N + j] = double(alpha) * s + c;
      scale[size_t(i) * N + j] = std::fabs(double(alpha)) * abs + std::fabs(c);
    }
}

void record(const std::string& name, bool pass, double maxErr, const std::string& detail = "") {
  g_tests.push_back({name, pass, maxErr, detail});
  std::printf("%-4s %-70s max err %.3g %s\n", pass ? "ok" : "FAIL", name.c_str(), maxErr, detail.c_str());
}

/** Compares got with want; tolerance per element is atol + rtol * scale[i] (scale: sum of |terms|). */
bool compare(const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& scale, double rtol, double atol, double& maxErr,
             std::string& detail) {
  maxErr = 0;
  bool ok = got.size() == want.size();
  for (size_t i = 0; i < want.size() && i < got.size(); i++) {
    const double err = std::fabs(double(got[i]) - want[i]);
    const double tol = atol + rtol * (scale.empty() ? std::fabs(want[i]) : scale[i]);
    if (!(err <= tol)) {  // NaN fails
      if (ok) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "first mismatch at %zu: got %.7g want %.7g", i, double(got[i]), want[i]);
        detail = buf;
      }
      ok = false;
    }
    if (std::isnan(err)) maxErr = INFINITY;
    else maxErr = std::max(maxErr, err);
  }
  return ok;
}

// ---------------------------------------------------------------- 2:4 data

/** A random dense [rows, cols] matrix, 2:4 sparse (0, 1 or 2 non-zeros per group), rounded to the half type. */
std::vector<uint16_t> random24(Half16 t, int rows, int cols, Rng& rng, bool exactlyTwo = false) {
  std::vector<uint16_t> h(size_t(rows) * cols, 0);
  for (int r = 0; r < rows; r++) {
    for (int c0 = 0; c0 < cols; c0 += 4) {
      int pos[4] = {0, 1, 2, 3};
      for (int i = 3; i > 0; i--) std::swap(pos[i], pos[rng.below(i + 1)]);
      const int count = exactlyTwo ? 2 : rng.below(3);
      for (int i = 0; i < count; i++) {
        const int j = c0 + pos[i];
        if (j < cols) {
          float v = rng.sym();
          if (v == 0.f) v = 0.5f;
          h[size_t(r) * cols + j] = to_half(t, v);
        }
      }
    }
  }
  return h;
}

/** CPU compression into the tensor-core layout (the rules of src/tensor-core-24.ts). */
void cpu_compress24(const std::vector<uint16_t>& dense, int rows, int cols, std::vector<uint16_t>& values, std::vector<uint32_t>& meta, int& bad) {
  const int Kp = padded_cols24(cols);
  values.assign(size_t(rows) * Kp / 2, 0);
  meta.assign(meta_words24(rows, cols), 0x44444444u);
  bad = INT32_MAX;
  for (int r = 0; r < rows; r++) {
    for (int ch = 0; ch < Kp / 4; ch++) {
      int keep[4], nk = 0, nz = 0;
      for (int p = 0; p < 4; p++) {
        const int j = ch * 4 + p;
        const uint16_t x = j < cols ? dense[size_t(r) * cols + j] : 0;
        if (x & 0x7fff) {
          nz++;
          if (nk < 2) keep[nk++] = p;
        }
      }
      if (nz > 2) bad = std::min(bad, r * (Kp / 4) + ch);
      for (int p = 0; p < 4 && nk < 2; p++) {
        bool used = false;
        for (int q = 0; q < nk; q++) used |= keep[q] == p;
        if (!used) keep[nk++] = p;
      }
      const int a = std::min(keep[0], keep[1]), b = std::max(keep[0], keep[1]);
      auto at = [&](int p) { const int j = ch * 4 + p; return j < cols ? dense[size_t(r) * cols + j] : uint16_t(0); };
      values[size_t(r) * (Kp / 2) + ch * 2] = at(a);
      values[size_t(r) * (Kp / 2) + ch * 2 + 1] = at(b);
      const int mt = r / 16, rr = r % 16, kt = ch / 8, c = ch % 8;
      const size_t w = (size_t(mt) * (Kp / 32) + kt) * 16 + (rr % 8) * 2 + (c >> 2);
      const int shift = (rr >= 8 ? 16 : 0) + (c & 3) * 4;
      meta[w] = (meta[w] & ~(0xfu << shift)) | (uint32_t(a | (b << 2)) << shift);
    }
  }
}

// ---------------------------------------------------------------- tests

void test_probe(Half16 t) {
  // One 16 x 32 tile: which metadata word layout does the hardware read? H1 is the one the kernels use.
  Rng rng(7 + int(t));
  std::vector<uint16_t> dense = random24(t, 16, 32, rng, true);
  std::vector<uint16_t> values;
  std::vector<uint32_t> meta;
  int bad;
  cpu_compress24(dense, 16, 32, values, meta, bad);
  std::vector<uint16_t> b(32 * 8);
  for (auto& x : b) x = to_half(t, rng.sym());
  // Nibbles per (row, chunk), read back from our layout.
  auto nib = [&](int r, int ch) {
    const size_t w = size_t(r % 8) * 2 + (ch >> 2);
    return (meta[w] >> ((r >= 8 ? 16 : 0) + (ch & 3) * 4)) & 0xfu;
  };
  std::vector<double> want, scale;
  referenceProduct(
      16, 8, 32, [&](int r, int k) { return double(from_half(t, dense[r * 32 + k])); }, [&](int k, int n) { return double(from_half(t, b[k * 8 + n])); },
      1.f, 0.f, {}, want, scale);
  struct Hyp {
    const char* name;
    std::vector<uint32_t> e;
  };
  std::vector<Hyp> hyps;
  {
    // H1: lane 4g+t (t = 0, 1): chunks 4t..4t+3 of row g low, of row g+8 high (t = 2, 3 repeat t - 2).
    std::vector<uint32_t> e(32);
    for (int lane = 0; lane < 32; lane++) e[lane] = meta[(lane >> 2) * 2 + (lane & 1)];
    hyps.push_back({"H1 lane 4g+t: chunks 4t..4t+3, row g low / row g+8 high", e});
  }
  {
    // H2: lane 4g: row g, all 8 chunks; lane 4g+1: row g+8.
    std::vector<uint32_t> e(32);
    for (int lane = 0; lane < 32; lane++) {
      const int g = lane >> 2, r = (lane & 1) ? g + 8 : g;
      uint32_t w = 0;
      for (int ch = 0; ch < 8; ch++) w |= nib(r, ch) << (4 * ch);
      e[lane] = w;
    }
    hyps.push_back({"H2 lane 4g: row g chunks 0..7, lane 4g+1: row g+8", e});
  }
  Dev<uint16_t> dv(values), db(b);
  Dev<float> dc(16 * 8);
  std::string found;
  bool h1 = false;
  for (size_t i = 0; i < hyps.size(); i++) {
    Dev<uint32_t> de(hyps[i].e);
    CHECK_CUDA(probe_mma_sp(t, dv.p, db.p, de.p, dc.p, 0));
    CHECK_CUDA(cudaDeviceSynchronize());
    double err;
    std::string detail;
    const bool ok = compare(dc.down(), want, scale, 1e-2, 1e-3, err, detail);
    if (ok) found += std::string(found.empty() ? "" : "; ") + hyps[i].name;
    if (i == 0) h1 = ok;
  }
  record(std::string("mma.sp fragment + metadata layout probe (") + half_name(t) + ")", h1, 0,
         found.empty() ? "no hypothesis matched the hardware" : "matches: " + found);
}

/**
 * Maps the metadata register bits to the tile, by experiment: every chunk of every row keeps values 1
 * and 2, and B[k][n] = (k % 4 + 1) when k / 4 == n (else 0), so C[r][n] = (a + 1) + 2 (b + 1) reads
 * back the positions (a, b) the hardware used for row r, chunk n. With every lane's word set to
 * positions (0, 1), changing one nibble of one lane to (2, 3) shows which (row, chunk) that nibble
 * drives, or that the lane is ignored. Passes when the map is the one the kernels assume (lane 4g+t,
 * t < 2: nibble s -> row g + 8 (s >= 4), chunk 4t + s % 4; lanes with t >= 2 ignored under selector 0).
 */
void test_metadata_map(Half16 t) {
  std::vector<uint16_t> avals(16 * 16), b(32 * 8, 0);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 8; c++) {
      avals[r * 16 + 2 * c] = to_half(t, 1.f);
      avals[r * 16 + 2 * c + 1] = to_half(t, 2.f);
    }
  for (int k = 0; k < 32; k++) b[k * 8 + k / 4] = to_half(t, float(k % 4 + 1));
  Dev<uint16_t> da(avals), db(b);
  Dev<float> dc(16 * 8);
  Dev<uint32_t> de(32);
  auto run = [&](const std::vector<uint32_t>& e) {
    de.up(e);
    CHECK_CUDA(probe_mma_sp(t, da.p, db.p, de.p, dc.p, 0));
    CHECK_CUDA(cudaDeviceSynchronize());
    return dc.down();
  };
  const std::vector<uint32_t> base(32, 0x44444444u);
  const std::vector<float> c0 = run(base);
  bool ok = true;
  for (float x : c0) ok &= x == 5.f;  // positions (0, 1) everywhere: 1 * 1 + 2 * 2
  std::string map, first;
  for (int lane = 0; lane < 32; lane++) {
    for (int slot = 0; slot < 8; slot++) {
      std::vector<uint32_t> e = base;
      e[lane] = (e[lane] & ~(0xfu << (4 * slot))) | (0xEu << (4 * slot));
      const std::vector<float> c = run(e);
      std::string hit;
      int hits = 0, hr = -1, hn = -1;
      for (int r = 0; r < 16; r++)
        for (int n = 0; n < 8; n++)
          if (c[r * 8 + n] != c0[r * 8 + n]) {
            hits++;
            hr = r;
            hn = n;
            hit += " r" + std::to_string(r) + "c" + std::to_string(n) + "=" + std::to_string(int(c[r * 8 + n]));
          }
      const int g = lane / 4, tt = lane % 4;
      const bool expectIgnored = tt >= 2;
      const int er = g + (slot >= 4 ? 8 : 0), ec = 4 * tt + slot % 4;
      const bool good = expectIgnored ? hits == 0 : (hits == 1 && hr == er && hn == ec && c[hr * 8 + hn] == 11.f);
      if (hits) map += " L" + std::to_string(lane) + "s" + std::to_string(slot) + "->" + hit.substr(1);
      if (!good && ok) first = "lane " + std::to_string(lane) + " nibble " + std::to_string(slot) + (hits ? " drives" + hit : " is ignored");
      ok &= good;
    }
  }
  record(std::string("mma.sp metadata register map, selector 0 (") + half_name(t) + ")", ok, 0,
         ok ? "" : "first difference: " + first + "; observed map:" + map);
}

void test_compress(Half16 t, int rows, int cols, bool makeBad) {
  Rng rng(rows * 131 + cols + int(t));
  std::vector<uint16_t> dense = random24(t, rows, cols, rng);
  if (makeBad && rows > 0 && cols >= 4) {
    const int r = rows / 2;
    for (int p = 0; p < 3; p++) dense[size_t(r) * cols + 4 + p - 4 * (cols < 8)] = to_half(t, 1.0f);
  }
  std::vector<uint16_t> values;
  std::vector<uint32_t> meta;
  int bad;
  cpu_compress24(dense, rows, cols, values, meta, bad);
  Dev<uint16_t> dd(dense), dvals(values.size());
  Dev<uint32_t> dmeta(meta.size());
  Dev<int> dbad(std::vector<int>{INT32_MAX});
  CHECK_CUDA(compress24(t, dd.p, rows, cols, cols, dvals.p, dmeta.p, dbad.p, 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  const bool okv = dvals.down() == values;
  const bool okm = dmeta.down() == meta;
  const int gbad = dbad.down()[0];
  char name[128];
  std::snprintf(name, sizeof name, "compress24 %s [%d, %d]%s", half_name(t), rows, cols, makeBad ? " (3 non-zeros in a group)" : "");
  std::string detail = okv ? (okm ? "" : "metadata differs") : "values differ";
  if (gbad != bad) detail += " bad flag " + std::to_string(gbad) + " != " + std::to_string(bad);
  record(name, okv && okm && gbad == bad && (!makeBad || bad != INT32_MAX), 0, detail);
}

void test_gemm24(Half16 t, int M, int N, int K, float alpha, float beta, bool denseBaseline) {
  Rng rng(M * 7 + N * 13 + K * 17 + int(t));
  std::vector<uint16_t> A = random24(t, M, K, rng);
  std::vector<uint16_t> B(size_t(K) * N);
  for (auto& x : B) x = to_half(t, rng.sym());
  std::vector<float> C0(size_t(M) * N);
  for (auto& x : C0) x = rng.sym();
  std::vector<double> want, scale;
  // a zero of A contributes nothing (and its product is never formed: B may be anything there)
  referenceProduct(
      M, N, K, [&](int i, int k) { return A[size_t(i) * K + k] & 0x7fff ? double(from_half(t, A[size_t(i) * K + k])) : 0.0; },
      [&](int k, int j) { return double(from_half(t, B[size_t(k) * N + j])); }, alpha, beta, C0, want, scale);
  Dev<uint16_t> dB(B);
  Dev<float> dC(C0);
  char name[160];
  if (denseBaseline) {
    Dev<uint16_t> dA(A);
    CHECK_CUDA(gemm_dense_tc(t, M, N, K, dA.p, K, dB.p, N, dC.p, N, alpha, beta, 0));
    std::snprintf(name, sizeof name, "dense tensor-core gemm %s M=%d N=%d K=%d alpha=%g beta=%g", half_name(t), M, N, K, alpha, beta);
  } else {
    std::vector<uint16_t> values;
    std::vector<uint32_t> meta;
    int bad;
    cpu_compress24(A, M, K, values, meta, bad);
    Dev<uint16_t> dv(values);
    Dev<uint32_t> dm(meta);
    CHECK_CUDA(gemm24(t, M, N, K, dv.p, dm.p, dB.p, N, dC.p, N, alpha, beta, 0));
    std::snprintf(name, sizeof name, "2:4 sparse gemm (mma.sp) %s M=%d N=%d K=%d alpha=%g beta=%g", half_name(t), M, N, K, alpha, beta);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  double err;
  std::string detail;
  const bool ok = compare(dC.down(), want, scale, 1e-3, 1e-4, err, detail);
  record(name, ok, err, detail);
}

void test_sgemm(bool ta, bool tb, int M, int N, int K, float alpha, float beta) {
  Rng rng(M + N * 3 + K * 5 + ta * 7 + tb * 11);
  std::vector<float> A(size_t(M) * K), B(size_t(K) * N), C0(size_t(M) * N);
  for (auto& x : A) x = rng.sym();
  for (auto& x : B) x = rng.sym();
  for (auto& x : C0) x = beta == 0.f ? NAN : rng.sym();  // beta = 0 must not read C
  const int lda = ta ? M : K, ldb = tb ? K : N;
  std::vector<double> want, scale;
  referenceProduct(
      M, N, K, [&](int i, int k) { return double(ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k]); },
      [&](int k, int j) { return double(tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j]); }, alpha, beta, C0, want, scale);
  Dev<float> dA(A), dB(B), dC(C0);
  CHECK_CUDA(sgemm(ta, tb, M, N, K, alpha, dA.p, std::max(lda, 1), dB.p, std::max(ldb, 1), beta, dC.p, std::max(N, 1), 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  double err;
  std::string detail;
  const bool ok = compare(dC.down(), want, scale, 1e-5, 1e-6, err, detail);
  char name[160];
  std::snprintf(name, sizeof name, "sgemm transA=%d transB=%d M=%d N=%d K=%d alpha=%g beta=%g", ta, tb, M, N, K, alpha, beta);
  record(name, ok, err, detail);
}

enum class SpKind { CSR, BSR, NM };

void test_spmm(SpKind kind, int M, int K, int N, double density, int p1, int p2, float alpha, float beta) {
  Rng rng(M * 3 + K * 5 + N * 7 + int(kind));
  // Dense A with the sparsity of the format, then the format built from it.
  std::vector<float> A(size_t(M) * K, 0.f);
  std::vector<int> indptr, indices;
  std::vector<float> values;
  std::vector<uint8_t> packed;
  int bits = 0;
  const char* kname = "";
  if (kind == SpKind::CSR) {
    kname = "csr";
    indptr.push_back(0);
    for (int i = 0; i < M; i++) {
      for (int k = 0; k < K; k++)
        if (rng.uniform() < density) {
          A[size_t(i) * K + k] = rng.sym();
          indices.push_back(k);
          values.push_back(A[size_t(i) * K + k]);
        }
      indptr.push_back(int(indices.size()));
    }
  } else if (kind == SpKind::BSR) {
    kname = "bsr";
    const int br = p1, bc = p2, nbr = (M + br - 1) / br, nbc = (K + bc - 1) / bc;
    indptr.push_back(0);
    for (int bi = 0; bi < nbr; bi++) {
      for (int bj = 0; bj < nbc; bj++) {
        if (rng.uniform() >= density) continue;
        indices.push_back(bj);
        for (int r = 0; r < br; r++)
          for (int c = 0; c < bc; c++) {
            const int i = bi * br + r, k = bj * bc + c;
            float v = rng.sym();
            if (i < M && k < K) A[size_t(i) * K + k] = v;
            else v = 0.f;  // edge blocks are zero-padded
            values.push_back(v);
          }
      }
      indptr.push_back(int(indices.size()));
    }
  } else {
    kname = "nm";
    const int n = p1, m = p2;
    bits = 1;
    while ((1 << bits) < m) bits++;
    const size_t kept = size_t(M) * (K / m) * n;
    packed.assign((kept * bits + 7) / 8, 0);
    size_t kk = 0;
    for (int i = 0; i < M; i++)
      for (int g = 0; g < K / m; g++) {
        std::vector<int> pos(m);
        for (int q = 0; q < m; q++) pos[q] = q;
        for (int q = m - 1; q > 0; q--) std::swap(pos[q], pos[rng.below(q + 1)]);
        std::sort(pos.begin(), pos.begin() + n);
        for (int tt = 0; tt < n; tt++, kk++) {
          const float v = rng.sym();
          A[size_t(i) * K + g * m + pos[tt]] = v;
          values.push_back(v);
          for (int b = 0; b < bits; b++)
            if ((pos[tt] >> b) & 1) packed[(kk * bits + b) >> 3] |= uint8_t(1u << ((kk * bits + b) & 7));
        }
      }
  }
  std::vector<float> B(size_t(K) * N), C0(size_t(M) * N);
  for (auto& x : B) x = rng.sym();
  for (auto& x : C0) x = rng.sym();
  std::vector<double> want, scale;
  referenceProduct(
      M, N, K, [&](int i, int k) { return double(A[size_t(i) * K + k]); }, [&](int k, int j) { return double(B[size_t(k) * N + j]); }, alpha, beta, C0,
      want, scale);
  Dev<float> dB(B), dC(C0), dv(values);
  Dev<int> dp(indptr), di(indices);
  Dev<uint8_t> dpk(packed);
  if (kind == SpKind::CSR) CHECK_CUDA(spmm_csr(M, N, dp.p, di.p, dv.p, dB.p, std::max(N, 1), alpha, beta, dC.p, std::max(N, 1), 0));
  if (kind == SpKind::BSR) CHECK_CUDA(spmm_bsr(M, K, N, p1, p2, dp.p, di.p, dv.p, dB.p, std::max(N, 1), alpha, beta, dC.p, std::max(N, 1), 0));
  if (kind == SpKind::NM) CHECK_CUDA(spmm_nm(M, K, N, p1, p2, bits, dv.p, dpk.p, dB.p, std::max(N, 1), alpha, beta, dC.p, std::max(N, 1), 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  double err;
  std::string detail;
  const bool ok = compare(dC.down(), want, scale, 1e-5, 1e-6, err, detail);
  char name[160];
  std::snprintf(name, sizeof name, "spmm %s M=%d K=%d N=%d (%d,%d) alpha=%g beta=%g", kname, M, K, N, p1, p2, alpha, beta);
  record(name, ok, err, detail);
}

/** CPU attention reference (double), with the registry's mask semantics. */
void cpu_attention(int heads, int seq, int dim, const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v, bool causal,
                   float scale, int bs, const std::vector<uint8_t>* mask, bool perHead, const std::vector<uint8_t>* elem, bool elemPerHead,
                   std::vector<double>& out, std::vector<double>& lse) {
  const int nb = (seq + bs - 1) / bs;
  out.assign(size_t(heads) * seq * dim, 0.0);
  lse.assign(size_t(heads) * seq, -INFINITY);
  std::vector<double> s(seq);
  for (int h = 0; h < heads; h++)
    for (int i = 0; i < seq; i++) {
      double mx = -INFINITY;
      for (int j = 0; j < seq; j++) {
        bool ok = !causal || j <= i;
        if (ok && mask) {
          const uint8_t tv = (*mask)[(perHead ? size_t(h) * nb * nb : 0) + size_t(i / bs) * nb + j / bs];
          if (tv == 0) ok = false;
          else if (tv == 2) {
            const size_t n = (elemPerHead ? size_t(h) * seq * seq : 0) + size_t(i) * seq + j;
            ok = ((*elem)[n >> 3] >> (n & 7)) & 1;
          }
        }
        if (!ok) {
          s[j] = -INFINITY;
          continue;
        }
        double d = 0;
        for (int c = 0; c < dim; c++) d += double(q[(size_t(h) * seq + i) * dim + c]) * k[(size_t(h) * seq + j) * dim + c];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      if (mx == -INFINITY) continue;
      double sum = 0;
      for (int j = 0; j < seq; j++) sum += s[j] == -INFINITY ? 0.0 : std::exp(s[j] - mx);
      for (int j = 0; j < seq; j++) {
        if (s[j] == -INFINITY) continue;
        const double p = std::exp(s[j] - mx) / sum;
        for (int c = 0; c < dim; c++) out[(size_t(h) * seq + i) * dim + c] += p * v[(size_t(h) * seq + j) * dim + c];
      }
      lse[size_t(h) * seq + i] = mx + std::log(sum);
    }
}

void test_attention(AttnType type, int heads, int seq, int dim, bool causal, int bs, int maskKind /*0 none, 1 shared, 2 per head, 3 partial*/) {
  Rng rng(heads * 3 + seq * 5 + dim * 7 + bs * 11 + maskKind * 13 + int(type) + causal);
  const size_t total = size_t(heads) * seq * dim;
  std::vector<float> q(total), k(total), v(total);
  std::vector<uint16_t> qh(total), kh(total), vh(total);
  const Half16 ht = type == AttnType::BF16 ? Half16::BF16 : Half16::F16;
  for (size_t i = 0; i < total; i++) {
    q[i] = rng.sym();
    k[i] = rng.sym();
    v[i] = rng.sym();
    if (type != AttnType::F32) {
      qh[i] = to_half(ht, q[i]);
      kh[i] = to_half(ht, k[i]);
      vh[i] = to_half(ht, v[i]);
      q[i] = from_half(ht, qh[i]);
      k[i] = from_half(ht, kh[i]);
      v[i] = from_half(ht, vh[i]);
    }
  }
  const int nb = (seq + bs - 1) / bs;
  const bool perHead = maskKind == 2;
  std::vector<uint8_t> mask(size_t(perHead ? heads : 1) * nb * nb), elem;
  for (auto& m : mask) m = rng.uniform() < 0.5 ? 1 : 0;
  if (!mask.empty()) mask[0] = 1;
  if (maskKind == 3) {
    for (auto& m : mask) m = m ? (rng.uniform() < 0.5 ? 2 : 1) : 0;
    elem.assign((size_t(seq) * seq + 7) / 8, 0);
    for (auto& e : elem) e = uint8_t(rng.next());
  }
  const float scale = 1.0f / std::sqrt(float(dim));
  std::vector<double> want, wantLse;
  cpu_attention(heads, seq, dim, q, k, v, causal, scale, bs, maskKind ? &mask : nullptr, perHead, maskKind == 3 ? &elem : nullptr, false, want,
                wantLse);
  Dev<float> dqf(type == AttnType::F32 ? q : std::vector<float>()), dkf(type == AttnType::F32 ? k : std::vector<float>()),
      dvf(type == AttnType::F32 ? v : std::vector<float>());
  Dev<uint16_t> dqh(qh), dkh(kh), dvh(vh);
  const void* Q = type == AttnType::F32 ? static_cast<const void*>(dqf.p) : dqh.p;
  const void* K = type == AttnType::F32 ? static_cast<const void*>(dkf.p) : dkh.p;
  const void* V = type == AttnType::F32 ? static_cast<const void*>(dvf.p) : dvh.p;
  Dev<float> dout(total), dlse(size_t(heads) * seq);
  Dev<uint8_t> dmask(mask), delem(elem);
  CHECK_CUDA(attention_forward(type, heads, seq, dim, Q, K, V, dout.p, causal, scale, bs, maskKind ? dmask.p : nullptr, perHead,
                               maskKind == 3 ? delem.p : nullptr, false, dlse.p, 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  double err, errL;
  std::string detail, detailL;
  const bool ok = compare(dout.down(), want, {}, 1e-4, 2e-5, err, detail);
  // lse: -inf rows must match exactly.
  std::vector<float> gotL = dlse.down();
  bool okL = true;
  errL = 0;
  for (size_t i = 0; i < gotL.size(); i++) {
    if (std::isinf(wantLse[i]) || std::isinf(gotL[i])) {
      if (!(std::isinf(wantLse[i]) && std::isinf(gotL[i]))) okL = false;
      continue;
    }
    errL = std::max(errL, std::fabs(gotL[i] - wantLse[i]));
    if (std::fabs(gotL[i] - wantLse[i]) > 1e-4 + 1e-5 * std::fabs(wantLse[i])) okL = false;
  }
  char name[200];
  static const char* kinds[] = {"dense", "shared mask", "per-head mask", "partial tiles"};
  static const char* types[] = {"fp32", "fp16", "bf16"};
  std::snprintf(name, sizeof name, "attention %s heads=%d seq=%d dim=%d causal=%d block=%d %s", types[int(type)], heads, seq, dim, causal, bs,
                kinds[maskKind]);
  record(name, ok && okL, std::max(err, errL), ok ? (okL ? "" : "lse differs") : detail);
}

void test_adam(size_t size, double activeFrac, bool useBits, float wd) {
  Rng rng(size * 3 + useBits);
  std::vector<float> params(size), grads(size);
  for (auto& x : params) x = rng.sym();
  for (auto& x : grads) x = rng.sym();
  std::vector<int> idx;
  std::vector<uint8_t> bits((size + 7) / 8, 0);
  for (size_t i = 0; i < size; i++)
    if (rng.uniform() < activeFrac) {
      idx.push_back(int(i));
      bits[i >> 3] |= uint8_t(1u << (i & 7));
    }
  std::vector<float> m(idx.size()), v(idx.size());
  for (auto& x : m) x = rng.sym() * 0.1f;
  for (auto& x : v) x = float(rng.uniform()) * 0.01f;
  const double step = 3;
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  std::vector<double> wantP(params.begin(), params.end()), wantM(m.size()), wantV(v.size());
  const double c1 = 1 - std::pow(double(b1), step), c2 = 1 - std::pow(double(b2), step);
  for (size_t kk = 0; kk < idx.size(); kk++) {
    const size_t i = size_t(idx[kk]);
    const double g = grads[i];
    const double mk = double(b1) * m[kk] + (1 - double(b1)) * g;
    const double vk = double(b2) * v[kk] + (1 - double(b2)) * g * g;
    wantM[kk] = mk;
    wantV[kk] = vk;
    wantP[i] = params[i] - double(lr) * (mk / c1 / (std::sqrt(vk / c2) + double(eps)) + double(wd) * params[i]);
  }
  Dev<float> dp(params), dg(grads), dm(m), dv(v);
  Dev<int> di(idx);
  Dev<uint8_t> db(bits);
  const size_t scratchBytes = masked_adam_scratch_bytes(size);
  Dev<char> scratch(scratchBytes);
  CHECK_CUDA(masked_adam(dp.p, dg.p, size, useBits ? nullptr : di.p, idx.size(), useBits ? db.p : nullptr, dm.p, dv.p, step, lr, b1, b2, eps, wd,
                         reinterpret_cast<int*>(scratch.p), scratchBytes, 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  double e1, e2, e3;
  std::string d1, d2, d3;
  const bool ok = compare(dp.down(), wantP, {}, 1e-6, 1e-7, e1, d1) & compare(dm.down(), wantM, {}, 1e-6, 1e-8, e2, d2) &
                  compare(dv.down(), wantV, {}, 1e-6, 1e-9, e3, d3);
  char name[160];
  std::snprintf(name, sizeof name, "masked adam size=%zu active=%zu %s wd=%g", size, idx.size(), useBits ? "bits" : "indices", wd);
  record(name, ok, std::max(e1, std::max(e2, e3)), d1 + d2 + d3);
}

/** --small: only the small shapes (for a run under compute-sanitizer, which is slow). */
bool g_small = false;

void run_tests() {
  for (Half16 t : {Half16::BF16, Half16::F16}) {
    test_metadata_map(t);
    test_probe(t);
  }
  for (Half16 t : {Half16::BF16, Half16::F16}) {
    test_compress(t, 16, 32, false);
    test_compress(t, 37, 70, false);
    test_compress(t, 130, 1000, false);
    test_compress(t, 0, 32, false);
    test_compress(t, 5, 0, false);
    test_compress(t, 20, 40, true);
  }
  struct G {
    int M, N, K;
    float alpha, beta;
  };
  const G shapes[] = {{16, 8, 32, 1, 0},    {128, 128, 64, 1, 0},    {200, 136, 96, 1, 0.5f}, {77, 50, 70, 2, 0},   {1, 1, 1, 1, 0},
                      {0, 16, 32, 1, 0},    {16, 0, 32, 1, 0},       {33, 24, 0, 1, 0.5f},    {300, 8, 1000, 1, 0}, {256, 264, 4096, 1, 0},
                      {129, 129, 160, 1, 1}, {1100, 264, 64, 1, 0}, {100, 40, 2048, 2, 0.5f}};
  for (Half16 t : {Half16::BF16, Half16::F16})
    for (const G& g : shapes)
      if (!g_small || double(g.M) * g.N * g.K < 2e6) test_gemm24(t, g.M, g.N, g.K, g.alpha, g.beta, false);
  for (Half16 t : {Half16::BF16, Half16::F16})
    for (const G& g : {G{128, 128, 64, 1, 0}, G{200, 136, 96, 1, 0.5f}, G{77, 50, 72, 1, 0}, G{256, 264, 4096, 1, 0}, G{1100, 264, 64, 1, 0}})
      if (!g_small || double(g.M) * g.N * g.K < 2e6) test_gemm24(t, g.M, g.N, g.K, g.alpha, g.beta, true);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      test_sgemm(ta, tb, 67, 45, 33, 1, 0);
      test_sgemm(ta, tb, 128, 64, 100, 0.5f, 2);
    }
  test_sgemm(false, false, 0, 5, 3, 1, 0);
  test_sgemm(false, false, 5, 7, 0, 1, 0.5f);
  test_spmm(SpKind::CSR, 50, 70, 33, 0.1, 0, 0, 1, 0);
  test_spmm(SpKind::CSR, 200, 300, 130, 0.05, 0, 0, 0.5f, 2);
  test_spmm(SpKind::CSR, 0, 10, 5, 0.5, 0, 0, 1, 0);
  test_spmm(SpKind::BSR, 50, 70, 33, 0.3, 4, 8, 1, 0);
  test_spmm(SpKind::BSR, 130, 100, 64, 0.3, 16, 16, 1, 0.5f);
  test_spmm(SpKind::NM, 50, 64, 33, 0, 2, 4, 1, 0);
  test_spmm(SpKind::NM, 33, 96, 40, 0, 3, 8, 1, 0.5f);
  test_spmm(SpKind::NM, 20, 60, 17, 0, 1, 3, 2, 0);
  for (AttnType at : {AttnType::F32, AttnType::F16, AttnType::BF16}) {
    test_attention(at, 2, 100, 64, false, 16, 1);
    test_attention(at, 2, 130, 64, true, 32, 0);
  }
  test_attention(AttnType::F32, 3, 77, 40, true, 16, 2);
  test_attention(AttnType::F32, 2, 96, 32, false, 24, 3);
  test_attention(AttnType::F32, 1, 1, 16, true, 64, 1);
  test_attention(AttnType::F32, 2, 200, 200, false, 64, 1);
  test_attention(AttnType::BF16, 2, 256, 128, true, 64, 1);
  test_attention(AttnType::F16, 1, 70, 128, false, 7, 3);
  test_adam(0, 0.5, false, 0);
  test_adam(1000, 0.3, false, 0);
  test_adam(1000, 0.3, true, 0.01f);
  test_adam(33, 1.0, true, 0);
  if (!g_small) test_adam(100000, 0.1, true, 0);
}

// ---------------------------------------------------------------- cuBLAS (dlopen)

struct Cublas {
  void* lib = nullptr;
  void* handle = nullptr;
  std::string where;
  using Create = int (*)(void**);
  using Destroy = int (*)(void*);
  using GemmEx = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int, const void*, void*, int, int, int,
                         int);
  Create create = nullptr;
  Destroy destroy = nullptr;
  GemmEx gemmEx = nullptr;
  bool load() {
    std::vector<std::string> names;
    if (const char* env = std::getenv("SPARSE_CUBLAS_LIB")) names.push_back(env);
    for (const char* n : {"libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "/usr/local/cuda/lib64/libcublas.so"}) names.push_back(n);
    for (const std::string& n : names) {
      lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib) {
        where = n;
        break;
      }
    }
    if (!lib) return false;
    create = reinterpret_cast<Create>(dlsym(lib, "cublasCreate_v2"));
    destroy = reinterpret_cast<Destroy>(dlsym(lib, "cublasDestroy_v2"));
    gemmEx = reinterpret_cast<GemmEx>(dlsym(lib, "cublasGemmEx"));
    if (!create || !destroy || !gemmEx || create(&handle) != 0) return false;
    return true;
  }
  /** Row-major C[M,N] (fp32) = A[M,K] B[K,N] (half type): column-major C^T = B^T A^T. */
  int gemm(Half16 t, int M, int N, int K, const void* A, const void* B, float* C) {
    const float one = 1.f, zero = 0.f;
    const int dt = t == Half16::BF16 ? int(CUDA_R_16BF) : int(CUDA_R_16F);
    constexpr int CUBLAS_OP_N = 0, CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1;
    return gemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, B, dt, N, A, dt, K, &zero, C, int(CUDA_R_32F), N, CUBLAS_COMPUTE_32F,
                  CUBLAS_GEMM_DEFAULT);
  }
};

// ---------------------------------------------------------------- benchmarks

struct BenchRow {
  std::string group, name, dtype;
  int M, N, K;
  double ms, tflops;
};
std::vector<BenchRow> g_bench;
struct Goal {
  std::string name;
  double measured, goal;
  bool reached;
  std::string baseline;
};
std::vector<Goal> g_goals;
bool g_quick = false;
/** Benchmarks stop starting new shapes once this point is passed (--budget SECONDS, from program start). */
std::chrono::steady_clock::time_point g_deadline = std::chrono::steady_clock::time_point::max();
std::vector<std::string> g_skipped;
bool out_of_time(const std::string& what) {
  if (std::chrono::steady_clock::now() < g_deadline) return false;
  g_skipped.push_back(what);
  std::printf("(skipped for the time budget: %s)\n", what.c_str());
  return true;
}

/** Median milliseconds of fn over a bounded number of repetitions (at least 3, at most 20 or ~0.5 s). */
template <typename F>
double time_ms(F fn) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  fn();
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<double> times;
  const int maxReps = g_quick ? 5 : 20;
  double spent = 0;
  while (int(times.size()) < maxReps && (times.size() < 3 || spent < (g_quick ? 200.0 : 500.0))) {
    CHECK_CUDA(cudaEventRecord(a));
    fn();
    CHECK_CUDA(cudaEventRecord(b));
    CHECK_CUDA(cudaEventSynchronize(b));
    float ms;
    CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    times.push_back(ms);
    spent += ms;
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void bench_gemm(Cublas* cublas) {
  struct S {
    const char* label;
    int M, N, K;
  };
  // LLM weights W [out, in] times activations X^T [in, tokens]: M = out, K = in, N = tokens.
  std::vector<S> shapes = {{"square 4096", 4096, 4096, 4096}, {"square 8192", 8192, 8192, 8192}};
  for (int tokens : {16, 256, 4096}) {
    shapes.push_back({"W 4096x11008", 4096, tokens, 11008});
    shapes.push_back({"W 11008x4096", 11008, tokens, 4096});
  }
  std::printf("\n%-14s %-5s %6s %6s %6s | %12s %12s %12s | %8s\n", "gemm", "type", "M", "N", "K", "cuBLAS TF/s", "dense-TC TF/s", "2:4 TF/s",
              "2:4/dense");
  for (Half16 t : {Half16::BF16, Half16::F16}) {
    for (const S& s : shapes) {
      if (out_of_time(std::string("gemm ") + s.label + " " + half_name(t) + " N=" + std::to_string(s.N))) continue;
      Rng rng(s.M + s.N + s.K);
      const size_t bN = size_t(s.K) * s.N;
      std::vector<uint16_t> A = random24(t, s.M, s.K, rng, true), B(bN);
      for (auto& x : B) x = to_half(t, rng.sym());
      Dev<uint16_t> dA(A), dB(B), dvals(size_t(s.M) * padded_cols24(s.K) / 2);
      Dev<uint32_t> dmeta(meta_words24(s.M, s.K));
      Dev<int> dbad(std::vector<int>{INT32_MAX});
      Dev<float> dC(size_t(s.M) * s.N);
      CHECK_CUDA(compress24(t, dA.p, s.M, s.K, s.K, dvals.p, dmeta.p, dbad.p, 0));
      const double flops = 2.0 * s.M * s.N * s.K;  // dense-equivalent work, for every row
      double msCublas = NAN;
      if (cublas) {
        int st = 0;
        msCublas = time_ms([&] { st |= cublas->gemm(t, s.M, s.N, s.K, dA.p, dB.p, dC.p); });
        if (st != 0) msCublas = NAN;
      }
      const double msDense = time_ms([&] { CHECK_CUDA(gemm_dense_tc(t, s.M, s.N, s.K, dA.p, s.K, dB.p, s.N, dC.p, s.N, 1.f, 0.f, 0)); });
      const double msSparse = time_ms([&] { CHECK_CUDA(gemm24(t, s.M, s.N, s.K, dvals.p, dmeta.p, dB.p, s.N, dC.p, s.N, 1.f, 0.f, 0)); });
      const double best = std::isnan(msCublas) ? msDense : std::min(msCublas, msDense);
      std::printf("%-14s %-5s %6d %6d %6d | %12.1f %12.1f %12.1f | %7.2fx\n", s.label, half_name(t), s.M, s.N, s.K, flops / msCublas / 1e9,
                  flops / msDense / 1e9, flops / msSparse / 1e9, best / msSparse);
      if (cublas) g_bench.push_back({"gemm", std::string(s.label) + " cuBLAS", half_name(t), s.M, s.N, s.K, msCublas, flops / msCublas / 1e9});
      g_bench.push_back({"gemm", std::string(s.label) + " dense tensor-core kernel", half_name(t), s.M, s.N, s.K, msDense, flops / msDense / 1e9});
      g_bench.push_back({"gemm", std::string(s.label) + " 2:4 sparse mma.sp", half_name(t), s.M, s.N, s.K, msSparse, flops / msSparse / 1e9});
      if (t == Half16::BF16 && s.M == 8192 && s.N == 8192 && s.K == 8192) {
        g_goals.push_back({"2:4 GEMM speed-up over dense at 8192^3 bf16", best / msSparse, 1.3, best / msSparse >= 1.3,
                           cublas ? "the faster of cuBLAS and the dense tensor-core kernel" : "dense tensor-core kernel (cuBLAS not found)"});
      }
    }
  }
}

void bench_attention() {
  const int heads = 16, seq = 8192, dim = 128, bs = 64, nb = seq / bs;
  std::printf("\n%-44s %-5s %10s %10s\n", "attention (heads 16, seq 8192, dim 128)", "type", "ms", "speed-up");
  for (AttnType type : {AttnType::BF16, AttnType::F16}) {
    if (out_of_time(std::string("attention ") + (type == AttnType::BF16 ? "bf16" : "fp16"))) continue;
    const Half16 ht = type == AttnType::BF16 ? Half16::BF16 : Half16::F16;
    Rng rng(99);
    const size_t total = size_t(heads) * seq * dim;
    std::vector<uint16_t> h(total);
    for (auto& x : h) x = to_half(ht, rng.sym());
    Dev<uint16_t> dq(h), dk(h), dv(h);
    Dev<float> dout(total);
    const float scale = 1.0f / std::sqrt(float(dim));
    const char* tn = type == AttnType::BF16 ? "bf16" : "fp16";
    const double msPlain = time_ms([&] { CHECK_CUDA(attention_forward_dense(type, heads, seq, dim, dq.p, dk.p, dv.p, dout.p, false, scale, 0)); });
    std::printf("%-44s %-5s %10.2f %9.2fx\n", "plain dense flash (no mask)", tn, msPlain, 1.0);
    g_bench.push_back({"attention", "plain dense flash", tn, heads, seq, dim, msPlain, 4.0 * heads * double(seq) * seq * dim / msPlain / 1e9});
    for (double density : {1.0, 0.5, 0.25, 0.1}) {
      std::vector<uint8_t> mask(size_t(nb) * nb, 0);
      // Exactly round(density * nb) key blocks per query block, the diagonal always among them.
      const int per = std::max(1, int(std::lround(density * nb)));
      for (int bi = 0; bi < nb; bi++) {
        std::vector<int> cols(nb);
        for (int j = 0; j < nb; j++) cols[j] = j;
        std::swap(cols[0], cols[bi]);
        for (int j = nb - 1; j > 1; j--) std::swap(cols[j], cols[1 + rng.below(j)]);
        for (int j = 0; j < per; j++) mask[size_t(bi) * nb + cols[j]] = 1;
      }
      Dev<uint8_t> dmask(mask);
      const double ms = time_ms([&] {
        CHECK_CUDA(attention_forward(type, heads, seq, dim, dq.p, dk.p, dv.p, dout.p, false, scale, bs, dmask.p, false, nullptr, false, nullptr, 0));
      });
      char label[64];
      std::snprintf(label, sizeof label, "block-sparse, density %.2f (block 64)", density);
      std::printf("%-44s %-5s %10.2f %9.2fx\n", label, tn, ms, msPlain / ms);
      g_bench.push_back({"attention", label, tn, heads, seq, dim, ms, 4.0 * heads * double(seq) * seq * dim * density / ms / 1e9});
      if (density == 0.1 && type == AttnType::BF16) {
        g_goals.push_back({"block-sparse attention speed-up at density 0.1 (seq 8192, bf16)", msPlain / ms, 7.0, msPlain / ms >= 7.0,
                           "the plain dense flash kernel (same code, no mask)"});
      }
    }
  }
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}
std::string num(double x) {
  if (std::isnan(x) || std::isinf(x)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", x);
  return b;
}

void write_json(const char* path, const cudaDeviceProp& prop, int runtime, int driver, const std::string& cublasWhere) {
  FILE* f = std::fopen(path, "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path);
    std::exit(2);
  }
  std::fprintf(f, "{\n  \"device\": \"%s\", \"sm\": %d%d, \"runtime\": %d, \"driver\": %d, \"cublas\": %s,\n", json_escape(prop.name).c_str(), prop.major,
               prop.minor, runtime, driver, cublasWhere.empty() ? "null" : ("\"" + json_escape(cublasWhere) + "\"").c_str());
  std::fprintf(f, "  \"tests\": [\n");
  for (size_t i = 0; i < g_tests.size(); i++) {
    const TestResult& t = g_tests[i];
    std::fprintf(f, "    {\"name\": \"%s\", \"pass\": %s, \"maxErr\": %s, \"detail\": \"%s\"}%s\n", json_escape(t.name).c_str(), t.pass ? "true" : "false",
                 num(t.maxErr).c_str(), json_escape(t.detail).c_str(), i + 1 < g_tests.size() ? "," : "");
  }
  std::fprintf(f, "  ],\n  \"bench\": [\n");
  for (size_t i = 0; i < g_bench.size(); i++) {
    const BenchRow& b = g_bench[i];
    std::fprintf(f, "    {\"group\": \"%s\", \"name\": \"%s\", \"dtype\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"ms\": %s, \"tflops\": %s}%s\n",
                 b.group.c_str(), json_escape(b.name).c_str(), b.dtype.c_str(), b.M, b.N, b.K, num(b.ms).c_str(), num(b.tflops).c_str(),
                 i + 1 < g_bench.size() ? "," : "");
  }
  std::fprintf(f, "  ],\n  \"skippedForTime\": [");
  for (size_t i = 0; i < g_skipped.size(); i++) std::fprintf(f, "%s\"%s\"", i ? ", " : "", json_escape(g_skipped[i]).c_str());
  std::fprintf(f, "],\n  \"goals\": [\n");
  for (size_t i = 0; i < g_goals.size(); i++) {
    const Goal& g = g_goals[i];
    std::fprintf(f, "    {\"name\": \"%s\", \"measured\": %s, \"goal\": %s, \"reached\": %s, \"baseline\": \"%s\"}%s\n", json_escape(g.name).c_str(),
                 num(g.measured).c_str(), num(g.goal).c_str(), g.reached ? "true" : "false", json_escape(g.baseline).c_str(),
                 i + 1 < g_goals.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  bool bench = false;
  const char* json = nullptr;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--bench")) bench = true;
    else if (!std::strcmp(argv[i], "--quick-bench")) bench = g_quick = true;
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
    else if (!std::strcmp(argv[i], "--small")) g_small = true;
    else if (!std::strcmp(argv[i], "--budget") && i + 1 < argc)
      g_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: gpu_test [--small] [--bench | --quick-bench] [--budget SECONDS] [--json FILE]\n");
      return 64;
    }
  }
  if (!cudaDevicePresent()) return kNoDeviceExit;
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  std::printf("device: %s (sm_%d%d), runtime %d, driver %d\n", prop.name, prop.major, prop.minor, runtime, driver);
  if (prop.major < 8) {
    std::printf("no CUDA device: %s is sm_%d%d; the kernels need sm_80 or newer\n", prop.name, prop.major, prop.minor);
    return kNoDeviceExit;
  }
  const auto t0 = std::chrono::steady_clock::now();
  run_tests();
  int failed = 0;
  for (const TestResult& t : g_tests) failed += !t.pass;
  std::printf("\n%zu tests, %d failed (%.1f s)\n", g_tests.size(), failed,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  Cublas cublas;
  std::string cublasWhere;
  // Written now and again after the benchmark, so the test results survive a benchmark that dies.
  if (json) write_json(json, prop, runtime, driver, cublasWhere);
  if (bench) {
    const bool haveCublas = cublas.load();
    if (haveCublas) cublasWhere = cublas.where;
    std::printf("\ncuBLAS: %s\n", haveCublas ? cublas.where.c_str() : "not found (set SPARSE_CUBLAS_LIB); dense baseline = our dense tensor-core kernel");
    bench_attention();
    bench_gemm(haveCublas ? &cublas : nullptr);
    std::printf("\n%-64s %10s %8s %8s\n", "goal", "measured", "goal", "reached");
    for (const Goal& g : g_goals) std::printf("%-64s %9.2fx %7.2fx %8s  (vs %s)\n", g.name.c_str(), g.measured, g.goal, g.reached ? "yes" : "no", g.baseline.c_str());
  }
  if (json) write_json(json, prop, runtime, driver, cublasWhere);
  if (cublas.handle) cublas.destroy(cublas.handle);
  return failed ? 1 : 0;
}
