// permutation(): indices 0..n-1 stably sorted by their Philox word philox_words(seed, stream, i).v[0]
// — the order the CPU backend gets by sorting (word << 32 | i). CUB's radix sort (the engine behind
// thrust::stable_sort_by_key for integer keys) is stable, so equal words keep index order and the
// two backends agree exactly.
//
// Keys, values and CUB's temp storage share one device buffer in the context that only grows. It
// grows (cudaFree + cudaMalloc, which synchronise) the first time an n larger than any before is
// seen: permutation runs once per epoch, outside CUDA graph capture, so that is acceptable; with
// a fixed n only the first call allocates.
#include <cub/device/device_radix_sort.cuh>

#include "cgan/base/philox.hpp"
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

__global__ void permutation_keys_kernel(int n, uint64_t seed, uint64_t stream, uint32_t* keys, int32_t* values) {
  for (size_t i = global_index(); i < static_cast<size_t>(n); i += global_stride()) {
    keys[i] = philox_words(seed, stream, i).v[0];
    values[i] = static_cast<int32_t>(i);
  }
}

constexpr size_t align_up(size_t b) { return (b + 255) / 256 * 256; }

}  // namespace

void launch_permutation(Context& ctx, int n, uint64_t seed, uint64_t stream, int32_t* out) {
  size_t temp_bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, static_cast<const uint32_t*>(nullptr),
                                             static_cast<uint32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                             static_cast<int32_t*>(nullptr), n, 0, 32, ctx.stream));
  const size_t key_bytes = align_up(static_cast<size_t>(n) * sizeof(uint32_t));
  const size_t val_bytes = align_up(static_cast<size_t>(n) * sizeof(int32_t));
  const size_t need = 2 * key_bytes + val_bytes + align_up(temp_bytes);
  if (need > ctx.sort_bytes) {
    if (ctx.sort_buf) CUDA_CHECK(cudaFree(ctx.sort_buf));
    ctx.sort_buf = nullptr;
    ctx.sort_bytes = 0;
    CUDA_CHECK(cudaMalloc(&ctx.sort_buf, need));
    ctx.sort_bytes = need;
  }
  char* base = static_cast<char*>(ctx.sort_buf);
  auto* keys_in = reinterpret_cast<uint32_t*>(base);
  auto* keys_out = reinterpret_cast<uint32_t*>(base + key_bytes);
  auto* values_in = reinterpret_cast<int32_t*>(base + 2 * key_bytes);
  void* temp = base + 2 * key_bytes + val_bytes;

  permutation_keys_kernel<<<grid_for(static_cast<size_t>(n)), kBlock, 0, ctx.stream>>>(n, seed, stream, keys_in,
                                                                                       values_in);
  CUDA_CHECK_LAUNCH("permutation_keys_kernel");
  CUDA_CHECK(
      cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, values_in, out, n, 0, 32, ctx.stream));
}

}  // namespace cgan::cuda
