// Batch norm over [N, C, S] with per-channel statistics: the CPU backend's math (src/cpu/
// cpu_backend.cpp), as full-grid deterministic split reductions (channel_reduce.cuh).
//
// Training forward, five launches: partial sums of x; mean = sum / count per channel (double);
// partial sums of (x - mean)^2 (two-pass variance, no cancellation); per channel save_mean,
// save_invstd, the running statistics and the affine coefficients a = gamma invstd and
// b = beta - a lo, where lo = mean - save_mean is the float mean's rounding (the CPU's compensated
// mean); then y = act(a (x - save_mean) + b) elementwise, the activation that follows the batch
// norm fused into this pass.
// Backward, three launches: partial sums of gy, gy (x - save_mean) and (x - save_mean) (the last
// gives lo, so xhat is taken about the exact mean); per channel gbeta, ggamma and k, u, w; then
// gx = k gy + u (x - save_mean) + w elementwise.
// Eval: a = gamma / sqrt(run_var + eps) per channel, then y = act(a (x - run_mean) + beta).
// Every sum is in double, combined in a fixed order: no atomics, the same result on every run. The
// per-channel values and partials live in the context's chan_ws; in-place use (y == x, gx == gy)
// is safe since the elementwise pass runs after the reductions and each element is read and
// written by one thread.
#include "bn_statistics.cuh"
#include "channel_reduce.cuh"
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

// ---- reduction ops (channel_reduce.cuh's Op: set_channel, add1, add4; SumOp and SqDevOp live there)
struct BwdOp {  // sum gy, sum gy (x - m), sum (x - m), m = save_mean (float) in double
  const float* x;
  const float* gy;
  const float* save_mean;
  double m;
  __device__ void set_channel(int c) { m = save_mean[c]; }
  __device__ void one(float xv, float gv, double* acc) const {
    const double g = gv, d = static_cast<double>(xv) - m;
    acc[0] += g;
    acc[1] += g * d;
    acc[2] += d;
  }
  __device__ void add1(size_t o, double* acc) const { one(x[o], gy[o], acc); }
  __device__ void add4(size_t o, double* acc) const {
    const float4 a = load4(x, o), g = load4(gy, o);
    one(a.x, g.x, acc), one(a.y, g.y, acc), one(a.z, g.z, acc), one(a.w, g.w, acc);
  }
};

// ---- per-channel finalisers (one thread per channel)
__global__ void bn_eval_coef_kernel(int C, float eps, const float* gamma, const float* run_var, float* a) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) a[c] = static_cast<float>(gamma[c] / sqrt(static_cast<double>(run_var[c]) + static_cast<double>(eps)));
}

__global__ void bn_backward_finalize_kernel(int C, int G, double cnt, const double* partials, const float* gamma,
                                            const float* save_invstd, float* ggamma, float* gbeta, float* k, float* u,
                                            float* w) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double sg = sum_partials(partials, c, G, 3, 0);
  const double sgd = sum_partials(partials, c, G, 3, 1);
  const double lo = sum_partials(partials, c, G, 3, 2) / cnt;
  const double invstd = save_invstd[c];
  const double sgx = invstd * (sgd - lo * sg);  // sum gy xhat
  if (gbeta) gbeta[c] += static_cast<float>(sg);
  if (ggamma) ggamma[c] += static_cast<float>(sgx);
  const double kc = static_cast<double>(gamma[c]) * invstd;
  const double uc = -kc * invstd * (sgx / cnt);
  k[c] = static_cast<float>(kc);
  u[c] = static_cast<float>(uc);
  w[c] = static_cast<float>(-kc * (sg / cnt) - uc * lo);
}

// Synchronized batch norm: per channel, the NS sums of its G partials in chunk order, written in
// the G = 1 layout (out[c * NS + k]) that the finalisers above read, ready for the cross-rank sum.
template <int NS>
__global__ void bn_collapse_kernel(int C, int G, const double* partials, double* out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int k = 0; k < NS; ++k) out[static_cast<size_t>(c) * NS + k] = sum_partials(partials, c, G, NS, k);
}

