// CUDA-only additions to backend.hpp: the stream of a CUDA backend, for work ordered with its ops.
// Include only under #ifdef CGAN_HAVE_CUDA (the header is on cgan_core's include path in CUDA builds).
#pragma once
#include <memory>

#include "cgan/backend/backend.hpp"

namespace cgan {

// The cudaStream_t every op of `be` (a CUDA backend) is enqueued on, for work outside the backend
// that must be ordered with its ops (NCCL all-reduces, cuda/nccl_reduce.cpp). Throws for another backend.
void* cuda_stream_of(Backend& be);

}  // namespace cgan
