// Node binding of the CUDA kernels (node-addon-api). Every array argument is either a host typed
// array (copied to the device for the call, and back when the kernel writes it) or a device buffer
// made by alloc() (used in place). Offsets and lengths are in elements. Errors are thrown as JS
// errors naming the argument or the CUDA call; the TypeScript side validates shapes first.
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels.h"

using namespace sparse_cuda;

namespace {

/** A device allocation owned by a JS external; freed by free() or when collected. */
struct DeviceAlloc {
  void* ptr = nullptr;
  size_t bytes = 0;
};

void FinalizeAlloc(Napi::Env, DeviceAlloc* a) {
  if (a->ptr) cudaFree(a->ptr);
  delete a;
}

[[noreturn]] void ThrowCuda(Napi::Env env, const char* what, cudaError_t err) {
  throw Napi::Error::New(env, std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

void Check(Napi::Env env, const char* what, cudaError_t err) {
  if (err != cudaSuccess) ThrowCuda(env, what, err);
}

/**
 * One array operand resolved to a device pointer: a device buffer in place, or a host typed array
 * staged through a temporary device allocation.
 */
class Operand {
 public:
  Operand(Napi::Env env, const Napi::Value& v, const char* name, size_t elemSize, size_t offset, size_t count, bool copyIn, bool optional = false)
      : env_(env), name_(name), bytes_(count * elemSize) {
    if (optional && (v.IsNull() || v.IsUndefined())) return;
    present_ = true;
    if (v.IsExternal()) {
      auto* a = v.As<Napi::External<DeviceAlloc>>().Data();
      if (!a || !a->ptr) throw Napi::Error::New(env, std::string(name) + ": the device buffer was disposed");
      if ((offset + count) * elemSize > a->bytes) {
        throw Napi::RangeError::New(env, std::string(name) + ": needs " + std::to_string((offset + count) * elemSize) + " bytes, the device buffer has " +
                                             std::to_string(a->bytes));
      }
      dev_ = static_cast<char*>(a->ptr) + offset * elemSize;
      return;
    }
    if (!v.IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + ": expected a typed array or a device buffer");
    auto ta = v.As<Napi::TypedArray>();
    if (ta.ElementSize() != elemSize) throw Napi::TypeError::New(env, std::string(name) + ": wrong element type");
    if (offset + count > ta.ElementLength()) {
      throw Napi::RangeError::New(env, std::string(name) + ": needs " + std::to_string(offset + count) + " elements, has " +
                                           std::to_string(ta.ElementLength()));
    }
    host_ = static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset() + offset * elemSize;
    if (bytes_ == 0) return;
    Check(env, name, cudaMalloc(&tmp_, bytes_));
    dev_ = tmp_;
    if (copyIn) Check(env, name, cudaMemcpy(dev_, host_, bytes_, cudaMemcpyHostToDevice));
  }
  Operand(const Operand&) = delete;
  Operand& operator=(const Operand&) = delete;
  ~Operand() {
    if (tmp_) cudaFree(tmp_);
  }
  template <typename T>
  T* ptr() const {
    return static_cast<T*>(dev_);
  }
  bool present() const { return present_; }
  /** Copies the device result back into the host array (no-op for device buffers). */
  void copyOut() {
    if (host_ && tmp_ && bytes_) Check(env_, name_, cudaMemcpy(host_, dev_, bytes_, cudaMemcpyDeviceToHost));
  }

 private:
  Napi::Env env_;
  const char* name_;
  size_t bytes_;
  bool present_ = false;
  void* dev_ = nullptr;
  void* tmp_ = nullptr;
  char* host_ = nullptr;
};

int Int(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }
double Num(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }
float Flt(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().FloatValue(); }
bool Bool(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Boolean>().Value(); }
size_t Size(const Napi::CallbackInfo& info, size_t i) { return size_t(info[i].As<Napi::Number>().Int64Value()); }

/** Elements a [rows, cols] matrix with leading dimension ld spans. */
size_t Span(int rows, int cols, int ld) { return rows <= 0 || cols <= 0 ? 0 : size_t(rows - 1) * ld + cols; }

void Finish(Napi::Env env, const char* what, cudaError_t launch) {
  Check(env, what, launch);
  Check(env, what, cudaDeviceSynchronize());
}

Napi::Value DeviceStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  out.Set("count", err == cudaSuccess ? count : 0);
  out.Set("error", err == cudaSuccess ? env.Null() : Napi::String::New(env, std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err)));
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  out.Set("runtime", runtime);
  out.Set("driver", driver);
  if (err == cudaSuccess && count > 0) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) {
      out.Set("name", p.name);
      out.Set("sm", p.major * 10 + p.minor);
      out.Set("memory", double(p.totalGlobalMem));
    }
  }
  return out;
}

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t bytes = Size(info, 0);
  auto* a = new DeviceAlloc();
  a->bytes = bytes;
  const cudaError_t err = cudaMalloc(&a->ptr, bytes == 0 ? 1 : bytes);
  if (err != cudaSuccess) {
    delete a;
    ThrowCuda(env, "alloc", err);
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes));
  return Napi::External<DeviceAlloc>::New(env, a, FinalizeAlloc);
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  auto* a = info[0].As<Napi::External<DeviceAlloc>>().Data();
  if (a && a->ptr) {
    cudaFree(a->ptr);
    a->ptr = nullptr;
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), -int64_t(a->bytes));
  }
  return info.Env().Undefined();
}

