// A growable scratch buffer of floats aligned to 64 bytes, so packed panels start on cache lines
// and no vector load splits one.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace sparse {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  // At least n floats; contents are not preserved when it grows.
  float* reserve(size_t n) {
    if (n <= size_ && data_ != nullptr) return data_;
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    const size_t bytes = ((n * sizeof(float) + 63) / 64) * 64 + 64;
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (data_ == nullptr) throw std::bad_alloc();
    size_ = n;
    return data_;
  }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sparse
