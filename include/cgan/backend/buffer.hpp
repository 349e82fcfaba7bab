// Buffer<T>: a move-only owner of one Backend allocation (float or int32_t), freed with its backend.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "cgan/backend/backend.hpp"

namespace cgan {

// n zero-filled elements of backend memory (host memory on the CPU backend, device memory on CUDA)
// from Backend::alloc / alloc_int, given back by Backend::free when the Buffer is destroyed or
// assigned over. An empty Buffer (default-constructed or moved from) holds nullptr. It converts to
// T*, so a Buffer is passed to Backend ops as the pointer it owns.
template <typename T>
class Buffer {
  static_assert(std::is_same<T, float>::value || std::is_same<T, int32_t>::value,
                "Buffer<T>: the backend allocates float and int32_t memory only");

 public:
  Buffer() = default;
  Buffer(Backend& be, size_t n) : be_(&be), n_(n) {
    if constexpr (std::is_same<T, float>::value)
      p_ = be.alloc(n);
    else
      p_ = be.alloc_int(n);
  }
  ~Buffer() { reset(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : be_(o.be_), p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_;
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }

  // Frees the memory now (Backend::free never throws); the Buffer is empty afterwards.
  void reset() noexcept {
    if (p_) be_->free(p_);
    p_ = nullptr;
    n_ = 0;
  }

  T* get() const { return p_; }
  operator T*() const { return p_; }  // NOLINT: a Buffer is used where its pointer is
  size_t size() const { return n_; }
  bool empty() const { return p_ == nullptr; }

 private:
  Backend* be_ = nullptr;
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace cgan
