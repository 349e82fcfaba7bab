// CpuBackend: the reference implementation of every Backend op (backend.hpp holds the contracts).
// GEMM through oneDNN's dnnl_sgemm when the build found it (CGAN_HAVE_DNNL), else OpenBLAS's
// cblas_sgemm; plain loops for the rest with contiguous inner loops; the scalar math comes from
// scalar_math.hpp and philox.hpp, shared verbatim with the CUDA kernels. oneDNN chooses its kernels
// from the CPU's instruction-set flags, so an AVX-512 machine gets AVX-512 kernels whatever its model
// (Debian's OpenBLAS 0.3.21 picks its kernels by CPU model and falls back to SSE3 or AVX2 kernels on
// newer processors); docs/DECISIONS.md has the measurements.
//
// Threads: GEMMs smaller than kParallelMacs multiply-adds run on one thread (measured on the 2-core
// dev machine: the MNIST-MLP shapes, ~6.5M MACs, are as fast or faster single-threaded and much
// steadier when the cores are shared) and larger ones on up to max_threads_ threads
// (CGAN_CPU_THREADS if set, else the GEMM library's own default: OMP_NUM_THREADS for oneDNN,
// OPENBLAS_NUM_THREADS for OpenBLAS, or the core count); the conv ops' GEMMs (cpu_conv.cpp) go
// through the same rule. Batch norm's per-channel loops on images, the activations, pooling and
// Adam go to max_threads_ threads from kParallelElems values, split so that their bits do not
// depend on the thread count (batch norm's sums add their per-block partials in one fixed order; a
// bias gradient adds its rows in order after them). Every other op is single-threaded. For a given
// machine and thread count the results are deterministic.
//
// No allocation in ops: the two ops that need scratch (batch norm's per-channel sums, the
// permutation's sort keys) keep it in member buffers that only grow, so a training step that
// repeats the same shapes allocates nothing after its first call. The conv ops use the caller's
// workspace (conv2d_workspace floats).
#if CGAN_HAVE_DNNL
#include <dnnl.h>
#include <omp.h>
#else
#include <cblas.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/bf16.hpp"
#include "cgan/backend/tf32.hpp"
#include "cgan/backend/rank_reduce.hpp"
#include "cgan/base/error.hpp"
#include "cgan/base/philox.hpp"
#include "cpu_conditional.hpp"
#include "cpu_augment.hpp"
#include "cpu_conv.hpp"
#if CGAN_HAVE_DNNL
#include "cpu_conv_dnnl.hpp"
#include "cpu_matmul_dnnl.hpp"
#endif
#include "cpu_lanes.hpp"
#include "cpu_spectral_norm.hpp"

