// Launchers of the CUDA backend's kernels, one group per .cu file. Each takes device pointers,
// enqueues on the context's stream, checks the launch (CUDA_CHECK_LAUNCH) and returns without
// synchronising. Shapes and arguments are validated by CudaBackend before these are called; sizes
// are > 0 here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "cgan/backend.hpp"
#include "common.cuh"

namespace cgan::cuda {

// elementwise.cu
void launch_fill(const Context& ctx, float* x, size_t n, float value);
void launch_mul(const Context& ctx, size_t n, const float* a, float* b);
void launch_scale(const Context& ctx, float* x, size_t n, float beta);  // beta == 0 writes zeros
void launch_gather_rows(const Context& ctx, int B, int cols, const float* src, const int32_t* idx,
                        float* dst);
void launch_gather_int(const Context& ctx, int B, const int32_t* src, const int32_t* idx,
                       int32_t* dst);
// Whether this binary holds kernels the current device can run (why not, when not).
bool kernel_image_available(std::string* why_not);

// gemm.cpp (cuBLAS, row-major)
void gemm_row_major(const Context& ctx, bool trans_a, bool trans_b, int M, int N, int K,
                    float alpha, const float* A, const float* B, float beta, float* C);

// activations.cu
void launch_bias_act_forward(const Context& ctx, Act act, float slope, int rows, int cols,
                             const float* bias, float* y);
void launch_bias_act_backward(const Context& ctx, Act act, float slope, int rows, int cols,
                              const float* y, float* g, float* gbias);

// label_fusion.cu
void launch_fuse_forward(const Context& ctx, Fusion f, int B, int in, int E, const float* x,
                         const float* cond, const int32_t* labels, const float* table,
                         float* out);
void launch_fuse_backward(const Context& ctx, Fusion f, int B, int in, int E, const float* x,
                          const int32_t* labels, const float* table, const float* gout,
                          float* gx, float* gtable);
void launch_one_hot(const Context& ctx, int B, int K, const int32_t* labels, float* out);

// losses.cu
void launch_loss_fused(const Context& ctx, LossKind k, int n, const float* x, float target,
                       float weight, float* grad, float* acc);
void launch_softmax_xent(const Context& ctx, int B, int K, const float* logits, const int32_t* labels,
                         float weight, float* grad, float* acc);

// adam.cu: step = lr / (1 - b1^t), rc2 = 1 / sqrt(1 - b2^t), computed by the caller as the CPU does.
void launch_adam(const Context& ctx, size_t n, float* p, const float* g, float* m, float* v,
                 float step, float rc2, float b1, float b2, float eps);

// batchnorm.cu
void launch_batchnorm_forward_train(const Context& ctx, int N, int C, int S, float eps,
                                    float momentum, const float* x, const float* gamma,
                                    const float* beta, float* y, float* save_mean,
                                    float* save_invstd, float* run_mean, float* run_var);
void launch_batchnorm_forward_eval(const Context& ctx, int N, int C, int S, float eps,
                                   const float* x, const float* gamma, const float* beta,
                                   const float* run_mean, const float* run_var, float* y);
void launch_batchnorm_backward(const Context& ctx, int N, int C, int S, const float* x,
                               const float* gamma, const float* save_mean,
                               const float* save_invstd, const float* gy, float* gx,
                               float* ggamma, float* gbeta);

// sampling.cu
void launch_dropout(const Context& ctx, size_t n, float p, uint64_t seed, uint64_t stream,
                    float* x, float* mask);
void launch_rand_normal(const Context& ctx, size_t n, uint64_t seed, uint64_t stream,
                        uint64_t offset, float mean, float stddev, float* out);
void launch_rand_uniform(const Context& ctx, size_t n, uint64_t seed, uint64_t stream,
                         uint64_t offset, float lo, float hi, float* out);
void launch_rand_below(const Context& ctx, size_t n, uint64_t seed, uint64_t stream,
                       uint64_t offset, int32_t K, int32_t* out);

// permutation.cu (may grow ctx's sort buffer: not capturable, see Context)
void launch_permutation(Context& ctx, int n, uint64_t seed, uint64_t stream, int32_t* out);

}  // namespace cgan::cuda
