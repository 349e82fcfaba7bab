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
#include <vector>

#include "cgan/backend/profile.hpp"
#include "cgan/backend/scalar_math.hpp"

namespace cgan {

struct AugmentSpec;  // cgan/backend/augment.hpp
class RankReduce;    // cgan/train/distributed.hpp

// How a label (or tag vector) enters a network.
//  concat:          out[B, in+E] = [x | cond]            (cond: float [B, E], one-hot or multi-hot)
//  embed_concat:    out[B, in+E] = [x | table[label]]    (table: float [K, E])
//  embed_multiply:  out[B, in]   = x * table[label]      (table: float [K, in], E == in)
enum class Fusion { concat = 0, embed_concat, embed_multiply };

// A Philox stream id, optionally advanced by a counter held in backend memory:
//   id = base + stride * (*counter)        (counter: one int32 >= 0, read when the op runs)
// A captured CUDA graph replays the same kernel arguments every time; reading the training step
// from device memory is what makes each replay draw new numbers. A plain integer converts to a
// fixed stream (no counter).
struct RngStream {
  uint64_t base = 0;
  const int32_t* counter = nullptr;
  uint64_t stride = 0;
  RngStream(uint64_t b = 0) : base(b) {}  // NOLINT: implicit, a fixed stream
  RngStream(uint64_t b, const int32_t* c, uint64_t s) : base(b), counter(c), stride(s) {}
  // The stream of sub-draw `k` of this one, k < n: base * n + k (stride scaled alike).
  RngStream sub(uint64_t n, uint64_t k) const { return {base * n + k, counter, stride * n}; }
};

// Shapes of the image ops below. Tensors are NCHW, contiguous (sample n's C*H*W values are one
// row, so a dense layer after a conv sees PyTorch's flatten). Output size as PyTorch:
// P = (H + 2*pad_h - R) / stride_h + 1, Q = (W + 2*pad_w - S) / stride_w + 1.
// The operands of a GEMM or convolution: fp32 as given (multiplied in the backend's math: TF32
// tensor cores on CUDA under precision "tf32"), or rounded to bfloat16 first (cgan/backend/bf16.hpp,
// to nearest even), the products (exact in fp32) summed in fp32, the output fp32: the layers of a
// model whose config says precision "bf16" (NetSpec::bf16). The CPU backend runs bf16 convolutions
// on oneDNN's bf16 kernels (AMX / AVX512-BF16 where the CPU has them) and rounds a GEMM's operands
// before its fp32 GEMM; the CUDA backend has no bf16 path yet and refuses it.
enum class MulPrecision { fp32, bf16 };

struct ConvShape {
  int N = 1, C = 1, H = 1, W = 1;  // input batch, channels, height, width
  int K = 1, R = 1, S = 1;         // output channels, kernel height, kernel width
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  MulPrecision mul = MulPrecision::fp32;  // x and w forward, gy and w or x backward
  int P() const { return (H + 2 * pad_h - R) / stride_h + 1; }
  int Q() const { return (W + 2 * pad_w - S) / stride_w + 1; }
};
// One algorithm a backend could run for a convolution (`cgan_gpu bench --conv-probe`): the CUDA
// backend times every cuDNN algorithm of each direction in several layouts and precisions.
struct ConvProbeRow {
  std::string direction;  // forward | backward-data | backward-filter
  std::string variant;    // layout and precision: nchw-fp32, nchw-tf32, nhwc-pad4-tf32, nhwc-pad8-bf16
  int C = 0, K = 0;       // input and output channels as run (rounded up in the padded variants)
  int algo = -1;          // the library's algorithm number; -1: the variant could not be set up
  std::string math;       // the math type the algorithm ran in
  std::string status;     // "ok", or why it cannot run
  double ms = 0;          // the library's timing of one call
  bool deterministic = false;
  uint64_t workspace = 0;  // bytes
};
enum class Pool { avg = 0, max };
// avg counts padded cells in the divisor (PyTorch's count_include_pad=True); max ignores them.
struct PoolShape {
  int N = 1, C = 1, H = 1, W = 1;  // input
  int R = 2, S = 2;                // window height, width
  int stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
  int P() const { return (H + 2 * pad_h - R) / stride_h + 1; }
  int Q() const { return (W + 2 * pad_w - S) / stride_w + 1; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // The most CPU threads the backend's ops run on (the CPU backend's; 1 by default).
  virtual int threads() const { return 1; }

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
  // Device memory in use now, MiB (the CUDA backend: total minus free as cudaMemGetInfo reports
  // it, so the context, cuBLAS/cuDNN workspaces and every allocation count); -1 on the CPU.
  virtual double device_memory_mib() { return -1; }
  // Bytes this backend can hold at most (the CPU: physical memory; CUDA: the device's total): every
  // model is planned against it before anything is allocated (cgan/nn/memory_plan.hpp).
  virtual uint64_t memory_capacity_bytes();
  // Bytes this backend can still allocate now: CUDA, the free bytes cudaMemGetInfo reports; CPU,
  // the limit in env CGAN_CPU_MEMORY_LIMIT (bytes, or with a suffix K/M/G/T, powers of 1024) when
  // set (a malformed value is a one-line error naming it), else MemAvailable from /proc/meminfo.
  // The run's memory plan (cgan/train/run_memory.hpp) is checked against it before set-up.
  virtual uint64_t memory_available();
  // Where memory_available's figure comes from, for messages: "CGAN_CPU_MEMORY_LIMIT",
  // "MemAvailable", "cudaMemGetInfo".
  virtual std::string memory_available_source();
  // Backend memory handed out by alloc()/alloc_int() and not yet freed (current), the memory the
  // backend holds for itself outside them (own: the CPU's oneDNN convolution buffers, kept for the
  // backend's life), and the most of the two together at any time (peak), in bytes as allocated
  // (rounding included). Backends that do not count report zeros.
  struct AllocStats {
    uint64_t current = 0, peak = 0, own = 0;
  };
  virtual AllocStats alloc_stats() const { return {}; }
  // The most workspace (floats) conv2d_workspace(s) can ask for, without choosing algorithms: the
  // CPU's im2col buffer for the shape plus, where oneDNN serves it, what its primitives need of the
  // backend's own buffers (scratchpad and layout copies; AllocStats::own); CUDA, the cuDNN
  // workspace cap of the algorithm search.
  virtual size_t conv2d_workspace_cap(const ConvShape& s);
  // Every algorithm the backend's convolution library offers for `s`, each direction, timed
  // (diagnostics, not used in a step). Backends without a choice of algorithms throw a one-line
  // cgan::Error saying so (the default).
  virtual std::vector<ConvProbeRow> conv_probe(const ConvShape& s);

  // ---- dense algebra
  // C[M,N] = alpha * op(A) * op(B) + beta * C; op(A) is [M,K], op(B) is [K,N]; A stored [M,K]
  // (or [K,M] when trans_a), B stored [K,N] (or [N,K] when trans_b).
  void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
            float* C, MulPrecision mul = MulPrecision::fp32);
  // Backend memory outside its allocations (AllocStats::own) that a gemm of this shape and `mul`
  // may hold (the CPU's rounded copies of bf16 operands; they are shared by every shape and grow to
  // the largest, so a sum over shapes bounds them); 0 by default. For the run's memory plan.
  virtual size_t gemm_workspace_cap(int M, int N, int K, MulPrecision mul);
  // y[r,c] = act(y[r,c] + bias[c]) in place; bias may be null.
  void bias_act_forward(Act act, float slope, int rows, int cols, const float* bias, float* y);
  // g[r,c] *= act'(from output y[r,c]) in place; then gbias[c] += sum_r g[r,c] if gbias != null.
  void bias_act_backward(Act act, float slope, int rows, int cols, const float* y, float* g, float* gbias);
  // b[i] *= a[i]
  void mul(size_t n, const float* a, float* b);
  // y[i] += alpha * x[i] (the product rounded, then the sum: no fused multiply-add, the same bits on
  // every backend). Profiled as bn_fwd: its user is batch norm's running mean (a folded conv bias).
  void axpy(size_t n, float alpha, const float* x, float* y);