namespace cgan {
namespace {

constexpr double kParallelMacs = 16.0 * 1024 * 1024;  // M*N*K at which GEMMs go multi-threaded
constexpr double kParallelElems = 256.0 * 1024;       // values at which element-wise loops do

// Adam over n elements, compiled also for AVX-512 and AVX2 (the loader picks the widest this CPU
// runs). Every lane performs adam_update's IEEE-754 operations in the same order (sqrt and division
// are correctly rounded in SIMD too; the file is compiled with -ffp-contract=off, so no FMA fusing),
// so each width gives the same bits as the scalar loop and as the CUDA kernel.
__attribute__((target_clones("avx512f", "avx2", "default"))) void adam_loop(size_t n, float* __restrict p,
                                                                            const float* __restrict g,
                                                                            float* __restrict m, float* __restrict v,
                                                                            AdamScalars s, float b1, float b2,
                                                                            float eps) {
  for (size_t i = 0; i < n; ++i) adam_update(p[i], m[i], v[i], g[i], s, b1, b2, eps);
}

template <typename T>
T* aligned_zeroed(size_t n) {
  CGAN_CHECK(n <= (SIZE_MAX - 63) / sizeof(T), "cpu alloc: size ", n, " overflows");
  const size_t bytes = (std::max<size_t>(n * sizeof(T), 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw Error(cat("cpu backend: out of memory allocating ", bytes, " bytes"));
  std::memset(p, 0, bytes);
  return static_cast<T*>(p);
}

inline size_t idx(size_t a, size_t b) { return a * b; }

// Batch-norm training statistics, per channel, from mean[c] (the batch mean, double) and m2[c] (the
// sum of squared deviations about it) over cnt values: save_mean, save_invstd, the running
// statistics (when run_mean is given; unbiased variance) and the affine coefficients of
// y = a (x - save_mean) + b. The float save_mean is off the true mean by lo = mean - save_mean; with a
// tiny variance a is large and that rounding would show, so it is folded into the offset:
// b = beta - a lo, where x - save_mean is exact for x near the mean. (batchnorm_forward_train and its
// _sync twin.)
void bn_finalize_statistics(int C, double cnt, float eps, float momentum, const double* mean, const double* m2,
                            const float* gamma, const float* beta, float* save_mean, float* save_invstd,
                            float* run_mean, float* run_var, float* a, float* b) {
  for (int c = 0; c < C; ++c) {
    const double var = m2[c] / cnt;
    save_mean[c] = static_cast<float>(mean[c]);
    save_invstd[c] = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    if (run_mean) {
      const double unbiased = m2[c] / (cnt - 1.0);
      run_mean[c] = static_cast<float>((1.0 - momentum) * run_mean[c] + momentum * mean[c]);
      run_var[c] = static_cast<float>((1.0 - momentum) * run_var[c] + momentum * unbiased);
    }
    const double ac = static_cast<double>(gamma[c]) / std::sqrt(m2[c] / cnt + eps);
    a[c] = static_cast<float>(ac);
    b[c] = static_cast<float>(beta[c] - ac * (mean[c] - save_mean[c]));
  }
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(bool emulate_tf32) : emulate_tf32_(emulate_tf32) {
    int t = library_default_threads();
    if (const char* env = std::getenv("CGAN_CPU_THREADS")) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (end == env || *end != '\0' || v < 1 || v > 1024)
        throw Error(cat("CGAN_CPU_THREADS: expected a positive integer, got '", env, "'"));
      t = static_cast<int>(v);
    }
    max_threads_ = std::max(1, t);
    if (const char* env = std::getenv("CGAN_CPU_CONV")) {
      const std::string v = env;
      if (v != "auto" && v != "im2col" && v != "dnnl" && v != "mixed")
        throw Error(cat("CGAN_CPU_CONV: expected 'auto', 'mixed', 'dnnl' or 'im2col', got '", env, "'"));
      conv_mode_ = v == "im2col" ? ConvMode::im2col : v == "mixed" ? ConvMode::mixed : ConvMode::dnnl;
    }
    set_threads(1);
  }

  std::string name() const override { return "cpu"; }
  int threads() const override { return max_threads_; }

  // ---- memory
  float* alloc(size_t n) override { return counted(aligned_zeroed<float>(n), n * sizeof(float)); }
  int32_t* alloc_int(size_t n) override { return counted(aligned_zeroed<int32_t>(n), n * sizeof(int32_t)); }
  void free(void* p) override {
    if (!p) return;
    const auto it = sizes_.find(p);
    if (it != sizes_.end()) allocated_ -= it->second, sizes_.erase(it);
    std::free(p);
  }
  AllocStats alloc_stats() const override { return {allocated_, peak_, own_}; }
  size_t conv2d_workspace_cap(const ConvShape& s) override {
    size_t floats = conv2d_workspace(s);  // the buffer the layer allocates (im2col's, 0 for all-oneDNN)
    bool all_dnnl = false;
#if CGAN_HAVE_DNNL
    if (use_dnnl_conv(s)) {
      floats += (dnnl_conv_.shape_bytes(s, cur_threads_) + sizeof(float) - 1) / sizeof(float);
      all_dnnl = conv_mode_ == ConvMode::dnnl;
    }
#endif
    if (rounding(s.mul) != Rounding::none && !all_dnnl)
      floats += cpu_conv2d_gemm_operands(s);  // gemm_impl's rounded copies
    return floats;
  }
  size_t gemm_workspace_cap(int M, int N, int K, MulPrecision mul) override {
#if CGAN_HAVE_DNNL
    if (mul == MulPrecision::bf16) {  // oneDNN's matmul: its bf16 copies and scratchpad, any transposes
      if (M <= 0 || N <= 0 || K <= 0) return 0;
      const int t = gemm_threads(M, N, K);
      size_t bytes = 0;
      for (int k = 0; k < 4; ++k) bytes = std::max(bytes, dnnl_matmul_.shape_bytes(k & 1, k & 2, M, N, K, 1.f, 1.f, t));
      return (bytes + sizeof(float) - 1) / sizeof(float);
    }
#endif
    return rounding(mul) != Rounding::none ? idx(M, K) + idx(K, N) : 0;
  }
  void upload_impl(float* dst, const float* src, size_t n) override { copy_impl(dst, src, n); }
  void download_impl(float* dst, const float* src, size_t n) override { copy_impl(dst, src, n); }
  void upload_int_impl(int32_t* dst, const int32_t* src, size_t n) override {
    if (dst != src) std::memmove(dst, src, n * sizeof(int32_t));
  }
  void download_int_impl(int32_t* dst, const int32_t* src, size_t n) override { upload_int_impl(dst, src, n); }
  void fill_impl(float* x, size_t n, float v) override { std::fill(x, x + n, v); }
  void copy_impl(float* dst, const float* src, size_t n) override {
    if (dst != src) std::memmove(dst, src, n * sizeof(float));
  }

  // ---- dense algebra
  void gemm_impl(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
                 float* C, MulPrecision mul) override {
    gemm_with(ta, tb, M, N, K, alpha, A, B, beta, C, mul, false);
  }
  // rounded_copies: a bf16 GEMM rounds its operands into fp32 copies and runs the fp32 GEMM (the
  // im2col path's, the exact twin of fp32 on rounded operands) instead of oneDNN's bf16 matmul.
  void gemm_with(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
                 float* C, MulPrecision mul, bool rounded_copies) {
    const size_t mn = idx(M, N);
    if (K == 0 || alpha == 0.f) {  // BLAS semantics: beta == 0 overwrites C (even NaN)
      if (beta == 0.f)
        std::fill(C, C + mn, 0.f);
      else if (beta != 1.f)
        for (size_t i = 0; i < mn; ++i) C[i] *= beta;
      return;
    }
    set_threads(gemm_threads(M, N, K));
#if CGAN_HAVE_DNNL
    if (mul == MulPrecision::bf16 && !rounded_copies) {
      dnnl_matmul_.gemm_bf16(ta, tb, M, N, K, alpha, A, B, beta, C, cur_threads_);
      note_own();
      return;
    }
#else
    (void)rounded_copies;
#endif
    if (const Rounding round = rounding(mul); round != Rounding::none) {  // the products are then exact in fp32
      const size_t na = idx(M, K), nb = idx(K, N);
      if (rounded_.size() < na + nb) rounded_.resize(na + nb);  // one buffer: its largest use is one call's
      float* ra = rounded_.data();
      float* rb = ra + na;
      for_blocks(2, elem_threads(static_cast<double>(na + nb)), [&](int i) {
        const float* src = i ? B : A;
        float* dst = i ? rb : ra;
        const size_t n = i ? nb : na;
        if (round == Rounding::bf16)  // inlined, each loop vectorises
          for (size_t j = 0; j < n; ++j) dst[j] = round_to_bf16(src[j]);
        else
          for (size_t j = 0; j < n; ++j) dst[j] = round_to_tf32(src[j]);
      });
      A = ra;
      B = rb;
      note_own();
    }
#if CGAN_HAVE_DNNL
    const dnnl_status_t st =
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C, N);
    CGAN_CHECK(st == dnnl_success, "dnnl_sgemm(", M, "x", N, "x", K, ") failed with status ", static_cast<int>(st));
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                ta ? M : K, B, tb ? K : N, beta, C, N);
#endif
  }

