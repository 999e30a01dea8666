// Node-API binding of the native CPU kernels. Every kernel works in place on the caller's typed
// arrays: pointers into their backing stores are passed straight to the kernels, nothing is copied
// (except an input that overlaps the output, which BLAS would forbid; we copy it instead).
#include <napi.h>

#include <cstring>
#include <vector>

#if defined(SPARSE_HAVE_OPENBLAS)
#include <cblas.h>
#endif

#include "args.h"
#include "attention.h"
#include "cpu_features.h"
#include "elementwise.h"
#include "fused.h"
#include "gemm.h"
#include "linalg.h"
#include "ops.h"
#include "prune_select.h"
#include "sparse_linear.h"
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

// Element offsets of a batch, one per item, each a non-negative integer below 2^52.
std::vector<int64_t> offsetList(const Napi::CallbackInfo& info, const char* fn, const ArrayArg<double>& arr, const char* what) {
  std::vector<int64_t> out(static_cast<size_t>(arr.length));
  for (int64_t i = 0; i < arr.length; ++i) {
    const double d = arr.data[i];
    if (!std::isfinite(d) || d != std::floor(d) || d < 0 || d > kMaxIndex) {
      throw rangeError(info, fn, std::string(what) + "[" + std::to_string(i) + "] must be a non-negative integer");
    }
    out[static_cast<size_t>(i)] = static_cast<int64_t>(d);
  }
  return out;
}

// gemmBatched(transA, transB, m, n, k, alpha, A, aOffsets, lda, B, bOffsets, ldb, beta, C, cOffset, cStride, ldc):
// item i is gemm on A at aOffsets[i], B at bOffsets[i] and C at cOffset + i*cStride. Offsets are
// Float64Arrays of equal length (the batch size); several items may read the same A or B (broadcasting)
// but C regions must not overlap (cStride covers a whole C matrix).
Napi::Value GemmBatched(const Napi::CallbackInfo& info) {
  const char* fn = "gemmBatched";
  if (info.Length() != 17) throw Napi::TypeError::New(info.Env(), "gemmBatched: expected 17 arguments");
  GemmArgs g;
  g.transA = boolArg(info, fn, 0, "transA");
  g.transB = boolArg(info, fn, 1, "transB");
  g.m = intArg(info, fn, 2, "m");
  g.n = intArg(info, fn, 3, "n");
  g.k = intArg(info, fn, 4, "k");
  g.alpha = floatArg(info, fn, 5, "alpha");
  const ArrayArg<float> a = f32Arg(info, fn, 6, "A");
  const std::vector<int64_t> aOffs = offsetList(info, fn, f64Arg(info, fn, 7, "aOffsets"), "aOffsets");
  g.lda = intArg(info, fn, 8, "lda");
  const ArrayArg<float> b = f32Arg(info, fn, 9, "B");
  const std::vector<int64_t> bOffs = offsetList(info, fn, f64Arg(info, fn, 10, "bOffsets"), "bOffsets");
  g.ldb = intArg(info, fn, 11, "ldb");
  g.beta = floatArg(info, fn, 12, "beta");
  const ArrayArg<float> c = f32Arg(info, fn, 13, "C");
  const int64_t cOff = intArg(info, fn, 14, "cOffset");
  const int64_t cStride = intArg(info, fn, 15, "cStride");
  g.ldc = intArg(info, fn, 16, "ldc");
  if (aOffs.size() != bOffs.size()) throw rangeError(info, fn, "aOffsets and bOffsets differ in length");
  const int64_t count = static_cast<int64_t>(aOffs.size());

  const int64_t aRows = g.transA ? g.k : g.m, aCols = g.transA ? g.m : g.k;
  const int64_t bRows = g.transB ? g.n : g.k, bCols = g.transB ? g.k : g.n;
  const bool readsAB = g.m > 0 && g.n > 0 && g.k > 0 && g.alpha != 0.0f;
  const int64_t cSpan = g.m > 0 && g.n > 0 ? (g.m - 1) * g.ldc + g.n : 0;
  if (count > 1 && cSpan > 0 && cStride < cSpan) throw rangeError(info, fn, "cStride is smaller than one C matrix: items would overlap");
  int64_t aLo = 0, aHi = 0, bLo = 0, bHi = 0;
  for (int64_t i = 0; i < count; ++i) {
    checkMatrix(info, fn, "A", a.length, aOffs[i], readsAB ? aRows : 0, aCols, g.lda);
    checkMatrix(info, fn, "B", b.length, bOffs[i], readsAB ? bRows : 0, bCols, g.ldb);
    if (productTooLarge(static_cast<double>(cOff) + static_cast<double>(i) * static_cast<double>(cStride))) {
      throw rangeError(info, fn, "C offset of an item is too large");
    }
    checkMatrix(info, fn, "C", c.length, cOff + i * cStride, g.m, g.n, g.ldc);
    const int64_t aEnd = aOffs[i] + (aRows - 1) * g.lda + aCols, bEnd = bOffs[i] + (bRows - 1) * g.ldb + bCols;
    if (i == 0 || aOffs[i] < aLo) aLo = aOffs[i];
    if (i == 0 || aEnd > aHi) aHi = aEnd;
    if (i == 0 || bOffs[i] < bLo) bLo = bOffs[i];
    if (i == 0 || bEnd > bHi) bHi = bEnd;
  }
  if (count == 0 || cSpan == 0) return info.Env().Undefined();

  float* cFirst = c.data + cOff;
  const float* cEnd = cFirst + (count - 1) * cStride + cSpan;
  std::vector<float> copyA, copyB;
  const float* aSpan = nullptr;
  const float* bSpan = nullptr;
  if (readsAB) {
    // Inputs overlapping any output are copied (their whole span), so every item sees the original.
    aSpan = unaliased(a.data + aLo, a.data + aHi, cFirst, cEnd, copyA);
    bSpan = unaliased(b.data + bLo, b.data + bHi, cFirst, cEnd, copyB);
  }
  std::vector<const float*> as(static_cast<size_t>(count)), bs(static_cast<size_t>(count));
  std::vector<float*> cs(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    as[i] = readsAB ? aSpan + (aOffs[i] - aLo) : nullptr;
    bs[i] = readsAB ? bSpan + (bOffs[i] - bLo) : nullptr;
    cs[i] = cFirst + i * cStride;
  }
  gemmBatched(g, count, as.data(), bs.data(), cs.data());
  return info.Env().Undefined();
}


// Throws when [a0, a1) and [b0, b1) (element ranges of two float arrays) share memory.
void checkApart(const Napi::CallbackInfo& info, const char* fn, const char* outName, const float* o0, const float* o1,
                const char* inName, const float* i0, const float* i1) {
  if (o0 < o1 && i0 < i1 && overlaps(o0, o1, i0, i1)) {
    throw rangeError(info, fn, std::string(outName) + " overlaps " + inName);
  }
}

// gemvSparseInput(transW, rows, cols, n, alpha, W, wOffset, ldw, X, xOffset, ldx, beta, Y, yOffset, ldy)
Napi::Value GemvSparseInput(const Napi::CallbackInfo& info) {
  const char* fn = "gemvSparseInput";
  if (info.Length() != 15) throw Napi::TypeError::New(info.Env(), "gemvSparseInput: expected 15 arguments");
  GemvSparseArgs a;
  a.transW = boolArg(info, fn, 0, "transW");
  a.rows = intArg(info, fn, 1, "rows");
  a.cols = intArg(info, fn, 2, "cols");
  a.n = intArg(info, fn, 3, "n");
  a.alpha = floatArg(info, fn, 4, "alpha");
  const ArrayArg<float> w = f32Arg(info, fn, 5, "W");
  const int64_t wOff = intArg(info, fn, 6, "wOffset");
  a.ldw = intArg(info, fn, 7, "ldw");
  const ArrayArg<float> x = f32Arg(info, fn, 8, "X");
  const int64_t xOff = intArg(info, fn, 9, "xOffset");
  a.ldx = intArg(info, fn, 10, "ldx");
  a.beta = floatArg(info, fn, 11, "beta");
  const ArrayArg<float> y = f32Arg(info, fn, 12, "Y");
  const int64_t yOff = intArg(info, fn, 13, "yOffset");
  a.ldy = intArg(info, fn, 14, "ldy");
  const int64_t wRows = a.transW ? a.cols : a.rows, wCols = a.transW ? a.rows : a.cols;
  checkMatrix(info, fn, "W", w.length, wOff, wRows, wCols, a.ldw);
  checkMatrix(info, fn, "X", x.length, xOff, a.cols, a.n, a.ldx);
  checkMatrix(info, fn, "Y", y.length, yOff, a.rows, a.n, a.ldy);
  a.w = w.data + wOff;
  a.x = x.data + xOff;
  a.y = y.data + yOff;
  if (a.rows == 0 || a.n == 0) return info.Env().Undefined();
  const float* yEnd = a.y + (a.rows - 1) * a.ldy + a.n;
  if (wRows > 0 && wCols > 0) checkApart(info, fn, "Y", a.y, yEnd, "W", a.w, a.w + (wRows - 1) * a.ldw + wCols);
  if (a.cols > 0) checkApart(info, fn, "Y", a.y, yEnd, "X", a.x, a.x + (a.cols - 1) * a.ldx + a.n);
  gemvSparseInput(a);
  return info.Env().Undefined();
}

// The element mask at argument `at` (Uint8Array | null): [seq, seq] or [heads, seq, seq] bits. Required
// when a tile of the block mask (`cells` bytes; null = dense) is partial (2).
// The optional block mask at argument `at` (null or undefined: none): [nb, nb] shared or [heads, nb, nb]
// per head, nb = ceil(seq / blockSize). Sets *mask and *perHead; returns its length in cells (0: none).
int64_t readBlockMask(const Napi::CallbackInfo& info, const char* fn, int at, int64_t heads, int64_t seq, int64_t blockSize,
                      const uint8_t** mask, bool* perHead) {
  if (info[at].IsNull() || info[at].IsUndefined()) return 0;
  const ArrayArg<uint8_t> arr = u8Arg(info, fn, at, "mask");
  const int64_t nb = (seq + blockSize - 1) / blockSize;
  if (productTooLarge(static_cast<double>(nb) * static_cast<double>(nb) * static_cast<double>(std::max<int64_t>(heads, 1)))) {
    throw rangeError(info, fn, "block mask too large");
  }
  if (arr.length == nb * nb) {
    *perHead = false;
  } else if (arr.length == heads * nb * nb) {
    *perHead = true;
  } else {
    throw rangeError(info, fn, "mask length must be nb*nb or heads*nb*nb");
  }
  *mask = arr.data;
  return arr.length;
}

