// Batch-norm training statistics (bn_statistics.cuh): the per-channel mean and finaliser kernels and their launchers, one copy for batch norm and conditional batch norm.
#include "bn_statistics.cuh"
#include "device.cuh"

namespace cgan::cuda {
namespace {

unsigned channel_grid(int C) { return static_cast<unsigned>((C + kBlock - 1) / kBlock); }

__global__ void bn_mean_kernel(int C, int G, double cnt, const double* partials, double* mean) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) mean[c] = sum_partials(partials, c, G, 1, 0) / cnt;
}

__global__ void bn_finalize_kernel(int C, int G, double cnt, float eps, float momentum, const double* partials,
                                   const double* mean_d, const float* gamma, const float* beta, float* save_mean,
                                   float* save_invstd, float* run_mean, float* run_var, float* a, float* b) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double mean = mean_d[c];
  const double m2 = sum_partials(partials, c, G, 1, 0);
  const double var = m2 / cnt;
  const float fmean = static_cast<float>(mean);
  save_mean[c] = fmean;
  save_invstd[c] = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
  if (run_mean) {
    const double mom = momentum;
    const double unbiased = m2 / (cnt - 1.0);
    run_mean[c] = static_cast<float>((1.0 - mom) * run_mean[c] + mom * mean);
    run_var[c] = static_cast<float>((1.0 - mom) * run_var[c] + mom * unbiased);
  }
  const double ac = (gamma ? static_cast<double>(gamma[c]) : 1.0) / sqrt(m2 / cnt + static_cast<double>(eps));
  const double lo = mean - static_cast<double>(fmean);
  a[c] = static_cast<float>(ac);
  b[c] = static_cast<float>(beta ? static_cast<double>(beta[c]) - ac * lo : -ac * lo);
}

}  // namespace

BnWs bn_ws(const Context& ctx, int C, const char* op, size_t head) {
  head = std::max(head, 3 * static_cast<size_t>(C));
  CGAN_CHECK(head < Context::kChanWsDoubles, op, ": ", C, " channels exceed the backend's scratch");
  return {ctx.chan_ws, reinterpret_cast<float*>(ctx.chan_ws + C), ctx.chan_ws + head, Context::kChanWsDoubles - head};
}

void launch_bn_mean(cudaStream_t stream, int C, int G, double cnt, const double* partials, double* mean) {
  bn_mean_kernel<<<channel_grid(C), kBlock, 0, stream>>>(C, G, cnt, partials, mean);
  CUDA_CHECK_LAUNCH("bn_mean_kernel");
}

void launch_bn_finalize(cudaStream_t stream, int C, int G, double cnt, float eps, float momentum,
                        const double* partials, const double* mean, const float* gamma, const float* beta,
                        float* save_mean, float* save_invstd, float* run_mean, float* run_var, float* a, float* b) {
  bn_finalize_kernel<<<channel_grid(C), kBlock, 0, stream>>>(C, G, cnt, eps, momentum, partials, mean, gamma, beta,
                                                             save_mean, save_invstd, run_mean, run_var, a, b);
  CUDA_CHECK_LAUNCH("bn_finalize_kernel");
}

void launch_bn_train_statistics(cudaStream_t stream, const ChanSplit& sp, int C, double cnt, float eps, float momentum,
                                const float* x, const BnWs& ws, const float* gamma, const float* beta, float* save_mean,
                                float* save_invstd, float* run_mean, float* run_var, float* a, float* b) {
  launch_partials<1>(stream, sp, SumOp{x}, ws.partials, "bn sum partials");
  launch_bn_mean(stream, C, sp.G, cnt, ws.partials, ws.mean);
  launch_partials<1>(stream, sp, SqDevOp{x, ws.mean, 0.0}, ws.partials, "bn variance partials");
  launch_bn_finalize(stream, C, sp.G, cnt, eps, momentum, ws.partials, ws.mean, gamma, beta, save_mean, save_invstd,
                     run_mean, run_var, a, b);
}

}  // namespace cgan::cuda
