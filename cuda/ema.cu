// Exponential moving average of a parameter buffer (cgan/nn/ema.hpp; Backend::ema_update): one
// grid-stride pass, float4 when the size and the pointers allow it. Every thread reads the step
// t = t_base + *t_counter when it runs, so a replayed CUDA graph copies before `start` and averages
// after it exactly as the eager ops do. The per-element math is scalar_math.hpp's ema_point, as on
// the CPU (compiled --fmad=false, so the results are bit-identical).
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

template <bool kVec>
__global__ void ema_kernel(size_t units, float* avg, const float* p, float omd, int start, int t_base,
                           const int32_t* t_counter) {
  const bool copy = t_base + (t_counter ? *t_counter : 0) <= start;
  for (size_t i = global_index(); i < units; i += global_stride()) {
    if constexpr (kVec) {
      const float4 pi = reinterpret_cast<const float4*>(p)[i];
      float4 a = copy ? pi : reinterpret_cast<float4*>(avg)[i];
      if (!copy) {
        a.x = ema_point(a.x, pi.x, omd);
        a.y = ema_point(a.y, pi.y, omd);
        a.z = ema_point(a.z, pi.z, omd);
        a.w = ema_point(a.w, pi.w, omd);
      }
      reinterpret_cast<float4*>(avg)[i] = a;
    } else {
      avg[i] = copy ? p[i] : ema_point(avg[i], p[i], omd);
    }
  }
}

bool a16(const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; }

}  // namespace

void launch_ema_update(const Context& ctx, size_t n, float* avg, const float* p, float decay, int start, int t_base,
                       const int32_t* t_counter) {
  const float omd = 1.f - decay;  // as the CPU backend
  if (n % 4 == 0 && a16(avg) && a16(p)) {
    ema_kernel<true><<<grid_for(n / 4), kBlock, 0, ctx.stream>>>(n / 4, avg, p, omd, start, t_base, t_counter);
    CUDA_CHECK_LAUNCH("ema_kernel<vec>");
  } else {
    ema_kernel<false><<<grid_for(n), kBlock, 0, ctx.stream>>>(n, avg, p, omd, start, t_base, t_counter);
    CUDA_CHECK_LAUNCH("ema_kernel");
  }
}

}  // namespace cgan::cuda