  // ---- dropout: mask[i] = (u >= p) / (1 - p) with u = philox_uniform(seed, stream, offset + i);
  // x[i] *= mask[i]. Backward is mul(mask, g). (offset: the global index of x[0], so that a rank
  // holding part of a batch draws that part's numbers, cgan/train/distributed.hpp.)
  void dropout_forward(size_t n, float p, uint64_t seed, RngStream stream, float* x, float* mask, uint64_t offset = 0);

  // ---- batch norm over x laid out [N, C, S] (dense layers: S = 1), statistics per channel C.
  // Training: batch mean/biased variance; saves mean and 1/sqrt(var+eps); updates running stats
  // with run = (1-momentum) run + momentum * batch (unbiased variance for run_var, as PyTorch).
  // y = act(normalised x) (act: the activation that follows, applied in the same pass; backward
  // takes dL/d(pre-activation), as bias_act_backward leaves it). y may be x.
  void batchnorm_forward_train(int N, int C, int S, float eps, float momentum, const float* x, const float* gamma,
                               const float* beta, float* y, float* save_mean, float* save_invstd, float* run_mean,
                               float* run_var, Act act = Act::none, float slope = 0.f);
  void batchnorm_forward_eval(int N, int C, int S, float eps, const float* x, const float* gamma, const float* beta,
                              const float* run_mean, const float* run_var, float* y, Act act = Act::none,
                              float slope = 0.f);
  // gx overwritten; ggamma, gbeta accumulated (+=).
  void batchnorm_backward(int N, int C, int S, const float* x, const float* gamma, const float* save_mean,
                          const float* save_invstd, const float* gy, float* gx, float* ggamma, float* gbeta);

