// Fused loss: one pass writes grad[i] and reduces the three accumulators (mean loss term, sum of
// D(x), count of correct decisions). Each block sums its share in double (warp shuffles, then
// shared memory), writes its three partials to the context's scratch and takes a ticket; the last
// block to finish adds the partials up in block order and updates acc. One launch, no host sync,
// the same result on every run (no float atomics), and the ticket is reset by the last block so the
// kernel can be replayed in a CUDA graph. The per-element math is scalar_math.hpp's loss_point.
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

template <LossKind K>
__global__ void loss_fused_kernel(int n, const float* x, float target, float scale, float weight,
                                  float* grad, float* acc, double* partials, unsigned* ticket) {
  __shared__ double smem[32];
  const bool pos = target > 0.5f;
  double loss = 0.0, prob = 0.0, correct = 0.0;
  for (size_t i = global_index(); i < static_cast<size_t>(n); i += global_stride()) {
    const LossPoint p = loss_point(K, x[i], target);
    grad[i] = p.grad * scale;
    loss += p.loss;
    prob += p.prob;
    correct += ((p.prob > 0.5f) == pos) ? 1.0 : 0.0;
  }
  loss = block_sum(loss, smem);
  prob = block_sum(prob, smem);
  correct = block_sum(correct, smem);
  if (threadIdx.x != 0) return;

  if (gridDim.x > 1) {
    partials[3 * blockIdx.x + 0] = loss;
    partials[3 * blockIdx.x + 1] = prob;
    partials[3 * blockIdx.x + 2] = correct;
    __threadfence();  // partials visible to the last block before it sees our ticket
    if (atomicAdd(ticket, 1u) != gridDim.x - 1) return;
    __threadfence();
    const volatile double* p = partials;  // bypass L1: written by other blocks
    loss = prob = correct = 0.0;
    for (unsigned b = 0; b < gridDim.x; ++b) {
      loss += p[3 * b + 0];
      prob += p[3 * b + 1];
      correct += p[3 * b + 2];
    }
    *ticket = 0u;
  }
  acc[0] += static_cast<float>(loss * static_cast<double>(weight) / static_cast<double>(n));
  acc[1] += static_cast<float>(prob);
  acc[2] += static_cast<float>(correct);
}

}  // namespace

void launch_loss_fused(const Context& ctx, LossKind k, int n, const float* x, float target,
                       float weight, float* grad, float* acc) {
  const float scale = weight / static_cast<float>(n);  // as the CPU backend
  const unsigned blocks =
      std::min<unsigned>(grid_for(static_cast<size_t>(n)), Context::kLossMaxBlocks);
  switch (k) {
    case LossKind::log:
      loss_fused_kernel<LossKind::log><<<blocks, kBlock, 0, ctx.stream>>>(
          n, x, target, scale, weight, grad, acc, ctx.loss_partials, ctx.loss_ticket);
      break;
    case LossKind::squared:
      loss_fused_kernel<LossKind::squared><<<blocks, kBlock, 0, ctx.stream>>>(
          n, x, target, scale, weight, grad, acc, ctx.loss_partials, ctx.loss_ticket);
      break;
    default: throw Error(cat("loss_fused: unknown loss kind ", static_cast<int>(k)));
  }
  CUDA_CHECK_LAUNCH("loss_fused_kernel");
}

}  // namespace cgan::cuda