// bn_backward_finalize_kernel with the sums of every rank (all: sg, sgd, sd per channel) for gx
// and this rank's own (loc) for ggamma and gbeta.
__global__ void bn_backward_finalize_sync_kernel(int C, double cnt, const double* all, const double* loc,
                                                 const float* gamma, const float* save_invstd, float* ggamma,
                                                 float* gbeta, float* k, float* u, float* w) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double sg = all[3 * c], sgd = all[3 * c + 1];
  const double lo = all[3 * c + 2] / cnt;
  const double invstd = save_invstd[c];
  const double sgx = invstd * (sgd - lo * sg);
  if (gbeta) gbeta[c] += static_cast<float>(loc[3 * c]);
  if (ggamma) ggamma[c] += static_cast<float>(invstd * (loc[3 * c + 1] - lo * loc[3 * c]));
  const double kc = static_cast<double>(gamma[c]) * invstd;
  const double uc = -kc * invstd * (sgx / cnt);
  k[c] = static_cast<float>(kc);
  u[c] = static_cast<float>(uc);
  w[c] = static_cast<float>(-kc * (sg / cnt) - uc * lo);
}

unsigned per_channel_grid(int C) { return static_cast<unsigned>((C + kBlock - 1) / kBlock); }

// ---- elementwise passes (ncs_apply_kernel functors; u is a unit of 1 or 4 floats)
template <bool kVec>
struct AffineApply {  // y = act(a[c] (x - m[c]) + b[c])
  const float *x, *m, *a, *b;
  float* y;
  Act act;
  float slope;
  __device__ void operator()(long long u, int c) const {
    const float mc = m[c], ac = a[c], bc = b[c];
    if constexpr (kVec) {
      const size_t o = static_cast<size_t>(u) * 4;
      float4 v = load4(x, o);
      v.x = act_forward(act, slope, ac * (v.x - mc) + bc);
      v.y = act_forward(act, slope, ac * (v.y - mc) + bc);
      v.z = act_forward(act, slope, ac * (v.z - mc) + bc);
      v.w = act_forward(act, slope, ac * (v.w - mc) + bc);
      store4(y, o, v);
    } else {
      y[u] = act_forward(act, slope, ac * (x[u] - mc) + bc);
    }
  }
};

template <bool kVec>
struct BackwardApply {  // gx = k[c] gy + u[c] (x - m[c]) + w[c]
  const float *x, *gy, *m, *k, *uu, *w;
  float* gx;
  __device__ void operator()(long long u, int c) const {
    const float kc = k[c], uc = uu[c], wc = w[c], mc = m[c];
    if constexpr (kVec) {
      const size_t o = static_cast<size_t>(u) * 4;
      const float4 a = load4(x, o), g = load4(gy, o);
      float4 r;
      r.x = kc * g.x + uc * (a.x - mc) + wc;
      r.y = kc * g.y + uc * (a.y - mc) + wc;
      r.z = kc * g.z + uc * (a.z - mc) + wc;
      r.w = kc * g.w + uc * (a.w - mc) + wc;
      store4(gx, o, r);
    } else {
      gx[u] = kc * gy[u] + uc * (x[u] - mc) + wc;
    }
  }
};

bool vec_ok(int S, std::initializer_list<const void*> ptrs) {
  if (S == 1 || S % 4 != 0) return false;
  for (const void* p : ptrs)
    if (!aligned16(p)) return false;
  return true;
}

void affine(const Context& ctx, int N, int C, int S, const float* x, const float* m, const float* a, const float* b,
            float* y, Act act, float slope) {
  if (vec_ok(S, {x, y}))
    launch_ncs_apply(ctx.stream, N, C, S, true, AffineApply<true>{x, m, a, b, y, act, slope}, "bn affine<vec>");
  else
    launch_ncs_apply(ctx.stream, N, C, S, false, AffineApply<false>{x, m, a, b, y, act, slope}, "bn affine");
}

}  // namespace