  // ---- synchronized batch norm (data-parallel training, cgan/train/distributed.hpp): the two ops above
  // with the statistics of the whole global batch. N is this rank's share; `sync` sums the
  // per-channel partial sums (double, in backend scratch) across the sync.ranks() ranks, each
  // holding N samples, between the passes: forward, the sum of x, then the sum of squared
  // deviations about the global mean (two-pass variance); backward, the sums of gy, gy (x - mean)
  // and (x - mean). ggamma and gbeta receive this rank's own terms (the gradient mean across ranks
  // then makes them the global batch's); gx is the gradient of every rank's loss. The running
  // variance uses the global count N * ranks * S. With one rank the results equal the plain ops'
  // bit for bit.
  void batchnorm_forward_train_sync(int N, int C, int S, float eps, float momentum, const float* x, const float* gamma,
                                    const float* beta, float* y, float* save_mean, float* save_invstd, float* run_mean,
                                    float* run_var, RankReduce& sync, Act act = Act::none, float slope = 0.f);
  void batchnorm_backward_sync(int N, int C, int S, const float* x, const float* gamma, const float* save_mean,
                               const float* save_invstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                               RankReduce& sync);

  // ---- convolution (cross-correlation, as PyTorch's Conv2d). x [N,C,H,W]; w [K,C,R,S];
  // bias [K] (may be null); y [N,K,P,Q]. ws: backend memory of at least conv2d_workspace(s)
  // floats (may be null when that is 0). The first call for a shape may choose algorithms and
  // cache them (the CUDA backend does it inside conv2d_workspace, called when a model is built).
  // y = act(conv(x, w) + bias): the bias and the activation that follows are applied in one pass.
  size_t conv2d_workspace(const ConvShape& s);
  void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y, float* ws,
                      Act act = Act::none, float slope = 0.f);
  // gx [N,C,H,W] = dL/dx (overwritten).
  void conv2d_backward_data(const ConvShape& s, const float* gy, const float* w, float* gx, float* ws);
  // gw [K,C,R,S] += dL/dw; gbias [K] += sum over n,p,q of gy (gbias may be null).
  void conv2d_backward_filter(const ConvShape& s, const float* x, const float* gy, float* gw, float* gbias, float* ws);
  // ---- pooling: y [N,C,P,Q]. Backward overwrites gx [N,C,H,W]; max pooling sends each gradient to
  // the first maximum of its window in row-major order (recomputed from x and y).
  void pool2d_forward(Pool k, const PoolShape& s, const float* x, float* y);
  void pool2d_backward(Pool k, const PoolShape& s, const float* x, const float* y, const float* gy, float* gx);

