// The conditional family on the GPU: the projection discriminator's inner product and conditional
// batch norm, the CPU backend's steps (src/cpu/cpu_conditional.cpp) with its elementwise math
// shared verbatim (cgan/backend/conditional_math.hpp). Every sum is in double and combined in a fixed order
// (no atomics): the same result on every run. No host round trip and no allocation: the per-channel
// values live in the context's chan_ws, so every op can be captured in a CUDA graph.
//
// Projection forward: one warp per row, out[b] += sum_j phi[b, j] e[b, j]. Backward: elementwise.
// Conditional batch norm, training forward, five launches: partial sums of x, the mean, partial sums
// of (x - mean)^2 (channel_reduce.cuh's split reductions, as batchnorm.cu), per channel save_mean,
// save_invstd, the running statistics and a = invstd, b = -invstd lo; then y elementwise with the
// sample's gain and bias. Backward, four launches: partial sums of x (for lo); one warp per (n, c)
// row summing gy and gy (x - m) over S into gdbias and gdgain (floats, as the CPU); per channel lo,
// gdgain = invstd (sum gy (x - m) - lo gdbias) and the terms u, w; then gx elementwise.
#include "cgan/backend/conditional_math.hpp"
#include "bn_statistics.cuh"
#include "channel_reduce.cuh"
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;  // row kernels: one warp per row, 8 rows per block

unsigned channel_grid(int C) { return static_cast<unsigned>((C + kBlock - 1) / kBlock); }
unsigned row_grid(size_t rows) { return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }

// ---- projection
__global__ void projection_forward_kernel(int B, int F, const float* phi, const float* e, float* out) {
  const size_t b = static_cast<size_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (b >= static_cast<size_t>(B)) return;
  const float* p = phi + b * F;
  const float* q = e + b * F;
  double s = 0.0;
  for (int j = lane; j < F; j += 32) s += static_cast<double>(p[j]) * q[j];
  s = warp_sum(s);
  if (lane == 0) out[b] += static_cast<float>(s);
}

__global__ void projection_backward_kernel(size_t n, int F, const float* phi, const float* e, const float* g,
                                           float* gphi, float* ge) {
  for (size_t i = global_index(); i < n; i += global_stride()) {
    const float gb = g[i / F];
    if (gphi) gphi[i] += gb * e[i];
    if (ge) ge[i] = gb * phi[i];
  }
}

// ---- conditional batch norm
__global__ void cbn_eval_coef_kernel(int C, float eps, const float* run_var, float* a, float* b) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  a[c] = static_cast<float>(1.0 / sqrt(static_cast<double>(run_var[c]) + static_cast<double>(eps)));
  b[c] = 0.f;
}

// y[n, c, s] = act((1 + dgain[n, c]) (a[c] (x - m[c]) + b[c]) + dbias[n, c]); row = n C + c
// indexes dgain and dbias directly.
__global__ void cbn_apply_kernel(size_t total, int C, int S, const float* x, const float* m, const float* a,
                                 const float* b, const float* dgain, const float* dbias, float* y, Act act,
                                 float slope) {
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const size_t row = i / static_cast<size_t>(S);
    const int c = static_cast<int>(row % static_cast<size_t>(C));
    y[i] = cbn_forward_point(act, slope, x[i], m[c], a[c], b[c], dgain[row], dbias[row]);
  }
}

// One warp per (n, c) row: gdbias[row] = sum_s gy, gdgain[row] = sum_s gy (x - m[c]) (the latter
// finished by cbn_backward_finalize_kernel).
__global__ void cbn_row_sums_kernel(size_t rows, int C, int S, const float* x, const float* gy, const float* m,
                                    float* gdgain, float* gdbias) {
  const size_t row = static_cast<size_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const double mc = m[row % static_cast<size_t>(C)];
  const size_t o = row * static_cast<size_t>(S);
  double sg = 0.0, sgd = 0.0;
  for (int i = lane; i < S; i += 32) {
    const double g = gy[o + i];
    sg += g;
    sgd += g * (static_cast<double>(x[o + i]) - mc);
  }
  sg = warp_sum(sg);
  sgd = warp_sum(sgd);
  if (lane == 0) {
    gdbias[row] = static_cast<float>(sg);
    gdgain[row] = static_cast<float>(sgd);
  }
}

// Per channel (one thread each, the samples in order): lo, gdgain, and u = -invstd^2 Bs / cnt,
// w = -invstd A / cnt - u lo with A = sum_n (1 + dgain) gdbias, Bs = sum_n (1 + dgain) gdgain.
__global__ void cbn_backward_finalize_kernel(int N, int C, int G, double cnt, const double* partials,
                                             const float* save_mean, const float* save_invstd, const float* dgain,
                                             float* gdgain, const float* gdbias, float* u, float* w) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double lo = sum_partials(partials, c, G, 1, 0) / cnt - static_cast<double>(save_mean[c]);
  const double istd = save_invstd[c];
  double A = 0.0, Bs = 0.0;
  for (int n = 0; n < N; ++n) {
    const size_t k = static_cast<size_t>(n) * C + c;
    const double sg = gdbias[k];
    const float gg = static_cast<float>(istd * (static_cast<double>(gdgain[k]) - lo * sg));
    gdgain[k] = gg;
    const double gam = static_cast<double>(1.f + dgain[k]);
    A += gam * sg;
    Bs += gam * gg;
  }
  const double uc = -istd * istd * Bs / cnt;
  u[c] = static_cast<float>(uc);
  w[c] = static_cast<float>(-istd * A / cnt - uc * lo);
}