void launch_batchnorm_forward_train(const Context& ctx, int N, int C, int S, float eps, float momentum, const float* x,
                                    const float* gamma, const float* beta, float* y, float* save_mean,
                                    float* save_invstd, float* run_mean, float* run_var, Act act, float slope) {
  const BnWs ws = bn_ws(ctx, C, "batchnorm_forward_train");
  const ChanSplit sp = plan_split(N, C, S, aligned16(x), 1, ws.capacity, "batchnorm_forward_train");
  const double cnt = static_cast<double>(N) * S;
  float* a = ws.coef;
  float* b = ws.coef + C;
  launch_bn_train_statistics(ctx.stream, sp, C, cnt, eps, momentum, x, ws, gamma, beta, save_mean, save_invstd,
                             run_mean, run_var, a, b);
  affine(ctx, N, C, S, x, save_mean, a, b, y, act, slope);
}

void launch_batchnorm_forward_eval(const Context& ctx, int N, int C, int S, float eps, const float* x,
                                   const float* gamma, const float* beta, const float* run_mean, const float* run_var,
                                   float* y, Act act, float slope) {
  const BnWs ws = bn_ws(ctx, C, "batchnorm_forward_eval");
  bn_eval_coef_kernel<<<per_channel_grid(C), kBlock, 0, ctx.stream>>>(C, eps, gamma, run_var, ws.coef);
  CUDA_CHECK_LAUNCH("bn_eval_coef_kernel");
  affine(ctx, N, C, S, x, run_mean, ws.coef, beta, y, act, slope);
}

void launch_batchnorm_backward(const Context& ctx, int N, int C, int S, const float* x, const float* gamma,
                               const float* save_mean, const float* save_invstd, const float* gy, float* gx,
                               float* ggamma, float* gbeta) {
  const BnWs ws = bn_ws(ctx, C, "batchnorm_backward");
  const ChanSplit sp = plan_split(N, C, S, aligned16(x) && aligned16(gy), 3, ws.capacity, "batchnorm_backward");
  const double cnt = static_cast<double>(N) * S;
  float* k = ws.coef;
  float* u = ws.coef + C;
  float* w = ws.coef + 2 * static_cast<size_t>(C);
  launch_partials<3>(ctx.stream, sp, BwdOp{x, gy, save_mean, 0.0}, ws.partials, "bn backward partials");
  bn_backward_finalize_kernel<<<per_channel_grid(C), kBlock, 0, ctx.stream>>>(C, sp.G, cnt, ws.partials, gamma,
                                                                              save_invstd, ggamma, gbeta, k, u, w);
  CUDA_CHECK_LAUNCH("bn_backward_finalize_kernel");
  if (vec_ok(S, {x, gy, gx}))
    launch_ncs_apply(ctx.stream, N, C, S, true, BackwardApply<true>{x, gy, save_mean, k, u, w, gx},
                     "bn backward apply<vec>");
  else
    launch_ncs_apply(ctx.stream, N, C, S, false, BackwardApply<false>{x, gy, save_mean, k, u, w, gx},
                     "bn backward apply");
}

// Synchronized batch norm. chan_ws: mean [C], coefficients (room of 2C doubles), then 6C doubles
// of per-channel sums (forward: m2 [C]; backward: every rank's [3C] and this rank's [3C]), then the
// partials. The per-channel sums are collapsed from the partials in chunk order before the
// cross-rank sum, so with one rank every value is the plain op's.
namespace {
struct BnSyncWs {
  BnWs base;
  double* red;  // 6C doubles
};
BnSyncWs bn_sync_ws(const Context& ctx, int C, const char* op) {
  BnSyncWs w;
  w.base = bn_ws(ctx, C, op, 9 * static_cast<size_t>(C));
  w.red = ctx.chan_ws + 3 * static_cast<size_t>(C);
  return w;
}
}  // namespace