  // ---- label fusion (see Fusion). cond is used by concat, labels/table by the embed modes.
  // K: the table's rows (embed modes): a label outside [0, K) is an error (the CUDA backend writes
  // zeros for that row, leaves it out of gtable and reports it at the next synchronize/download).
  void fuse_forward(Fusion f, int B, int in, int E, int K, const float* x, const float* cond, const int32_t* labels,
                    const float* table, float* out);
  // gx (overwritten) may be null; gtable (accumulated) may be null.
  void fuse_backward(Fusion f, int B, int in, int E, int K, const float* x, const int32_t* labels, const float* table,
                     const float* gout, float* gx, float* gtable);
  // out[B, K] = one-hot of labels
  void one_hot(int B, int K, const int32_t* labels, float* out);

  // ---- fused loss over n outputs x with constant target t, as one term of weight w of a mean:
  // grad[i] = w * dL/dx[i] / n (overwritten); acc[0] += w * mean L; acc[1] += sum of prob;
  // acc[2] += count of (prob > 0.5) == (t > 0.5). acc is backend memory of 3 floats.
  void loss_fused(LossKind k, int n, const float* x, float target, float weight, float* grad, float* acc);

  // ---- softmax cross-entropy over logits [B, K] with integer labels: grad = weight * (softmax - onehot) / B
  // (overwritten); acc[0] += weight * mean cross-entropy; acc[1] += count of rows whose argmax (first max) == label.
  // acc is backend memory of 2 floats. A label outside [0, K) is an error (the CUDA backend zeroes that
  // row's gradient, leaves it out of acc and reports it at the next synchronize/download).
  void softmax_xent(int B, int K, const float* logits, const int32_t* labels, float weight, float* grad, float* acc);

  // ---- Adam (bias-corrected) over n contiguous parameters, at step t + (*t_counter) >= 1
  // (t_counter: optional int32 in backend memory, read when the op runs).
  void adam(size_t n, float* p, const float* g, float* m, float* v, float lr, float beta1, float beta2, float eps,
            int t, const int32_t* t_counter = nullptr);

  // ---- exponential moving average of n parameters (cgan/nn/ema.hpp), after optimiser step
  // s = t + (*t_counter) (t_counter: optional int32 in backend memory, read when the op runs, as adam's):
  // avg[i] = p[i] while s <= start, else avg[i] = avg[i] - (1 - decay) (avg[i] - p[i]) (scalar_math.hpp's
  // ema_point). decay in [0, 1], start >= 0.
  void ema_update(size_t n, float* avg, const float* p, float decay, int start, int t,
                  const int32_t* t_counter = nullptr);

  // ---- counter-based RNG (philox.hpp): element i uses index offset + i.
  void rand_normal(size_t n, uint64_t seed, RngStream stream, uint64_t offset, float mean, float stddev, float* out);
  void rand_uniform(size_t n, uint64_t seed, RngStream stream, uint64_t offset, float lo, float hi, float* out);
  // out[i] = philox_below(seed, stream, offset + i, K)
  void rand_below(size_t n, uint64_t seed, RngStream stream, uint64_t offset, int32_t K, int32_t* out);
  // A permutation of [0, n): indices sorted by their philox word (stable), identical on every
  // backend.
  void permutation(int n, uint64_t seed, uint64_t stream, int32_t* out);

