// Adam over one contiguous parameter buffer in a single launch (PyTorch's formula, as the CPU
// backend): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= step * m / (sqrt(v) * rc2 + eps) with
// step = lr / (1 - b1^t) and rc2 = 1 / sqrt(1 - b2^t) computed once on the host in double.
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

__global__ void adam_kernel(size_t n, float* p, const float* g, float* m, float* v, float step,
                            float rc2, float b1, float b2, float eps) {
  const AdamScalars s{step, rc2};
  for (size_t i = global_index(); i < n; i += global_stride()) {
    float pi = p[i], mi = m[i], vi = v[i];
    adam_update(pi, mi, vi, g[i], s, b1, b2, eps);
    p[i] = pi, m[i] = mi, v[i] = vi;
  }
}

}  // namespace

void launch_adam(const Context& ctx, size_t n, float* p, const float* g, float* m, float* v,
                 float step, float rc2, float b1, float b2, float eps) {
  adam_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, p, g, m, v, step, rc2, b1, b2, eps);
  CUDA_CHECK_LAUNCH("adam_kernel");
}

}  // namespace cgan::cuda
