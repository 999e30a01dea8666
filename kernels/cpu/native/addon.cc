// Node-API binding of the native CPU kernels. Every kernel works in place on the caller's typed
// arrays: pointers into their backing stores are passed straight to the kernels, nothing is copied
// (except an input that overlaps the output, which BLAS would forbid; we copy it instead).
#include <napi.h>

#include <vector>

#include "args.h"
#include "gemm.h"
#include "spmm.h"
#include "thread_pool.h"

namespace sparse {
namespace {

// A read-only operand [first, end) that shares memory with the output [out0, out1) is copied
// first, so the result is what it would be without aliasing.
const float* unaliased(const float* first, const float* end, const float* out0, const float* out1,
                       std::vector<float>& copy) {
  if (!overlaps(first, end, out0, out1)) return first;
  copy.assign(first, end);
  return copy.data();
}

// gemm(transA, transB, m, n, k, alpha, A, aOffset, lda, B, bOffset, ldb, beta, C, cOffset, ldc)
template <void (*Impl)(const GemmArgs&)>
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  const char* fn = "gemm";
  if (info.Length() != 16) throw Napi::TypeError::New(info.Env(), "gemm: expected 16 arguments");
  GemmArgs g;
  g.transA = boolArg(info, fn, 0, "transA");
  g.transB = boolArg(info, fn, 1, "transB");
  g.m = intArg(info, fn, 2, "m");
  g.n = intArg(info, fn, 3, "n");
  g.k = intArg(info, fn, 4, "k");
  g.alpha = floatArg(info, fn, 5, "alpha");
  const ArrayArg<float> a = f32Arg(info, fn, 6, "A");
  const int64_t aOff = intArg(info, fn, 7, "aOffset");
  g.lda = intArg(info, fn, 8, "lda");
  const ArrayArg<float> b = f32Arg(info, fn, 9, "B");
  const int64_t bOff = intArg(info, fn, 10, "bOffset");
  g.ldb = intArg(info, fn, 11, "ldb");
  g.beta = floatArg(info, fn, 12, "beta");
  const ArrayArg<float> c = f32Arg(info, fn, 13, "C");
  const int64_t cOff = intArg(info, fn, 14, "cOffset");
  g.ldc = intArg(info, fn, 15, "ldc");

  const int64_t aRows = g.transA ? g.k : g.m, aCols = g.transA ? g.m : g.k;
  const int64_t bRows = g.transB ? g.n : g.k, bCols = g.transB ? g.k : g.n;
  // A and B are read only when there is a product to form.
  const bool readsAB = g.m > 0 && g.n > 0 && g.k > 0 && g.alpha != 0.0f;
  checkMatrix(info, fn, "A", a.length, aOff, readsAB ? aRows : 0, aCols, g.lda);
  checkMatrix(info, fn, "B", b.length, bOff, readsAB ? bRows : 0, bCols, g.ldb);
  checkMatrix(info, fn, "C", c.length, cOff, g.m, g.n, g.ldc);
  if (g.m == 0 || g.n == 0) return info.Env().Undefined();

