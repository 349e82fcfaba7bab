// The one seam between the model and the hardware. Every op the engine needs is a method here:
// a public, non-virtual method checks sizes and pointers (one-line cgan::Error naming the op) and
// calls the protected virtual *_impl that CpuBackend (src/cpu/) and CudaBackend (cuda/) implement. Pointers are backend memory (host
// memory for the CPU backend, device memory for CUDA) obtained from alloc()/alloc_int().
// All matrices are row-major and contiguous. Ops never allocate.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cgan/scalar_math.hpp"

namespace cgan {

// How a label (or tag vector) enters a network.
//  concat:          out[B, in+E] = [x | cond]            (cond: float [B, E], one-hot or multi-hot)
//  embed_concat:    out[B, in+E] = [x | table[label]]    (table: float [K, E])
//  embed_multiply:  out[B, in]   = x * table[label]      (table: float [K, in], E == in)
enum class Fusion { concat = 0, embed_concat, embed_multiply };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // ---- memory (alloc returns zero-filled memory; free(nullptr) is a no-op)
  virtual float* alloc(size_t n) = 0;
  virtual int32_t* alloc_int(size_t n) = 0;
  virtual void free(void* p) = 0;
  void upload(float* dst, const float* host_src, size_t n);
  void download(float* host_dst, const float* src, size_t n);
  void upload_int(int32_t* dst, const int32_t* host_src, size_t n);
  void download_int(int32_t* host_dst, const int32_t* src, size_t n);
  void fill(float* x, size_t n, float value);
  void copy(float* dst, const float* src, size_t n);
  virtual void synchronize() {}
  // Milliseconds `work` takes on this backend: a steady clock around it on the CPU, a pair of CUDA
  // events recorded on the backend's stream around it on the GPU (what `cgan_gpu bench` reports).
  virtual double time_ms(const std::function<void()>& work);

