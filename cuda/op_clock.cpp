// CUDA-event OpClock (op_clock.hpp): each mark records a pooled event on the backend's stream;
// pair_ms() waits for the last one and reads cudaEventElapsedTime for each begin/end pair.
#include "op_clock.hpp"

#include <vector>

#include "common.cuh"

namespace cgan::cuda {
namespace {

class EventOpClock final : public OpClock {
 public:
  explicit EventOpClock(cudaStream_t stream) : stream_(stream) {}
  ~EventOpClock() override {
    for (cudaEvent_t e : pool_) cudaEventDestroy(e);  // never throws: runs while unwinding too
  }
  EventOpClock(const EventOpClock&) = delete;
  EventOpClock& operator=(const EventOpClock&) = delete;

  void mark() override {
    if (used_ == pool_.size()) grow();
    CUDA_CHECK(cudaEventRecord(pool_[used_], stream_));
    ++used_;
  }

  std::vector<double> pair_ms() override {
    std::vector<double> ms(used_ / 2);
    if (used_ > 0) CUDA_CHECK(cudaEventSynchronize(pool_[used_ - 1]));
    for (size_t i = 0; i < ms.size(); ++i) {
      float t = 0.f;
      CUDA_CHECK(cudaEventElapsedTime(&t, pool_[2 * i], pool_[2 * i + 1]));
      ms[i] = static_cast<double>(t);
    }
    used_ = 0;
    return ms;
  }

 private:
  void grow() {
    const size_t add = pool_.empty() ? 1024 : pool_.size();  // doubling: few creations mid-run
    pool_.reserve(pool_.size() + add);
    for (size_t i = 0; i < add; ++i) {
      cudaEvent_t e = nullptr;
      CUDA_CHECK(cudaEventCreate(&e));
      pool_.push_back(e);
    }
  }

  cudaStream_t stream_;
  std::vector<cudaEvent_t> pool_;
  size_t used_ = 0;
};

}  // namespace

std::unique_ptr<OpClock> make_event_op_clock(cudaStream_t stream) { return std::make_unique<EventOpClock>(stream); }

}  // namespace cgan::cuda
