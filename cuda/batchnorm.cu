// Batch norm over [N, C, S] with per-channel statistics, the CPU backend's math: sums in double,
// two-pass variance (no cancellation), y = a (x - mean) + b with a = gamma * invstd.
//
// Training forward and backward are one kernel each: a block owns whole channels, reduces over
// their N*S values (threads, then a fixed-order tree in shared memory), then writes that channel's
// output; no scratch, no atomics, deterministic, and in-place use (y == x, gx == gy) is safe since
// every element is read and written by the same thread after the reductions.
//  - S == 1 (dense layers, x is [N, C]): blocks of 32 channels x 8 row lanes, coalesced rows.
//  - S > 1: one channel per block, 512 lanes over its N*S values.
// A channel per block leaves SMs idle when C is small and N*S large (conv feature maps); cuDNN's
// batch norm or a split reduction is the later optimisation there.
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

template <bool kDense>
struct BnShape {
  static constexpr int kChannels = kDense ? 32 : 1;  // blockDim.x
  static constexpr int kLanes = kDense ? 8 : 512;    // blockDim.y
};

// Offset of the j-th value (0 <= j < N*S) of channel c.
template <bool kDense>
__device__ __forceinline__ size_t bn_offset(long long j, int C, int S, int c) {
  if constexpr (kDense) {
    return static_cast<size_t>(j) * C + c;
  } else {
    const long long n = j / S;
    const long long s = j - n * S;
    return (static_cast<size_t>(n) * C + c) * S + static_cast<size_t>(s);
  }
}

// Sum over threadIdx.y for each threadIdx.x, returned to every thread. All threads must call it.
template <int CW, int LANES>
__device__ double lane_sum(double v, double (&sh)[LANES][CW]) {
  sh[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  for (int s = LANES / 2; s > 0; s >>= 1) {
    if (threadIdx.y < static_cast<unsigned>(s)) sh[threadIdx.y][threadIdx.x] += sh[threadIdx.y + s][threadIdx.x];
    __syncthreads();
  }
  const double r = sh[0][threadIdx.x];
  __syncthreads();
  return r;
}

template <bool kDense>
__global__ void batchnorm_train_kernel(int N, int C, int S, float eps, float momentum,
                                       const float* x, const float* gamma, const float* beta,
                                       float* y, float* save_mean, float* save_invstd,
                                       float* run_mean, float* run_var) {
  constexpr int CW = BnShape<kDense>::kChannels, LANES = BnShape<kDense>::kLanes;
  __shared__ double sh[LANES][CW];
  const int c = blockIdx.x * CW + threadIdx.x;
  const bool ok = c < C;
  const long long cnt = static_cast<long long>(N) * S;
  const double dcnt = static_cast<double>(cnt);

  double s = 0.0;
  if (ok)
    for (long long j = threadIdx.y; j < cnt; j += LANES) s += x[bn_offset<kDense>(j, C, S, c)];
  const double mean = lane_sum<CW, LANES>(s, sh) / dcnt;
  double q = 0.0;
  if (ok)
    for (long long j = threadIdx.y; j < cnt; j += LANES) {
      const double d = static_cast<double>(x[bn_offset<kDense>(j, C, S, c)]) - mean;
      q += d * d;
    }
  const double m2 = lane_sum<CW, LANES>(q, sh);
  if (!ok) return;  // after the last barrier

  const float fmean = static_cast<float>(mean);
  const float invstd = static_cast<float>(1.0 / sqrt(m2 / dcnt + static_cast<double>(eps)));
  if (threadIdx.y == 0) {
    save_mean[c] = fmean;
    save_invstd[c] = invstd;
    if (run_mean) {
      const double mom = momentum;
      const double unbiased = m2 / (dcnt - 1.0);
      run_mean[c] = static_cast<float>((1.0 - mom) * run_mean[c] + mom * mean);
      run_var[c] = static_cast<float>((1.0 - mom) * run_var[c] + mom * unbiased);
    }
  }
  const float a = gamma[c] * invstd, b = beta[c];
  for (long long j = threadIdx.y; j < cnt; j += LANES) {
    const size_t o = bn_offset<kDense>(j, C, S, c);
    y[o] = a * (x[o] - fmean) + b;
  }
}

// y = a (x - run_mean) + beta, a = gamma / sqrt(run_var + eps) (in double, then float, as the CPU).
__global__ void batchnorm_eval_kernel(size_t total, int C, int S, float eps, const float* x,
                                      const float* gamma, const float* beta,
                                      const float* run_mean, const float* run_var, float* y) {
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const int c = static_cast<int>((i / static_cast<size_t>(S)) % static_cast<size_t>(C));
    const float a = static_cast<float>(
        gamma[c] / sqrt(static_cast<double>(run_var[c]) + static_cast<double>(eps)));
    y[i] = a * (x[i] - run_mean[c]) + beta[c];
  }
}