void launch_batchnorm_forward_train_sync(const Context& ctx, int N, int C, int S, float eps, float momentum,
                                         const float* x, const float* gamma, const float* beta, float* y,
                                         float* save_mean, float* save_invstd, float* run_mean, float* run_var,
                                         RankReduce& sync, Act act, float slope) {
  const BnSyncWs sw = bn_sync_ws(ctx, C, "batchnorm_forward_train_sync");
  const BnWs& ws = sw.base;
  const ChanSplit sp = plan_split(N, C, S, aligned16(x), 1, ws.capacity, "batchnorm_forward_train_sync");
  const double cnt = static_cast<double>(N) * S * sync.ranks();
  float* a = ws.coef;
  float* b = ws.coef + C;
  launch_partials<1>(ctx.stream, sp, SumOp{x}, ws.partials, "bn sum partials");
  bn_collapse_kernel<1><<<per_channel_grid(C), kBlock, 0, ctx.stream>>>(C, sp.G, ws.partials, ws.mean);
  CUDA_CHECK_LAUNCH("bn_collapse_kernel<1>");
  sync.sum(ws.mean, static_cast<size_t>(C));
  launch_bn_mean(ctx.stream, C, 1, cnt, ws.mean, ws.mean);
  launch_partials<1>(ctx.stream, sp, SqDevOp{x, ws.mean, 0.0}, ws.partials, "bn variance partials");
  bn_collapse_kernel<1><<<per_channel_grid(C), kBlock, 0, ctx.stream>>>(C, sp.G, ws.partials, sw.red);
  CUDA_CHECK_LAUNCH("bn_collapse_kernel<1>");
  sync.sum(sw.red, static_cast<size_t>(C));
  launch_bn_finalize(ctx.stream, C, 1, cnt, eps, momentum, sw.red, ws.mean, gamma, beta, save_mean, save_invstd,
                     run_mean, run_var, a, b);
  affine(ctx, N, C, S, x, save_mean, a, b, y, act, slope);
}

void launch_batchnorm_backward_sync(const Context& ctx, int N, int C, int S, const float* x, const float* gamma,
                                    const float* save_mean, const float* save_invstd, const float* gy, float* gx,
                                    float* ggamma, float* gbeta, RankReduce& sync) {
  const BnSyncWs sw = bn_sync_ws(ctx, C, "batchnorm_backward_sync");
  const BnWs& ws = sw.base;
  const ChanSplit sp = plan_split(N, C, S, aligned16(x) && aligned16(gy), 3, ws.capacity, "batchnorm_backward_sync");
  const double cnt = static_cast<double>(N) * S * sync.ranks();
  float* k = ws.coef;
  float* u = ws.coef + C;
  float* w = ws.coef + 2 * static_cast<size_t>(C);
  double* all = sw.red;
  double* loc = sw.red + 3 * static_cast<size_t>(C);
  launch_partials<3>(ctx.stream, sp, BwdOp{x, gy, save_mean, 0.0}, ws.partials, "bn backward partials");
  bn_collapse_kernel<3><<<per_channel_grid(C), kBlock, 0, ctx.stream>>>(C, sp.G, ws.partials, loc);
  CUDA_CHECK_LAUNCH("bn_collapse_kernel<3>");
  CUDA_CHECK(
      cudaMemcpyAsync(all, loc, 3 * static_cast<size_t>(C) * sizeof(double), cudaMemcpyDeviceToDevice, ctx.stream));
  sync.sum(all, 3 * static_cast<size_t>(C));
  bn_backward_finalize_sync_kernel<<<per_channel_grid(C), kBlock, 0, ctx.stream>>>(C, cnt, all, loc, gamma, save_invstd,
                                                                                   ggamma, gbeta, k, u, w);
  CUDA_CHECK_LAUNCH("bn_backward_finalize_sync_kernel");
  if (vec_ok(S, {x, gy, gx}))
    launch_ncs_apply(ctx.stream, N, C, S, true, BackwardApply<true>{x, gy, save_mean, k, u, w, gx},
                     "bn backward apply<vec>");
  else
    launch_ncs_apply(ctx.stream, N, C, S, false, BackwardApply<false>{x, gy, save_mean, k, u, w, gx},
                     "bn backward apply");
}

}  // namespace cgan::cuda
