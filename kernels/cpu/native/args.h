// Argument readers for the binding. The TypeScript side validates first and throws typed errors;
// these checks are the last line of defence so native code never touches memory out of bounds.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace sparse {

// Largest integer argument accepted; keeps every bound computation exact in double and int64.
constexpr double kMaxIndex = 4503599627370496.0;  // 2^52

template <typename T>
struct ArrayArg {
  T* data = nullptr;
  int64_t length = 0;
};

inline std::string argName(const char* fn, int index, const char* what) {
  return std::string(fn) + ": argument " + std::to_string(index) + " (" + what + ")";
}

inline int64_t intArg(const Napi::CallbackInfo& info, const char* fn, int index, const char* what) {
  const Napi::Value v = info[index];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), argName(fn, index, what) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < 0 || d > kMaxIndex) {
    throw Napi::RangeError::New(info.Env(), argName(fn, index, what) + " must be a non-negative integer");
  }
  return static_cast<int64_t>(d);
}

inline float floatArg(const Napi::CallbackInfo& info, const char* fn, int index, const char* what) {
  const Napi::Value v = info[index];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), argName(fn, index, what) + " must be a number");
  return static_cast<float>(v.As<Napi::Number>().DoubleValue());
}

inline bool boolArg(const Napi::CallbackInfo& info, const char* fn, int index, const char* what) {
  const Napi::Value v = info[index];
  if (!v.IsBoolean()) throw Napi::TypeError::New(info.Env(), argName(fn, index, what) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

template <typename T>
inline ArrayArg<T> arrayArg(const Napi::CallbackInfo& info, const char* fn, int index, const char* what,
                            napi_typedarray_type type, const char* typeName) {
  const Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(info.Env(), argName(fn, index, what) + " must be a " + typeName);
  }
  Napi::TypedArrayOf<T> arr = v.As<Napi::TypedArrayOf<T>>();
  ArrayArg<T> out;
  out.data = arr.Data();  // already advanced by the view's byteOffset
  out.length = static_cast<int64_t>(arr.ElementLength());
  return out;
}

inline ArrayArg<float> f32Arg(const Napi::CallbackInfo& info, const char* fn, int index, const char* what) {
  return arrayArg<float>(info, fn, index, what, napi_float32_array, "Float32Array");
}

inline ArrayArg<double> f64Arg(const Napi::CallbackInfo& info, const char* fn, int index, const char* what) {
  return arrayArg<double>(info, fn, index, what, napi_float64_array, "Float64Array");
}

inline ArrayArg<int32_t> i32Arg(const Napi::CallbackInfo& info, const char* fn, int index, const char* what) {
  return arrayArg<int32_t>(info, fn, index, what, napi_int32_array, "Int32Array");
}

inline ArrayArg<uint8_t> u8Arg(const Napi::CallbackInfo& info, const char* fn, int index, const char* what) {
  return arrayArg<uint8_t>(info, fn, index, what, napi_uint8_array, "Uint8Array");
}

inline Napi::Error rangeError(const Napi::CallbackInfo& info, const char* fn, const std::string& what) {
  return Napi::RangeError::New(info.Env(), std::string(fn) + ": " + what);
}

// Checks that a rows x cols row-major matrix with leading dimension ld at element offset off fits.
inline void checkMatrix(const Napi::CallbackInfo& info, const char* fn, const char* what, int64_t length,
                        int64_t off, int64_t rows, int64_t cols, int64_t ld) {
  if (ld < cols || ld < 1) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": leading dimension of " + what + " (" +
                                                std::to_string(ld) + ") is smaller than its " +
                                                std::to_string(cols) + " columns");
  }
  if (rows == 0 || cols == 0) return;
  // In double: exact below 2^53, where every real length lies; anything larger cannot fit anyway.
  const double last = static_cast<double>(off) + static_cast<double>(rows - 1) * static_cast<double>(ld) +
                      static_cast<double>(cols);
  if (last > static_cast<double>(length)) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + what + " (" + std::to_string(rows) + "x" +
                                                std::to_string(cols) + ", ld " + std::to_string(ld) +
                                                ", offset " + std::to_string(off) + ") does not fit in " +
                                                std::to_string(length) + " elements");
  }
}

// True when the half-open byte ranges [a0, a1) and [b0, b1) intersect.
inline bool overlaps(const void* a0, const void* a1, const void* b0, const void* b1) {
  const auto x0 = reinterpret_cast<uintptr_t>(a0), x1 = reinterpret_cast<uintptr_t>(a1);
  const auto y0 = reinterpret_cast<uintptr_t>(b0), y1 = reinterpret_cast<uintptr_t>(b1);
  return x0 < y1 && y0 < x1;
}

}  // namespace sparse