/** copy(handle, byteOffset, typedArray, toDevice): bytes of the typed array to or from the buffer. */
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* a = info[0].As<Napi::External<DeviceAlloc>>().Data();
  const size_t off = Size(info, 1);
  auto ta = info[2].As<Napi::TypedArray>();
  const bool toDevice = Bool(info, 3);
  const size_t bytes = ta.ByteLength();
  if (!a || !a->ptr) throw Napi::Error::New(env, "the device buffer was disposed");
  if (off + bytes > a->bytes) throw Napi::RangeError::New(env, "copy: " + std::to_string(off + bytes) + " bytes past a buffer of " + std::to_string(a->bytes));
  char* host = static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  char* dev = static_cast<char*>(a->ptr) + off;
  Check(env, "copy", toDevice ? cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice) : cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
  return env.Undefined();
}

// gemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc)
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool ta = Bool(info, 0), tb = Bool(info, 1);
  const int m = Int(info, 2), n = Int(info, 3), k = Int(info, 4);
  const float alpha = Flt(info, 5), beta = Flt(info, 12);
  const int lda = Int(info, 8), ldb = Int(info, 11), ldc = Int(info, 15);
  const bool readAB = alpha != 0.f && k > 0;
  Operand A(env, info[6], "a", 4, Size(info, 7), readAB ? (ta ? Span(k, m, lda) : Span(m, k, lda)) : 0, true);
  Operand B(env, info[9], "b", 4, Size(info, 10), readAB ? (tb ? Span(n, k, ldb) : Span(k, n, ldb)) : 0, true);
  Operand C(env, info[13], "c", 4, Size(info, 14), Span(m, n, ldc), beta != 0.f);
  Finish(env, "gemm", sgemm(ta, tb, m, n, readAB ? k : 0, alpha, A.ptr<float>(), lda, B.ptr<float>(), ldb, beta, C.ptr<float>(), ldc, 0));
  C.copyOut();
  return env.Undefined();
}

// The dense operands shared by the SpMM entry points, from argument `i`: n, alpha, b, bOff, ldb, beta, c, cOff, ldc.
struct DenseArgs {
  int n, ldb, ldc;
  float alpha, beta;
};