__global__ void cbn_backward_apply_kernel(size_t total, int C, int S, const float* x, const float* gy, const float* m,
                                          const float* invstd, const float* dgain, const float* u, const float* w,
                                          float* gx) {
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const size_t row = i / static_cast<size_t>(S);
    const int c = static_cast<int>(row % static_cast<size_t>(C));
    gx[i] = cbn_backward_point(gy[i], x[i], m[c], invstd[c], dgain[row], u[c], w[c]);
  }
}

}  // namespace

void launch_projection_forward(const Context& ctx, int B, int F, const float* phi, const float* e, float* out) {
  projection_forward_kernel<<<row_grid(static_cast<size_t>(B)), 32 * kWarpsPerBlock, 0, ctx.stream>>>(B, F, phi, e,
                                                                                                      out);
  CUDA_CHECK_LAUNCH("projection_forward_kernel");
}

void launch_projection_backward(const Context& ctx, int B, int F, const float* phi, const float* e, const float* g,
                                float* gphi, float* ge) {
  const size_t n = static_cast<size_t>(B) * F;
  projection_backward_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, F, phi, e, g, gphi, ge);
  CUDA_CHECK_LAUNCH("projection_backward_kernel");
}

void launch_cbn_forward_train(const Context& ctx, int N, int C, int S, float eps, float momentum, const float* x,
                              const float* dgain, const float* dbias, float* y, float* save_mean, float* save_invstd,
                              float* run_mean, float* run_var, Act act, float slope) {
  const BnWs ws = bn_ws(ctx, C, "cbn_forward_train");
  const ChanSplit sp = plan_split(N, C, S, aligned16(x), 1, ws.capacity, "cbn_forward_train");
  const double cnt = static_cast<double>(N) * S;
  float* a = ws.coef;
  float* b = ws.coef + C;
  launch_bn_train_statistics(ctx.stream, sp, C, cnt, eps, momentum, x, ws, nullptr, nullptr, save_mean, save_invstd,
                             run_mean, run_var, a, b);
  const size_t total = static_cast<size_t>(N) * C * S;
  cbn_apply_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(total, C, S, x, save_mean, a, b, dgain, dbias, y, act,
                                                               slope);
  CUDA_CHECK_LAUNCH("cbn_apply_kernel");
}

void launch_cbn_forward_eval(const Context& ctx, int N, int C, int S, float eps, const float* x, const float* dgain,
                             const float* dbias, const float* run_mean, const float* run_var, float* y, Act act,
                             float slope) {
  const BnWs ws = bn_ws(ctx, C, "cbn_forward_eval");
  float* a = ws.coef;
  float* b = ws.coef + C;
  cbn_eval_coef_kernel<<<channel_grid(C), kBlock, 0, ctx.stream>>>(C, eps, run_var, a, b);
  CUDA_CHECK_LAUNCH("cbn_eval_coef_kernel");
  const size_t total = static_cast<size_t>(N) * C * S;
  cbn_apply_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(total, C, S, x, run_mean, a, b, dgain, dbias, y, act,
                                                               slope);
  CUDA_CHECK_LAUNCH("cbn_apply_kernel (eval)");
}

void launch_cbn_backward(const Context& ctx, int N, int C, int S, const float* x, const float* dgain,
                         const float* save_mean, const float* save_invstd, const float* gy, float* gx, float* gdgain,
                         float* gdbias) {
  const BnWs ws = bn_ws(ctx, C, "cbn_backward");
  const ChanSplit sp = plan_split(N, C, S, aligned16(x), 1, ws.capacity, "cbn_backward");
  const double cnt = static_cast<double>(N) * S;
  float* u = ws.coef;
  float* w = ws.coef + C;
  launch_partials<1>(ctx.stream, sp, SumOp{x}, ws.partials, "cbn backward sum partials");
  const size_t rows = static_cast<size_t>(N) * C;
  cbn_row_sums_kernel<<<row_grid(rows), 32 * kWarpsPerBlock, 0, ctx.stream>>>(rows, C, S, x, gy, save_mean, gdgain,
                                                                              gdbias);
  CUDA_CHECK_LAUNCH("cbn_row_sums_kernel");
  cbn_backward_finalize_kernel<<<channel_grid(C), kBlock, 0, ctx.stream>>>(N, C, sp.G, cnt, ws.partials, save_mean,
                                                                           save_invstd, dgain, gdgain, gdbias, u, w);
  CUDA_CHECK_LAUNCH("cbn_backward_finalize_kernel");
  const size_t total = rows * S;
  cbn_backward_apply_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(total, C, S, x, gy, save_mean, save_invstd,
                                                                        dgain, u, w, gx);
  CUDA_CHECK_LAUNCH("cbn_backward_apply_kernel");
}

}  // namespace cgan::cuda