void readElementMask(const Napi::CallbackInfo& info, const char* fn, int at, int64_t heads, int64_t seq, const uint8_t* mask,
                     int64_t cells, const uint8_t** out, bool* perHead) {
  bool partial = false;
  if (mask != nullptr) {
    for (int64_t t = 0; t < cells && !partial; ++t) partial = mask[t] == 2;
  }
  if (info[at].IsNull() || info[at].IsUndefined()) {
    if (partial) throw rangeError(info, fn, "partial tiles (mask value 2) need an element mask");
    return;
  }
  const ArrayArg<uint8_t> em = u8Arg(info, fn, at, "elementMask");
  const double one = std::ceil(static_cast<double>(seq) * static_cast<double>(seq) / 8.0);
  const double all = std::ceil(static_cast<double>(heads) * static_cast<double>(seq) * static_cast<double>(seq) / 8.0);
  if (static_cast<double>(em.length) == one) {
    *perHead = false;
  } else if (static_cast<double>(em.length) == all) {
    *perHead = true;
  } else {
    throw rangeError(info, fn, "elementMask length must be ceil(seq*seq/8) or ceil(heads*seq*seq/8)");
  }
  *out = em.data;
}

// attention(heads, seq, d, Q, qOffset, K, kOffset, V, vOffset, Out, outOffset, causal, scale, blockSize, mask | null)
// ... [, elementMask | null, lse | null, lseOffset]
Napi::Value Attention(const Napi::CallbackInfo& info) {
  const char* fn = "attention";
  if (info.Length() != 15 && info.Length() != 18) throw Napi::TypeError::New(info.Env(), "attention: expected 15 or 18 arguments");
  AttentionProblem p;
  p.heads = intArg(info, fn, 0, "heads");
  p.seq = intArg(info, fn, 1, "seq");
  p.d = intArg(info, fn, 2, "headDim");
  const double rowsD = static_cast<double>(p.heads) * static_cast<double>(p.seq);
  if (productTooLarge(rowsD * static_cast<double>(std::max<int64_t>(p.d, 1)))) throw rangeError(info, fn, "heads * seq * headDim is too large");
  const int64_t rows = p.heads * p.seq;
  const int64_t ld = std::max<int64_t>(p.d, 1);
  const float* ptrs[4];
  const char* names[4] = {"Q", "K", "V", "Out"};
  float* outPtr = nullptr;
  for (int t = 0; t < 4; ++t) {
    const ArrayArg<float> arr = f32Arg(info, fn, 3 + 2 * t, names[t]);
    const int64_t off = intArg(info, fn, 4 + 2 * t, "offset");
    checkMatrix(info, fn, names[t], arr.length, off, rows, p.d, ld);
    ptrs[t] = arr.data + off;
    if (t == 3) outPtr = arr.data + off;
  }
  p.q = ptrs[0];
  p.k = ptrs[1];
  p.v = ptrs[2];
  p.out = outPtr;
  p.causal = boolArg(info, fn, 11, "causal");
  p.scale = floatArg(info, fn, 12, "scale");
  p.blockSize = intArg(info, fn, 13, "blockSize");
  if (p.blockSize < 1) throw rangeError(info, fn, "blockSize must be at least 1");
  const int64_t cells = readBlockMask(info, fn, 14, p.heads, p.seq, p.blockSize, &p.mask, &p.maskPerHead);
  if (info.Length() == 18) {
    readElementMask(info, fn, 15, p.heads, p.seq, p.mask, cells, &p.elementMask, &p.elementMaskPerHead);
    if (!info[16].IsNull() && !info[16].IsUndefined()) {
      const ArrayArg<float> lse = f32Arg(info, fn, 16, "lse");
      const int64_t off = intArg(info, fn, 17, "lseOffset");
      checkMatrix(info, fn, "lse", lse.length, off, p.heads, p.seq, std::max<int64_t>(p.seq, 1));
      p.lse = lse.data + off;
      if (rows > 0 && p.d > 0) {
        for (int t = 0; t < 4; ++t) checkApart(info, fn, "lse", p.lse, p.lse + rows, names[t], ptrs[t], ptrs[t] + rows * p.d);
      }
    }
  } else if (p.mask != nullptr) {
    for (int64_t t = 0; t < cells; ++t) {
      if (p.mask[t] == 2) throw rangeError(info, fn, "partial tiles (mask value 2) need an element mask");
    }
  }
  if (rows > 0 && p.d > 0) {
    const int64_t span = rows * p.d;
    for (int t = 0; t < 3; ++t) checkApart(info, fn, "Out", p.out, p.out + span, names[t], ptrs[t], ptrs[t] + span);
  }
  attention(p);
  return info.Env().Undefined();
}

// attentionBackward(heads, seq, d, Q, qOff, K, kOff, V, vOff, Out, outOff, dOut, dOutOff, lse, lseOff, causal,
//                   scale, blockSize, mask | null, elementMask | null, dQ, dqOff, dK, dkOff, dV, dvOff)
Napi::Value AttentionBackwardFn(const Napi::CallbackInfo& info) {
  const char* fn = "attentionBackward";
  if (info.Length() != 26) throw Napi::TypeError::New(info.Env(), "attentionBackward: expected 26 arguments");
  AttentionBackwardProblem p;
  p.heads = intArg(info, fn, 0, "heads");
  p.seq = intArg(info, fn, 1, "seq");
  p.d = intArg(info, fn, 2, "headDim");
  const double rowsD = static_cast<double>(p.heads) * static_cast<double>(p.seq);
  if (productTooLarge(rowsD * static_cast<double>(std::max<int64_t>(p.d, 1)))) throw rangeError(info, fn, "heads * seq * headDim is too large");
  const int64_t rows = p.heads * p.seq, ld = std::max<int64_t>(p.d, 1), span = rows * p.d;
  const char* names[8] = {"Q", "K", "V", "Out", "dOut", "dQ", "dK", "dV"};
  const int at[8] = {3, 5, 7, 9, 11, 20, 22, 24};
  float* ptrs[8];
  for (int t = 0; t < 8; ++t) {
    const ArrayArg<float> arr = f32Arg(info, fn, at[t], names[t]);
    const int64_t off = intArg(info, fn, at[t] + 1, "offset");
    checkMatrix(info, fn, names[t], arr.length, off, rows, p.d, ld);
    ptrs[t] = arr.data + off;
  }
  const ArrayArg<float> lse = f32Arg(info, fn, 13, "lse");
  const int64_t lseOff = intArg(info, fn, 14, "lseOffset");
  checkMatrix(info, fn, "lse", lse.length, lseOff, p.heads, p.seq, std::max<int64_t>(p.seq, 1));
  p.q = ptrs[0];
  p.k = ptrs[1];
  p.v = ptrs[2];
  p.out = ptrs[3];
  p.dout = ptrs[4];
  p.lse = lse.data + lseOff;
  p.dq = ptrs[5];
  p.dk = ptrs[6];
  p.dv = ptrs[7];
  p.causal = boolArg(info, fn, 15, "causal");
  p.scale = floatArg(info, fn, 16, "scale");
  p.blockSize = intArg(info, fn, 17, "blockSize");
  if (p.blockSize < 1) throw rangeError(info, fn, "blockSize must be at least 1");
  const int64_t cells = readBlockMask(info, fn, 18, p.heads, p.seq, p.blockSize, &p.mask, &p.maskPerHead);
  readElementMask(info, fn, 19, p.heads, p.seq, p.mask, cells, &p.elementMask, &p.elementMaskPerHead);
  if (span > 0) {
    for (int o = 5; o < 8; ++o) {
      for (int t = 0; t < 5; ++t) checkApart(info, fn, names[o], ptrs[o], ptrs[o] + span, names[t], ptrs[t], ptrs[t] + span);
      checkApart(info, fn, names[o], ptrs[o], ptrs[o] + span, "lse", p.lse, p.lse + rows);
      for (int t = o + 1; t < 8; ++t) checkApart(info, fn, names[o], ptrs[o], ptrs[o] + span, names[t], ptrs[t], ptrs[t] + span);
    }
  }
  attentionBackward(p);
  return info.Env().Undefined();
}