// spmmCSR(rows, cols, indptr, indices, values, n, alpha, b, bOff, ldb, beta, c, cOff, ldc)
Napi::Value SpmmCSR(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int rows = Int(info, 0), cols = Int(info, 1);
  const int n = Int(info, 5), ldb = Int(info, 9), ldc = Int(info, 13);
  const float alpha = Flt(info, 6), beta = Flt(info, 10);
  const auto indptrArr = info[2].As<Napi::Int32Array>();
  const size_t nnz = rows > 0 ? size_t(indptrArr[size_t(rows)]) : 0;
  Operand P(env, info[2], "indptr", 4, 0, size_t(rows) + 1, true);
  Operand I(env, info[3], "indices", 4, 0, nnz, true);
  Operand V(env, info[4], "values", 4, 0, nnz, true);
  Operand B(env, info[7], "b", 4, Size(info, 8), alpha != 0.f ? Span(cols, n, ldb) : 0, true);
  Operand C(env, info[11], "c", 4, Size(info, 12), Span(rows, n, ldc), beta != 0.f);
  Finish(env, "spmmCSR", spmm_csr(rows, n, P.ptr<int>(), I.ptr<int>(), V.ptr<float>(), B.ptr<float>(), ldb, alpha, beta, C.ptr<float>(), ldc, 0));
  C.copyOut();
  return env.Undefined();
}

// spmmBlock(rows, cols, br, bc, indptr, indices, values, n, alpha, b, bOff, ldb, beta, c, cOff, ldc)
Napi::Value SpmmBlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int rows = Int(info, 0), cols = Int(info, 1), br = Int(info, 2), bc = Int(info, 3);
  const int n = Int(info, 7), ldb = Int(info, 11), ldc = Int(info, 15);
  const float alpha = Flt(info, 8), beta = Flt(info, 12);
  const int blockRows = br > 0 ? (rows + br - 1) / br : 0;
  const auto indptrArr = info[4].As<Napi::Int32Array>();
  const size_t blocks = size_t(indptrArr[size_t(blockRows)]);
  Operand P(env, info[4], "indptr", 4, 0, size_t(blockRows) + 1, true);
  Operand I(env, info[5], "indices", 4, 0, blocks, true);
  Operand V(env, info[6], "values", 4, 0, blocks * size_t(br) * bc, true);
  Operand B(env, info[9], "b", 4, Size(info, 10), alpha != 0.f ? Span(cols, n, ldb) : 0, true);
  Operand C(env, info[13], "c", 4, Size(info, 14), Span(rows, n, ldc), beta != 0.f);
  Finish(env, "spmmBlock",
         spmm_bsr(rows, cols, n, br, bc, P.ptr<int>(), I.ptr<int>(), V.ptr<float>(), B.ptr<float>(), ldb, alpha, beta, C.ptr<float>(), ldc, 0));
  C.copyOut();
  return env.Undefined();
}

// spmmNM(rows, cols, nKeep, m, indexBits, values, indices, n, alpha, b, bOff, ldb, beta, c, cOff, ldc)
Napi::Value SpmmNM(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int rows = Int(info, 0), cols = Int(info, 1), keep = Int(info, 2), m = Int(info, 3), bits = Int(info, 4);
  const int n = Int(info, 7), ldb = Int(info, 11), ldc = Int(info, 15);
  const float alpha = Flt(info, 8), beta = Flt(info, 12);
  const size_t kept = m > 0 ? size_t(rows) * (cols / m) * keep : 0;
  Operand V(env, info[5], "values", 4, 0, kept, true);
  Operand I(env, info[6], "indices", 1, 0, (kept * bits + 7) / 8, true);
  Operand B(env, info[9], "b", 4, Size(info, 10), alpha != 0.f ? Span(cols, n, ldb) : 0, true);
  Operand C(env, info[13], "c", 4, Size(info, 14), Span(rows, n, ldc), beta != 0.f);
  Finish(env, "spmmNM",
         spmm_nm(rows, cols, n, keep, m, bits, V.ptr<float>(), I.ptr<uint8_t>(), B.ptr<float>(), ldb, alpha, beta, C.ptr<float>(), ldc, 0));
  C.copyOut();
  return env.Undefined();
}

