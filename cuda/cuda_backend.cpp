// CudaBackend: every Backend op (backend.hpp holds the contracts) on one CUDA stream. Each method
// checks its arguments as the CPU backend does (same messages), then calls the launcher of its
// kernel family (kernels.hpp). Ops enqueue work and return; only download*() and synchronize()
// wait for the stream (upload*() too, so the caller may reuse its buffer at once). No op allocates
// except permutation() (see permutation.cu), so a training step can be captured in a CUDA graph.
//
// What the GPU cannot check without a host sync (label and index values) the kernels flag in the
// context's status word instead of reading out of bounds; the next download or synchronize()
// reports it as a cgan::Error.
#include "cuda_backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "cgan/backend/augment.hpp"
#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"
#include "common.cuh"
#include "kernels.hpp"
#include "op_clock.hpp"

namespace cgan {
namespace {

using cuda::Context;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& o) : ctx_(o.device, o.tf32) {}
  ~CudaBackend() override {
    graph_abort();
    for (auto& g : graphs_) cudaGraphExecDestroy(g.second);
  }

  std::string name() const override { return "cuda"; }

  // ---- memory
  float* alloc(size_t n) override { return static_cast<float*>(alloc_bytes(n, sizeof(float))); }
  int32_t* alloc_int(size_t n) override { return static_cast<int32_t*>(alloc_bytes(n, sizeof(int32_t))); }
  // Never throws: it runs in destructors, also while unwinding from a CUDA error that every call
  // now repeats. A failure is printed instead.
  void free(void* p) override {
    if (!p) return;
    const cudaError_t e = cudaFree(p);
    if (e != cudaSuccess)
      std::fprintf(stderr, "cgan_gpu: cudaFree failed: %s: %s\n", cudaGetErrorName(e), cudaGetErrorString(e));
  }
  void upload_impl(float* dst, const float* src, size_t n) override {
    to_device(dst, src, n * sizeof(float), "upload");
  }
  void download_impl(float* dst, const float* src, size_t n) override {
    to_host(dst, src, n * sizeof(float), "download");
  }
  void upload_int_impl(int32_t* dst, const int32_t* src, size_t n) override {
    to_device(dst, src, n * sizeof(int32_t), "upload_int");
  }
  void download_int_impl(int32_t* dst, const int32_t* src, size_t n) override {
    to_host(dst, src, n * sizeof(int32_t), "download_int");
  }
  void fill_impl(float* x, size_t n, float v) override {
    if (v == 0.f && !std::signbit(v))
      CUDA_CHECK(cudaMemsetAsync(x, 0, n * sizeof(float), ctx_.stream));
    else
      cuda::launch_fill(ctx_, x, n, v);
  }
  void copy_impl(float* dst, const float* src, size_t n) override {
    const auto d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
    const size_t bytes = n * sizeof(float);
    CGAN_CHECK(d + bytes <= s || s + bytes <= d, "copy: overlapping ranges");
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_.stream));
  }
  void synchronize() override { wait_and_check("synchronize"); }
  double device_memory_mib() override {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return static_cast<double>(total_b - free_b) / (1024.0 * 1024.0);
  }
  uint64_t memory_capacity_bytes() override {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return total_b;
  }
  uint64_t memory_available() override {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return free_b;
  }
  std::string memory_available_source() override { return "cudaMemGetInfo"; }
  size_t conv2d_workspace_cap(const ConvShape&) override { return cuda::conv_workspace_cap(); }
  std::vector<ConvProbeRow> conv_probe(const ConvShape& s) override { return cuda::conv_probe(ctx_, s); }
  double time_ms(const std::function<void()>& work) override {
    struct Events {
      cudaEvent_t start = nullptr, stop = nullptr;
      ~Events() {
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
      }
    } ev;
    CUDA_CHECK(cudaEventCreate(&ev.start));
    CUDA_CHECK(cudaEventCreate(&ev.stop));
    CUDA_CHECK(cudaEventRecord(ev.start, ctx_.stream));
    work();
    CUDA_CHECK(cudaEventRecord(ev.stop, ctx_.stream));
    CUDA_CHECK(cudaEventSynchronize(ev.stop));
    wait_and_check("time_ms");  // report anything the timed ops flagged
    float ms = 0.f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, ev.start, ev.stop));
    return static_cast<double>(ms);
  }

  // bench --per-op: op boundaries as events on the stream (eager mode; see op_clock.hpp)
  std::unique_ptr<OpClock> make_op_clock() override {
    CGAN_CHECK(!capturing_, "per-op timing cannot run inside a CUDA graph capture");
    return cuda::make_event_op_clock(ctx_.stream);
  }

  // ---- dense algebra
  void gemm_impl(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
                 float* C, MulPrecision mul) override {
    if (mul != MulPrecision::fp32) throw Error("gemm: the CUDA backend has no bf16 path yet (issue 20)");
    if (K == 0 || alpha == 0.f) {  // BLAS semantics: beta == 0 overwrites C (even NaN)
      cuda::launch_scale(ctx_, C, static_cast<size_t>(M) * N, beta);
      return;
    }
    cuda::gemm_row_major(ctx_, ta, tb, M, N, K, alpha, A, B, beta, C);
  }

  void bias_act_forward_impl(Act act, float slope, int rows, int cols, const float* bias, float* y) override {
    cuda::launch_bias_act_forward(ctx_, act, slope, rows, cols, bias, y);
  }

  void bias_act_backward_impl(Act act, float slope, int rows, int cols, const float* y, float* g,
                              float* gbias) override {
    cuda::launch_bias_act_backward(ctx_, act, slope, rows, cols, y, g, gbias);
  }

  void mul_impl(size_t n, const float* a, float* b) override { cuda::launch_mul(ctx_, n, a, b); }
  void axpy_impl(size_t n, float alpha, const float* x, float* y) override { cuda::launch_axpy(ctx_, n, alpha, x, y); }

  // ---- dropout
  void dropout_forward_impl(size_t n, float p, uint64_t seed, RngStream stream, float* x, float* mask,
                            uint64_t offset) override {
    cuda::launch_dropout(ctx_, n, p, seed, stream, x, mask, offset);
  }

  // ---- batch norm
  void batchnorm_forward_train_impl(int N, int C, int S, float eps, float momentum, const float* x, const float* gamma,
                                    const float* beta, float* y, float* save_mean, float* save_invstd, float* run_mean,
                                    float* run_var, Act act, float slope) override {
    cuda::launch_batchnorm_forward_train(ctx_, N, C, S, eps, momentum, x, gamma, beta, y, save_mean, save_invstd,
                                         run_mean, run_var, act, slope);
  }

  void batchnorm_forward_eval_impl(int N, int C, int S, float eps, const float* x, const float* gamma,
                                   const float* beta, const float* run_mean, const float* run_var, float* y, Act act,
                                   float slope) override {
    cuda::launch_batchnorm_forward_eval(ctx_, N, C, S, eps, x, gamma, beta, run_mean, run_var, y, act, slope);
  }

  void batchnorm_backward_impl(int N, int C, int S, const float* x, const float* gamma, const float* save_mean,
                               const float* save_invstd, const float* gy, float* gx, float* ggamma,
                               float* gbeta) override {
    cuda::launch_batchnorm_backward(ctx_, N, C, S, x, gamma, save_mean, save_invstd, gy, gx, ggamma, gbeta);
  }

  // ---- conditional family (conditional.cu)
  void projection_forward_impl(int B, int F, const float* phi, const float* e, float* out) override {
    cuda::launch_projection_forward(ctx_, B, F, phi, e, out);
  }
  void projection_backward_impl(int B, int F, const float* phi, const float* e, const float* g, float* gphi,
                                float* ge) override {
    cuda::launch_projection_backward(ctx_, B, F, phi, e, g, gphi, ge);
  }
  void cbn_forward_train_impl(int N, int C, int S, float eps, float momentum, const float* x, const float* dgain,
                              const float* dbias, float* y, float* save_mean, float* save_invstd, float* run_mean,
                              float* run_var, Act act, float slope) override {
    cuda::launch_cbn_forward_train(ctx_, N, C, S, eps, momentum, x, dgain, dbias, y, save_mean, save_invstd, run_mean,
                                   run_var, act, slope);
  }
  void cbn_forward_eval_impl(int N, int C, int S, float eps, const float* x, const float* dgain, const float* dbias,
                             const float* run_mean, const float* run_var, float* y, Act act, float slope) override {
    cuda::launch_cbn_forward_eval(ctx_, N, C, S, eps, x, dgain, dbias, run_mean, run_var, y, act, slope);
  }
  void cbn_backward_impl(int N, int C, int S, const float* x, const float* dgain, const float* save_mean,
                         const float* save_invstd, const float* gy, float* gx, float* gdgain, float* gdbias) override {
    cuda::launch_cbn_backward(ctx_, N, C, S, x, dgain, save_mean, save_invstd, gy, gx, gdgain, gdbias);
  }

  void batchnorm_forward_train_sync_impl(int N, int C, int S, float eps, float momentum, const float* x,
                                         const float* gamma, const float* beta, float* y, float* save_mean,
                                         float* save_invstd, float* run_mean, float* run_var, RankReduce& sync, Act act,
                                         float slope) override {
    cuda::launch_batchnorm_forward_train_sync(ctx_, N, C, S, eps, momentum, x, gamma, beta, y, save_mean, save_invstd,
                                              run_mean, run_var, sync, act, slope);
  }

  void batchnorm_backward_sync_impl(int N, int C, int S, const float* x, const float* gamma, const float* save_mean,
                                    const float* save_invstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                                    RankReduce& sync) override {
    cuda::launch_batchnorm_backward_sync(ctx_, N, C, S, x, gamma, save_mean, save_invstd, gy, gx, ggamma, gbeta, sync);
  }

  // ---- convolution (conv.cpp: cuDNN, descriptors and algorithms cached per shape) and pooling
  size_t conv2d_workspace_impl(const ConvShape& s) override { return cuda::conv_workspace(ctx_, s); }

  void conv2d_forward_impl(const ConvShape& s, const float* x, const float* w, const float* bias, float* y, float* ws,
                           Act act, float slope) override {
    cuda::conv_forward(ctx_, s, x, w, bias, y, ws, act, slope);
  }

  void conv2d_backward_data_impl(const ConvShape& s, const float* gy, const float* w, float* gx, float* ws) override {
    cuda::conv_backward_data(ctx_, s, gy, w, gx, ws);
  }

  void conv2d_backward_filter_impl(const ConvShape& s, const float* x, const float* gy, float* gw, float* gbias,
                                   float* ws) override {
    cuda::conv_backward_filter(ctx_, s, x, gy, gw, gbias, ws);
  }

  void pool2d_forward_impl(Pool k, const PoolShape& s, const float* x, float* y) override {
    cuda::launch_pool_forward(ctx_, k, s, x, y);
  }

  void pool2d_backward_impl(Pool k, const PoolShape& s, const float* x, const float* y, const float* gy,
                            float* gx) override {
    cuda::launch_pool_backward(ctx_, k, s, x, y, gy, gx);
  }

  // ---- label fusion
  void fuse_forward_impl(Fusion f, int B, int in, int E, int K, const float* x, const float* cond,
                         const int32_t* labels, const float* table, float* out) override {
    cuda::launch_fuse_forward(ctx_, f, B, in, E, K, x, cond, labels, table, out);
  }

  void fuse_backward_impl(Fusion f, int B, int in, int E, int K, const float* x, const int32_t* labels,
                          const float* table, const float* gout, float* gx, float* gtable) override {
    cuda::launch_fuse_backward(ctx_, f, B, in, E, K, x, labels, table, gout, gx, gtable);
  }

  void one_hot_impl(int B, int K, const int32_t* labels, float* out) override {
    cuda::launch_one_hot(ctx_, B, K, labels, out);
  }

  // ---- fused loss
  void loss_fused_impl(LossKind k, int n, const float* x, float target, float weight, float* grad,
                       float* acc) override {
    cuda::launch_loss_fused(ctx_, k, n, x, target, weight, grad, acc);
  }
  void softmax_xent_impl(int B, int K, const float* logits, const int32_t* labels, float weight, float* grad,
                         float* acc) override {
    cuda::launch_softmax_xent(ctx_, B, K, logits, labels, weight, grad, acc);
  }

  // ---- Adam (scalar_math.hpp: adam_scalars and adam_update, both run by the kernel)
  void adam_impl(size_t n, float* p, const float* g, float* m, float* v, float lr, float b1, float b2, float eps, int t,
                 const int32_t* t_counter) override {
    cuda::launch_adam(ctx_, n, p, g, m, v, lr, b1, b2, eps, t, t_counter);
  }
  void ema_update_impl(size_t n, float* avg, const float* p, float decay, int start, int t,
                       const int32_t* t_counter) override {
    cuda::launch_ema_update(ctx_, n, avg, p, decay, start, t, t_counter);
  }

  // ---- counter-based RNG
  // ---- DiffAugment (augment.cu)
  void augment_forward_impl(const AugmentSpec& a, int B, uint64_t seed, RngStream stream, uint64_t offset,
                            const float* x, float* y, float* params) override {
    cuda::launch_augment_forward(ctx_, a, B, seed, stream, offset, x, y, params);
  }
  void augment_backward_impl(const AugmentSpec& a, int B, const float* params, const float* gy, float* gx) override {
    cuda::launch_augment_backward(ctx_, a, B, params, gy, gx);
  }

  void rand_normal_impl(size_t n, uint64_t seed, RngStream stream, uint64_t offset, float mean, float stddev,
                        float* out) override {
    cuda::launch_rand_normal(ctx_, n, seed, stream, offset, mean, stddev, out);
  }
  void rand_uniform_impl(size_t n, uint64_t seed, RngStream stream, uint64_t offset, float lo, float hi,
                         float* out) override {
    cuda::launch_rand_uniform(ctx_, n, seed, stream, offset, lo, hi, out);
  }
  void rand_below_impl(size_t n, uint64_t seed, RngStream stream, uint64_t offset, int32_t K, int32_t* out) override {
    cuda::launch_rand_below(ctx_, n, seed, stream, offset, K, out);
  }
  void permutation_impl(int n, uint64_t seed, uint64_t stream, int32_t* out) override {
    cuda::launch_permutation(ctx_, n, seed, stream, out);
  }

  // ---- data
  void gather_rows_impl(int B, int cols, int rows, const float* src, const int32_t* idx, float* dst,
                        const int32_t* idx_offset) override {
    cuda::launch_gather_rows(ctx_, B, cols, rows, src, idx, dst, idx_offset);
  }
  void gather_int_impl(int B, int rows, const int32_t* src, const int32_t* idx, int32_t* dst,
                       const int32_t* idx_offset) override {
    cuda::launch_gather_int(ctx_, B, rows, src, idx, dst, idx_offset);
  }

  void copy_cols_impl(int B, int src_cols, int col0, int n, const float* src, float* dst) override {
    cuda::launch_copy_cols(ctx_, B, src_cols, col0, n, src, dst);
  }

  // ---- step counters
  void add_ints_impl(int n, int32_t* x, const int32_t* delta) override { cuda::launch_add_ints(ctx_, n, x, delta); }
  void copy_to_slot_impl(size_t n, const float* src, float* dst, const int32_t* slot, int slots) override {
    cuda::launch_copy_to_slot(ctx_, n, src, dst, slot, slots);
  }

  // ---- spectral normalization (spectral_norm.cu)
  void spectral_norm_vec_impl(int n, const float* t, bool normalize, float eps, float* u, float* sigma) override {
    cuda::launch_spectral_norm_vec(ctx_, n, t, normalize, eps, u, sigma);
  }
  void spectral_norm_scale_impl(size_t n, const float* w, const float* sigma, float* w_sn) override {
    cuda::launch_spectral_norm_scale(ctx_, n, w, sigma, w_sn);
  }
  void spectral_norm_grad_impl(int rows, int cols, const float* g, const float* dot, const float* left,
                               const float* right, const float* sigma, float* gw) override {
    cuda::launch_spectral_norm_grad(ctx_, rows, cols, g, dot, left, right, sigma, gw);
  }

  // ---- CUDA graphs: stream capture on the backend's one stream (thread-local mode: another
  // thread's unrelated CUDA calls do not break the capture), instantiated once, replayed with
  // cudaGraphLaunch on the same stream, so replays stay ordered with every other op. Each graph
  // is kept under its own id, so two Trainers on one backend replay their own.
  bool graphs_supported() const override { return true; }
  void graph_begin() override {
    CGAN_CHECK(!capturing_, "graph_begin: a capture is already in progress");
    wait_and_check("graph_begin");  // earlier errors surface before, not inside, the capture
    CUDA_CHECK(cudaStreamBeginCapture(ctx_.stream, cudaStreamCaptureModeThreadLocal));
    capturing_ = true;
  }
  int graph_end() override {
    CGAN_CHECK(capturing_, "graph_end: no capture in progress");
    capturing_ = false;
    cudaGraph_t g = nullptr;
    // A failed call is also the runtime's "last error", which the next op's launch check
    // (cudaGetLastError) would report as its own: clear it on both failure paths. The stream has
    // left capture mode either way (an invalidated capture ends with a null graph).
    const cudaError_t ec = cudaStreamEndCapture(ctx_.stream, &g);
    if (ec != cudaSuccess) {
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      throw Error(cat("cudaStreamEndCapture failed (an op in the capture was not capturable?): ", cudaGetErrorName(ec),
                      ": ", cudaGetErrorString(ec)));
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw Error(cat("cudaGraphInstantiate failed: ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
    }
    const int id = next_graph_++;
    graphs_[id] = exec;
    return id;
  }
  void graph_launch(int id) override {
    const auto it = graphs_.find(id);
    CGAN_CHECK(it != graphs_.end(), "graph_launch: no graph ", id, " was captured (or it was dropped)");
    CUDA_CHECK(cudaGraphLaunch(it->second, ctx_.stream));
  }
  // Never throws (runs in destructors).
  void graph_drop(int id) override {
    const auto it = graphs_.find(id);
    if (it == graphs_.end()) return;
    cudaGraphExecDestroy(it->second);
    graphs_.erase(it);
  }
  void graph_abort() override {
    if (!capturing_) return;  // an error inside a capture: end it so the stream is usable again
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(ctx_.stream, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    capturing_ = false;
  }

  void* stream() const { return ctx_.stream; }  // cuda_stream_of

 private:
  void* alloc_bytes(size_t n, size_t elem) {
    CGAN_CHECK(n <= (SIZE_MAX - 255) / elem, "cuda alloc: size ", n, " overflows");
    const size_t bytes = std::max<size_t>(n * elem, 1);
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();  // out of memory is not sticky: clear it
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw Error(cat("cuda backend: out of GPU memory allocating ", bytes, " bytes (", free_b >> 20, " MiB free of ",
                      total_b >> 20, " MiB): ", cudaGetErrorString(e)));
    }
    const cudaError_t z = cudaMemsetAsync(p, 0, bytes, ctx_.stream);  // ordered before any op
    if (z != cudaSuccess) {
      cudaFree(p);
      CUDA_CHECK(z);
    }
    return p;
  }

  void to_device(void* dst, const void* src, size_t bytes, const char* op) {
    if (bytes == 0) return;
    CGAN_CHECK(dst && src, op, ": null pointer");
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx_.stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));  // the caller may reuse src right away
  }

  void to_host(void* dst, const void* src, size_t bytes, const char* op) {
    if (bytes == 0) return;
    CGAN_CHECK(dst && src, op, ": null pointer");
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx_.stream));
    wait_and_check(op);
  }

  // Waits for the stream, then reports what the kernels flagged since the last check.
  void wait_and_check(const char* op) {
    CUDA_CHECK(cudaMemcpyAsync(ctx_.status_host, ctx_.status, sizeof(unsigned), cudaMemcpyDeviceToHost, ctx_.stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
    const unsigned s = *ctx_.status_host;
    if (s == 0) return;
    *ctx_.status_host = 0;
    CUDA_CHECK(cudaMemsetAsync(ctx_.status, 0, sizeof(unsigned), ctx_.stream));
    std::string what;
    if (s & cuda::kStatusBadLabel) what += "; fuse_forward/fuse_backward: label outside the table's rows";
    if (s & cuda::kStatusOneHot) what += "; one_hot: label outside 0..K-1";
    if (s & cuda::kStatusBadIndex)
      what += "; gather_rows/gather_int: index outside the source rows, or negative offset";
    if (s & cuda::kStatusBadSlot) what += "; copy_to_slot/adam/RNG: step counter or slot out of range";
    if (s & cuda::kStatusXentLabel) what += "; softmax_xent: label outside 0..K-1";
    throw Error(cat("cuda backend (seen at ", op, "): an earlier op got invalid input",
                    what.empty() ? std::string("") : what, " (its output was zeroed there)"));
  }

  Context ctx_;
  std::map<int, cudaGraphExec_t> graphs_;  // graph_end's ids
  int next_graph_ = 1;
  bool capturing_ = false;
};

}  // namespace

