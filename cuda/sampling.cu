// Counter-based sampling: dropout masks, normal / uniform / integer draws. Every value comes from
// philox.hpp's functions of (seed, stream, index), the code the CPU backend runs, so both backends
// draw the same numbers. The final affine steps use explicitly rounded float operations (no FMA
// contraction) so that they round exactly as the CPU's separate multiply and add.
#include "cgan/base/philox.hpp"
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

// mask[i] = (u >= p) / (1 - p) with u = philox_uniform(seed, stream, i); x[i] *= mask[i].
// Every kernel reads its stream id from an RngStream (a device step counter when captured in a graph).
__global__ void dropout_kernel(size_t n, float p, float keep, uint64_t seed, RngStream rs, uint64_t offset, float* x,
                               float* mask, unsigned* status) {
  const uint64_t stream = stream_id(rs, status);
  for (size_t i = global_index(); i < n; i += global_stride()) {
    const float m = philox_uniform(seed, stream, offset + i) >= p ? keep : 0.f;
    mask[i] = m;
    x[i] *= m;
  }
}

__global__ void rand_normal_kernel(size_t n, uint64_t seed, RngStream rs, uint64_t offset, float mean, float stddev,
                                   float* out, unsigned* status) {
  const uint64_t stream = stream_id(rs, status);
  for (size_t i = global_index(); i < n; i += global_stride())
    out[i] = __fadd_rn(mean, __fmul_rn(stddev, philox_normal(seed, stream, offset + i)));
}

__global__ void rand_uniform_kernel(size_t n, uint64_t seed, RngStream rs, uint64_t offset, float lo, float width,
                                    float* out, unsigned* status) {
  const uint64_t stream = stream_id(rs, status);
  for (size_t i = global_index(); i < n; i += global_stride())
    out[i] = __fadd_rn(lo, __fmul_rn(width, philox_uniform(seed, stream, offset + i)));
}

__global__ void rand_below_kernel(size_t n, uint64_t seed, RngStream rs, uint64_t offset, uint32_t K, int32_t* out,
                                  unsigned* status) {
  const uint64_t stream = stream_id(rs, status);
  for (size_t i = global_index(); i < n; i += global_stride())
    out[i] = static_cast<int32_t>(philox_below(seed, stream, offset + i, K));
}

}  // namespace

void launch_dropout(const Context& ctx, size_t n, float p, uint64_t seed, RngStream rs, float* x, float* mask,
                    uint64_t offset) {
  const float keep = 1.f / (1.f - p);  // as the CPU backend
  dropout_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, p, keep, seed, rs, offset, x, mask, ctx.status);
  CUDA_CHECK_LAUNCH("dropout_kernel");
}

void launch_rand_normal(const Context& ctx, size_t n, uint64_t seed, RngStream rs, uint64_t offset, float mean,
                        float stddev, float* out) {
  rand_normal_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, seed, rs, offset, mean, stddev, out, ctx.status);
  CUDA_CHECK_LAUNCH("rand_normal_kernel");
}

void launch_rand_uniform(const Context& ctx, size_t n, uint64_t seed, RngStream rs, uint64_t offset, float lo, float hi,
                         float* out) {
  const float width = hi - lo;  // as the CPU backend
  rand_uniform_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, seed, rs, offset, lo, width, out, ctx.status);
  CUDA_CHECK_LAUNCH("rand_uniform_kernel");
}

void launch_rand_below(const Context& ctx, size_t n, uint64_t seed, RngStream rs, uint64_t offset, int32_t K,
                       int32_t* out) {
  rand_below_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, seed, rs, offset, static_cast<uint32_t>(K), out,
                                                            ctx.status);
  CUDA_CHECK_LAUNCH("rand_below_kernel");
}

}  // namespace cgan::cuda