AttnType ParseAttnType(Napi::Env env, const Napi::Value& v) {
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "float32") return AttnType::F32;
  if (s == "float16") return AttnType::F16;
  if (s == "bfloat16") return AttnType::BF16;
  throw Napi::TypeError::New(env, "attention: dtype must be float32, float16 or bfloat16, got " + s);
}

// attention(dtype, heads, seq, dim, q, qOff, k, kOff, v, vOff, out, outOff, causal, scale, blockSize,
//           blockMask|null, maskPerHead, elementMask|null, elementPerHead, lse|null, lseOff)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const AttnType type = ParseAttnType(env, info[0]);
  const int heads = Int(info, 1), seq = Int(info, 2), dim = Int(info, 3);
  const size_t total = size_t(heads) * seq * dim;
  const size_t es = type == AttnType::F32 ? 4 : 2;
  const bool causal = Bool(info, 12);
  const float scale = Flt(info, 13);
  const int bs = Int(info, 14);
  const bool perHead = Bool(info, 16), elemPerHead = Bool(info, 18);
  const int nb = bs > 0 ? (seq + bs - 1) / bs : 0;
  Operand Q(env, info[4], "q", es, Size(info, 5), total, true);
  Operand K(env, info[6], "k", es, Size(info, 7), total, true);
  Operand V(env, info[8], "v", es, Size(info, 9), total, true);
  Operand O(env, info[10], "out", 4, Size(info, 11), total, false);
  Operand M(env, info[15], "blockMask", 1, 0, size_t(perHead ? heads : 1) * nb * nb, true, true);
  Operand E(env, info[17], "elementMask", 1, 0, (size_t(elemPerHead ? heads : 1) * seq * seq + 7) / 8, true, true);
  Operand L(env, info[19], "lse", 4, info[20].IsNumber() ? Size(info, 20) : 0, size_t(heads) * seq, false, true);
  Finish(env, "attention",
         attention_forward(type, heads, seq, dim, Q.ptr<void>(), K.ptr<void>(), V.ptr<void>(), O.ptr<float>(), causal, scale, bs,
                           M.present() ? M.ptr<uint8_t>() : nullptr, perHead, E.present() ? E.ptr<uint8_t>() : nullptr, elemPerHead,
                           L.present() ? L.ptr<float>() : nullptr, 0));
  O.copyOut();
  if (L.present()) L.copyOut();
  return env.Undefined();
}

// maskedAdam(params, grads, size, indices|null, count, bits|null, m, v, step, lr, beta1, beta2, eps, weightDecay)
Napi::Value MaskedAdam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t size = Size(info, 2), count = Size(info, 4);
  Operand P(env, info[0], "params", 4, 0, size, true);
  Operand G(env, info[1], "grads", 4, 0, size, true);
  Operand I(env, info[3], "indices", 4, 0, count, true, true);
  Operand Bt(env, info[5], "bits", 1, 0, (size + 7) / 8, true, true);
  Operand M(env, info[6], "m", 4, 0, count, true);
  Operand V(env, info[7], "v", 4, 0, count, true);
  void* scratch = nullptr;
  size_t scratchBytes = 0;
  if (Bt.present()) {
    scratchBytes = masked_adam_scratch_bytes(size);
    Check(env, "maskedAdam scratch", cudaMalloc(&scratch, scratchBytes));
  }
  const cudaError_t err = masked_adam(P.ptr<float>(), G.ptr<float>(), size, I.present() ? I.ptr<int>() : nullptr, count,
                                      Bt.present() ? Bt.ptr<uint8_t>() : nullptr, M.ptr<float>(), V.ptr<float>(), Num(info, 8), Flt(info, 9),
                                      Flt(info, 10), Flt(info, 11), Flt(info, 12), Flt(info, 13), static_cast<int*>(scratch), scratchBytes, 0);
  const cudaError_t sync = err == cudaSuccess ? cudaDeviceSynchronize() : err;
  if (scratch) cudaFree(scratch);
  Check(env, "maskedAdam", sync);
  P.copyOut();
  M.copyOut();
  V.copyOut();
  return env.Undefined();
}

