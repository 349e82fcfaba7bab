// The CUDA backend's OpClock (include/cgan/backend/profile.hpp): CUDA events recorded on its stream.
#pragma once
#include <cuda_runtime.h>

#include <memory>

#include "cgan/backend/profile.hpp"

namespace cgan::cuda {

// Marks are events recorded on `stream` (reused from a pool that grows as needed). Only valid in
// eager mode: an event recorded while the stream is being captured into a CUDA graph is rejected.
std::unique_ptr<OpClock> make_event_op_clock(cudaStream_t stream);

}  // namespace cgan::cuda