  void bias_act_forward_impl(Act act, float slope, int rows, int cols, const float* bias, float* y) override {
    for_blocks(rows, elem_threads(static_cast<double>(rows) * cols), [&](int r) {
      float* row = y + idx(r, cols);
      if (bias)
        for (int c = 0; c < cols; ++c) row[c] += bias[c];
      switch (act) {  // the switch outside the loop lets each loop specialise and vectorise
        case Act::none: break;
        case Act::relu:
          for (int c = 0; c < cols; ++c) row[c] = act_forward(Act::relu, slope, row[c]);
          break;
        case Act::leaky_relu:
          for (int c = 0; c < cols; ++c) row[c] = act_forward(Act::leaky_relu, slope, row[c]);
          break;
        case Act::sigmoid:
          for (int c = 0; c < cols; ++c) row[c] = act_forward(Act::sigmoid, slope, row[c]);
          break;
        case Act::tanh:
          for (int c = 0; c < cols; ++c) row[c] = act_forward(Act::tanh, slope, row[c]);
          break;
      }
    });
  }

  void bias_act_backward_impl(Act act, float slope, int rows, int cols, const float* y, float* g,
                              float* gbias) override {
    // the rows on threads; the bias gradient after, adding the rows in order (the same bits)
    for_blocks(rows, elem_threads(static_cast<double>(rows) * cols), [&](int r) {
      float* gr = g + idx(r, cols);
      const float* yr = act == Act::none ? nullptr : y + idx(r, cols);
      switch (act) {
        case Act::none: break;
        case Act::relu:
          for (int c = 0; c < cols; ++c) gr[c] *= act_grad_from_output(Act::relu, slope, yr[c]);
          break;
        case Act::leaky_relu:
          for (int c = 0; c < cols; ++c) gr[c] *= act_grad_from_output(Act::leaky_relu, slope, yr[c]);
          break;
        case Act::sigmoid:
          for (int c = 0; c < cols; ++c) gr[c] *= act_grad_from_output(Act::sigmoid, slope, yr[c]);
          break;
        case Act::tanh:
          for (int c = 0; c < cols; ++c) gr[c] *= act_grad_from_output(Act::tanh, slope, yr[c]);
          break;
      }
    });
    if (gbias)
      for (int r = 0; r < rows; ++r) {
        const float* gr = g + idx(r, cols);
        for (int c = 0; c < cols; ++c) gbias[c] += gr[c];
      }
  }

  void axpy_impl(size_t n, float alpha, const float* x, float* y) override {
    for (size_t i = 0; i < n; ++i) y[i] += alpha * x[i];  // -ffp-contract=off: no FMA
  }
  void mul_impl(size_t n, const float* a, float* b) override {
    for (size_t i = 0; i < n; ++i) b[i] *= a[i];
  }

  // ---- dropout
  void dropout_forward_impl(size_t n, float p, uint64_t seed, RngStream rs, float* x, float* mask,
                            uint64_t offset) override {
    const uint64_t stream = resolve(rs);
    const float keep = 1.f / (1.f - p);
    for (size_t i = 0; i < n; ++i) {
      const float m = philox_uniform(seed, stream, offset + i) >= p ? keep : 0.f;
      mask[i] = m;
      x[i] *= m;
    }
  }

  // ---- conditional family (cpu_conditional.cpp)
  void projection_forward_impl(int B, int F, const float* phi, const float* e, float* out) override {
    cpu_projection_forward(B, F, phi, e, out);
  }
  void projection_backward_impl(int B, int F, const float* phi, const float* e, const float* g, float* gphi,
                                float* ge) override {
    cpu_projection_backward(B, F, phi, e, g, gphi, ge);
  }
  void cbn_forward_train_impl(int N, int C, int S, float eps, float momentum, const float* x, const float* dgain,
                              const float* dbias, float* y, float* save_mean, float* save_invstd, float* run_mean,
                              float* run_var, Act act, float slope) override {
    cpu_cbn_forward_train(N, C, S, eps, momentum, x, dgain, dbias, y, save_mean, save_invstd, run_mean, run_var, act,
                          slope, per_channel_threads(N, C, S), scratch_d_);
  }
  void cbn_forward_eval_impl(int N, int C, int S, float eps, const float* x, const float* dgain, const float* dbias,
                             const float* run_mean, const float* run_var, float* y, Act act, float slope) override {
    cpu_cbn_forward_eval(N, C, S, eps, x, dgain, dbias, run_mean, run_var, y, act, slope);
  }
  void cbn_backward_impl(int N, int C, int S, const float* x, const float* dgain, const float* save_mean,
                         const float* save_invstd, const float* gy, float* gx, float* gdgain, float* gdbias) override {
    cpu_cbn_backward(N, C, S, x, dgain, save_mean, save_invstd, gy, gx, gdgain, gdbias, per_channel_threads(N, C, S),
                     scratch_d_);
  }

  // ---- batch norm over [N, C, S]
  void batchnorm_forward_train_impl(int N, int C, int S, float eps, float momentum, const float* x, const float* gamma,
                                    const float* beta, float* y, float* save_mean, float* save_invstd, float* run_mean,
                                    float* run_var, Act act, float slope) override {
    const int t = per_channel_threads(N, C, S);
    double* mean = scratch_d(2 * static_cast<size_t>(C) + static_cast<size_t>(N) * C);
    double* m2 = mean + C;
    double* part = m2 + C;
    channel_sums(N, C, S, x, mean, part, t);
    const double cnt = static_cast<double>(N) * S;
    for (int c = 0; c < C; ++c) mean[c] /= cnt;
    channel_sq_dev(N, C, S, x, mean, m2, part, t);  // two-pass variance: no cancellation
    float* a = scratch_f(2 * static_cast<size_t>(C));
    float* b = a + C;
    bn_finalize_statistics(C, cnt, eps, momentum, mean, m2, gamma, beta, save_mean, save_invstd, run_mean, run_var, a,
                           b);
    affine_act(N, C, S, x, save_mean, a, b, y, act, slope, t);
  }