Half16 ParseHalf(Napi::Env env, const Napi::Value& v, const char* what) {
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "float16") return Half16::F16;
  if (s == "bfloat16") return Half16::BF16;
  throw Napi::TypeError::New(env, std::string(what) + ": dtype must be float16 or bfloat16, got " + s);
}

// compress24(dtype, dense, rows, cols, values, meta) -> bad (-1 when the matrix is 2:4)
Napi::Value Compress24(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Half16 t = ParseHalf(env, info[0], "compress24");
  const int rows = Int(info, 2), cols = Int(info, 3);
  Operand D(env, info[1], "dense", 2, 0, size_t(rows) * cols, true);
  Operand V(env, info[4], "values", 2, 0, size_t(rows) * padded_cols24(cols) / 2, false);
  Operand M(env, info[5], "meta", 4, 0, meta_words24(rows, cols), false);
  int* bad = nullptr;
  Check(env, "compress24", cudaMalloc(&bad, sizeof(int)));
  const int init = INT32_MAX;
  cudaError_t err = cudaMemcpy(bad, &init, sizeof init, cudaMemcpyHostToDevice);
  if (err == cudaSuccess) err = compress24(t, D.ptr<void>(), rows, cols, cols, V.ptr<void>(), M.ptr<uint32_t>(), bad, 0);
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  int result = init;
  if (err == cudaSuccess) err = cudaMemcpy(&result, bad, sizeof result, cudaMemcpyDeviceToHost);
  cudaFree(bad);
  Check(env, "compress24", err);
  V.copyOut();
  M.copyOut();
  return Napi::Number::New(env, result == INT32_MAX ? -1 : result);
}

// gemm24(dtype, M, N, K, values, meta, b, ldb, c, ldc, alpha, beta)
Napi::Value Gemm24(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Half16 t = ParseHalf(env, info[0], "gemm24");
  const int M = Int(info, 1), N = Int(info, 2), K = Int(info, 3), ldb = Int(info, 7), ldc = Int(info, 9);
  const float alpha = Flt(info, 10), beta = Flt(info, 11);
  Operand V(env, info[4], "values", 2, 0, size_t(M) * padded_cols24(K) / 2, true);
  Operand Me(env, info[5], "meta", 4, 0, meta_words24(M, K), true);
  Operand B(env, info[6], "b", 2, 0, Span(K, N, ldb), true);
  Operand C(env, info[8], "c", 4, 0, Span(M, N, ldc), beta != 0.f);
  Finish(env, "gemm24", gemm24(t, M, N, K, V.ptr<void>(), Me.ptr<uint32_t>(), B.ptr<void>(), ldb, C.ptr<float>(), ldc, alpha, beta, 0));
  C.copyOut();
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("deviceStatus", Napi::Function::New(env, DeviceStatus));
  exports.Set("alloc", Napi::Function::New(env, Alloc));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("copy", Napi::Function::New(env, Copy));
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("spmmCSR", Napi::Function::New(env, SpmmCSR));
  exports.Set("spmmBlock", Napi::Function::New(env, SpmmBlock));
  exports.Set("spmmNM", Napi::Function::New(env, SpmmNM));
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("maskedAdam", Napi::Function::New(env, MaskedAdam));
  exports.Set("compress24", Napi::Function::New(env, Compress24));
  exports.Set("gemm24", Napi::Function::New(env, Gemm24));
  return exports;
}

}  // namespace

NODE_API_MODULE(sparse_cuda, Init)
