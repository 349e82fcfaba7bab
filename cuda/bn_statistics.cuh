// Batch-norm training statistics on the GPU, shared by batch norm (batchnorm.cu) and conditional batch norm (conditional.cu): the chan_ws layout, the per-channel mean and finaliser, and the four-launch statistics pass.
#pragma once
#include <cstddef>

#include "channel_reduce.cuh"
#include "common.cuh"

namespace cgan::cuda {

// chan_ws layout for C channels: mean [C] doubles, then coefficients (3C floats, in the room of
// 2C doubles), then the partials.
struct BnWs {
  double* mean;
  float* coef;  // a [C], b [C] (forward) or k [C], u [C], w [C] (backward)
  double* partials;
  size_t capacity;  // doubles for partials
};
// The layout with `head` doubles before the partials (at least 3C; the sync ops keep more room).
BnWs bn_ws(const Context& ctx, int C, const char* op, size_t head = 0);

// mean[c] = (sum of partials of channel c, G per channel) / cnt. partials may be mean (G = 1).
void launch_bn_mean(cudaStream_t stream, int C, int G, double cnt, const double* partials, double* mean);

// Per channel, from the double mean and the partial sums of squared deviations about it (G per
// channel) over cnt values: save_mean (the float mean), save_invstd, the running statistics (when
// run_mean is given; unbiased variance) and the coefficients of y = a (x - save_mean) + b:
// a = gamma invstd, b = beta - a lo, lo = mean - save_mean (the float mean's rounding, folded into
// the offset as the CPU does). gamma and beta may be null: 1 and 0 (conditional batch norm, whose
// per-sample gain and bias come after).
void launch_bn_finalize(cudaStream_t stream, int C, int G, double cnt, float eps, float momentum,
                        const double* partials, const double* mean, const float* gamma, const float* beta,
                        float* save_mean, float* save_invstd, float* run_mean, float* run_var, float* a, float* b);

// The whole statistics pass of a training forward over x [N, C, S] split as sp (plan_split with
// NS = 1 into ws.partials): partial sums of x, the mean, partial sums of (x - mean)^2 (two-pass
// variance), then launch_bn_finalize. Four launches, deterministic (channel_reduce.cuh).
void launch_bn_train_statistics(cudaStream_t stream, const ChanSplit& sp, int C, double cnt, float eps, float momentum,
                                const float* x, const BnWs& ws, const float* gamma, const float* beta, float* save_mean,
                                float* save_invstd, float* run_mean, float* run_var, float* a, float* b);

}  // namespace cgan::cuda