  void batchnorm_forward_eval_impl(int N, int C, int S, float eps, const float* x, const float* gamma,
                                   const float* beta, const float* run_mean, const float* run_var, float* y, Act act,
                                   float slope) override {
    float* a = scratch_f(static_cast<size_t>(C));
    for (int c = 0; c < C; ++c) a[c] = static_cast<float>(gamma[c] / std::sqrt(static_cast<double>(run_var[c]) + eps));
    affine_act(N, C, S, x, run_mean, a, beta, y, act, slope, per_channel_threads(N, C, S));
  }

  void batchnorm_backward_impl(int N, int C, int S, const float* x, const float* gamma, const float* save_mean,
                               const float* save_invstd, const float* gy, float* gx, float* ggamma,
                               float* gbeta) override {
    // One pass: sum gy, sum gy (x - save_mean), sum (x - save_mean), in double. The last gives
    // the batch mean's offset lo from the float save_mean (its rounding), so xhat below is taken
    // about the exact mean: with a tiny variance invstd is large and that rounding would show.
    const int t = per_channel_threads(N, C, S);
    double* sg = scratch_d(3 * (static_cast<size_t>(C) + static_cast<size_t>(N) * C));
    double* sgx = sg + C;
    double* lo = sgx + C;
    bn_backward_sums(N, C, S, x, save_mean, gy, sg, sgx, lo, lo + C, t);
    const double cnt = static_cast<double>(N) * S;
    for (int c = 0; c < C; ++c) {
      lo[c] /= cnt;
      sgx[c] = save_invstd[c] * (sgx[c] - lo[c] * sg[c]);  // sum gy xhat
      if (gbeta) gbeta[c] += static_cast<float>(sg[c]);
      if (ggamma) ggamma[c] += static_cast<float>(sgx[c]);
    }
    // gx = k (gy - mean(gy) - xhat mean(gy xhat)), k = gamma invstd, xhat = (x - mean) invstd
    //    = k gy + u (x - save_mean) + w with u = -k invstd mean(gy xhat),
    //      w = -k mean(gy) - u lo.
    float* k = scratch_f(3 * static_cast<size_t>(C));
    float* u = k + C;
    float* w = u + C;
    for (int c = 0; c < C; ++c) {
      const double kc = static_cast<double>(gamma[c]) * save_invstd[c];
      const double uc = -kc * save_invstd[c] * (sgx[c] / cnt);
      k[c] = static_cast<float>(kc);
      u[c] = static_cast<float>(uc);
      w[c] = static_cast<float>(-kc * (sg[c] / cnt) - uc * lo[c]);
    }
    bn_input_grad(N, C, S, x, save_mean, gy, k, u, w, gx, t);
  }

  // ---- synchronized batch norm: the two ops above with every sum taken across the ranks (sync)
  // and the global count; the same arithmetic, so one rank gives the plain ops' bits.
  void batchnorm_forward_train_sync_impl(int N, int C, int S, float eps, float momentum, const float* x,
                                         const float* gamma, const float* beta, float* y, float* save_mean,
                                         float* save_invstd, float* run_mean, float* run_var, RankReduce& sync, Act act,
                                         float slope) override {
    const int t = per_channel_threads(N, C, S);
    double* mean = scratch_d(2 * static_cast<size_t>(C) + static_cast<size_t>(N) * C);
    double* m2 = mean + C;
    double* part = m2 + C;
    channel_sums(N, C, S, x, mean, part, t);
    sync.sum(mean, static_cast<size_t>(C));
    const double cnt = static_cast<double>(N) * S * sync.ranks();
    for (int c = 0; c < C; ++c) mean[c] /= cnt;
    channel_sq_dev(N, C, S, x, mean, m2, part, t);
    sync.sum(m2, static_cast<size_t>(C));
    float* a = scratch_f(2 * static_cast<size_t>(C));
    float* b = a + C;
    bn_finalize_statistics(C, cnt, eps, momentum, mean, m2, gamma, beta, save_mean, save_invstd, run_mean, run_var, a,
                           b);
    affine_act(N, C, S, x, save_mean, a, b, y, act, slope, t);
  }

  void batchnorm_backward_sync_impl(int N, int C, int S, const float* x, const float* gamma, const float* save_mean,
                                    const float* save_invstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                                    RankReduce& sync) override {
    // [sg | sgd | sd] of this rank, then of all ranks (one all-reduce of 3C); the parameter
    // gradients take this rank's sg and sgd about the global mean offset lo.
    const int t = per_channel_threads(N, C, S);
    double* loc = scratch_d(6 * static_cast<size_t>(C) + 3 * static_cast<size_t>(N) * C);
    double* all = loc + 3 * static_cast<size_t>(C);
    bn_backward_sums(N, C, S, x, save_mean, gy, loc, loc + C, loc + 2 * C, all + 3 * static_cast<size_t>(C), t);
    std::copy(loc, loc + 3 * static_cast<size_t>(C), all);
    sync.sum(all, 3 * static_cast<size_t>(C));
    const double cnt = static_cast<double>(N) * S * sync.ranks();
    float* k = scratch_f(3 * static_cast<size_t>(C));
    float* u = k + C;
    float* w = u + C;
    for (int c = 0; c < C; ++c) {
      const double lo = all[2 * C + c] / cnt;
      const double invstd = save_invstd[c];
      if (gbeta) gbeta[c] += static_cast<float>(loc[c]);
      if (ggamma) ggamma[c] += static_cast<float>(invstd * (loc[C + c] - lo * loc[c]));
      const double sgx = invstd * (all[C + c] - lo * all[c]);  // sum gy xhat over every rank
      const double kc = static_cast<double>(gamma[c]) * invstd;
      const double uc = -kc * invstd * (sgx / cnt);
      k[c] = static_cast<float>(kc);
      u[c] = static_cast<float>(uc);
      w[c] = static_cast<float>(-kc * (all[c] / cnt) - uc * lo);
    }
    bn_input_grad(N, C, S, x, save_mean, gy, k, u, w, gx, t);
  }