  // ---- data: dst[b, :] = src[idx[o + b], :] (idx in backend memory) with o = *idx_offset when
  // idx_offset (one int32 in backend memory, read when the op runs) is given, else 0. The caller
  // guarantees idx holds o + B entries. src holds `rows` rows (gather_int: `rows` values); an index
  // outside [0, rows) is an error (the CUDA backend writes zeros and reports it at the next sync).
  void gather_rows(int B, int cols, int rows, const float* src, const int32_t* idx, float* dst,
                   const int32_t* idx_offset = nullptr);
  void gather_int(int B, int rows, const int32_t* src, const int32_t* idx, int32_t* dst,
                  const int32_t* idx_offset = nullptr);

  // dst[b, c] = src[b, col0 + c] for c < n: columns [col0, col0 + n) of src [B, src_cols] (e.g. the
  // gradient of the part of a concatenation that came from the condition).
  void copy_cols(int B, int src_cols, int col0, int n, const float* src, float* dst);

  // ---- step counters (int32 in backend memory) for work that is replayed as a CUDA graph:
  // x[i] += delta[i] for i < n <= 8 (delta: host values, taken by value at the call).
  void add_ints(int n, int32_t* x, const int32_t* delta);
  // dst[s * n + i] = src[i], s = *slot (one int32 in backend memory, read when the op runs), which
  // must lie in [0, slots) (the CUDA backend reports a bad slot at the next sync).
  void copy_to_slot(size_t n, const float* src, float* dst, const int32_t* slot, int slots);

  // ---- conditional family (src/cpu/cpu_conditional.cpp, cuda/conditional.cu; docs/DECISIONS.md
  // "Projection discriminator and conditional batch norm").
  // Projection discriminator (Miyato & Koyama 2018): out[b] += sum_j phi[b, j] e[b, j] for b < B
  // (phi: the input of D's last linear layer [B, F]; e = cond . E, the condition's embedding [B, F];
  // out [B], the last linear's output). Sums in double.
  void projection_forward(int B, int F, const float* phi, const float* e, float* out);
  // Its backward with g = dL/dout [B]: gphi[b, j] += g[b] e[b, j] (accumulated onto the linear's
  // input gradient); ge[b, j] = g[b] phi[b, j] (overwritten; may be null: no embedding gradient).
  void projection_backward(int B, int F, const float* phi, const float* e, const float* g, float* gphi, float* ge);
  // Conditional batch norm over x [N, C, S]: batch statistics per channel as batchnorm_forward_train
  // (same saved mean/invstd and running statistics), then per sample and channel
  //   y = act((1 + dgain[n, c]) xhat + dbias[n, c]),  dgain, dbias [N, C] (= cond . W_gain, cond . W_bias).
  // y may be x.
  void cbn_forward_train(int N, int C, int S, float eps, float momentum, const float* x, const float* dgain,
                         const float* dbias, float* y, float* save_mean, float* save_invstd, float* run_mean,
                         float* run_var, Act act = Act::none, float slope = 0.f);
  // Evaluation: xhat from the running statistics.
  void cbn_forward_eval(int N, int C, int S, float eps, const float* x, const float* dgain, const float* dbias,
                        const float* run_mean, const float* run_var, float* y, Act act = Act::none, float slope = 0.f);
  // gy: dL/d(pre-activation). gx [N, C, S] overwritten (may be gy); gdgain[n, c] = sum_s gy xhat and
  // gdbias[n, c] = sum_s gy, [N, C], overwritten (the caller maps them to the tables with a GEMM).
  void cbn_backward(int N, int C, int S, const float* x, const float* dgain, const float* save_mean,
                    const float* save_invstd, const float* gy, float* gx, float* gdgain, float* gdbias);
  // ---- spectral normalization (cgan/nn/spectral_norm.hpp); every scalar stays in backend memory.
  // normalize: u[i] = t[i] / max(||t||, eps) over n values (||t|| summed in double, then rounded
  // to float). sigma (one float, may be null): *sigma = sum_i u[i] t[i] (in double), with the new u
  // when normalize, else with u as given (read only).
  void spectral_norm_vec(int n, const float* t, bool normalize, float eps, float* u, float* sigma);
  // w_sn[i] = w[i] / *sigma
  void spectral_norm_scale(size_t n, const float* w, const float* sigma, float* w_sn);
  // gw[r, c] += (g[r, c] - (*dot) * left[r] * right[c]) / *sigma over [rows, cols], in float in
  // that order (the gradient through W / sigma(W) with the power-iteration vectors held constant).
  void spectral_norm_grad(int rows, int cols, const float* g, const float* dot, const float* left, const float* right,
                          const float* sigma, float* gw);
  // ---- DiffAugment (cgan/backend/augment.hpp): y [B, C*H*W] = the augmentation of x [B, C*H*W], sample b
  // with the draws augment_draw(a, seed, stream id, offset + b) (offset: the first sample's global
  // index, so a sample's draws do not depend on how a batch is split); params [B, kAugmentParams]
  // receives each sample's draws (what augment_backward reads). x and y must not overlap.
  void augment_forward(const AugmentSpec& a, int B, uint64_t seed, RngStream stream, uint64_t offset, const float* x,
                       float* y, float* params);
  // gx [B, C*H*W] = dL/dx (overwritten) from gy = dL/dy and the params augment_forward wrote; gy and gx
  // must not overlap.
  void augment_backward(const AugmentSpec& a, int B, const float* params, const float* gy, float* gx);

