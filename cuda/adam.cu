// Adam over one contiguous parameter buffer (PyTorch's formula, as the CPU backend):
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= step * m / (sqrt(v) * rc2 + eps) with
// step = lr / (1 - b1^t) and rc2 = 1 / sqrt(1 - b2^t) (scalar_math.hpp's adam_scalars, double).
// Two launches: a one-thread kernel computes the scalars once per step from t = t_base +
// *t_counter (read when it runs, so a replayed CUDA graph uses the current step) into the
// context's adam_step; the update kernel reads them (float4 when n and the buffers allow it).
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

// out: step, rc2, valid (1 when t >= 1).
__global__ void adam_scalars_kernel(float lr, float b1, float b2, int t_base, const int32_t* t_counter, float* out,
                                    unsigned* status) {
  const int t = t_base + (t_counter ? *t_counter : 0);
  if (t < 1) {  // never written so by the trainer: flag it, leave the parameters alone
    report_status(status, kStatusBadSlot);
    out[2] = 0.f;
    return;
  }
  const AdamScalars s = adam_scalars(lr, b1, b2, t);
  out[0] = s.step;
  out[1] = s.rc2;
  out[2] = 1.f;
}

template <bool kVec>
__global__ void adam_kernel(size_t units, float* p, const float* g, float* m, float* v, float b1, float b2, float eps,
                            const float* scalars) {
  if (scalars[2] == 0.f) return;
  const AdamScalars s{scalars[0], scalars[1]};
  for (size_t i = global_index(); i < units; i += global_stride()) {
    if constexpr (kVec) {
      float4 pi = reinterpret_cast<float4*>(p)[i], mi = reinterpret_cast<float4*>(m)[i],
             vi = reinterpret_cast<float4*>(v)[i];
      const float4 gi = reinterpret_cast<const float4*>(g)[i];
      adam_update(pi.x, mi.x, vi.x, gi.x, s, b1, b2, eps);
      adam_update(pi.y, mi.y, vi.y, gi.y, s, b1, b2, eps);
      adam_update(pi.z, mi.z, vi.z, gi.z, s, b1, b2, eps);
      adam_update(pi.w, mi.w, vi.w, gi.w, s, b1, b2, eps);
      reinterpret_cast<float4*>(p)[i] = pi, reinterpret_cast<float4*>(m)[i] = mi, reinterpret_cast<float4*>(v)[i] = vi;
    } else {
      float pi = p[i], mi = m[i], vi = v[i];
      adam_update(pi, mi, vi, g[i], s, b1, b2, eps);
      p[i] = pi, m[i] = mi, v[i] = vi;
    }
  }
}

bool a16(const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; }

}  // namespace

void launch_adam(const Context& ctx, size_t n, float* p, const float* g, float* m, float* v, float lr, float b1,
                 float b2, float eps, int t_base, const int32_t* t_counter) {
  adam_scalars_kernel<<<1, 1, 0, ctx.stream>>>(lr, b1, b2, t_base, t_counter, ctx.adam_step, ctx.status);
  CUDA_CHECK_LAUNCH("adam_scalars_kernel");
  if (n % 4 == 0 && a16(p) && a16(g) && a16(m) && a16(v)) {
    adam_kernel<true><<<grid_for(n / 4), kBlock, 0, ctx.stream>>>(n / 4, p, g, m, v, b1, b2, eps, ctx.adam_step);
    CUDA_CHECK_LAUNCH("adam_kernel<vec>");
  } else {
    adam_kernel<false><<<grid_for(n), kBlock, 0, ctx.stream>>>(n, p, g, m, v, b1, b2, eps, ctx.adam_step);
    CUDA_CHECK_LAUNCH("adam_kernel");
  }
}

}  // namespace cgan::cuda