  // ---- convolution and pooling. conv2d: oneDNN's convolution primitives (cpu_conv_dnnl.cpp) when the
  // build has oneDNN, else (and under TF32 emulation, which needs the GEMM's rounded operands, and for
  // any shape oneDNN has no kernel for) cpu_conv.cpp's im2col + GEMM. Threads: the GEMM rule
  // (kParallelMacs) on the conv's multiply-adds, the same count for a shape's primitives always.
  //
  // Default (CGAN_CPU_CONV unset, "auto" or "dnnl"): all three on the primitives, which run oneDNN's
  // direct jit kernels in blocked / NHWC layouts (with the plain NCHW layouts oneDNN had only
  // gemm:jit, no faster than ours: docs/PERFORMANCE.md, issue 23). "mixed" puts the forward and the
  // data gradient on them, "im2col" none (the tests' oracle).
  size_t conv2d_workspace_impl(const ConvShape& s) override {
#if CGAN_HAVE_DNNL
    // the primitives' buffers are the backend's own; im2col's serves the directions left on it
    if (use_dnnl_conv(s) && conv_mode_ == ConvMode::dnnl) return 0;
#endif
    return cpu_conv2d_workspace(s);
  }
  void conv2d_forward_impl(const ConvShape& s, const float* x, const float* w, const float* bias, float* y, float* ws,
                           Act act, float slope) override {
#if CGAN_HAVE_DNNL
    if (use_dnnl_conv(s)) {  // every mode but im2col (which use_dnnl_conv refuses)
      check_conv_ws("conv2d_forward", s, ws);
      dnnl_conv_.forward(s, cur_threads_, x, w, bias, y);
      note_own();
    } else
#endif
      cpu_conv2d_forward(gemm_fn(s.mul), s, x, w, bias, y, ws);
    if (act != Act::none) bias_act_forward_impl(act, slope, s.N, s.K * s.P() * s.Q(), nullptr, y);
  }
  void conv2d_backward_data_impl(const ConvShape& s, const float* gy, const float* w, float* gx, float* ws) override {
#if CGAN_HAVE_DNNL
    if (use_dnnl_conv(s)) {  // every mode but im2col (which use_dnnl_conv refuses)
      check_conv_ws("conv2d_backward_data", s, ws);
      dnnl_conv_.backward_data(s, cur_threads_, gy, w, gx);
      note_own();
      return;
    }
#endif
    cpu_conv2d_backward_data(gemm_fn(s.mul), s, gy, w, gx, ws);
  }
  void conv2d_backward_filter_impl(const ConvShape& s, const float* x, const float* gy, float* gw, float* gbias,
                                   float* ws) override {
#if CGAN_HAVE_DNNL
    if (conv_mode_ == ConvMode::dnnl && use_dnnl_conv(s)) {
      dnnl_conv_.backward_filter(s, cur_threads_, x, gy, gw, gbias);
      note_own();
      return;
    }
#endif
    cpu_conv2d_backward_filter(gemm_fn(s.mul), s, x, gy, gw, gbias, ws);
  }
  // Pooling: the samples on threads (each sample's planes are independent: the same bits).
  // f(one, i, o): one sample of s, whose input starts at float i and output at float o.
  template <typename F>
  void for_pool_samples(const PoolShape& s, const F& f) {
    PoolShape one = s;
    one.N = 1;
    const size_t in = static_cast<size_t>(s.C) * s.H * s.W, out = static_cast<size_t>(s.C) * s.P() * s.Q();
    for_blocks(s.N, elem_threads(static_cast<double>(s.N) * in), [&](int n) { f(one, idx(n, in), idx(n, out)); });
  }
  void pool2d_forward_impl(Pool k, const PoolShape& s, const float* x, float* y) override {
    for_pool_samples(s, [&](const PoolShape& one, size_t i, size_t o) { cpu_pool2d_forward(k, one, x + i, y + o); });
  }
  void pool2d_backward_impl(Pool k, const PoolShape& s, const float* x, const float* y, const float* gy,
                            float* gx) override {
    for_pool_samples(s, [&](const PoolShape& one, size_t i, size_t o) {
      cpu_pool2d_backward(k, one, x + i, y + o, gy + o, gx + i);
    });
  }

  // ---- label fusion
  void fuse_forward_impl(Fusion f, int B, int in, int E, int K, const float* x, const float* cond,
                         const int32_t* labels, const float* table, float* out) override {
    if (f != Fusion::concat) check_labels("fuse_forward", B, K, labels);
    for (int b = 0; b < B; ++b) {
      const float* xb = x + idx(b, in);
      if (f == Fusion::embed_multiply) {
        const float* e = table + idx(labels[b], in);
        float* ob = out + idx(b, in);
        for (int i = 0; i < in; ++i) ob[i] = xb[i] * e[i];
        continue;
      }
      float* ob = out + idx(b, in + E);
      if (in) std::memcpy(ob, xb, sizeof(float) * in);
      const float* src = f == Fusion::concat ? cond + idx(b, E) : table + idx(labels[b], E);
      if (E) std::memcpy(ob + in, src, sizeof(float) * E);
    }
  }

  void fuse_backward_impl(Fusion f, int B, int in, int E, int K, const float* x, const int32_t* labels,
                          const float* table, const float* gout, float* gx, float* gtable) override {
    if (gtable || (gx && f == Fusion::embed_multiply)) check_labels("fuse_backward", B, K, labels);
    for (int b = 0; b < B; ++b) {
      if (f == Fusion::embed_multiply) {
        const float* g = gout + idx(b, in);
        const size_t row = idx(labels ? labels[b] : 0, in);
        if (gx) {
          float* gxb = gx + idx(b, in);
          const float* e = table + row;
          for (int i = 0; i < in; ++i) gxb[i] = g[i] * e[i];
        }
        if (gtable) {
          float* gt = gtable + row;
          const float* xb = x + idx(b, in);
          for (int i = 0; i < in; ++i) gt[i] += g[i] * xb[i];
        }
        continue;
      }
      const float* g = gout + idx(b, in + E);
      if (gx && in) std::memcpy(gx + idx(b, in), g, sizeof(float) * in);
      if (gtable) {
        float* t = gtable + idx(labels[b], E);
        for (int i = 0; i < E; ++i) t[i] += g[in + i];
      }
    }
  }

