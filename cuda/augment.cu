// DiffAugment (cgan/backend/augment.hpp): one kernel per direction, one block per sample. Forward: each
// thread computes the sample's draws itself (two Philox blocks, cheaper than a shared broadcast),
// the block sums the sample in double for the contrast's mean (block_sum: a fixed order), then the
// threads walk the output pixels (consecutive threads, consecutive pixels: coalesced per channel
// plane), each gathering its source pixel's channels. Backward: the block sums the live output
// gradients (the contrast's mean term), then the threads walk the input pixels, each gathering the
// gradient of the output pixel that shows it (a gather: no atomics, deterministic). The stream id
// is read from the RngStream's device counter when the kernel runs, so a captured CUDA graph draws
// new transforms at every replay. The scalar math is augment.hpp's, shared with the CPU backend
// (src/cpu/cpu_augment.cpp), and --fmad=false keeps the roundings the same.
#include "cgan/backend/augment.hpp"
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

// Threads per block (one block per sample): enough to keep a 96x96 image's loads in flight.
unsigned augment_block(const AugmentSpec& a) { return static_cast<size_t>(a.H) * a.W >= 4096 ? 512u : 256u; }

__global__ void augment_forward_kernel(AugmentSpec a, uint64_t seed, RngStream rs, uint64_t offset,
                                       const float* __restrict__ x, float* __restrict__ y, float* __restrict__ params,
                                       unsigned* status) {
  __shared__ double smem[32];
  __shared__ float mean_s;
  const unsigned b = blockIdx.x;
  const AugmentDraw d = augment_draw(a, seed, stream_id(rs, status), offset + b);
  const size_t HW = static_cast<size_t>(a.H) * a.W, n = HW * a.C;
  const float* xb = x + n * b;
  float* yb = y + n * b;
  float M = 0.f;
  if (a.color) {  // uniform over the block: every thread takes part in block_sum
    double s = 0.0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) s += xb[i];
    s = block_sum(s, smem);
    if (threadIdx.x == 0) mean_s = static_cast<float>(s / static_cast<double>(n));
    __syncthreads();
    M = mean_s;
  }
  if (threadIdx.x == 0) augment_store(d, M, params + static_cast<size_t>(b) * kAugmentParams);
  for (size_t q = threadIdx.x; q < HW; q += blockDim.x)
    augment_pixel_forward(a, d, M, xb, yb, static_cast<int>(q / a.W), static_cast<int>(q % a.W));
}

__global__ void augment_backward_kernel(AugmentSpec a, const float* __restrict__ params, const float* __restrict__ gy,
                                        float* __restrict__ gx) {
  __shared__ double smem[32];
  __shared__ float gall_s;
  const unsigned b = blockIdx.x;
  const AugmentDraw d = augment_load(params + static_cast<size_t>(b) * kAugmentParams);
  const size_t HW = static_cast<size_t>(a.H) * a.W, n = HW * a.C;
  const float* gyb = gy + n * b;
  float* gxb = gx + n * b;
  float gall = 0.f;
  if (a.color) {
    double s = 0.0;
    for (size_t q = threadIdx.x; q < HW; q += blockDim.x) {
      const int i = static_cast<int>(q / a.W), j = static_cast<int>(q % a.W);
      if (augment_live(a, d, i, j))
        for (int c = 0; c < a.C; ++c) s += gyb[c * HW + q];
    }
    s = block_sum(s, smem);
    if (threadIdx.x == 0) gall_s = static_cast<float>(s);
    __syncthreads();
    gall = gall_s;
  }
  for (size_t p = threadIdx.x; p < HW; p += blockDim.x)
    augment_pixel_backward(a, d, gall, gyb, gxb, static_cast<int>(p / a.W), static_cast<int>(p % a.W));
}

}  // namespace

void launch_augment_forward(const Context& ctx, const AugmentSpec& a, int B, uint64_t seed, RngStream rs,
                            uint64_t offset, const float* x, float* y, float* params) {
  augment_forward_kernel<<<static_cast<unsigned>(B), augment_block(a), 0, ctx.stream>>>(a, seed, rs, offset, x, y,
                                                                                        params, ctx.status);
  CUDA_CHECK_LAUNCH("augment_forward_kernel");
}

void launch_augment_backward(const Context& ctx, const AugmentSpec& a, int B, const float* params, const float* gy,
                             float* gx) {
  augment_backward_kernel<<<static_cast<unsigned>(B), augment_block(a), 0, ctx.stream>>>(a, params, gy, gx);
  CUDA_CHECK_LAUNCH("augment_backward_kernel");
}

}  // namespace cgan::cuda