  // ---- CUDA graphs: the ops enqueued between graph_begin() and graph_end() are captured, not
  // run; graph_end() returns the captured graph's id (> 0) and graph_launch(id) runs it (again and
  // again). A backend holds any number of graphs (each Trainer on it has its own), each until
  // graph_drop(id) or the backend's end. graph_abort() ends a capture in progress without keeping
  // it (after an error inside it). Backends without graphs say so with graphs_supported().
  virtual bool graphs_supported() const { return false; }
  virtual void graph_begin();
  virtual int graph_end();
  virtual void graph_launch(int id);
  virtual void graph_drop(int /*id*/) {}
  virtual void graph_abort() {}

  // ---- per-op timing (profile.hpp's OpProfile; cgan_gpu bench --per-op): the clock an OpProfile
  // marks op boundaries with. The default is the host's steady clock (ops are synchronous); the
  // CUDA backend records events on its stream.
  virtual std::unique_ptr<OpClock> make_op_clock() { return make_steady_op_clock(); }

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
  virtual void gemm_impl(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, const float* B,
                         float beta, float* C, MulPrecision mul) = 0;
  virtual void bias_act_forward_impl(Act act, float slope, int rows, int cols, const float* bias, float* y) = 0;
  virtual void bias_act_backward_impl(Act act, float slope, int rows, int cols, const float* y, float* g,
                                      float* gbias) = 0;
  virtual void mul_impl(size_t n, const float* a, float* b) = 0;
  virtual void axpy_impl(size_t n, float alpha, const float* x, float* y) = 0;
  virtual void dropout_forward_impl(size_t n, float p, uint64_t seed, RngStream stream, float* x, float* mask,
                                    uint64_t offset) = 0;
  virtual void batchnorm_forward_train_impl(int N, int C, int S, float eps, float momentum, const float* x,
                                            const float* gamma, const float* beta, float* y, float* save_mean,
                                            float* save_invstd, float* run_mean, float* run_var, Act act,
                                            float slope) = 0;
  virtual void batchnorm_forward_eval_impl(int N, int C, int S, float eps, const float* x, const float* gamma,
                                           const float* beta, const float* run_mean, const float* run_var, float* y,
                                           Act act, float slope) = 0;
  virtual void batchnorm_backward_impl(int N, int C, int S, const float* x, const float* gamma, const float* save_mean,
                                       const float* save_invstd, const float* gy, float* gx, float* ggamma,
                                       float* gbeta) = 0;
  virtual void batchnorm_forward_train_sync_impl(int N, int C, int S, float eps, float momentum, const float* x,
                                                 const float* gamma, const float* beta, float* y, float* save_mean,
                                                 float* save_invstd, float* run_mean, float* run_var, RankReduce& sync,
                                                 Act act, float slope) = 0;
  virtual void batchnorm_backward_sync_impl(int N, int C, int S, const float* x, const float* gamma,
                                            const float* save_mean, const float* save_invstd, const float* gy,
                                            float* gx, float* ggamma, float* gbeta, RankReduce& sync) = 0;
  virtual size_t conv2d_workspace_impl(const ConvShape& s) = 0;
  virtual void conv2d_forward_impl(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                                   float* ws, Act act, float slope) = 0;
  virtual void conv2d_backward_data_impl(const ConvShape& s, const float* gy, const float* w, float* gx, float* ws) = 0;
  virtual void conv2d_backward_filter_impl(const ConvShape& s, const float* x, const float* gy, float* gw, float* gbias,
                                           float* ws) = 0;
  virtual void pool2d_forward_impl(Pool k, const PoolShape& s, const float* x, float* y) = 0;
  virtual void pool2d_backward_impl(Pool k, const PoolShape& s, const float* x, const float* y, const float* gy,
                                    float* gx) = 0;
  virtual void fuse_forward_impl(Fusion f, int B, int in, int E, int K, const float* x, const float* cond,
                                 const int32_t* labels, const float* table, float* out) = 0;
  virtual void fuse_backward_impl(Fusion f, int B, int in, int E, int K, const float* x, const int32_t* labels,
                                  const float* table, const float* gout, float* gx, float* gtable) = 0;
  virtual void one_hot_impl(int B, int K, const int32_t* labels, float* out) = 0;
  virtual void loss_fused_impl(LossKind k, int n, const float* x, float target, float weight, float* grad,
                               float* acc) = 0;
  virtual void softmax_xent_impl(int B, int K, const float* logits, const int32_t* labels, float weight, float* grad,
                                 float* acc) = 0;
  virtual void adam_impl(size_t n, float* p, const float* g, float* m, float* v, float lr, float beta1, float beta2,
                         float eps, int t, const int32_t* t_counter) = 0;
  virtual void ema_update_impl(size_t n, float* avg, const float* p, float decay, int start, int t,
                               const int32_t* t_counter) = 0;
  virtual void rand_normal_impl(size_t n, uint64_t seed, RngStream stream, uint64_t offset, float mean, float stddev,
                                float* out) = 0;
  virtual void rand_uniform_impl(size_t n, uint64_t seed, RngStream stream, uint64_t offset, float lo, float hi,
                                 float* out) = 0;
  virtual void rand_below_impl(size_t n, uint64_t seed, RngStream stream, uint64_t offset, int32_t K, int32_t* out) = 0;
  virtual void permutation_impl(int n, uint64_t seed, uint64_t stream, int32_t* out) = 0;
  virtual void gather_rows_impl(int B, int cols, int rows, const float* src, const int32_t* idx, float* dst,
                                const int32_t* idx_offset) = 0;
  virtual void gather_int_impl(int B, int rows, const int32_t* src, const int32_t* idx, int32_t* dst,
                               const int32_t* idx_offset) = 0;
  virtual void copy_cols_impl(int B, int src_cols, int col0, int n, const float* src, float* dst) = 0;
  virtual void add_ints_impl(int n, int32_t* x, const int32_t* delta) = 0;
  virtual void copy_to_slot_impl(size_t n, const float* src, float* dst, const int32_t* slot, int slots) = 0;
  virtual void projection_forward_impl(int B, int F, const float* phi, const float* e, float* out) = 0;
  virtual void projection_backward_impl(int B, int F, const float* phi, const float* e, const float* g, float* gphi,
                                        float* ge) = 0;
  virtual void cbn_forward_train_impl(int N, int C, int S, float eps, float momentum, const float* x,
                                      const float* dgain, const float* dbias, float* y, float* save_mean,
                                      float* save_invstd, float* run_mean, float* run_var, Act act, float slope) = 0;
  virtual void cbn_forward_eval_impl(int N, int C, int S, float eps, const float* x, const float* dgain,
                                     const float* dbias, const float* run_mean, const float* run_var, float* y, Act act,
                                     float slope) = 0;
  virtual void cbn_backward_impl(int N, int C, int S, const float* x, const float* dgain, const float* save_mean,
                                 const float* save_invstd, const float* gy, float* gx, float* gdgain,
                                 float* gdbias) = 0;
  virtual void spectral_norm_vec_impl(int n, const float* t, bool normalize, float eps, float* u, float* sigma) = 0;
  virtual void spectral_norm_scale_impl(size_t n, const float* w, const float* sigma, float* w_sn) = 0;
  virtual void spectral_norm_grad_impl(int rows, int cols, const float* g, const float* dot, const float* left,
                                       const float* right, const float* sigma, float* gw) = 0;
  virtual void augment_forward_impl(const AugmentSpec& a, int B, uint64_t seed, RngStream stream, uint64_t offset,
                                    const float* x, float* y, float* params) = 0;
  virtual void augment_backward_impl(const AugmentSpec& a, int B, const float* params, const float* gy, float* gx) = 0;