  void one_hot_impl(int B, int K, const int32_t* labels, float* out) override {
    std::fill(out, out + idx(B, K), 0.f);
    for (int b = 0; b < B; ++b) {
      CGAN_CHECK(labels[b] >= 0 && labels[b] < K, "one_hot: label ", labels[b], " outside 0..", K - 1);
      out[idx(b, K) + labels[b]] = 1.f;
    }
  }

  // ---- fused loss
  void loss_fused_impl(LossKind k, int n, const float* x, float target, float weight, float* grad,
                       float* acc) override {
    double loss = 0, prob = 0;
    long long correct = 0;
    const float scale = weight / static_cast<float>(n);
    const bool pos = target > 0.5f;
    for (int i = 0; i < n; ++i) {
      const LossPoint p = loss_point(k, x[i], target);
      grad[i] = p.grad * scale;
      loss += p.loss;
      prob += p.prob;
      correct += p.says_real == pos ? 1 : 0;
    }
    acc[0] += static_cast<float>(loss * weight / n);
    acc[1] += static_cast<float>(prob);
    acc[2] += static_cast<float>(correct);
  }

  // ---- softmax cross-entropy: per row, m = max, s = sum exp(x - m) (double), log-sum-exp = m + log s.
  // The CUDA kernel computes the same expressions in the same precisions.
  void softmax_xent_impl(int B, int K, const float* x, const int32_t* labels, float weight, float* grad,
                         float* acc) override {
    for (int b = 0; b < B; ++b)  // every label checked before anything is written
      CGAN_CHECK(labels[b] >= 0 && labels[b] < K, "softmax_xent: label ", labels[b], " of row ", b, " is outside 0..",
                 K - 1);
    const double scale = static_cast<double>(weight) / B;
    double loss = 0;
    long long correct = 0;
    for (int b = 0; b < B; ++b) {
      const float* r = x + idx(b, K);
      float* g = grad + idx(b, K);
      int arg = 0;
      for (int k = 1; k < K; ++k)
        if (r[k] > r[arg]) arg = k;
      const float m = r[arg];
      double s = 0;
      for (int k = 0; k < K; ++k) s += std::exp(static_cast<double>(r[k]) - m);
      const int l = labels[b];
      for (int k = 0; k < K; ++k)
        g[k] = static_cast<float>(scale * (std::exp(static_cast<double>(r[k]) - m) / s - (k == l ? 1.0 : 0.0)));
      loss += static_cast<double>(m) + std::log(s) - r[l];
      correct += arg == l ? 1 : 0;
    }
    acc[0] += static_cast<float>(loss * weight / B);
    acc[1] += static_cast<float>(correct);
  }

  // ---- Adam (scalar_math.hpp's adam_update, shared with the CUDA kernel)
  void adam_impl(size_t n, float* p, const float* g, float* m, float* v, float lr, float b1, float b2, float eps, int t,
                 const int32_t* t_counter) override {
    if (t_counter) t += *t_counter;
    CGAN_CHECK(t >= 1, "adam: step must be >= 1, got ", t);
    const AdamScalars s = adam_scalars(lr, b1, b2, t);
    // element-wise: split into one 64-float-aligned chunk per thread (the same bits)
    const int nt = elem_threads(static_cast<double>(n));
    const size_t chunk = (n / static_cast<size_t>(nt) + 63) / 64 * 64;
    for_blocks(nt, nt, [&](int i) {
      const size_t b = std::min(n, chunk * static_cast<size_t>(i)), e = std::min(n, b + chunk);
      adam_loop(e - b, p + b, g + b, m + b, v + b, s, b1, b2, eps);
    });
  }

  // ---- exponential moving average (scalar_math.hpp's ema_point, shared with cuda/ema.cu)
  void ema_update_impl(size_t n, float* avg, const float* p, float decay, int start, int t,
                       const int32_t* t_counter) override {
    if (t_counter) t += *t_counter;
    if (t <= start) {
      std::copy(p, p + n, avg);
      return;
    }
    const float omd = 1.f - decay;
    for (size_t i = 0; i < n; ++i) avg[i] = ema_point(avg[i], p[i], omd);
  }

  // ---- counter-based RNG
  void rand_normal_impl(size_t n, uint64_t seed, RngStream rs, uint64_t offset, float mean, float stddev,
                        float* out) override {
    const uint64_t stream = resolve(rs);
    for (size_t i = 0; i < n; ++i) out[i] = mean + stddev * philox_normal(seed, stream, offset + i);
  }
  void rand_uniform_impl(size_t n, uint64_t seed, RngStream rs, uint64_t offset, float lo, float hi,
                         float* out) override {
    const uint64_t stream = resolve(rs);
    const float w = hi - lo;
    for (size_t i = 0; i < n; ++i) out[i] = lo + w * philox_uniform(seed, stream, offset + i);
  }
  void rand_below_impl(size_t n, uint64_t seed, RngStream rs, uint64_t offset, int32_t K, int32_t* out) override {
    const uint64_t stream = resolve(rs);
    for (size_t i = 0; i < n; ++i)
      out[i] = static_cast<int32_t>(philox_below(seed, stream, offset + i, static_cast<uint32_t>(K)));
  }
  // Sorting (word << 32 | index) gives exactly the stable sort by word.
  void permutation_impl(int n, uint64_t seed, uint64_t stream, int32_t* out) override {
    if (keys_.size() < static_cast<size_t>(n)) keys_.resize(n);
    for (int i = 0; i < n; ++i)
      keys_[i] = (static_cast<uint64_t>(philox_words(seed, stream, static_cast<uint64_t>(i)).v[0]) << 32) |
                 static_cast<uint32_t>(i);
    std::sort(keys_.begin(), keys_.begin() + n);
    for (int i = 0; i < n; ++i) out[i] = static_cast<int32_t>(keys_[i] & 0xffffffffu);
  }