// attentionBitmapKV(heads, kvHeads, d, positions, Q, qOff, kBits, kValues, kStart, vBits, vValues, vStart, Out, outOff, scale)
Napi::Value AttentionBitmapKVFn(const Napi::CallbackInfo& info) {
  const char* fn = "attentionBitmapKV";
  if (info.Length() != 15) throw Napi::TypeError::New(info.Env(), "attentionBitmapKV: expected 15 arguments");
  AttentionBitmapKVProblem p;
  p.heads = intArg(info, fn, 0, "heads");
  p.kvHeads = intArg(info, fn, 1, "kvHeads");
  p.d = intArg(info, fn, 2, "headDim");
  p.positions = intArg(info, fn, 3, "positions");
  if (p.heads > 0 && (p.kvHeads < 1 || p.heads % p.kvHeads != 0)) throw rangeError(info, fn, "kvHeads must divide heads");
  if (productTooLarge(static_cast<double>(p.positions) * static_cast<double>(std::max<int64_t>(p.kvHeads, 1)) * static_cast<double>(std::max<int64_t>(p.d, 1))) ||
      productTooLarge(static_cast<double>(p.heads) * static_cast<double>(std::max<int64_t>(p.d, 1)))) {
    throw rangeError(info, fn, "sizes too large");
  }
  const ArrayArg<float> q = f32Arg(info, fn, 4, "Q");
  const int64_t qOff = intArg(info, fn, 5, "qOffset");
  checkMatrix(info, fn, "Q", q.length, qOff, p.heads, p.d, std::max<int64_t>(p.d, 1));
  const ArrayArg<float> out = f32Arg(info, fn, 12, "Out");
  const int64_t outOff = intArg(info, fn, 13, "outOffset");
  checkMatrix(info, fn, "Out", out.length, outOff, p.heads, p.d, std::max<int64_t>(p.d, 1));
  p.q = q.data + qOff;
  p.out = out.data + outOff;
  p.scale = floatArg(info, fn, 14, "scale");
  const int64_t rowCount = p.positions * p.kvHeads, rowBytes = (p.d + 7) / 8;
  const float* valuePtrs[2];
  int64_t valueLens[2];
  for (int w = 0; w < 2; ++w) {
    const char* wn = w == 0 ? "k" : "v";
    const ArrayArg<uint8_t> bits = u8Arg(info, fn, 6 + 3 * w, w == 0 ? "kBits" : "vBits");
    const ArrayArg<float> values = f32Arg(info, fn, 7 + 3 * w, w == 0 ? "kValues" : "vValues");
    const ArrayArg<int32_t> start = i32Arg(info, fn, 8 + 3 * w, w == 0 ? "kStart" : "vStart");
    if (bits.length != rowCount * rowBytes) throw rangeError(info, fn, std::string(wn) + "Bits length must be positions*kvHeads*ceil(headDim/8)");
    if (start.length != rowCount + 1) throw rangeError(info, fn, std::string(wn) + "Start length must be positions*kvHeads+1");
    // Every row's values must lie inside the array and match its bitmap (expansion reads exactly them).
    for (int64_t r = 0; r < rowCount; ++r) {
      int64_t count = 0;
      for (int64_t b = 0; b < rowBytes; ++b) {
        uint8_t byte = bits.data[r * rowBytes + b];
        if (b == rowBytes - 1 && (p.d & 7) != 0) byte &= static_cast<uint8_t>((1u << (p.d & 7)) - 1);
        count += __builtin_popcount(byte);
      }
      const int64_t s0 = start.data[r], s1 = start.data[r + 1];
      if (s0 < 0 || s1 - s0 != count || s1 > values.length) throw rangeError(info, fn, std::string(wn) + "Start disagrees with " + wn + "Bits or " + wn + "Values");
    }
    if (w == 0) {
      p.kBits = bits.data;
      p.kValues = values.data;
      p.kValuesEnd = values.data + values.length;
      p.kStart = start.data;
    } else {
      p.vBits = bits.data;
      p.vValues = values.data;
      p.vValuesEnd = values.data + values.length;
      p.vStart = start.data;
    }
    valuePtrs[w] = values.data;
    valueLens[w] = values.length;
  }
  const int64_t outSpan = p.heads * p.d;
  if (outSpan > 0) {
    checkApart(info, fn, "Out", p.out, p.out + outSpan, "Q", p.q, p.q + outSpan);
    checkApart(info, fn, "Out", p.out, p.out + outSpan, "kValues", valuePtrs[0], valuePtrs[0] + valueLens[0]);
    checkApart(info, fn, "Out", p.out, p.out + outSpan, "vValues", valuePtrs[1], valuePtrs[1] + valueLens[1]);
  }
  attentionBitmapKV(p);
  return info.Env().Undefined();
}

// The active set of a masked optimizer step from (indices | null, bits | null) over `size` entries.
ActiveSet readActive(const Napi::CallbackInfo& info, const char* fn, int at, int64_t size) {
  ActiveSet s;
  s.size = size;
  const bool hasIndices = !info[at].IsNull() && !info[at].IsUndefined();
  const bool hasBits = !info[at + 1].IsNull() && !info[at + 1].IsUndefined();
  if (hasIndices == hasBits) throw rangeError(info, fn, "pass exactly one of indices and bits");
  if (hasIndices) {
    const ArrayArg<int32_t> idx = i32Arg(info, fn, at, "indices");
    int64_t prev = -1;
    for (int64_t t = 0; t < idx.length; ++t) {
      const int64_t i = idx.data[t];
      if (i <= prev || i >= size) throw rangeError(info, fn, "indices must be strictly increasing and below the size");
      prev = i;
    }
    s.indices = idx.data;
    s.count = idx.length;
    return s;
  }
  const ArrayArg<uint8_t> bits = u8Arg(info, fn, at + 1, "bits");
  if (bits.length < (size + 7) / 8) throw rangeError(info, fn, "bits is shorter than ceil(size / 8)");
  int64_t count = 0;
  for (int64_t b = 0; b < (size + 7) / 8; ++b) {
    uint32_t byte = bits.data[b];
    if (b * 8 + 8 > size) {
      const int keep = static_cast<int>(size - b * 8);
      if ((byte >> keep) != 0) throw rangeError(info, fn, "bits set past the last entry");
    }
    count += __builtin_popcount(byte);
  }
  for (int64_t b = (size + 7) / 8; b < bits.length; ++b) {
    if (bits.data[b] != 0) throw rangeError(info, fn, "bits set past the last entry");
  }
  s.bits = bits.data;
  s.count = count;
  return s;
}

void checkState(const Napi::CallbackInfo& info, const char* fn, const char* what, const ArrayArg<float>& arr, int64_t count) {
  if (arr.length != count) throw rangeError(info, fn, std::string(what) + " must hold one value per active entry");
}

// maskedAdam(params, grads, indices | null, bits | null, m, v, step, lr, beta1, beta2, eps, weightDecay)
Napi::Value MaskedAdam(const Napi::CallbackInfo& info) {
  const char* fn = "maskedAdam";
  if (info.Length() != 12) throw Napi::TypeError::New(info.Env(), "maskedAdam: expected 12 arguments");
  const ArrayArg<float> params = f32Arg(info, fn, 0, "params");
  const ArrayArg<float> grads = f32Arg(info, fn, 1, "grads");
  if (grads.length != params.length) throw rangeError(info, fn, "grads and params differ in length");
  const ActiveSet active = readActive(info, fn, 2, params.length);
  const ArrayArg<float> m = f32Arg(info, fn, 4, "m");
  const ArrayArg<float> v = f32Arg(info, fn, 5, "v");
  checkState(info, fn, "m", m, active.count);
  checkState(info, fn, "v", v, active.count);
  const int64_t step = intArg(info, fn, 6, "step");
  if (step < 1) throw rangeError(info, fn, "step must be at least 1");
  AdamStep s;
  s.lr = floatArg(info, fn, 7, "lr");
  const double beta1 = info[8].IsNumber() ? info[8].As<Napi::Number>().DoubleValue() : -1;
  const double beta2 = info[9].IsNumber() ? info[9].As<Napi::Number>().DoubleValue() : -1;
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw rangeError(info, fn, "beta1 and beta2 must be in [0, 1)");
  s.beta1 = static_cast<float>(beta1);
  s.beta2 = static_cast<float>(beta2);
  s.eps = floatArg(info, fn, 10, "eps");
  s.weightDecay = floatArg(info, fn, 11, "weightDecay");
  s.invC1 = static_cast<float>(1.0 / (1.0 - std::pow(beta1, static_cast<double>(step))));
  s.invC2 = static_cast<float>(1.0 / (1.0 - std::pow(beta2, static_cast<double>(step))));
  const ArrayArg<float>* arrays[4] = {&params, &grads, &m, &v};
  const char* names[4] = {"params", "grads", "m", "v"};
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      checkApart(info, fn, names[i], arrays[i]->data, arrays[i]->data + arrays[i]->length, names[j], arrays[j]->data,
                 arrays[j]->data + arrays[j]->length);
  maskedAdam(params.data, grads.data, active, m.data, v.data, s);
  return info.Env().Undefined();
}

// maskedSGD(params, grads, indices | null, bits | null, velocity | null, lr, momentum, weightDecay, nesterov)
Napi::Value MaskedSgd(const Napi::CallbackInfo& info) {
  const char* fn = "maskedSGD";
  if (info.Length() != 9) throw Napi::TypeError::New(info.Env(), "maskedSGD: expected 9 arguments");
  const ArrayArg<float> params = f32Arg(info, fn, 0, "params");
  const ArrayArg<float> grads = f32Arg(info, fn, 1, "grads");
  if (grads.length != params.length) throw rangeError(info, fn, "grads and params differ in length");
  const ActiveSet active = readActive(info, fn, 2, params.length);
  SgdStep s;
  s.lr = floatArg(info, fn, 5, "lr");
  s.momentum = floatArg(info, fn, 6, "momentum");
  s.weightDecay = floatArg(info, fn, 7, "weightDecay");
  s.nesterov = boolArg(info, fn, 8, "nesterov");
  ArrayArg<float> vel;
  const bool hasVelocity = !info[4].IsNull() && !info[4].IsUndefined();
  if (s.momentum != 0.0f) {
    if (!hasVelocity) throw rangeError(info, fn, "momentum needs a velocity array");
    vel = f32Arg(info, fn, 4, "velocity");
    checkState(info, fn, "velocity", vel, active.count);
  }
  checkApart(info, fn, "params", params.data, params.data + params.length, "grads", grads.data, grads.data + grads.length);
  if (vel.data != nullptr) {
    checkApart(info, fn, "velocity", vel.data, vel.data + vel.length, "params", params.data, params.data + params.length);
    checkApart(info, fn, "velocity", vel.data, vel.data + vel.length, "grads", grads.data, grads.data + grads.length);
  }
  maskedSgd(params.data, grads.data, active, vel.data, s);
  return info.Env().Undefined();
}

// ---- the sparse layer's training products (token-major activations) ----

// Reads a CSR matrix (rows, cols, indptr, indices[, values]) from argument `at` on: structure
// checked, columns in range, `sorted` set when every row's columns ascend. Returns nnz.
int64_t readCsr(const Napi::CallbackInfo& info, const char* fn, int at, bool withValues, CsrMatrix& a, ArrayArg<float>& values) {
  a.rows = intArg(info, fn, at, "rows");
  a.cols = intArg(info, fn, at + 1, "cols");
  const ArrayArg<int32_t> indptr = i32Arg(info, fn, at + 2, "indptr");
  const ArrayArg<int32_t> indices = i32Arg(info, fn, at + 3, "indices");
  if (withValues) values = f32Arg(info, fn, at + 4, "values");
  if (productTooLarge(static_cast<double>(a.rows) + 1)) throw rangeError(info, fn, "rows is too large");
  const int64_t nnz = checkIndptr(info, fn, indptr, a.rows, withValues ? std::min(indices.length, values.length) : indices.length);
  bool sorted = true;
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t p = indptr.data[r]; p < indptr.data[r + 1]; ++p) {
      const int32_t j = indices.data[p];
      if (j < 0 || j >= a.cols) throw rangeError(info, fn, "column index " + std::to_string(j) + " out of range");
      if (p > indptr.data[r] && j < indices.data[p - 1]) sorted = false;
    }
  }
  a.indptr = indptr.data;
  a.indices = indices.data;
  a.values = values.data;
  a.sorted = sorted;
  return nnz;
}