// gx = k gy + u (x - mean) + w with k = gamma invstd, u = -k invstd mean(gy xhat), w = -k mean(gy);
// gbeta += sum gy, ggamma += sum gy xhat.
template <bool kDense>
__global__ void batchnorm_backward_kernel(int N, int C, int S, const float* x, const float* gamma,
                                          const float* save_mean, const float* save_invstd,
                                          const float* gy, float* gx, float* ggamma,
                                          float* gbeta) {
  constexpr int CW = BnShape<kDense>::kChannels, LANES = BnShape<kDense>::kLanes;
  __shared__ double sh[LANES][CW];
  const int c = blockIdx.x * CW + threadIdx.x;
  const bool ok = c < C;
  const long long cnt = static_cast<long long>(N) * S;
  const double dcnt = static_cast<double>(cnt);
  const double m = ok ? static_cast<double>(save_mean[c]) : 0.0;

  double sg = 0.0, sgx = 0.0;
  if (ok)
    for (long long j = threadIdx.y; j < cnt; j += LANES) {
      const size_t o = bn_offset<kDense>(j, C, S, c);
      const double g = gy[o];
      sg += g;
      sgx += g * (static_cast<double>(x[o]) - m);
    }
  sg = lane_sum<CW, LANES>(sg, sh);
  sgx = lane_sum<CW, LANES>(sgx, sh);
  if (!ok) return;

  const double invstd = save_invstd[c];
  sgx *= invstd;  // sum gy xhat
  if (threadIdx.y == 0) {
    if (gbeta) gbeta[c] += static_cast<float>(sg);
    if (ggamma) ggamma[c] += static_cast<float>(sgx);
  }
  const double kc = static_cast<double>(gamma[c]) * invstd;
  const float k = static_cast<float>(kc);
  const float u = static_cast<float>(-kc * invstd * (sgx / dcnt));
  const float w = static_cast<float>(-kc * (sg / dcnt));
  const float fm = save_mean[c];
  for (long long j = threadIdx.y; j < cnt; j += LANES) {
    const size_t o = bn_offset<kDense>(j, C, S, c);
    gx[o] = k * gy[o] + u * (x[o] - fm) + w;
  }
}

template <bool kDense>
dim3 bn_block() {
  return dim3(BnShape<kDense>::kChannels, BnShape<kDense>::kLanes);
}
template <bool kDense>
unsigned bn_grid(int C) {
  return static_cast<unsigned>((C + BnShape<kDense>::kChannels - 1) / BnShape<kDense>::kChannels);
}

}  // namespace

void launch_batchnorm_forward_train(const Context& ctx, int N, int C, int S, float eps,
                                    float momentum, const float* x, const float* gamma,
                                    const float* beta, float* y, float* save_mean,
                                    float* save_invstd, float* run_mean, float* run_var) {
  if (S == 1)
    batchnorm_train_kernel<true><<<bn_grid<true>(C), bn_block<true>(), 0, ctx.stream>>>(
        N, C, S, eps, momentum, x, gamma, beta, y, save_mean, save_invstd, run_mean, run_var);
  else
    batchnorm_train_kernel<false><<<bn_grid<false>(C), bn_block<false>(), 0, ctx.stream>>>(
        N, C, S, eps, momentum, x, gamma, beta, y, save_mean, save_invstd, run_mean, run_var);
  CUDA_CHECK_LAUNCH("batchnorm_train_kernel");
}

void launch_batchnorm_forward_eval(const Context& ctx, int N, int C, int S, float eps,
                                   const float* x, const float* gamma, const float* beta,
                                   const float* run_mean, const float* run_var, float* y) {
  const size_t total = static_cast<size_t>(N) * C * S;
  batchnorm_eval_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(total, C, S, eps, x, gamma,
                                                                    beta, run_mean, run_var, y);
  CUDA_CHECK_LAUNCH("batchnorm_eval_kernel");
}

void launch_batchnorm_backward(const Context& ctx, int N, int C, int S, const float* x,
                               const float* gamma, const float* save_mean,
                               const float* save_invstd, const float* gy, float* gx,
                               float* ggamma, float* gbeta) {
  if (S == 1)
    batchnorm_backward_kernel<true><<<bn_grid<true>(C), bn_block<true>(), 0, ctx.stream>>>(
        N, C, S, x, gamma, save_mean, save_invstd, gy, gx, ggamma, gbeta);
  else
    batchnorm_backward_kernel<false><<<bn_grid<false>(C), bn_block<false>(), 0, ctx.stream>>>(
        N, C, S, x, gamma, save_mean, save_invstd, gy, gx, ggamma, gbeta);
  CUDA_CHECK_LAUNCH("batchnorm_backward_kernel");
}

}  // namespace cgan::cuda