  // ---- data
  void gather_rows_impl(int B, int cols, int rows, const float* src, const int32_t* idxs, float* dst,
                        const int32_t* idx_offset) override {
    idxs += offset_of(idx_offset, "gather_rows");
    for (int b = 0; b < B; ++b) {
      CGAN_CHECK(idxs[b] >= 0 && idxs[b] < rows, "gather_rows: index ", idxs[b], " outside the source rows 0..",
                 rows - 1);
      std::memcpy(dst + idx(b, cols), src + idx(idxs[b], cols), sizeof(float) * cols);
    }
  }
  void gather_int_impl(int B, int rows, const int32_t* src, const int32_t* idxs, int32_t* dst,
                       const int32_t* idx_offset) override {
    idxs += offset_of(idx_offset, "gather_int");
    for (int b = 0; b < B; ++b) {
      CGAN_CHECK(idxs[b] >= 0 && idxs[b] < rows, "gather_int: index ", idxs[b], " outside the source 0..", rows - 1);
      dst[b] = src[idxs[b]];
    }
  }

  void copy_cols_impl(int B, int src_cols, int col0, int n, const float* src, float* dst) override {
    for (int b = 0; b < B; ++b) std::memcpy(dst + idx(b, n), src + idx(b, src_cols) + col0, sizeof(float) * n);
  }

  // ---- step counters
  void add_ints_impl(int n, int32_t* x, const int32_t* delta) override {
    for (int i = 0; i < n; ++i) x[i] += delta[i];
  }
  void copy_to_slot_impl(size_t n, const float* src, float* dst, const int32_t* slot, int slots) override {
    CGAN_CHECK(*slot >= 0 && *slot < slots, "copy_to_slot: slot ", *slot, " outside [0, ", slots, ")");
    std::memcpy(dst + static_cast<size_t>(*slot) * n, src, sizeof(float) * n);
  }

  // ---- spectral normalization (cpu_spectral_norm.cpp)
  void spectral_norm_vec_impl(int n, const float* t, bool normalize, float eps, float* u, float* sigma) override {
    cpu_spectral_norm_vec(n, t, normalize, eps, u, sigma);
  }
  void spectral_norm_scale_impl(size_t n, const float* w, const float* sigma, float* w_sn) override {
    cpu_spectral_norm_scale(n, w, sigma, w_sn);
  }
  void spectral_norm_grad_impl(int rows, int cols, const float* g, const float* dot, const float* left,
                               const float* right, const float* sigma, float* gw) override {
    cpu_spectral_norm_grad(rows, cols, g, dot, left, right, sigma, gw);
  }

  // ---- DiffAugment (cpu_augment.cpp)
  void augment_forward_impl(const AugmentSpec& a, int B, uint64_t seed, RngStream stream, uint64_t offset,
                            const float* x, float* y, float* params) override {
    cpu_augment_forward(a, B, seed, resolve(stream), offset, x, y, params);
  }
  void augment_backward_impl(const AugmentSpec& a, int B, const float* params, const float* gy, float* gx) override {
    cpu_augment_backward(a, B, params, gy, gx);
  }

 private:
  static uint64_t resolve(const RngStream& s) {
    if (!s.counter) return s.base;
    CGAN_CHECK(*s.counter >= 0, "RNG stream counter is negative: ", *s.counter);
    return s.base + s.stride * static_cast<uint64_t>(*s.counter);
  }
  static int32_t offset_of(const int32_t* o, const char* op) {
    if (!o) return 0;
    CGAN_CHECK(*o >= 0, op, ": negative index offset ", *o);
    return *o;
  }
  CpuGemm gemm_fn(MulPrecision mul) {
    return [this, mul](bool ta, bool tb, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
                       float* C) { gemm_with(ta, tb, M, N, K, alpha, A, B, beta, C, mul, true); };
  }
  // The threads of a GEMM or convolution of `macs` multiply-adds (the rule at the top of the file).
  int macs_threads(double macs) const { return macs >= kParallelMacs ? max_threads_ : 1; }
  int gemm_threads(int M, int N, int K) const { return macs_threads(static_cast<double>(M) * N * K); }
  // The rounding a GEMM's operands take: bf16 where asked, else TF32 under the emulation, else none.
  enum class Rounding { none, bf16, tf32 };
  Rounding rounding(MulPrecision mul) const {
    if (mul == MulPrecision::bf16) return Rounding::bf16;
    return emulate_tf32_ ? Rounding::tf32 : Rounding::none;
  }

#if CGAN_HAVE_DNNL
  // Sets the conv's thread count (the GEMM rule on its multiply-adds) and says whether oneDNN
  // serves s (never under CGAN_CPU_CONV=im2col, nor with TF32 emulation).
  bool use_dnnl_conv(const ConvShape& s) {
    if (emulate_tf32_ || conv_mode_ == ConvMode::im2col) return false;
    const double macs = static_cast<double>(s.N) * s.K * s.P() * s.Q() * s.C * s.R * s.S;
    set_threads(macs_threads(macs));
    const bool ok = dnnl_conv_.supports(s, cur_threads_);  // creates the primitives (and their scratchpad)
    note_own();
    return ok;
  }

  // The workspace contract holds on every path: a shape whose conv2d_workspace is not 0 needs one.
  void check_conv_ws(const char* op, const ConvShape& s, const float* ws) {
    CGAN_CHECK(ws || conv_mode_ == ConvMode::dnnl, op, ": null workspace (this shape needs ", cpu_conv2d_workspace(s),
               " floats)");
  }
#endif

  // The thread count OpenMP (or OpenBLAS) starts the process with, read once, before any backend
  // sets it: a backend made after another would otherwise read what the other's last op left (1
  // after a small op) and run every op of its life on one thread.
  static int library_default_threads() {
#if CGAN_HAVE_DNNL
    static const int t = omp_get_max_threads();
#else
    static const int t = openblas_get_num_threads();
#endif
    return t;
  }

  void set_threads(int t) {
    if (t != cur_threads_) {
#if CGAN_HAVE_DNNL
      omp_set_num_threads(t);
#else
      openblas_set_num_threads(t);
#endif
      cur_threads_ = t;
    }
  }

  static void check_labels(const char* op, int B, int K, const int32_t* labels) {
    CGAN_CHECK(labels, op, ": null labels");
    for (int b = 0; b < B; ++b)
      CGAN_CHECK(labels[b] >= 0 && labels[b] < K, op, ": label ", labels[b], " outside the table's rows 0..", K - 1);
  }