// Throws when the output [o0, o1) shares bytes with the pattern's indptr or indices, which the
// kernels read while they write the output.
void checkApartFromPattern(const Napi::CallbackInfo& info, const char* fn, const char* outName, const float* o0, const float* o1,
                           const CsrMatrix& a, int64_t nnz) {
  if (o0 >= o1) return;
  if (overlaps(o0, o1, a.indptr, a.indptr + a.rows + 1) || (nnz > 0 && overlaps(o0, o1, a.indices, a.indices + nnz))) {
    throw rangeError(info, fn, std::string(outName) + " overlaps indptr or indices");
  }
}

// Element range [first, end) of a [rows, cols] matrix with leading dimension ld at p (empty when it has no elements).
const float* matrixEnd(const float* p, int64_t rows, int64_t cols, int64_t ld) { return rows > 0 && cols > 0 ? p + (rows - 1) * ld + cols : p; }

// linearCSR(rows, cols, indptr, indices, values, tokens, alpha, X, xOffset, ldx, beta, Y, yOffset, ldy):
// Y[tokens, rows] = alpha * X[tokens, cols] * A^T + beta * Y.
// linearCSRGradInput(rows, cols, indptr, indices, values, tokens, alpha, dY, dyOffset, lddy, beta, dX, dxOffset, lddx):
// dX[tokens, cols] = alpha * dY[tokens, rows] * A + beta * dX.
template <bool GradInput>
Napi::Value LinearCsr(const Napi::CallbackInfo& info) {
  const char* fn = GradInput ? "linearCSRGradInput" : "linearCSR";
  if (info.Length() != 14) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": expected 14 arguments");
  CsrMatrix a;
  ArrayArg<float> values;
  const int64_t nnz = readCsr(info, fn, 0, true, a, values);
  TokenOperands d;
  d.tokens = intArg(info, fn, 5, "tokens");
  d.alpha = floatArg(info, fn, 6, "alpha");
  const ArrayArg<float> in = f32Arg(info, fn, 7, GradInput ? "dY" : "X");
  const int64_t inOff = intArg(info, fn, 8, GradInput ? "dyOffset" : "xOffset");
  d.ldIn = intArg(info, fn, 9, GradInput ? "lddy" : "ldx");
  d.beta = floatArg(info, fn, 10, "beta");
  const ArrayArg<float> out = f32Arg(info, fn, 11, GradInput ? "dX" : "Y");
  const int64_t outOff = intArg(info, fn, 12, GradInput ? "dxOffset" : "yOffset");
  d.ldOut = intArg(info, fn, 13, GradInput ? "lddx" : "ldy");
  const int64_t inCols = GradInput ? a.rows : a.cols, outCols = GradInput ? a.cols : a.rows;
  checkMatrix(info, fn, GradInput ? "dY" : "X", in.length, inOff, d.tokens, inCols, d.ldIn);
  checkMatrix(info, fn, GradInput ? "dX" : "Y", out.length, outOff, d.tokens, outCols, d.ldOut);
  d.in = in.data + inOff;
  d.out = out.data + outOff;
  const float* outEnd = matrixEnd(d.out, d.tokens, outCols, d.ldOut);
  checkApart(info, fn, GradInput ? "dX" : "Y", d.out, outEnd, GradInput ? "dY" : "X", d.in, matrixEnd(d.in, d.tokens, inCols, d.ldIn));
  checkApart(info, fn, GradInput ? "dX" : "Y", d.out, outEnd, "values", a.values, a.values + nnz);
  checkApartFromPattern(info, fn, GradInput ? "dX" : "Y", d.out, outEnd, a, nnz);
  if (GradInput) {
    linearCSRGradInput(a, d);
  } else {
    linearCSR(a, d);
  }
  return info.Env().Undefined();
}

// sddmmCSR(rows, cols, indptr, indices, tokens, alpha, dY, dyOffset, lddy, X, xOffset, ldx, beta, out, outOffset):
// out[outOffset + p] = alpha * sum_t dY[t, row of p] * X[t, indices[p]] + beta * out[outOffset + p].
Napi::Value SddmmCsr(const Napi::CallbackInfo& info) {
  const char* fn = "sddmmCSR";
  if (info.Length() != 15) throw Napi::TypeError::New(info.Env(), "sddmmCSR: expected 15 arguments");
  CsrMatrix a;
  ArrayArg<float> noValues;
  const int64_t nnz = readCsr(info, fn, 0, false, a, noValues);
  SddmmOperands d;
  d.tokens = intArg(info, fn, 4, "tokens");
  d.alpha = floatArg(info, fn, 5, "alpha");
  const ArrayArg<float> dy = f32Arg(info, fn, 6, "dY");
  const int64_t dyOff = intArg(info, fn, 7, "dyOffset");
  d.lddy = intArg(info, fn, 8, "lddy");
  const ArrayArg<float> x = f32Arg(info, fn, 9, "X");
  const int64_t xOff = intArg(info, fn, 10, "xOffset");
  d.ldx = intArg(info, fn, 11, "ldx");
  d.beta = floatArg(info, fn, 12, "beta");
  const ArrayArg<float> out = f32Arg(info, fn, 13, "out");
  const int64_t outOff = intArg(info, fn, 14, "outOffset");
  checkMatrix(info, fn, "dY", dy.length, dyOff, d.tokens, a.rows, d.lddy);
  checkMatrix(info, fn, "X", x.length, xOff, d.tokens, a.cols, d.ldx);
  if (outOff + nnz > out.length) throw rangeError(info, fn, "out is shorter than outOffset + the stored entries");
  d.dy = dy.data + dyOff;
  d.x = x.data + xOff;
  d.out = out.data + outOff;
  checkApart(info, fn, "out", d.out, d.out + nnz, "dY", d.dy, matrixEnd(d.dy, d.tokens, a.rows, d.lddy));
  checkApart(info, fn, "out", d.out, d.out + nnz, "X", d.x, matrixEnd(d.x, d.tokens, a.cols, d.ldx));
  checkApartFromPattern(info, fn, "out", d.out, d.out + nnz, a, nnz);
  sddmmCSR(a, d);
  return info.Env().Undefined();
}

// ---- elementwise (the sparse-cpu tfjs backend's float32 arithmetic) ----

// A small non-negative integer argument below `limit` (an operator code).
int codeArg(const Napi::CallbackInfo& info, const char* fn, int index, const char* what, int limit) {
  const int64_t v = intArg(info, fn, index, what);
  if (v >= limit) throw rangeError(info, fn, std::string(what) + " must be below " + std::to_string(limit));
  return static_cast<int>(v);
}

// elementwiseBinary(op, a, b, out, rank, plan): out[0:prod(dims)] = a op b over `rank` merged axes.
// plan (Float64Array) holds dims, then aSteps, then bSteps, `rank` entries each, innermost axis
// first; a step is 0 where the operand repeats, and the innermost steps are 0 or 1. op: 0 add,
// 1 sub, 2 mul, 3 div. One reusable plan array keeps the call cheap for small tensors.
Napi::Value ElementwiseBinary(const Napi::CallbackInfo& info) {
  const char* fn = "elementwiseBinary";
  if (info.Length() != 6) throw Napi::TypeError::New(info.Env(), "elementwiseBinary: expected 6 arguments");
  const int op = codeArg(info, fn, 0, "op", kBinaryOps);
  const ArrayArg<float> a = f32Arg(info, fn, 1, "a");
  const ArrayArg<float> b = f32Arg(info, fn, 2, "b");
  const ArrayArg<float> out = f32Arg(info, fn, 3, "out");
  const int64_t rank = intArg(info, fn, 4, "rank");
  const ArrayArg<double> planArg = f64Arg(info, fn, 5, "plan");
  if (rank > kMaxBinaryRank) throw rangeError(info, fn, "more than " + std::to_string(kMaxBinaryRank) + " axes");
  if (planArg.length < 3 * rank) throw rangeError(info, fn, "plan is shorter than 3 * rank");
  BinaryPlan p;
  p.rank = static_cast<int>(rank);
  const std::vector<int64_t> all = offsetList(info, fn, ArrayArg<double>{planArg.data, 3 * rank}, "plan");
  const int64_t* d = all.data();
  const int64_t* sa = d + rank;
  const int64_t* sb = d + 2 * rank;
  // Exact in double: every factor and sum is below 2^52 or the check fails first.
  double total = 1, aLast = 0, bLast = 0;
  for (int i = 0; i < p.rank; ++i) {
    p.dims[i] = d[i];
    p.aStep[i] = sa[i];
    p.bStep[i] = sb[i];
    total *= static_cast<double>(d[i]);
    if (productTooLarge(total)) throw rangeError(info, fn, "dims hold too many elements");
  }
  if (p.rank > 0 && (p.aStep[0] > 1 || p.bStep[0] > 1)) throw rangeError(info, fn, "the innermost steps must be 0 or 1");
  if (total > static_cast<double>(out.length)) throw rangeError(info, fn, "out is shorter than the product of dims");
  if (total == 0) return info.Env().Undefined();
  for (int i = 0; i < p.rank; ++i) {
    aLast += static_cast<double>(p.dims[i] - 1) * static_cast<double>(p.aStep[i]);
    bLast += static_cast<double>(p.dims[i] - 1) * static_cast<double>(p.bStep[i]);
  }
  if (aLast >= static_cast<double>(a.length)) throw rangeError(info, fn, "a is too short for dims and aSteps");
  if (bLast >= static_cast<double>(b.length)) throw rangeError(info, fn, "b is too short for dims and bSteps");
  const int64_t n = static_cast<int64_t>(total);
  checkApart(info, fn, "out", out.data, out.data + n, "a", a.data, a.data + static_cast<int64_t>(aLast) + 1);
  checkApart(info, fn, "out", out.data, out.data + n, "b", b.data, b.data + static_cast<int64_t>(bLast) + 1);
  binaryOp(static_cast<BinaryOp>(op), a.data, b.data, out.data, p);
  return info.Env().Undefined();
}