 private:
  friend class OpProfile;
  OpProfile* op_profile_ = nullptr;  // set while an OpProfile is attached: the checked ops time themselves
};

// emulate_tf32: every GEMM (and so every convolution, im2col + GEMM) rounds both operands to
// TF32 (cgan/backend/tf32.hpp) before multiplying in fp32: the CPU twin of the CUDA backend's tf32 mode,
// used by tests to measure how far a computation moves under that rounding. Off by default (the
// CPU backend computes precision "tf32" in fp32; "bf16" is per op, MulPrecision).
std::unique_ptr<Backend> make_cpu_backend(bool emulate_tf32 = false);
#ifdef CGAN_HAVE_CUDA
// tf32: cuBLAS GEMMs and cuDNN convolutions may run on TF32 tensor cores; false: plain fp32 (what
// tight parity tests against the CPU use). No default: callers say which. Throws cgan::Error when
// no GPU is usable.
std::unique_ptr<Backend> make_cuda_backend(bool tf32);

struct CudaOptions {
  int device = 0;  // CUDA device ordinal
  // Let cuBLAS run fp32 GEMMs (CUBLAS_TF32_TENSOR_OP_MATH) and cuDNN convolutions (conv.cpp) on
  // TF32 tensor cores: much faster on A100/H100, inputs rounded to a 10-bit mantissa, so no longer
  // comparable with the CPU backend to fp32 tolerances. On by default, as the config's precision;
  // false gives plain fp32 (CUBLAS_DEFAULT_MATH, CUDNN_FMA_MATH).
  bool tf32 = true;
};

// Throws cgan::Error when no GPU is usable (the reason as cuda_available() gives it).
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options);
#endif

// The config's "precision": "tf32" (default, as Config's: CUDA GEMMs and convolutions on TF32
// tensor cores, as PyTorch does for cuDNN convolutions) or "fp32" (plain fp32 throughout). The CPU
// backend always computes in fp32.
struct BackendOptions {
  std::string precision = "tf32";
  int cuda_device = 0;  // the GPU (a launched job's rank uses its local rank's, cgan/train/distributed.hpp)
};

// "cpu", "cuda" or "auto" (CUDA when built with it and a GPU is present, else CPU).
// Throws cgan::Error for "cuda" without a usable GPU or an unknown name.
std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options = {});

// Whether this build contains the CUDA backend, and whether a GPU is usable now (with the reason
// when not).
bool cuda_compiled();
bool cuda_available(std::string* why_not = nullptr);

}  // namespace cgan