  g.c = c.data + cOff;
  const float* cEnd = g.c + (g.m - 1) * g.ldc + g.n;
  std::vector<float> copyA, copyB;
  if (readsAB) {
    const int64_t aEnd = aOff + (aRows - 1) * g.lda + aCols;
    const int64_t bEnd = bOff + (bRows - 1) * g.ldb + bCols;
    g.a = unaliased(a.data + aOff, a.data + aEnd, g.c, cEnd, copyA);
    g.b = unaliased(b.data + bOff, b.data + bEnd, g.c, cEnd, copyB);
  }
  Impl(g);
  return info.Env().Undefined();
}

// The dense half of every spmm call: n, alpha, B, bOffset, ldb, beta, C, cOffset, ldc from argument
// `at` on, for a sparse A of `rows` x `inner`. B is copied when it overlaps C.
struct DenseOperands {
  SpmmDense d;
  std::vector<float> copyB;
};

void readDense(const Napi::CallbackInfo& info, const char* fn, int at, int64_t rows, int64_t inner, DenseOperands& out) {
  SpmmDense& d = out.d;
  d.n = intArg(info, fn, at, "n");
  d.alpha = floatArg(info, fn, at + 1, "alpha");
  const ArrayArg<float> b = f32Arg(info, fn, at + 2, "B");
  const int64_t bOff = intArg(info, fn, at + 3, "bOffset");
  d.ldb = intArg(info, fn, at + 4, "ldb");
  d.beta = floatArg(info, fn, at + 5, "beta");
  const ArrayArg<float> c = f32Arg(info, fn, at + 6, "C");
  const int64_t cOff = intArg(info, fn, at + 7, "cOffset");
  d.ldc = intArg(info, fn, at + 8, "ldc");
  checkMatrix(info, fn, "B", b.length, bOff, inner, d.n, d.ldb);
  checkMatrix(info, fn, "C", c.length, cOff, rows, d.n, d.ldc);
  d.c = c.data + cOff;
  d.b = b.data + bOff;
  if (rows > 0 && inner > 0 && d.n > 0) {
    const float* cEnd = d.c + (rows - 1) * d.ldc + d.n;
    d.b = unaliased(d.b, d.b + (inner - 1) * d.ldb + d.n, d.c, cEnd, out.copyB);
  }
}

// values[0:count] of the sparse operand, copied when they overlap C.
const float* sparseValues(const ArrayArg<float>& values, int64_t count, const SpmmDense& d, int64_t rows,
                          std::vector<float>& copy) {
  if (count == 0 || rows == 0 || d.n == 0) return values.data;
  return unaliased(values.data, values.data + count, d.c, d.c + (rows - 1) * d.ldc + d.n, copy);
}

bool productTooLarge(double x) { return !(x <= kMaxIndex); }

// Checks indptr[0] == 0, indptr non-decreasing over `rows` rows, and indptr[rows] <= limit; returns it.
int64_t checkIndptr(const Napi::CallbackInfo& info, const char* fn, const ArrayArg<int32_t>& indptr, int64_t rows,
                    int64_t limit) {
  if (indptr.length < rows + 1) throw rangeError(info, fn, "indptr is shorter than rows + 1");
  if (indptr.data[0] != 0) throw rangeError(info, fn, "indptr[0] must be 0");
  for (int64_t r = 0; r < rows; ++r) {
    if (indptr.data[r + 1] < indptr.data[r]) throw rangeError(info, fn, "indptr decreases at " + std::to_string(r + 1));
  }
  const int64_t nnz = indptr.data[rows];
  if (nnz > limit) throw rangeError(info, fn, "indptr[rows] exceeds the stored entries");
  return nnz;
}

// spmmCSR(rows, cols, indptr, indices, values, n, alpha, B, bOffset, ldb, beta, C, cOffset, ldc)
Napi::Value SpmmCsr(const Napi::CallbackInfo& info) {
  const char* fn = "spmmCSR";
  if (info.Length() != 14) throw Napi::TypeError::New(info.Env(), "spmmCSR: expected 14 arguments");
  CsrMatrix a;
  a.rows = intArg(info, fn, 0, "rows");
  a.cols = intArg(info, fn, 1, "cols");
  const ArrayArg<int32_t> indptr = i32Arg(info, fn, 2, "indptr");
  const ArrayArg<int32_t> indices = i32Arg(info, fn, 3, "indices");
  const ArrayArg<float> values = f32Arg(info, fn, 4, "values");
  DenseOperands dense;
  readDense(info, fn, 5, a.rows, a.cols, dense);
  const int64_t nnz = checkIndptr(info, fn, indptr, a.rows, std::min(indices.length, values.length));
  bool sorted = true;
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t p = indptr.data[r]; p < indptr.data[r + 1]; ++p) {
      const int32_t j = indices.data[p];
      if (j < 0 || j >= a.cols) throw rangeError(info, fn, "column index " + std::to_string(j) + " out of range");
      if (p > indptr.data[r] && j < indices.data[p - 1]) sorted = false;
    }
  }
  std::vector<float> copyValues;
  a.indptr = indptr.data;
  a.indices = indices.data;
  a.values = sparseValues(values, nnz, dense.d, a.rows, copyValues);
  a.sorted = sorted;
  spmmCSR(a, dense.d);
  return info.Env().Undefined();
}