// elementwiseUnary(op, x, out): out[i] = op(x[i]) over x's length. op: 0 neg, 1 abs, 2 square,
// 3 sqrt, 4 rsqrt, 5 reciprocal, 6 relu.
Napi::Value ElementwiseUnary(const Napi::CallbackInfo& info) {
  const char* fn = "elementwiseUnary";
  if (info.Length() != 3) throw Napi::TypeError::New(info.Env(), "elementwiseUnary: expected 3 arguments");
  const int op = codeArg(info, fn, 0, "op", kUnaryOps);
  const ArrayArg<float> x = f32Arg(info, fn, 1, "x");
  const ArrayArg<float> out = f32Arg(info, fn, 2, "out");
  if (out.length < x.length) throw rangeError(info, fn, "out is shorter than x");
  checkApart(info, fn, "out", out.data, out.data + x.length, "x", x.data, x.data + x.length);
  unaryOp(static_cast<UnaryOp>(op), x.data, out.data, x.length);
  return info.Env().Undefined();
}

// reduceLastAxis(op, x, rows, cols, out): out[r] = reduce(x[r*cols : (r+1)*cols]). op: 0 sum
// (float64 accumulation), 1 max (NaN wins). cols must be positive when rows are.
Napi::Value ReduceLastAxis(const Napi::CallbackInfo& info) {
  const char* fn = "reduceLastAxis";
  if (info.Length() != 5) throw Napi::TypeError::New(info.Env(), "reduceLastAxis: expected 5 arguments");
  const int op = codeArg(info, fn, 0, "op", kReduceOps);
  const ArrayArg<float> x = f32Arg(info, fn, 1, "x");
  const int64_t rows = intArg(info, fn, 2, "rows");
  const int64_t cols = intArg(info, fn, 3, "cols");
  const ArrayArg<float> out = f32Arg(info, fn, 4, "out");
  if (rows > 0 && cols == 0) throw rangeError(info, fn, "cols must be positive");
  if (productTooLarge(static_cast<double>(rows) * static_cast<double>(cols)) || rows * cols > x.length) {
    throw rangeError(info, fn, "x is shorter than rows * cols");
  }
  if (out.length < rows) throw rangeError(info, fn, "out is shorter than rows");
  checkApart(info, fn, "out", out.data, out.data + rows, "x", x.data, x.data + rows * cols);
  reduceRows(static_cast<ReduceOp>(op), x.data, rows, cols, out.data);
  return info.Env().Undefined();
}

// gather32(x, start, out, rank, plan): copies a strided view of x's 4-byte elements, starting at
// element `start`, into out[0:prod(dims)]; plan (Float64Array) holds dims, then steps, `rank`
// entries each, innermost axis first. x and out are Float32Arrays (views of any 4-byte data: bits
// are copied as they are).
Napi::Value Gather32(const Napi::CallbackInfo& info) {
  const char* fn = "gather32";
  if (info.Length() != 5) throw Napi::TypeError::New(info.Env(), "gather32: expected 5 arguments");
  const ArrayArg<float> x = f32Arg(info, fn, 0, "x");
  const int64_t start = intArg(info, fn, 1, "start");
  const ArrayArg<float> out = f32Arg(info, fn, 2, "out");
  const int64_t rank = intArg(info, fn, 3, "rank");
  const ArrayArg<double> planArg = f64Arg(info, fn, 4, "plan");
  if (rank > kMaxBinaryRank) throw rangeError(info, fn, "more than " + std::to_string(kMaxBinaryRank) + " axes");
  if (planArg.length < 2 * rank) throw rangeError(info, fn, "plan is shorter than 2 * rank");
  const std::vector<int64_t> all = offsetList(info, fn, ArrayArg<double>{planArg.data, 2 * rank}, "plan");
  GatherPlan p;
  p.rank = static_cast<int>(rank);
  double total = 1, last = static_cast<double>(start);
  for (int i = 0; i < p.rank; ++i) {
    p.dims[i] = all[i];
    p.step[i] = all[rank + i];
    total *= static_cast<double>(p.dims[i]);
    if (productTooLarge(total)) throw rangeError(info, fn, "dims hold too many elements");
  }
  if (total > static_cast<double>(out.length)) throw rangeError(info, fn, "out is shorter than the product of dims");
  if (total == 0) return info.Env().Undefined();
  for (int i = 0; i < p.rank; ++i) last += static_cast<double>(p.dims[i] - 1) * static_cast<double>(p.step[i]);
  if (last >= static_cast<double>(x.length)) throw rangeError(info, fn, "x is too short for start, dims and steps");
  const int64_t n = static_cast<int64_t>(total);
  checkApart(info, fn, "out", out.data, out.data + n, "x", x.data + start, x.data + static_cast<int64_t>(last) + 1);
  gather32(reinterpret_cast<const uint32_t*>(x.data + start), reinterpret_cast<uint32_t*>(out.data), p);
  return info.Env().Undefined();
}

// choleskyF64(n, A, aOffset, lda): A's lower triangle becomes the lower Cholesky factor in place (upper
// triangle zeroed). Returns null, or { index, pivot } for the first pivot that is not positive.
Napi::Value CholeskyF64(const Napi::CallbackInfo& info) {
  const char* fn = "choleskyF64";
  if (info.Length() != 4) throw Napi::TypeError::New(info.Env(), "choleskyF64: expected 4 arguments");
  const int64_t n = intArg(info, fn, 0, "n");
  const ArrayArg<double> a = f64Arg(info, fn, 1, "A");
  const int64_t off = intArg(info, fn, 2, "aOffset");
  const int64_t lda = intArg(info, fn, 3, "lda");
  checkMatrix(info, fn, "A", a.length, off, n, n, lda);
  double pivot = 0.0;
  const int64_t bad = n > 0 ? choleskyLowerF64(n, a.data + off, lda, &pivot) : -1;
  if (bad < 0) return info.Env().Null();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("index", static_cast<double>(bad));
  out.Set("pivot", pivot);
  return out;
}

// triangularInverseF64(n, L, lOffset, ldl, X, xOffset, ldx): X = L^{-1} for lower-triangular L (its upper
// triangle not read; X's upper triangle zeroed). Returns -1, or the first diagonal entry of L that is
// zero or not finite. X is L itself (same offset and leading dimension: in place) or disjoint from it.
Napi::Value TriangularInverseF64(const Napi::CallbackInfo& info) {
  const char* fn = "triangularInverseF64";
  if (info.Length() != 7) throw Napi::TypeError::New(info.Env(), "triangularInverseF64: expected 7 arguments");
  const int64_t n = intArg(info, fn, 0, "n");
  const ArrayArg<double> l = f64Arg(info, fn, 1, "L");
  const int64_t lOff = intArg(info, fn, 2, "lOffset");
  const int64_t ldl = intArg(info, fn, 3, "ldl");
  const ArrayArg<double> x = f64Arg(info, fn, 4, "X");
  const int64_t xOff = intArg(info, fn, 5, "xOffset");
  const int64_t ldx = intArg(info, fn, 6, "ldx");
  checkMatrix(info, fn, "L", l.length, lOff, n, n, ldl);
  checkMatrix(info, fn, "X", x.length, xOff, n, n, ldx);
  if (n == 0) return Napi::Number::New(info.Env(), -1);
  const double* l0 = l.data + lOff;
  double* x0 = x.data + xOff;
  const bool inPlace = x0 == l0 && ldx == ldl;
  if (!inPlace && overlaps(x0, x0 + (n - 1) * ldx + n, l0, l0 + (n - 1) * ldl + n)) {
    throw rangeError(info, fn, "X overlaps L (pass the same array, offset and leading dimension to invert in place)");
  }
  return Napi::Number::New(info.Env(), static_cast<double>(lowerTriangularInverseF64(n, l0, ldl, x0, ldx)));
}

// ---- pruning selection (prune_select.h) ----

// columnMomentsF32(rows, cols, X, xOffset, ldx, sumSquares, mean, m2): per-column float64 moments of the
// float32 batch X; returns -1, or the lowest flat index of a non-finite entry (nothing written then).
Napi::Value ColumnMomentsF32(const Napi::CallbackInfo& info) {
  const char* fn = "columnMomentsF32";
  if (info.Length() != 8) throw Napi::TypeError::New(info.Env(), "columnMomentsF32: expected 8 arguments");
  const int64_t rows = intArg(info, fn, 0, "rows");
  const int64_t cols = intArg(info, fn, 1, "cols");
  const ArrayArg<float> x = f32Arg(info, fn, 2, "X");
  const int64_t off = intArg(info, fn, 3, "xOffset");
  const int64_t ldx = intArg(info, fn, 4, "ldx");
  checkMatrix(info, fn, "X", x.length, off, rows, cols, ldx);
  const char* names[3] = {"sumSquares", "mean", "m2"};
  double* outs[3];
  for (int t = 0; t < 3; ++t) {
    const ArrayArg<double> a = f64Arg(info, fn, 5 + t, names[t]);
    if (a.length < cols) throw rangeError(info, fn, std::string(names[t]) + " is shorter than cols");
    outs[t] = a.data;
  }
  for (int t = 0; t < 3; ++t) {
    for (int u = t + 1; u < 3; ++u) {
      if (cols > 0 && overlaps(outs[t], outs[t] + cols, outs[u], outs[u] + cols)) {
        throw rangeError(info, fn, std::string(names[t]) + " overlaps " + names[u]);
      }
    }
  }
  return Napi::Number::New(info.Env(), static_cast<double>(columnMomentsF32(rows, cols, x.data + off, ldx, outs[0], outs[1], outs[2])));
}

