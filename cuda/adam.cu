// Adam over one contiguous parameter buffer in a single launch (PyTorch's formula, as the CPU
// backend): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= step * m / (sqrt(v) * rc2 + eps) with
// step = lr / (1 - b1^t) and rc2 = 1 / sqrt(1 - b2^t) from adam_scalars (double), computed by each
// thread from t = t_base + *t_counter, so a replayed CUDA graph uses the current step.
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

__global__ void adam_kernel(size_t n, float* p, const float* g, float* m, float* v, float lr,
                            float b1, float b2, float eps, int t_base, const int32_t* t_counter,
                            unsigned* status) {
  const int t = t_base + (t_counter ? *t_counter : 0);
  if (t < 1) {  // never written so by the trainer: flag it, leave the parameters alone
    if (global_index() == 0) report_status(status, kStatusBadSlot);
    return;
  }
  const AdamScalars s = adam_scalars(lr, b1, b2, t);
  for (size_t i = global_index(); i < n; i += global_stride()) {
    float pi = p[i], mi = m[i], vi = v[i];
    adam_update(pi, mi, vi, g[i], s, b1, b2, eps);
    p[i] = pi, m[i] = mi, v[i] = vi;
  }
}

}  // namespace

void launch_adam(const Context& ctx, size_t n, float* p, const float* g, float* m, float* v,
                 float lr, float b1, float b2, float eps, int t_base, const int32_t* t_counter) {
  adam_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, p, g, m, v, lr, b1, b2, eps, t_base,
                                                      t_counter, ctx.status);
  CUDA_CHECK_LAUNCH("adam_kernel");
}

}  // namespace cgan::cuda
