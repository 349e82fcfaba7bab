// Fused loss: one pass writes grad[i] and reduces the three accumulators (mean loss term, sum of
// D(x), count of correct decisions). Each block sums its share in double (warp shuffles, then
// shared memory), writes its three partials to the context's scratch and takes a ticket; the last
// block to finish adds the partials up in block order and updates acc. One launch, no host sync,
// the same result on every run (no float atomics), and the ticket is reset by the last block so the
// kernel can be replayed in a CUDA graph. The per-element math is scalar_math.hpp's loss_point.
// The softmax cross-entropy kernel below uses the same scheme with one warp per row.
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

template <LossKind K>
__global__ void loss_fused_kernel(int n, const float* x, float target, float scale, float weight, float* grad,
                                  float* acc, double* partials, unsigned* ticket) {
  __shared__ double smem[32];
  const bool pos = target > 0.5f;
  double loss = 0.0, prob = 0.0, correct = 0.0;
  for (size_t i = global_index(); i < static_cast<size_t>(n); i += global_stride()) {
    const LossPoint p = loss_point(K, x[i], target);
    grad[i] = p.grad * scale;
    loss += p.loss;
    prob += p.prob;
    correct += (p.says_real == pos) ? 1.0 : 0.0;
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

// Softmax cross-entropy: one warp per row (grid-stride over rows). Per row the lanes find the first
// max, sum exp(x - max) in double, write the gradient, and lane 0 keeps the row's loss and hit in
// registers (rows in a fixed order per warp). Each block adds its warps' sums in warp order, writes
// them to the context's partials and takes a ticket; the last block adds the partials in block
// order and updates acc (as loss_fused: deterministic, replayable, no float atomics). A label
// outside [0, K) zeroes its row's gradient, is left out of acc and flags kStatusXentLabel.
constexpr int kXentWarps = kBlock / 32;

__global__ void softmax_xent_kernel(int B, int K, const float* x, const int32_t* labels, double scale, float weight,
                                    float* grad, float* acc, double* partials, unsigned* ticket, unsigned* status) {
  __shared__ double s_loss[kXentWarps], s_hit[kXentWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  double loss = 0.0, hit = 0.0;  // lane 0's running sums
  for (long long b = static_cast<long long>(blockIdx.x) * kXentWarps + warp; b < B;
       b += static_cast<long long>(gridDim.x) * kXentWarps) {
    const float* r = x + static_cast<size_t>(b) * K;
    float* g = grad + static_cast<size_t>(b) * K;
    const int32_t l = labels[b];
    if (l < 0 || l >= K) {
      for (int k = lane; k < K; k += 32) g[k] = 0.f;
      if (lane == 0) report_status(status, kStatusXentLabel);
      continue;
    }
    float best = 0.f;
    int arg = K;  // K: this lane has no element yet
    for (int k = lane; k < K; k += 32)
      if (arg == K || r[k] > best) best = r[k], arg = k;
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_down_sync(0xffffffffu, best, o);
      const int oa = __shfl_down_sync(0xffffffffu, arg, o);
      if (oa < K && (arg == K || ob > best || (ob == best && oa < arg))) best = ob, arg = oa;
    }
    arg = __shfl_sync(0xffffffffu, arg, 0);
    const float m = r[arg];
    double s = 0.0;
    for (int k = lane; k < K; k += 32) s += exp(static_cast<double>(r[k]) - m);
    s = warp_sum(s);
    s = __shfl_sync(0xffffffffu, s, 0);
    for (int k = lane; k < K; k += 32)
      g[k] = static_cast<float>(scale * (exp(static_cast<double>(r[k]) - m) / s - (k == l ? 1.0 : 0.0)));
    if (lane == 0) {
      loss += static_cast<double>(m) + log(s) - r[l];
      hit += arg == l ? 1.0 : 0.0;
    }
  }
  if (lane == 0) s_loss[warp] = loss, s_hit[warp] = hit;
  __syncthreads();
  if (threadIdx.x != 0) return;
  loss = hit = 0.0;
  for (int w = 0; w < kXentWarps; ++w) loss += s_loss[w], hit += s_hit[w];
  if (gridDim.x > 1) {
    partials[2 * blockIdx.x + 0] = loss;
    partials[2 * blockIdx.x + 1] = hit;
    __threadfence();
    if (atomicAdd(ticket, 1u) != gridDim.x - 1) return;
    __threadfence();
    const volatile double* p = partials;
    loss = hit = 0.0;
    for (unsigned b = 0; b < gridDim.x; ++b) loss += p[2 * b + 0], hit += p[2 * b + 1];
    *ticket = 0u;
  }
  acc[0] += static_cast<float>(loss * static_cast<double>(weight) / static_cast<double>(B));
  acc[1] += static_cast<float>(hit);
}

}  // namespace

void launch_softmax_xent(const Context& ctx, int B, int K, const float* logits, const int32_t* labels, float weight,
                         float* grad, float* acc) {
  const double scale = static_cast<double>(weight) / B;  // as the CPU backend
  const unsigned blocks = std::min<unsigned>(
      static_cast<unsigned>((static_cast<size_t>(B) + kXentWarps - 1) / kXentWarps), Context::kLossMaxBlocks);
  softmax_xent_kernel<<<blocks, kBlock, 0, ctx.stream>>>(B, K, logits, labels, scale, weight, grad, acc,
                                                         ctx.loss_partials, ctx.loss_ticket, ctx.status);
  CUDA_CHECK_LAUNCH("softmax_xent_kernel");
}

void launch_loss_fused(const Context& ctx, LossKind k, int n, const float* x, float target, float weight, float* grad,
                       float* acc) {
  const float scale = weight / static_cast<float>(n);  // as the CPU backend
  const unsigned blocks = std::min<unsigned>(grid_for(static_cast<size_t>(n)), Context::kLossMaxBlocks);
  switch (k) {
    case LossKind::log:
      loss_fused_kernel<LossKind::log><<<blocks, kBlock, 0, ctx.stream>>>(n, x, target, scale, weight, grad, acc,
                                                                          ctx.loss_partials, ctx.loss_ticket);
      break;
    case LossKind::squared:
      loss_fused_kernel<LossKind::squared><<<blocks, kBlock, 0, ctx.stream>>>(n, x, target, scale, weight, grad, acc,
                                                                              ctx.loss_partials, ctx.loss_ticket);
      break;
    case LossKind::hinge:
      loss_fused_kernel<LossKind::hinge><<<blocks, kBlock, 0, ctx.stream>>>(n, x, target, scale, weight, grad, acc,
                                                                            ctx.loss_partials, ctx.loss_ticket);
      break;
    case LossKind::linear:
      loss_fused_kernel<LossKind::linear><<<blocks, kBlock, 0, ctx.stream>>>(n, x, target, scale, weight, grad, acc,
                                                                             ctx.loss_partials, ctx.loss_ticket);
      break;
    default: throw Error(cat("loss_fused: unknown loss kind ", static_cast<int>(k)));
  }
  CUDA_CHECK_LAUNCH("loss_fused_kernel");
}

}  // namespace cgan::cuda