bool cuda_available(std::string* why_not) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why_not) {
      std::string hint;
      if (e == cudaErrorInsufficientDriver) {
        int driver = 0;
        cudaDriverGetVersion(&driver);  // 0 when no driver is installed
        hint = driver == 0 ? "; no NVIDIA driver is installed"
                           : cat("; the driver supports CUDA ", driver / 1000, ".", driver % 1000 / 10,
                                 ", this build needs ", CUDART_VERSION / 1000, ".", CUDART_VERSION % 1000 / 10);
      }
      *why_not = cat("no CUDA device found (cudaGetDeviceCount: ", cudaGetErrorString(e), hint, ")");
    }
    return false;
  }
  if (count == 0) {
    if (why_not) *why_not = "no CUDA device found (cudaGetDeviceCount: 0 devices)";
    return false;
  }
  return cuda::kernel_image_available(why_not);
}

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  std::string why;
  if (!cuda_available(&why)) throw Error(cat("cuda backend: ", why));
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  CGAN_CHECK(options.device >= 0 && options.device < count, "cuda backend: device ", options.device,
             " does not exist (", count, " found)");
  return std::make_unique<CudaBackend>(options);
}

void* cuda_stream_of(Backend& be) {
  auto* c = dynamic_cast<CudaBackend*>(&be);
  CGAN_CHECK(c, "cuda_stream_of: the ", be.name(), " backend has no CUDA stream");
  return c->stream();
}

std::unique_ptr<Backend> make_cuda_backend(bool tf32) {
  CudaOptions o;
  o.tf32 = tf32;
  return make_cuda_backend(o);
}

}  // namespace cgan
