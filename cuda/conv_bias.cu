// The bias of a convolution over y [N, K, PQ] (conv.cpp runs the convolution itself in cuDNN):
// forward adds bias[k] to every element of channel k; backward adds, per channel, the sum of gy
// over n and PQ to gbias. The backward sum is one block per channel (double lanes, then the fixed
// order block_sum), so it is deterministic and needs no atomics or scratch.
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

constexpr int kBiasBlock = 256;

__global__ void conv_bias_forward_kernel(size_t total, int K, size_t PQ, const float* bias,
                                         float* y) {
  for (size_t i = global_index(); i < total; i += global_stride())
    y[i] += bias[(i / PQ) % static_cast<size_t>(K)];
}

// Block k: gbias[k] += sum over n < N, j < PQ of gy[(n K + k) PQ + j].
__global__ void conv_bias_backward_kernel(int N, int K, size_t PQ, const float* gy,
                                          float* gbias) {
  __shared__ double smem[32];
  const int k = blockIdx.x;
  const size_t cnt = static_cast<size_t>(N) * PQ;
  double s = 0.0;
  for (size_t j = threadIdx.x; j < cnt; j += blockDim.x) {
    const size_t n = j / PQ, q = j - n * PQ;
    s += gy[(n * static_cast<size_t>(K) + static_cast<size_t>(k)) * PQ + q];
  }
  s = block_sum(s, smem);
  if (threadIdx.x == 0) gbias[k] += static_cast<float>(s);
}

}  // namespace

void launch_conv_bias_forward(const Context& ctx, int N, int K, size_t PQ, const float* bias,
                              float* y) {
  const size_t total = static_cast<size_t>(N) * static_cast<size_t>(K) * PQ;
  conv_bias_forward_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(total, K, PQ, bias, y);
  CUDA_CHECK_LAUNCH("conv_bias_forward_kernel");
}

void launch_conv_bias_backward(const Context& ctx, int N, int K, size_t PQ, const float* gy,
                               float* gbias) {
  conv_bias_backward_kernel<<<static_cast<unsigned>(K), kBiasBlock, 0, ctx.stream>>>(N, K, PQ, gy,
                                                                                    gbias);
  CUDA_CHECK_LAUNCH("conv_bias_backward_kernel");
}

}  // namespace cgan::cuda