  // ---- dense algebra
  // C[M,N] = alpha * op(A) * op(B) + beta * C; op(A) is [M,K], op(B) is [K,N]; A stored [M,K]
  // (or [K,M] when trans_a), B stored [K,N] (or [N,K] when trans_b).
  void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
            const float* B, float beta, float* C);
  // y[r,c] = act(y[r,c] + bias[c]) in place; bias may be null.
  void bias_act_forward(Act act, float slope, int rows, int cols, const float* bias,
                        float* y);
  // g[r,c] *= act'(from output y[r,c]) in place; then gbias[c] += sum_r g[r,c] if gbias != null.
  void bias_act_backward(Act act, float slope, int rows, int cols, const float* y,
                         float* g, float* gbias);
  // b[i] *= a[i]
  void mul(size_t n, const float* a, float* b);

  // ---- dropout: mask[i] = (u >= p) / (1 - p) with u = philox_uniform(seed, stream, i);
  // x[i] *= mask[i]. Backward is mul(mask, g).
  void dropout_forward(size_t n, float p, uint64_t seed, uint64_t stream, float* x,
                       float* mask);

  // ---- batch norm over x laid out [N, C, S] (dense layers: S = 1), statistics per channel C.
  // Training: batch mean/biased variance; saves mean and 1/sqrt(var+eps); updates running stats
  // with run = (1-momentum) run + momentum * batch (unbiased variance for run_var, as PyTorch).
  void batchnorm_forward_train(int N, int C, int S, float eps, float momentum,
                               const float* x, const float* gamma, const float* beta,
                               float* y, float* save_mean, float* save_invstd,
                               float* run_mean, float* run_var);
  void batchnorm_forward_eval(int N, int C, int S, float eps, const float* x,
                              const float* gamma, const float* beta,
                              const float* run_mean, const float* run_var, float* y);
  // gx overwritten; ggamma, gbeta accumulated (+=).
  void batchnorm_backward(int N, int C, int S, const float* x, const float* gamma,
                          const float* save_mean, const float* save_invstd,
                          const float* gy, float* gx, float* ggamma, float* gbeta);

  // ---- label fusion (see Fusion). cond is used by concat, labels/table by the embed modes.
  void fuse_forward(Fusion f, int B, int in, int E, const float* x, const float* cond,
                    const int32_t* labels, const float* table, float* out);
  // gx (overwritten) may be null; gtable (accumulated) may be null.
  void fuse_backward(Fusion f, int B, int in, int E, const float* x,
                     const int32_t* labels, const float* table, const float* gout,
                     float* gx, float* gtable);
  // out[B, K] = one-hot of labels
  void one_hot(int B, int K, const int32_t* labels, float* out);

  // ---- fused loss over n outputs x with constant target t, as one term of weight w of a mean:
  // grad[i] = w * dL/dx[i] / n (overwritten); acc[0] += w * mean L; acc[1] += sum of prob;
  // acc[2] += count of (prob > 0.5) == (t > 0.5). acc is backend memory of 3 floats.
  void loss_fused(LossKind k, int n, const float* x, float target, float weight,
                  float* grad, float* acc);

  // ---- softmax cross-entropy over logits [B, K] with integer labels: grad = weight * (softmax - onehot) / B
  // (overwritten); acc[0] += weight * mean cross-entropy; acc[1] += count of rows whose argmax (first max) == label.
  // acc is backend memory of 2 floats. A label outside [0, K) is an error (the CUDA backend zeroes that
  // row's gradient, leaves it out of acc and reports it at the next synchronize/download).
  void softmax_xent(int B, int K, const float* logits, const int32_t* labels, float weight, float* grad,
                    float* acc);

  // ---- Adam (bias-corrected, step t >= 1) over n contiguous parameters.
  void adam(size_t n, float* p, const float* g, float* m, float* v, float lr, float beta1,
            float beta2, float eps, int t);

  // ---- counter-based RNG (philox.hpp): element i uses index offset + i.
  void rand_normal(size_t n, uint64_t seed, uint64_t stream, uint64_t offset, float mean,
                   float stddev, float* out);
  void rand_uniform(size_t n, uint64_t seed, uint64_t stream, uint64_t offset, float lo,
                    float hi, float* out);
  // out[i] = philox_below(seed, stream, offset + i, K)
  void rand_below(size_t n, uint64_t seed, uint64_t stream, uint64_t offset, int32_t K,
                  int32_t* out);
  // A permutation of [0, n): indices sorted by their philox word (stable), identical on every
  // backend.
  void permutation(int n, uint64_t seed, uint64_t stream, int32_t* out);

  // ---- data: dst[b, :] = src[idx[b], :] (idx in backend memory).
  void gather_rows(int B, int cols, const float* src, const int32_t* idx, float* dst);
  void gather_int(int B, const int32_t* src, const int32_t* idx, int32_t* dst);

 protected:
  // What each backend implements. The public methods above have already checked sizes and
  // pointers (throwing cgan::Error) and returned early on empty inputs, so an implementation
  // only checks what needs its own memory (e.g. label values on the host).
  virtual void upload_impl(float* dst, const float* host_src, size_t n) = 0;
  virtual void download_impl(float* host_dst, const float* src, size_t n) = 0;
  virtual void upload_int_impl(int32_t* dst, const int32_t* host_src, size_t n) = 0;
  virtual void download_int_impl(int32_t* host_dst, const int32_t* src, size_t n) = 0;
  virtual void fill_impl(float* x, size_t n, float value) = 0;
  virtual void copy_impl(float* dst, const float* src, size_t n) = 0;
  virtual void gemm_impl(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                         const float* B, float beta, float* C) = 0;
  virtual void bias_act_forward_impl(Act act, float slope, int rows, int cols, const float* bias,
                                     float* y) = 0;
  virtual void bias_act_backward_impl(Act act, float slope, int rows, int cols, const float* y,
                                      float* g, float* gbias) = 0;
  virtual void mul_impl(size_t n, const float* a, float* b) = 0;
  virtual void dropout_forward_impl(size_t n, float p, uint64_t seed, uint64_t stream, float* x,
                                    float* mask) = 0;
  virtual void batchnorm_forward_train_impl(int N, int C, int S, float eps, float momentum,
                                            const float* x, const float* gamma, const float* beta,
                                            float* y, float* save_mean, float* save_invstd,
                                            float* run_mean, float* run_var) = 0;
  virtual void batchnorm_forward_eval_impl(int N, int C, int S, float eps, const float* x,
                                           const float* gamma, const float* beta,
                                           const float* run_mean, const float* run_var, float* y) = 0;
  virtual void batchnorm_backward_impl(int N, int C, int S, const float* x, const float* gamma,
                                       const float* save_mean, const float* save_invstd,
                                       const float* gy, float* gx, float* ggamma, float* gbeta) = 0;
  virtual void fuse_forward_impl(Fusion f, int B, int in, int E, const float* x, const float* cond,
                                 const int32_t* labels, const float* table, float* out) = 0;
  virtual void fuse_backward_impl(Fusion f, int B, int in, int E, const float* x,
                                  const int32_t* labels, const float* table, const float* gout,
                                  float* gx, float* gtable) = 0;
  virtual void one_hot_impl(int B, int K, const int32_t* labels, float* out) = 0;
  virtual void loss_fused_impl(LossKind k, int n, const float* x, float target, float weight,
                               float* grad, float* acc) = 0;
  virtual void softmax_xent_impl(int B, int K, const float* logits, const int32_t* labels, float weight,
                                 float* grad, float* acc) = 0;
  virtual void adam_impl(size_t n, float* p, const float* g, float* m, float* v, float lr, float beta1,
                         float beta2, float eps, int t) = 0;
  virtual void rand_normal_impl(size_t n, uint64_t seed, uint64_t stream, uint64_t offset, float mean,
                                float stddev, float* out) = 0;
  virtual void rand_uniform_impl(size_t n, uint64_t seed, uint64_t stream, uint64_t offset, float lo,
                                 float hi, float* out) = 0;
  virtual void rand_below_impl(size_t n, uint64_t seed, uint64_t stream, uint64_t offset, int32_t K,
                               int32_t* out) = 0;
  virtual void permutation_impl(int n, uint64_t seed, uint64_t stream, int32_t* out) = 0;
  virtual void gather_rows_impl(int B, int cols, const float* src, const int32_t* idx, float* dst) = 0;
  virtual void gather_int_impl(int B, const int32_t* src, const int32_t* idx, int32_t* dst) = 0;
};

std::unique_ptr<Backend> make_cpu_backend();
#ifdef CGAN_HAVE_CUDA
// tf32: cuBLAS may run fp32 GEMMs on TF32 tensor cores. Throws cgan::Error when no GPU is usable.
std::unique_ptr<Backend> make_cuda_backend(bool tf32 = false);
#endif

// The config's "precision": "fp32" (default) or "tf32" (CUDA GEMMs on TF32 tensor cores; the CPU
// backend always computes in fp32).
struct BackendOptions {
  std::string precision = "fp32";
};

// "cpu", "cuda" or "auto" (CUDA when built with it and a GPU is present, else CPU).
// Throws cgan::Error for "cuda" without a usable GPU or an unknown name.
std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options = {});

// Whether this build contains the CUDA backend, and whether a GPU is usable now (with the reason
// when not).
bool cuda_compiled();
bool cuda_available(std::string* why_not = nullptr);

}  // namespace cgan
