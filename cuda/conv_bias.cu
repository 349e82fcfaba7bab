// The epilogue of a convolution over y [N, K, PQ] (conv.cpp runs the convolution itself in
// cuDNN): forward adds bias[k] to every element of channel k and applies the activation that
// follows the conv in the same pass (float4 when PQ % 4 == 0, channel index kept by
// channel_reduce.cuh's division-free cursor); backward adds, per channel, the sum of gy over n
// and PQ to gbias as a full-grid split reduction (per-block partials in double, added in chunk
// order by a per-channel finaliser): deterministic, no atomics.
#include "channel_reduce.cuh"
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

// y = act(y + bias[c]); without a bias nothing is added (so -0 stays -0, as on the CPU).
template <bool kVec>
struct BiasAct {
  const float* bias;
  Act act;
  float slope;
  float* y;
  __device__ float one(float v, float b) const { return act_forward(act, slope, bias ? v + b : v); }
  __device__ void operator()(long long u, int c) const {
    const float b = bias ? bias[c] : 0.f;
    if constexpr (kVec) {
      const size_t o = static_cast<size_t>(u) * 4;
      float4 v = load4(y, o);
      v.x = one(v.x, b), v.y = one(v.y, b), v.z = one(v.z, b), v.w = one(v.w, b);
      store4(y, o, v);
    } else {
      y[u] = one(y[u], b);
    }
  }
};

__global__ void conv_bias_finalize_kernel(int K, int G, const double* partials, float* gbias) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < K) gbias[k] += static_cast<float>(sum_partials(partials, k, G, 1, 0));
}

}  // namespace

void launch_conv_bias_act_forward(const Context& ctx, int N, int K, size_t PQ, const float* bias, Act act, float slope,
                                  float* y) {
  if (PQ % 4 == 0 && aligned16(y))
    launch_ncs_apply(ctx.stream, N, K, PQ, true, BiasAct<true>{bias, act, slope, y}, "conv_bias_act_forward<vec>");
  else
    launch_ncs_apply(ctx.stream, N, K, PQ, false, BiasAct<false>{bias, act, slope, y}, "conv_bias_act_forward");
}

void launch_conv_bias_backward(const Context& ctx, int N, int K, size_t PQ, const float* gy, float* gbias) {
  // PQ == 1 is the dense layout [N, K]: plan_split takes the row-chunk path for it.
  const ChanSplit sp = plan_split(N, K, static_cast<long long>(PQ), aligned16(gy), 1, Context::kChanWsDoubles,
                                  "conv2d_backward_filter (bias)");
  launch_partials<1>(ctx.stream, sp, SumOp{gy}, ctx.chan_ws, "conv bias partials");
  conv_bias_finalize_kernel<<<static_cast<unsigned>((K + kBlock - 1) / kBlock), kBlock, 0, ctx.stream>>>(
      K, sp.G, ctx.chan_ws, gbias);
  CUDA_CHECK_LAUNCH("conv_bias_finalize_kernel");
}

}  // namespace cgan::cuda
