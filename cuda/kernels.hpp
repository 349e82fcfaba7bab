// Launchers of the CUDA backend's kernels, one group per .cu file. Each takes device pointers,
// enqueues on the context's stream, checks the launch (CUDA_CHECK_LAUNCH) and returns without
// synchronising. Shapes and arguments are validated by CudaBackend before these are called; sizes
// are > 0 here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/rank_reduce.hpp"
#include "common.cuh"

namespace cgan::cuda {

// elementwise.cu
void launch_fill(const Context& ctx, float* x, size_t n, float value);
void launch_mul(const Context& ctx, size_t n, const float* a, float* b);
void launch_axpy(const Context& ctx, size_t n, float alpha, const float* x, float* y);
void launch_scale(const Context& ctx, float* x, size_t n, float beta);  // beta == 0 writes zeros
// idx_offset (may be null): device int32 added to idx when the kernel runs
void launch_gather_rows(const Context& ctx, int B, int cols, int rows, const float* src, const int32_t* idx, float* dst,
                        const int32_t* idx_offset);
void launch_gather_int(const Context& ctx, int B, int rows, const int32_t* src, const int32_t* idx, int32_t* dst,
                       const int32_t* idx_offset);
void launch_copy_cols(const Context& ctx, int B, int src_cols, int col0, int n, const float* src, float* dst);
// step counters (backend.hpp add_ints / copy_to_slot)
void launch_add_ints(const Context& ctx, int n, int32_t* x, const int32_t* delta_host);
void launch_copy_to_slot(const Context& ctx, size_t n, const float* src, float* dst, const int32_t* slot, int slots);
// Whether this binary holds kernels the current device can run (why not, when not).
bool kernel_image_available(std::string* why_not);

// gemm.cpp (cuBLAS, row-major)
void gemm_row_major(const Context& ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                    const float* B, float beta, float* C);

// activations.cu
void launch_bias_act_forward(const Context& ctx, Act act, float slope, int rows, int cols, const float* bias, float* y);
void launch_bias_act_backward(const Context& ctx, Act act, float slope, int rows, int cols, const float* y, float* g,
                              float* gbias);

// label_fusion.cu
void launch_fuse_forward(const Context& ctx, Fusion f, int B, int in, int E, int K, const float* x, const float* cond,
                         const int32_t* labels, const float* table, float* out);
void launch_fuse_backward(const Context& ctx, Fusion f, int B, int in, int E, int K, const float* x,
                          const int32_t* labels, const float* table, const float* gout, float* gx, float* gtable);
void launch_one_hot(const Context& ctx, int B, int K, const int32_t* labels, float* out);

// losses.cu
void launch_loss_fused(const Context& ctx, LossKind k, int n, const float* x, float target, float weight, float* grad,
                       float* acc);
void launch_softmax_xent(const Context& ctx, int B, int K, const float* logits, const int32_t* labels, float weight,
                         float* grad, float* acc);

// adam.cu: step = lr / (1 - b1^t), rc2 = 1 / sqrt(1 - b2^t) (adam_scalars, as the CPU does, once per
// call into ctx.adam_step by a one-thread kernel), with
// t = t_base + (*t_counter) read by the kernel when t_counter is given.
void launch_adam(const Context& ctx, size_t n, float* p, const float* g, float* m, float* v, float lr, float b1,
                 float b2, float eps, int t_base, const int32_t* t_counter);

// ema.cu: avg = p while t_base + (*t_counter) <= start, else avg = ema_point(avg, p, 1 - decay); the step
// is read by the kernel when it runs (graph replay safe).
void launch_ema_update(const Context& ctx, size_t n, float* avg, const float* p, float decay, int start, int t_base,
                       const int32_t* t_counter);

// batchnorm.cu
void launch_batchnorm_forward_train(const Context& ctx, int N, int C, int S, float eps, float momentum, const float* x,
                                    const float* gamma, const float* beta, float* y, float* save_mean,
                                    float* save_invstd, float* run_mean, float* run_var, Act act, float slope);
void launch_batchnorm_forward_eval(const Context& ctx, int N, int C, int S, float eps, const float* x,
                                   const float* gamma, const float* beta, const float* run_mean, const float* run_var,
                                   float* y, Act act, float slope);
void launch_batchnorm_backward(const Context& ctx, int N, int C, int S, const float* x, const float* gamma,
                               const float* save_mean, const float* save_invstd, const float* gy, float* gx,
                               float* ggamma, float* gbeta);

// conditional.cu (backend.hpp's conditional family)
void launch_projection_forward(const Context& ctx, int B, int F, const float* phi, const float* e, float* out);
void launch_projection_backward(const Context& ctx, int B, int F, const float* phi, const float* e, const float* g,
                                float* gphi, float* ge);
void launch_cbn_forward_train(const Context& ctx, int N, int C, int S, float eps, float momentum, const float* x,
                              const float* dgain, const float* dbias, float* y, float* save_mean, float* save_invstd,
                              float* run_mean, float* run_var, Act act, float slope);
void launch_cbn_forward_eval(const Context& ctx, int N, int C, int S, float eps, const float* x, const float* dgain,
                             const float* dbias, const float* run_mean, const float* run_var, float* y, Act act,
                             float slope);
void launch_cbn_backward(const Context& ctx, int N, int C, int S, const float* x, const float* dgain,
                         const float* save_mean, const float* save_invstd, const float* gy, float* gx, float* gdgain,
                         float* gdbias);

// conv.cpp (cuDNN, NCHW fp32). Descriptors and algorithms are cached per ConvShape in ctx (created
// by the first call that sees a shape, normally conv_workspace). ws holds at least
// conv_workspace(s) floats. Built without cuDNN, each throws a cgan::Error saying so.
size_t conv_workspace(Context& ctx, const ConvShape& s);  // floats
// The most conv_workspace returns for any shape: the algorithm search's workspace cap (floats).
size_t conv_workspace_cap();
void conv_forward(Context& ctx, const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                  float* ws, Act act, float slope);
void conv_backward_data(Context& ctx, const ConvShape& s, const float* gy, const float* w, float* gx, float* ws);
void conv_backward_filter(Context& ctx, const ConvShape& s, const float* x, const float* gy, float* gw, float* gbias,
                          float* ws);

// conv_probe.cpp: every cuDNN algorithm for s, each direction, in the layouts and precisions of
// ConvProbeRow::variant, timed by cudnnFind*Ex (Backend::conv_probe). Without cuDNN: throws.
std::vector<ConvProbeRow> conv_probe(Context& ctx, const ConvShape& s);

// conv_bias.cu: y [N, K, PQ] = act(y + bias[k]) (bias may be null); gbias[k] += sum over n and PQ
// of gy (deterministic).
void launch_conv_bias_act_forward(const Context& ctx, int N, int K, size_t PQ, const float* bias, Act act, float slope,
                                  float* y);
void launch_conv_bias_backward(const Context& ctx, int N, int K, size_t PQ, const float* gy, float* gbias);

// pooling.cu: backward overwrites gx, one thread per input element (a gather: no atomics).
void launch_pool_forward(const Context& ctx, Pool k, const PoolShape& s, const float* x, float* y);
void launch_pool_backward(const Context& ctx, Pool k, const PoolShape& s, const float* x, const float* y,
                          const float* gy, float* gx);

// batchnorm.cu: synchronized batch norm (Backend::batchnorm_*_sync): `sync` sums device buffers
// across ranks on ctx's stream (NCCL) between the passes.
void launch_batchnorm_forward_train_sync(const Context& ctx, int N, int C, int S, float eps, float momentum,
                                         const float* x, const float* gamma, const float* beta, float* y,
                                         float* save_mean, float* save_invstd, float* run_mean, float* run_var,
                                         RankReduce& sync, Act act, float slope);
void launch_batchnorm_backward_sync(const Context& ctx, int N, int C, int S, const float* x, const float* gamma,
                                    const float* save_mean, const float* save_invstd, const float* gy, float* gx,
                                    float* ggamma, float* gbeta, RankReduce& sync);

// sampling.cu
void launch_dropout(const Context& ctx, size_t n, float p, uint64_t seed, RngStream stream, float* x, float* mask,
                    uint64_t offset);
void launch_rand_normal(const Context& ctx, size_t n, uint64_t seed, RngStream stream, uint64_t offset, float mean,
                        float stddev, float* out);
void launch_rand_uniform(const Context& ctx, size_t n, uint64_t seed, RngStream stream, uint64_t offset, float lo,
                         float hi, float* out);
void launch_rand_below(const Context& ctx, size_t n, uint64_t seed, RngStream stream, uint64_t offset, int32_t K,
                       int32_t* out);

// augment.cu (DiffAugment, cgan/backend/augment.hpp): one block per sample in each direction
void launch_augment_forward(const Context& ctx, const AugmentSpec& a, int B, uint64_t seed, RngStream stream,
                            uint64_t offset, const float* x, float* y, float* params);
void launch_augment_backward(const Context& ctx, const AugmentSpec& a, int B, const float* params, const float* gy,
                             float* gx);

// permutation.cu (may grow ctx's sort buffer: not capturable, see Context)
void launch_permutation(Context& ctx, int n, uint64_t seed, uint64_t stream, int32_t* out);

// spectral_norm.cu: the normalisation / sigma (one block), W / sigma, and the gradient's rank-one
// correction; sigma and <G, W_sn> are read from device memory when the kernels run.
void launch_spectral_norm_vec(const Context& ctx, int n, const float* t, bool normalize, float eps, float* u,
                              float* sigma);
void launch_spectral_norm_scale(const Context& ctx, size_t n, const float* w, const float* sigma, float* w_sn);
void launch_spectral_norm_grad(const Context& ctx, int rows, int cols, const float* g, const float* dot,
                               const float* left, const float* right, const float* sigma, float* gw);

}  // namespace cgan::cuda