// rowTopKScaledAbs(rows, cols, W, wOffset, ldw, scale, k, mask, out|null, outOffset, ldo): per row, the k
// largest |w_ij| * scale_j kept (ties to the lower column) in the Uint32Array mask and, when given, in out
// (W itself or apart from it). Returns -1, or the lowest flat index of a non-finite weight.
Napi::Value RowTopKScaledAbsFn(const Napi::CallbackInfo& info) {
  const char* fn = "rowTopKScaledAbs";
  if (info.Length() != 11) throw Napi::TypeError::New(info.Env(), "rowTopKScaledAbs: expected 11 arguments");
  const int64_t rows = intArg(info, fn, 0, "rows");
  const int64_t cols = intArg(info, fn, 1, "cols");
  const ArrayArg<float> w = f32Arg(info, fn, 2, "W");
  const int64_t wOff = intArg(info, fn, 3, "wOffset");
  const int64_t ldw = intArg(info, fn, 4, "ldw");
  const ArrayArg<double> scale = f64Arg(info, fn, 5, "scale");
  const int64_t k = intArg(info, fn, 6, "k");
  const ArrayArg<uint32_t> mask = arrayArg<uint32_t>(info, fn, 7, "mask", napi_uint32_array, "Uint32Array");
  checkMatrix(info, fn, "W", w.length, wOff, rows, cols, ldw);
  const double total = static_cast<double>(rows) * static_cast<double>(cols);
  if (productTooLarge(total)) throw rangeError(info, fn, "rows * cols is too large");
  const int64_t words = (rows * cols + 31) / 32;
  if (scale.length < cols) throw rangeError(info, fn, "scale is shorter than cols");
  if (k > cols) throw rangeError(info, fn, "k is larger than cols");
  if (mask.length < words) throw rangeError(info, fn, "mask is shorter than ceil(rows * cols / 32) words");
  for (int64_t j = 0; j < cols; ++j) {
    if (!(scale.data[j] >= 0) || !std::isfinite(scale.data[j])) throw rangeError(info, fn, "scale must be finite and non-negative");
  }
  const float* w0 = w.data + wOff;
  const float* wEnd = rows > 0 && cols > 0 ? w0 + (rows - 1) * ldw + cols : w0;
  if (words > 0 && overlaps(mask.data, mask.data + words, w0, wEnd)) throw rangeError(info, fn, "mask overlaps W");
  float* out = nullptr;
  int64_t ldo = 1;
  if (!info[8].IsNull()) {
    const ArrayArg<float> o = f32Arg(info, fn, 8, "out");
    const int64_t oOff = intArg(info, fn, 9, "outOffset");
    ldo = intArg(info, fn, 10, "ldo");
    checkMatrix(info, fn, "out", o.length, oOff, rows, cols, ldo);
    out = o.data + oOff;
    const float* oEnd = rows > 0 && cols > 0 ? out + (rows - 1) * ldo + cols : out;
    const bool inPlace = out == w0 && ldo == ldw;
    if (!inPlace && overlaps(out, oEnd, w0, wEnd)) throw rangeError(info, fn, "out overlaps W (pass W itself with ldo = ldw to write in place)");
    if (words > 0 && overlaps(mask.data, mask.data + words, out, oEnd)) throw rangeError(info, fn, "mask overlaps out");
  }
  return Napi::Number::New(info.Env(), static_cast<double>(rowTopKScaledAbs(rows, cols, w0, ldw, scale.data, k, mask.data, out, ldo)));
}

// ---- fused training ops (fused.h) ----

// A Float32Array argument, or nullptr when it is null and `optional`.
const float* optionalF32(const Napi::CallbackInfo& info, const char* fn, int index, const char* what, int64_t need,
                         bool optional) {
  if (optional && info[index].IsNull()) return nullptr;
  const ArrayArg<float> a = f32Arg(info, fn, index, what);
  if (a.length < need) {
    throw rangeError(info, fn, std::string(what) + " holds " + std::to_string(a.length) + " elements, needs " + std::to_string(need));
  }
  return a.data;
}

int64_t checkedElements(const Napi::CallbackInfo& info, const char* fn, int64_t rows, int64_t cols) {
  const double n = static_cast<double>(rows) * static_cast<double>(cols);
  if (productTooLarge(n)) throw rangeError(info, fn, "rows * cols is too large");
  return rows * cols;
}

void checkApartAll(const Napi::CallbackInfo& info, const char* fn, const char* outName, const float* o, int64_t on,
                   std::initializer_list<std::pair<const char*, std::pair<const float*, int64_t>>> ins) {
  if (o == nullptr) return;
  for (const auto& in : ins) {
    if (in.second.first == nullptr) continue;
    checkApart(info, fn, outName, o, o + on, in.first, in.second.first, in.second.first + in.second.second);
  }
}

// fusedNormForward(rms, x, gamma, beta|null, rows, cols, eps, y, mean|null, rstd): layer norm
// (rms false; beta null for none) or RMS norm of x's rows. mean may be null only for rms.
Napi::Value FusedNormForwardFn(const Napi::CallbackInfo& info) {
  const char* fn = "fusedNormForward";
  if (info.Length() != 10) throw Napi::TypeError::New(info.Env(), "fusedNormForward: expected 10 arguments");
  const bool rms = boolArg(info, fn, 0, "rms");
  const int64_t rows = intArg(info, fn, 4, "rows");
  const int64_t cols = intArg(info, fn, 5, "cols");
  const float eps = floatArg(info, fn, 6, "eps");
  if (!(eps >= 0.0f) || !std::isfinite(eps)) throw rangeError(info, fn, "eps must be a finite non-negative number");
  if (rows > 0 && cols == 0) throw rangeError(info, fn, "cols must be positive");
  const int64_t n = checkedElements(info, fn, rows, cols);
  const float* x = optionalF32(info, fn, 1, "x", n, false);
  const float* gamma = optionalF32(info, fn, 2, "gamma", cols, false);
  const float* beta = optionalF32(info, fn, 3, "beta", cols, true);
  float* y = const_cast<float*>(optionalF32(info, fn, 7, "y", n, false));
  float* mean = const_cast<float*>(optionalF32(info, fn, 8, "mean", rows, rms));
  float* rstd = const_cast<float*>(optionalF32(info, fn, 9, "rstd", rows, false));
  const auto ins = {std::make_pair("x", std::make_pair(x, n)), std::make_pair("gamma", std::make_pair(gamma, cols)),
                    std::make_pair("beta", std::make_pair(static_cast<const float*>(beta), beta ? cols : 0))};
  checkApartAll(info, fn, "y", y, n, ins);
  checkApartAll(info, fn, "mean", mean, rows, ins);
  checkApartAll(info, fn, "rstd", rstd, rows, ins);
  checkApart(info, fn, "rstd", rstd, rstd + rows, "y", y, y + n);
  if (mean != nullptr) {
    checkApart(info, fn, "mean", mean, mean + rows, "y", y, y + n);
    checkApart(info, fn, "mean", mean, mean + rows, "rstd", rstd, rstd + rows);
  }
  fusedNormForward(rms, x, gamma, beta, rows, cols, eps, y, mean, rstd);
  return info.Env().Undefined();
}

// fusedNormBackward(rms, dy, x, gamma, mean|null, rstd, rows, cols, dx, dgamma, dbeta|null): the
// gradients of fusedNormForward. mean may be null only for rms.
Napi::Value FusedNormBackwardFn(const Napi::CallbackInfo& info) {
  const char* fn = "fusedNormBackward";
  if (info.Length() != 11) throw Napi::TypeError::New(info.Env(), "fusedNormBackward: expected 11 arguments");
  const bool rms = boolArg(info, fn, 0, "rms");
  const int64_t rows = intArg(info, fn, 6, "rows");
  const int64_t cols = intArg(info, fn, 7, "cols");
  if (rows > 0 && cols == 0) throw rangeError(info, fn, "cols must be positive");
  const int64_t n = checkedElements(info, fn, rows, cols);
  const float* dy = optionalF32(info, fn, 1, "dy", n, false);
  const float* x = optionalF32(info, fn, 2, "x", n, false);
  const float* gamma = optionalF32(info, fn, 3, "gamma", cols, false);
  const float* mean = optionalF32(info, fn, 4, "mean", rows, rms);
  const float* rstd = optionalF32(info, fn, 5, "rstd", rows, false);
  float* dx = const_cast<float*>(optionalF32(info, fn, 8, "dx", n, false));
  float* dgamma = const_cast<float*>(optionalF32(info, fn, 9, "dgamma", cols, false));
  float* dbeta = const_cast<float*>(optionalF32(info, fn, 10, "dbeta", cols, true));
  const auto ins = {std::make_pair("dy", std::make_pair(dy, n)), std::make_pair("x", std::make_pair(x, n)),
                    std::make_pair("gamma", std::make_pair(gamma, cols)),
                    std::make_pair("mean", std::make_pair(mean, mean ? rows : 0)), std::make_pair("rstd", std::make_pair(rstd, rows))};
  checkApartAll(info, fn, "dx", dx, n, ins);
  checkApartAll(info, fn, "dgamma", dgamma, cols, ins);
  checkApartAll(info, fn, "dbeta", dbeta, dbeta ? cols : 0, ins);
  checkApart(info, fn, "dgamma", dgamma, dgamma + cols, "dx", dx, dx + n);
  if (dbeta != nullptr) {
    checkApart(info, fn, "dbeta", dbeta, dbeta + cols, "dx", dx, dx + n);
    checkApart(info, fn, "dbeta", dbeta, dbeta + cols, "dgamma", dgamma, dgamma + cols);
  }
  fusedNormBackward(rms, dy, x, gamma, mean, rstd, rows, cols, dx, dgamma, dbeta);
  return info.Env().Undefined();
}

// fusedActForward(op, x, b|null, y): op 0 GELU (tanh form; b null), 1 SwiGLU silu(x) * b, 2 SiLU (b null). Over x's length.
Napi::Value FusedActForwardFn(const Napi::CallbackInfo& info) {
  const char* fn = "fusedActForward";
  if (info.Length() != 4) throw Napi::TypeError::New(info.Env(), "fusedActForward: expected 4 arguments");
  const int op = codeArg(info, fn, 0, "op", kFusedActs);
  const ArrayArg<float> x = f32Arg(info, fn, 1, "x");
  const bool gated = op == static_cast<int>(FusedAct::SwiGlu);
  const float* b = optionalF32(info, fn, 2, "b", x.length, !gated);
  if (!gated && b != nullptr) throw rangeError(info, fn, "b must be null for GELU and SiLU");
  float* y = const_cast<float*>(optionalF32(info, fn, 3, "y", x.length, false));
  checkApartAll(info, fn, "y", y, x.length, {std::make_pair("x", std::make_pair(static_cast<const float*>(x.data), x.length)), std::make_pair("b", std::make_pair(b, b ? x.length : 0))});
  fusedActForward(static_cast<FusedAct>(op), x.data, b, y, x.length);
  return info.Env().Undefined();
}