  double* scratch_d(size_t n) {
    if (scratch_d_.size() < n) scratch_d_.resize(n);
    return scratch_d_.data();
  }
  float* scratch_f(size_t n) {
    if (scratch_f_.size() < n) scratch_f_.resize(n);
    return scratch_f_.data();
  }

  // Batch norm's loops over [N, C, S]: the per-channel sums take one partial per (sample, channel)
  // block (part: N*C doubles, computed on t threads) and add them in sample order on one thread, so
  // the sums have the same bits on any thread count; the element-wise passes split the same blocks.
  // S == 1 (batch norm after a linear layer) keeps its one-thread loops over the rows.
  int per_channel_threads(int N, int C, int S) const {
    return S > 1 ? elem_threads(static_cast<double>(N) * C * S) : 1;
  }
  int elem_threads(double n) const { return n >= kParallelElems ? max_threads_ : 1; }

  // Per channel: sg = sum gy, sgd = sum gy (x - m), sd = sum (x - m), accumulated in double
  // (part: 3 N C doubles).
  static void bn_backward_sums(int N, int C, int S, const float* x, const float* m, const float* gy, double* sg,
                               double* sgd, double* sd, double* part, int t) {
    if (S == 1) {
      std::fill(sg, sg + C, 0.0);
      std::fill(sgd, sgd + C, 0.0);
      std::fill(sd, sd + C, 0.0);
      for (int n = 0; n < N; ++n) {
        const size_t o = idx(n, C);
        for (int c = 0; c < C; ++c) {
          const double g = gy[o + c], d = static_cast<double>(x[o + c]) - m[c];
          sg[c] += g;
          sgd[c] += g * d;
          sd[c] += d;
        }
      }
      return;
    }
    const size_t nc = idx(N, C);
    for_blocks(N * C, t, [&](int i) {
      double r[3];
      lane_bn_backward(x + idx(i, S), gy + idx(i, S), S, m[i % C], r);
      part[i] = r[0], part[nc + i] = r[1], part[2 * nc + i] = r[2];
    });
    add_parts(N, C, part, sg);
    add_parts(N, C, part + nc, sgd);
    add_parts(N, C, part + 2 * nc, sd);
  }

  // Batch norm's input gradient from its per-channel coefficients (plain and synchronized backward):
  // gx = k gy + u (x - m) + w.
  static void bn_input_grad(int N, int C, int S, const float* x, const float* m, const float* gy, const float* k,
                            const float* u, const float* w, float* gx, int t) {
    if (S == 1) {
      for (int n = 0; n < N; ++n) {
        const size_t o = idx(n, C);
        for (int c = 0; c < C; ++c) gx[o + c] = k[c] * gy[o + c] + u[c] * (x[o + c] - m[c]) + w[c];
      }
      return;
    }
    for_blocks(N * C, t, [&](int i) {
      const int c = i % C;
      const size_t o = idx(i, S);
      const float kc = k[c], uc = u[c], wc = w[c], mc = m[c];
      for (int j = 0; j < S; ++j) gx[o + j] = kc * gy[o + j] + uc * (x[o + j] - mc) + wc;
    });
  }

  // y[n,c,s] = act(a[c] (x[n,c,s] - m[c]) + b[c])  (subtracting first keeps a large mean exact); the
  // activation in the same pass, with the bits of a separate bias_act_forward.
  void affine_act(int N, int C, int S, const float* x, const float* m, const float* a, const float* b, float* y,
                  Act act, float slope, int t) {
    if (S == 1) {
      for (int n = 0; n < N; ++n) {
        const size_t o = idx(n, C);
        for (int c = 0; c < C; ++c) y[o + c] = a[c] * (x[o + c] - m[c]) + b[c];
      }
      if (act != Act::none) bias_act_forward_impl(act, slope, N, C, nullptr, y);
      return;
    }
    for_blocks(N * C, t, [&](int i) {
      const int c = i % C;
      const size_t o = idx(i, S);
      const float mc = m[c], ac = a[c], bc = b[c];
      for (int j = 0; j < S; ++j) y[o + j] = ac * (x[o + j] - mc) + bc;
      if (act != Act::none) bias_act_forward_impl(act, slope, 1, S, nullptr, y + o);
    });
  }

  // The allocation counter behind alloc_stats (sizes as aligned_zeroed rounds them).
  template <typename T>
  T* counted(T* p, size_t bytes) {
    const uint64_t b = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    sizes_[p] = b;
    allocated_ += b;
    peak_ = std::max(peak_, allocated_ + own_);
    return p;
  }
  // After oneDNN may have grown its buffers (primitive creation, a conv op): own_ and the peak.
  void note_own() {
    own_ = rounded_.capacity() * sizeof(float);
#if CGAN_HAVE_DNNL
    own_ += dnnl_conv_.bytes_held() + dnnl_matmul_.bytes_held();
#endif
    peak_ = std::max(peak_, allocated_ + own_);
  }
  std::unordered_map<void*, uint64_t> sizes_;
  uint64_t allocated_ = 0, peak_ = 0, own_ = 0;
  bool emulate_tf32_ = false;
  // CGAN_CPU_CONV: unset / "auto" / "dnnl" (all three on oneDNN), "mixed" (forward, data gradient),
  // "im2col" (none on oneDNN)
  enum class ConvMode { dnnl, mixed, im2col };
  ConvMode conv_mode_ = ConvMode::dnnl;
#if CGAN_HAVE_DNNL
  DnnlConv dnnl_conv_;
  DnnlMatmul dnnl_matmul_;  // bf16 GEMMs
#endif
  std::vector<float> rounded_;  // a GEMM's rounded operands, A then B (rounding()), counted in own_
  int max_threads_ = 1;
  int cur_threads_ = -1;
  std::vector<double> scratch_d_;
  std::vector<float> scratch_f_;
  std::vector<uint64_t> keys_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(bool emulate_tf32) { return std::make_unique<CpuBackend>(emulate_tf32); }

}  // namespace cgan