// spmmNM(rows, cols, n, m, indexBits, values, indices, nCols, alpha, B, bOffset, ldb, beta, C, cOffset, ldc)
Napi::Value SpmmNm(const Napi::CallbackInfo& info) {
  const char* fn = "spmmNM";
  if (info.Length() != 16) throw Napi::TypeError::New(info.Env(), "spmmNM: expected 16 arguments");
  NmMatrix a;
  a.rows = intArg(info, fn, 0, "rows");
  a.cols = intArg(info, fn, 1, "cols");
  const int64_t keep = intArg(info, fn, 2, "n");
  const int64_t m = intArg(info, fn, 3, "m");
  const int64_t bits = intArg(info, fn, 4, "indexBits");
  const ArrayArg<float> values = f32Arg(info, fn, 5, "values");
  const ArrayArg<uint8_t> indices = u8Arg(info, fn, 6, "indices");
  DenseOperands dense;
  readDense(info, fn, 7, a.rows, a.cols, dense);
  if (m < 2 || m > (int64_t{1} << 24)) throw rangeError(info, fn, "m must be in [2, 2^24]");
  if (keep < 1 || keep > m) throw rangeError(info, fn, "n must be in [1, m]");
  if (bits < 1 || bits > 24 || (int64_t{1} << bits) < m) throw rangeError(info, fn, "indexBits cannot hold positions below m");
  if (a.cols % m != 0) throw rangeError(info, fn, "cols is not a multiple of m");
  const double count = static_cast<double>(a.rows) * static_cast<double>(a.cols / m) * static_cast<double>(keep);
  if (productTooLarge(count * static_cast<double>(bits)) || count > static_cast<double>(values.length)) {
    throw rangeError(info, fn, "values is shorter than rows * cols / m * n");
  }
  const int64_t kept = static_cast<int64_t>(count);
  if ((kept * bits + 7) / 8 > indices.length) throw rangeError(info, fn, "indices is shorter than the packed positions");
  if ((int64_t{1} << bits) != m) {
    // Only then can a packed position reach m or beyond.
    for (int64_t q = 0; q < kept; ++q) {
      if (nmPosition(indices.data, indices.length, static_cast<int>(bits), q) >= m) {
        throw rangeError(info, fn, "group position " + std::to_string(q) + " is not below m");
      }
    }
  }
  std::vector<float> copyValues;
  a.n = static_cast<int>(keep);
  a.m = static_cast<int>(m);
  a.bits = static_cast<int>(bits);
  a.values = sparseValues(values, kept, dense.d, a.rows, copyValues);
  a.indices = indices.data;
  a.indicesLength = indices.length;
  spmmNM(a, dense.d);
  return info.Env().Undefined();
}

// spmmBlock(rows, cols, br, bc, indptr, indices, values, n, alpha, B, bOffset, ldb, beta, C, cOffset, ldc)
Napi::Value SpmmBsr(const Napi::CallbackInfo& info) {
  const char* fn = "spmmBlock";
  if (info.Length() != 16) throw Napi::TypeError::New(info.Env(), "spmmBlock: expected 16 arguments");
  BsrMatrix a;
  a.rows = intArg(info, fn, 0, "rows");
  a.cols = intArg(info, fn, 1, "cols");
  a.br = intArg(info, fn, 2, "blockRows");
  a.bc = intArg(info, fn, 3, "blockCols");
  const ArrayArg<int32_t> indptr = i32Arg(info, fn, 4, "indptr");
  const ArrayArg<int32_t> indices = i32Arg(info, fn, 5, "indices");
  const ArrayArg<float> values = f32Arg(info, fn, 6, "values");
  DenseOperands dense;
  readDense(info, fn, 7, a.rows, a.cols, dense);
  if (a.br < 1 || a.bc < 1) throw rangeError(info, fn, "block sides must be positive");
  const int64_t blockRows = (a.rows + a.br - 1) / a.br;
  const int64_t blockCols = (a.cols + a.bc - 1) / a.bc;
  const int64_t nnzb = checkIndptr(info, fn, indptr, blockRows, indices.length);
  const double count = static_cast<double>(nnzb) * static_cast<double>(a.br) * static_cast<double>(a.bc);
  if (productTooLarge(count) || count > static_cast<double>(values.length)) {
    throw rangeError(info, fn, "values is shorter than the stored blocks");
  }
  for (int64_t p = 0; p < nnzb; ++p) {
    if (indices.data[p] < 0 || indices.data[p] >= blockCols) throw rangeError(info, fn, "block column index out of range");
  }
  std::vector<float> copyValues;
  a.indptr = indptr.data;
  a.indices = indices.data;
  a.values = sparseValues(values, static_cast<int64_t>(count), dense.d, a.rows, copyValues);
  spmmBlock(a, dense.d);
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("simd", simdName());
  out.Set("threads", poolSize());
#if defined(SPARSE_HAVE_OPENBLAS)
  out.Set("blas", "openblas");
#else
  out.Set("blas", "none");
#endif
  Napi::Array kernels = Napi::Array::New(env);
  const char* names[] = {"gemm", "spmmCSR", "spmmNM", "spmmBlock"};
  for (uint32_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) kernels.Set(i, names[i]);
  out.Set("kernels", kernels);
  return out;
}

}  // namespace
}  // namespace sparse

static Napi::Object InitSparseCpu(Napi::Env env, Napi::Object exports) {
  using namespace sparse;
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("gemm", Napi::Function::New(env, Gemm<gemm>, "gemm"));
  exports.Set("gemmBlocked", Napi::Function::New(env, Gemm<gemmBlocked>, "gemmBlocked"));
  exports.Set("spmmCSR", Napi::Function::New(env, SpmmCsr, "spmmCSR"));
  exports.Set("spmmNM", Napi::Function::New(env, SpmmNm, "spmmNM"));
  exports.Set("spmmBlock", Napi::Function::New(env, SpmmBsr, "spmmBlock"));
  return exports;
}

NODE_API_MODULE(sparse_cpu, InitSparseCpu)
