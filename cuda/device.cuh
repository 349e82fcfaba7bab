// Device-side helpers shared by the kernels (only .cu files include this).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "cgan/backend/backend.hpp"
#include "common.cuh"

namespace cgan::cuda {

// First index and stride of a 1-D grid-stride loop (64-bit: buffers may exceed 2^31 elements).
__device__ __forceinline__ size_t global_index() { return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ size_t global_stride() { return static_cast<size_t>(gridDim.x) * blockDim.x; }

__device__ __forceinline__ void report_status(unsigned* status, unsigned bit) { atomicOr(status, bit); }

// The Philox stream id of an RngStream (backend.hpp): base + stride * (*counter). A negative
// counter (never written by the trainer) is flagged and read as 0.
__device__ __forceinline__ uint64_t stream_id(const RngStream& s, unsigned* status) {
  if (!s.counter) return s.base;
  const int32_t c = *s.counter;
  if (c < 0) {
    report_status(status, kStatusBadSlot);
    return s.base;
  }
  return s.base + s.stride * static_cast<uint64_t>(c);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a 1-D block (blockDim.x a multiple of 32, at most 1024), in a fixed order, so the
// result is deterministic. Valid in thread 0. Every thread must call it; `smem` holds 32 T and may
// be reused right after the call.
template <typename T>
__device__ T block_sum(T v, T* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  const int warps = static_cast<int>(blockDim.x + 31) >> 5;
  v = (threadIdx.x < static_cast<unsigned>(warps)) ? smem[threadIdx.x] : T(0);
  if (warp == 0) v = warp_sum(v);
  __syncthreads();
  return v;
}

}  // namespace cgan::cuda