// fusedActBackward(op, dy, x, b|null, dx, db|null): gradients of fusedActForward (db for SwiGLU only).
Napi::Value FusedActBackwardFn(const Napi::CallbackInfo& info) {
  const char* fn = "fusedActBackward";
  if (info.Length() != 6) throw Napi::TypeError::New(info.Env(), "fusedActBackward: expected 6 arguments");
  const int op = codeArg(info, fn, 0, "op", kFusedActs);
  const ArrayArg<float> x = f32Arg(info, fn, 2, "x");
  const int64_t n = x.length;
  const bool gated = op == static_cast<int>(FusedAct::SwiGlu);
  const float* dy = optionalF32(info, fn, 1, "dy", n, false);
  const float* b = optionalF32(info, fn, 3, "b", n, !gated);
  float* dx = const_cast<float*>(optionalF32(info, fn, 4, "dx", n, false));
  float* db = const_cast<float*>(optionalF32(info, fn, 5, "db", n, !gated));
  if (!gated && (b != nullptr || db != nullptr)) throw rangeError(info, fn, "b and db must be null for GELU and SiLU");
  const auto ins = {std::make_pair("dy", std::make_pair(dy, n)), std::make_pair("x", std::make_pair(static_cast<const float*>(x.data), n)),
                    std::make_pair("b", std::make_pair(b, b ? n : 0))};
  checkApartAll(info, fn, "dx", dx, n, ins);
  checkApartAll(info, fn, "db", db, db ? n : 0, ins);
  if (db != nullptr) checkApart(info, fn, "db", db, db + n, "dx", dx, dx + n);
  fusedActBackward(static_cast<FusedAct>(op), dy, x.data, b, dx, db, n);
  return info.Env().Undefined();
}

// Checks targets[0:rows] lie in [0, cols).
void checkTargets(const Napi::CallbackInfo& info, const char* fn, const ArrayArg<int32_t>& targets, int64_t rows,
                  int64_t cols) {
  if (targets.length < rows) throw rangeError(info, fn, "targets is shorter than rows");
  for (int64_t r = 0; r < rows; ++r) {
    if (targets.data[r] < 0 || targets.data[r] >= cols) {
      throw rangeError(info, fn, "targets[" + std::to_string(r) + "] = " + std::to_string(targets.data[r]) + " is outside [0, " + std::to_string(cols) + ")");
    }
  }
}

// fusedCrossEntropy(logits, targets, rows, cols, lse): mean over rows of logsumexp - target logit;
// writes lse [rows]. rows must be positive.
Napi::Value FusedCrossEntropyFn(const Napi::CallbackInfo& info) {
  const char* fn = "fusedCrossEntropy";
  if (info.Length() != 5) throw Napi::TypeError::New(info.Env(), "fusedCrossEntropy: expected 5 arguments");
  const int64_t rows = intArg(info, fn, 2, "rows");
  const int64_t cols = intArg(info, fn, 3, "cols");
  if (rows == 0 || cols == 0) throw rangeError(info, fn, "rows and cols must be positive");
  const int64_t n = checkedElements(info, fn, rows, cols);
  const float* logits = optionalF32(info, fn, 0, "logits", n, false);
  const ArrayArg<int32_t> targets = i32Arg(info, fn, 1, "targets");
  float* lse = const_cast<float*>(optionalF32(info, fn, 4, "lse", rows, false));
  checkTargets(info, fn, targets, rows, cols);
  checkApart(info, fn, "lse", lse, lse + rows, "logits", logits, logits + n);
  return Napi::Number::New(info.Env(), fusedCrossEntropyForward(logits, targets.data, rows, cols, lse));
}

// fusedCrossEntropyBackward(logits, targets, lse, rows, cols, scale, dlogits):
// dlogits = scale * (softmax(logits) - onehot(targets)), with softmax from lse.
Napi::Value FusedCrossEntropyBackwardFn(const Napi::CallbackInfo& info) {
  const char* fn = "fusedCrossEntropyBackward";
  if (info.Length() != 7) throw Napi::TypeError::New(info.Env(), "fusedCrossEntropyBackward: expected 7 arguments");
  const int64_t rows = intArg(info, fn, 3, "rows");
  const int64_t cols = intArg(info, fn, 4, "cols");
  if (rows > 0 && cols == 0) throw rangeError(info, fn, "cols must be positive");
  const int64_t n = checkedElements(info, fn, rows, cols);
  const float* logits = optionalF32(info, fn, 0, "logits", n, false);
  const ArrayArg<int32_t> targets = i32Arg(info, fn, 1, "targets");
  const float* lse = optionalF32(info, fn, 2, "lse", rows, false);
  const float scale = floatArg(info, fn, 5, "scale");
  float* d = const_cast<float*>(optionalF32(info, fn, 6, "dlogits", n, false));
  checkTargets(info, fn, targets, rows, cols);
  checkApartAll(info, fn, "dlogits", d, n, {std::make_pair("logits", std::make_pair(logits, n)), std::make_pair("lse", std::make_pair(lse, rows))});
  fusedCrossEntropyBackward(logits, targets.data, lse, rows, cols, scale, d);
  return info.Env().Undefined();
}

// fusedSoftmax(x, rows, cols, causal, y): row softmax of x [rows, cols] into y; causal > 0 masks
// column c of row r when c > r % causal.
Napi::Value FusedSoftmaxFn(const Napi::CallbackInfo& info) {
  const char* fn = "fusedSoftmax";
  if (info.Length() != 5) throw Napi::TypeError::New(info.Env(), "fusedSoftmax: expected 5 arguments");
  const int64_t rows = intArg(info, fn, 1, "rows");
  const int64_t cols = intArg(info, fn, 2, "cols");
  const int64_t causal = intArg(info, fn, 3, "causal");
  const int64_t n = checkedElements(info, fn, rows, cols);
  const float* x = optionalF32(info, fn, 0, "x", n, false);
  float* y = const_cast<float*>(optionalF32(info, fn, 4, "y", n, false));
  checkApartAll(info, fn, "y", y, n, {std::make_pair("x", std::make_pair(x, n))});
  fusedSoftmaxForward(x, rows, cols, causal, y);
  return info.Env().Undefined();
}

// fusedSoftmaxBackward(dy, y, rows, cols, causal, dx): dx = y * (dy - rowsum(dy * y)).
Napi::Value FusedSoftmaxBackwardFn(const Napi::CallbackInfo& info) {
  const char* fn = "fusedSoftmaxBackward";
  if (info.Length() != 6) throw Napi::TypeError::New(info.Env(), "fusedSoftmaxBackward: expected 6 arguments");
  const int64_t rows = intArg(info, fn, 2, "rows");
  const int64_t cols = intArg(info, fn, 3, "cols");
  const int64_t causal = intArg(info, fn, 4, "causal");
  const int64_t n = checkedElements(info, fn, rows, cols);
  const float* dy = optionalF32(info, fn, 0, "dy", n, false);
  const float* y = optionalF32(info, fn, 1, "y", n, false);
  float* dx = const_cast<float*>(optionalF32(info, fn, 5, "dx", n, false));
  checkApartAll(info, fn, "dx", dx, n, {std::make_pair("dy", std::make_pair(dy, n)), std::make_pair("y", std::make_pair(y, n))});
  fusedSoftmaxBackward(dy, y, rows, cols, causal, dx);
  return info.Env().Undefined();
}

// A Float32Array in a JavaScript array of them, named "<what>[i]".
ArrayArg<float> f32Element(const Napi::CallbackInfo& info, const char* fn, const Napi::Array& arr, uint32_t i,
                           const char* what) {
  const Napi::Value v = arr.Get(i);
  const std::string name = std::string(what) + "[" + std::to_string(i) + "]";
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name + " must be a Float32Array");
  }
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  return ArrayArg<float>{a.Data(), static_cast<int64_t>(a.ElementLength())};
}

// sumOfSquares(arrays): the sum of x*x over every element of every Float32Array in `arrays`, in
// float64 (a global gradient norm, squared).
Napi::Value SumOfSquaresFn(const Napi::CallbackInfo& info) {
  const char* fn = "sumOfSquares";
  if (info.Length() != 1) throw Napi::TypeError::New(info.Env(), "sumOfSquares: expected 1 argument");
  if (!info[0].IsArray()) throw Napi::TypeError::New(info.Env(), argName(fn, 0, "arrays") + " must be an array of Float32Arrays");
  const Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::pair<const float*, int64_t>> spans;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const ArrayArg<float> a = f32Element(info, fn, arr, i, "arrays");
    spans.emplace_back(a.data, a.length);
  }
  return Napi::Number::New(info.Env(), sumOfSquares(spans));
}

// fusedAdam(params, grads, m, v, corrections, scalars): one Adam step of every tensor, in place.
// params, grads, m, v: arrays of Float32Arrays, element i of each the same length; corrections
// (Float64Array): c1, c2 per tensor; scalars (Float64Array): beta1, 1 - beta1, beta2, 1 - beta2,
// eps, lr (each used rounded to float32). No written array may overlap another array.
Napi::Value FusedAdamFn(const Napi::CallbackInfo& info) {
  const char* fn = "fusedAdam";
  if (info.Length() != 6) throw Napi::TypeError::New(info.Env(), "fusedAdam: expected 6 arguments");
  const char* names[4] = {"params", "grads", "m", "v"};
  Napi::Array arrs[4];
  for (int k = 0; k < 4; ++k) {
    if (!info[k].IsArray()) throw Napi::TypeError::New(info.Env(), argName(fn, k, names[k]) + " must be an array of Float32Arrays");
    arrs[k] = info[k].As<Napi::Array>();
  }
  const uint32_t count = arrs[0].Length();
  for (int k = 1; k < 4; ++k) {
    if (arrs[k].Length() != count) throw rangeError(info, fn, std::string(names[k]) + " holds " + std::to_string(arrs[k].Length()) + " arrays, params " + std::to_string(count));
  }
  const ArrayArg<double> corr = f64Arg(info, fn, 4, "corrections");
  const ArrayArg<double> sc = f64Arg(info, fn, 5, "scalars");
  if (corr.length < 2 * static_cast<int64_t>(count)) throw rangeError(info, fn, "corrections holds fewer than 2 values per tensor");
  if (sc.length < 6) throw rangeError(info, fn, "scalars must hold beta1, 1 - beta1, beta2, 1 - beta2, eps, lr");
  for (int64_t i = 0; i < 6; ++i) {
    if (!std::isfinite(sc.data[i])) throw rangeError(info, fn, "scalars[" + std::to_string(i) + "] is not finite");
  }
  std::vector<AdamTensor> tensors(count);
  // every array's element range, and whether it is written
  struct Range {
    const float* a;
    const float* b;
    bool written;
    std::string name;
  };
  std::vector<Range> ranges;
  ranges.reserve(4 * static_cast<size_t>(count));
  for (uint32_t i = 0; i < count; ++i) {
    ArrayArg<float> a[4];
    for (int k = 0; k < 4; ++k) a[k] = f32Element(info, fn, arrs[k], i, names[k]);
    for (int k = 1; k < 4; ++k) {
      if (a[k].length != a[0].length) {
        throw rangeError(info, fn, std::string(names[k]) + "[" + std::to_string(i) + "] holds " + std::to_string(a[k].length) + " values, params[" + std::to_string(i) + "] " + std::to_string(a[0].length));
      }
    }
    for (int k = 0; k < 4; ++k) ranges.push_back({a[k].data, a[k].data + a[k].length, k != 1, std::string(names[k]) + "[" + std::to_string(i) + "]"});
    AdamTensor& t = tensors[i];
    t.param = a[0].data;
    t.grad = a[1].data;
    t.m = a[2].data;
    t.v = a[3].data;
    t.n = a[0].length;
    t.c1 = static_cast<float>(corr.data[2 * i]);
    t.c2 = static_cast<float>(corr.data[2 * i + 1]);
  }
  for (size_t x = 0; x < ranges.size(); ++x) {
    if (!ranges[x].written) continue;
    for (size_t y = 0; y < ranges.size(); ++y) {
      if (x == y) continue;
      const Range& p = ranges[x];
      const Range& q = ranges[y];
      if (p.a < p.b && q.a < q.b && overlaps(p.a, p.b, q.a, q.b)) throw rangeError(info, fn, p.name + " overlaps " + q.name);
    }
  }
  AdamScalars s{static_cast<float>(sc.data[0]), static_cast<float>(sc.data[1]), static_cast<float>(sc.data[2]),
                static_cast<float>(sc.data[3]), static_cast<float>(sc.data[4]), static_cast<float>(sc.data[5])};
  fusedAdamStep(tensors, s);
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("simd", isaName(activeIsa()));  // the older name of `isa`
  out.Set("threads", poolSize());
#if defined(SPARSE_HAVE_OPENBLAS)
  out.Set("blas", "openblas");
  // The kernel OpenBLAS picked for this CPU (or was told to use with OPENBLAS_CORETYPE).
  const char* core = openblas_get_corename();
  out.Set("blasCore", core != nullptr ? core : "");
#else
  out.Set("blas", "none");
  out.Set("blasCore", "");
#endif
  // Each kernel with the family its inner loops run: 16-wide kernels follow the selected family;
  // the others have AVX2 and portable forms only.
  enum Form { kPortable, kNarrow, kWide };  // plain C++ only; AVX2 + portable; 16-wide too
  struct Entry {
    const char* name;
    Form form;
  };
  const Entry entries[] = {{"gemm", kWide},
                           {"gemmBatched", kWide},
                           {"spmmCSR", kWide},
                           {"spmmNM", kWide},
                           {"spmmBlock", kWide},
                           {"gemvSparseInput", kWide},
                           {"attention", kWide},
                           {"maskedAdam", kWide},
                           {"maskedSGD", kWide},
                           {"elementwiseBinary", kWide},
                           {"elementwiseUnary", kWide},
                           {"reduceLastAxis", kWide},
                           {"gather32", kPortable},
                           {"linearCSR", kNarrow},
                           {"linearCSRGradInput", kNarrow},
                           {"sddmmCSR", kNarrow},
                           {"attentionBackward", kWide},
                           {"attentionBitmapKV", kWide},
                           {"choleskyF64", kWide},
                           {"triangularInverseF64", kWide},
                           {"columnMomentsF32", kPortable},
                           {"rowTopKScaledAbs", kPortable},
                           {"fusedNormForward", kPortable},
                           {"fusedNormBackward", kPortable},
                           {"fusedActForward", kNarrow},
                           {"fusedActBackward", kNarrow},
                           {"fusedCrossEntropy", kPortable},
                           {"fusedCrossEntropyBackward", kPortable},
                           {"fusedSoftmax", kWide},
                           {"fusedSoftmaxBackward", kPortable},
                           {"sumOfSquares", kPortable},
                           {"fusedAdam", kPortable}};
  const Isa isa = activeIsa();
  const char* narrow = useAvx2() ? "avx2" : "scalar";
  Napi::Array kernels = Napi::Array::New(env);
  Napi::Object paths = Napi::Object::New(env);
  uint32_t i = 0;
  for (const Entry& e : entries) {
    kernels.Set(i++, e.name);
    const char* family = e.form == kWide ? isaName(isa) : e.form == kNarrow ? narrow : "portable";
    paths.Set(e.name, std::strcmp(e.name, "spmmNM") == 0 ? nmStripIsa() : family);
  }
  out.Set("kernels", kernels);
  out.Set("isa", isaName(isa));
  out.Set("kernelIsa", paths);
  out.Set("isaNote", isaNote());
  const CpuFeatures& f = cpuFeatures();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("avx2", f.avx2 && f.fma && f.osYmm);
  cpu.Set("avx512", f.avx512f && f.avx512bw && f.avx512vl && f.osZmm);
  cpu.Set("avx512bf16", f.avx512bf16 && f.osZmm);
  cpu.Set("avx512vnni", f.avx512vnni && f.osZmm);
  cpu.Set("split512", f.split512);
#if defined(SPARSE_WITH_AVX512)
  cpu.Set("built", "avx512,avx512-emu,avx2,scalar");
#elif defined(SPARSE_WITH_AVX2)
  cpu.Set("built", "avx2,scalar");
#else
  cpu.Set("built", "scalar");
#endif
  out.Set("cpu", cpu);
  return out;
}

}  // namespace
}  // namespace sparse

static Napi::Object InitSparseCpu(Napi::Env env, Napi::Object exports) {
  using namespace sparse;
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("gemm", Napi::Function::New(env, Gemm<gemm>, "gemm"));
  exports.Set("gemmBatched", Napi::Function::New(env, GemmBatched, "gemmBatched"));
  exports.Set("gemmBlocked", Napi::Function::New(env, Gemm<gemmBlocked>, "gemmBlocked"));
#if defined(SPARSE_HAVE_OPENBLAS)
  exports.Set("gemmOpenBLAS", Napi::Function::New(env, Gemm<gemmOpenBLAS>, "gemmOpenBLAS"));
#endif
  exports.Set("spmmCSR", Napi::Function::New(env, SpmmCsr, "spmmCSR"));
  exports.Set("spmmNM", Napi::Function::New(env, SpmmNm, "spmmNM"));
  exports.Set("spmmBlock", Napi::Function::New(env, SpmmBsr, "spmmBlock"));
  exports.Set("gemvSparseInput", Napi::Function::New(env, GemvSparseInput, "gemvSparseInput"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackwardFn, "attentionBackward"));
  exports.Set("attentionBitmapKV", Napi::Function::New(env, AttentionBitmapKVFn, "attentionBitmapKV"));
  exports.Set("maskedAdam", Napi::Function::New(env, MaskedAdam, "maskedAdam"));
  exports.Set("maskedSGD", Napi::Function::New(env, MaskedSgd, "maskedSGD"));
  exports.Set("elementwiseBinary", Napi::Function::New(env, ElementwiseBinary, "elementwiseBinary"));
  exports.Set("elementwiseUnary", Napi::Function::New(env, ElementwiseUnary, "elementwiseUnary"));
  exports.Set("reduceLastAxis", Napi::Function::New(env, ReduceLastAxis, "reduceLastAxis"));
  exports.Set("gather32", Napi::Function::New(env, Gather32, "gather32"));
  exports.Set("linearCSR", Napi::Function::New(env, LinearCsr<false>, "linearCSR"));
  exports.Set("linearCSRGradInput", Napi::Function::New(env, LinearCsr<true>, "linearCSRGradInput"));
  exports.Set("sddmmCSR", Napi::Function::New(env, SddmmCsr, "sddmmCSR"));
  exports.Set("choleskyF64", Napi::Function::New(env, CholeskyF64, "choleskyF64"));
  exports.Set("triangularInverseF64", Napi::Function::New(env, TriangularInverseF64, "triangularInverseF64"));
  exports.Set("columnMomentsF32", Napi::Function::New(env, ColumnMomentsF32, "columnMomentsF32"));
  exports.Set("rowTopKScaledAbs", Napi::Function::New(env, RowTopKScaledAbsFn, "rowTopKScaledAbs"));
  exports.Set("fusedNormForward", Napi::Function::New(env, FusedNormForwardFn, "fusedNormForward"));
  exports.Set("fusedNormBackward", Napi::Function::New(env, FusedNormBackwardFn, "fusedNormBackward"));
  exports.Set("fusedActForward", Napi::Function::New(env, FusedActForwardFn, "fusedActForward"));
  exports.Set("fusedActBackward", Napi::Function::New(env, FusedActBackwardFn, "fusedActBackward"));
  exports.Set("fusedCrossEntropy", Napi::Function::New(env, FusedCrossEntropyFn, "fusedCrossEntropy"));
  exports.Set("fusedCrossEntropyBackward", Napi::Function::New(env, FusedCrossEntropyBackwardFn, "fusedCrossEntropyBackward"));
  exports.Set("fusedSoftmax", Napi::Function::New(env, FusedSoftmaxFn, "fusedSoftmax"));
  exports.Set("fusedSoftmaxBackward", Napi::Function::New(env, FusedSoftmaxBackwardFn, "fusedSoftmaxBackward"));
  exports.Set("sumOfSquares", Napi::Function::New(env, SumOfSquaresFn, "sumOfSquares"));
  exports.Set("fusedAdam", Napi::Function::New(env, FusedAdamFn, "fusedAdam"));
  return exports;
}

NODE_API_MODULE(sparse_cpu, InitSparseCpu)
