#include "cgan/backend/backend.hpp"

#include "cgan/backend/augment.hpp"
#include "cgan/backend/rank_reduce.hpp"
#include "cgan/base/error.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

namespace cgan {

bool cuda_compiled() {
#ifdef CGAN_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

#ifndef CGAN_HAVE_CUDA
bool cuda_available(std::string* why_not) {
  if (why_not) *why_not = "this build of cgan_gpu has no CUDA backend (no CUDA toolkit at build time)";
  return false;
}
#endif

uint64_t Backend::memory_capacity_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : uint64_t(1) << 40;
}

namespace {
// "512M" -> 536870912; K/M/G/T are powers of 1024; a plain number is bytes.
bool parse_byte_size(const std::string& v, uint64_t* out) {
  if (v.empty() || !std::isdigit(static_cast<unsigned char>(v[0]))) return false;
  size_t i = 0;
  uint64_t n = 0;
  for (; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i) {
    if (n > (UINT64_MAX - 9) / 10) return false;
    n = n * 10 + static_cast<uint64_t>(v[i] - '0');
  }
  int shift = 0;
  if (i < v.size()) {
    const char s = static_cast<char>(std::toupper(static_cast<unsigned char>(v[i])));
    shift = s == 'K' ? 10 : s == 'M' ? 20 : s == 'G' ? 30 : s == 'T' ? 40 : -1;
    if (shift < 0) return false;
    ++i;
    if (i < v.size() && (v[i] == 'B' || v[i] == 'b')) ++i;  // "512MB" too
  }
  if (i != v.size() || n > (UINT64_MAX >> shift)) return false;
  *out = n << shift;
  return true;
}

// MemAvailable from /proc/meminfo (kB), or 0 when it cannot be read.
uint64_t meminfo_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  while (f >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024;
    f.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}
}  // namespace

uint64_t Backend::memory_available() {
  if (const char* env = std::getenv("CGAN_CPU_MEMORY_LIMIT")) {
    uint64_t n = 0;
    if (!parse_byte_size(env, &n))
      throw Error(cat("CGAN_CPU_MEMORY_LIMIT: expected a size in bytes (e.g. 1073741824, 512M, 2G), got '", env, "'"));
    return n;
  }
  const uint64_t avail = meminfo_available();
  return avail > 0 ? avail : memory_capacity_bytes();
}

std::string Backend::memory_available_source() {
  return std::getenv("CGAN_CPU_MEMORY_LIMIT") ? "CGAN_CPU_MEMORY_LIMIT" : "MemAvailable";
}

size_t Backend::conv2d_workspace_cap(const ConvShape& s) { return conv2d_workspace(s); }

std::vector<ConvProbeRow> Backend::conv_probe(const ConvShape&) {
  throw Error(cat("--conv-probe: the ", name(),
                  " backend has no convolution algorithms to choose from; the probe times cuDNN's (--device cuda)"));
}

double Backend::time_ms(const std::function<void()>& work) {
  synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  work();
  synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// ---- the checked public ops: validate, return early on empty input, then call the backend (timed
// under the op's kind while an OpProfile is attached)

namespace {
class OpTimer {
 public:
  OpTimer(OpProfile* p, OpKind k) : p_(p) {
    if (p_) p_->op_begin(k);
  }
  ~OpTimer() {
    if (p_) p_->op_end();
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  OpProfile* p_;
};
}  // namespace

void Backend::upload(float* dst, const float* src, size_t n) {
  if (n == 0) return;
  CGAN_CHECK(dst && src, "upload: null pointer");
  const OpTimer timer(op_profile_, OpKind::transfer);
  upload_impl(dst, src, n);
}
void Backend::download(float* dst, const float* src, size_t n) {
  if (n == 0) return;
  CGAN_CHECK(dst && src, "download: null pointer");
  const OpTimer timer(op_profile_, OpKind::transfer);
  download_impl(dst, src, n);
}
void Backend::upload_int(int32_t* dst, const int32_t* src, size_t n) {
  if (n == 0) return;
  CGAN_CHECK(dst && src, "upload_int: null pointer");
  const OpTimer timer(op_profile_, OpKind::transfer);
  upload_int_impl(dst, src, n);
}
void Backend::download_int(int32_t* dst, const int32_t* src, size_t n) {
  if (n == 0) return;
  CGAN_CHECK(dst && src, "download_int: null pointer");
  const OpTimer timer(op_profile_, OpKind::transfer);
  download_int_impl(dst, src, n);
}
void Backend::fill(float* x, size_t n, float v) {
  if (n == 0) return;
  CGAN_CHECK(x, "fill: null pointer");
  const OpTimer timer(op_profile_, OpKind::copy);
  fill_impl(x, n, v);
}
void Backend::copy(float* dst, const float* src, size_t n) {
  if (n == 0 || dst == src) return;
  CGAN_CHECK(dst && src, "copy: null pointer");
  const OpTimer timer(op_profile_, OpKind::copy);
  copy_impl(dst, src, n);
}

size_t Backend::gemm_workspace_cap(int, int, int, MulPrecision) { return 0; }
void Backend::gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
                   float* C, MulPrecision mul) {
  CGAN_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative size M=", M, " N=", N, " K=", K);
  if (M == 0 || N == 0) return;
  CGAN_CHECK(C, "gemm: null C");
  if (K > 0 && alpha != 0.f) CGAN_CHECK(A && B, "gemm: null A or B");
  const OpTimer timer(op_profile_, OpKind::gemm);
  gemm_impl(ta, tb, M, N, K, alpha, A, B, beta, C, mul);  // K == 0 or alpha == 0: C = beta * C (BLAS)
}
void Backend::bias_act_forward(Act act, float slope, int rows, int cols, const float* bias, float* y) {
  CGAN_CHECK(rows >= 0 && cols >= 0, "bias_act_forward: negative size");
  if (rows == 0 || cols == 0) return;
  CGAN_CHECK(y, "bias_act_forward: null y");
  const OpTimer timer(op_profile_, OpKind::act_fwd);
  bias_act_forward_impl(act, slope, rows, cols, bias, y);
}
void Backend::bias_act_backward(Act act, float slope, int rows, int cols, const float* y, float* g, float* gbias) {
  CGAN_CHECK(rows >= 0 && cols >= 0, "bias_act_backward: negative size");
  if (rows == 0 || cols == 0) return;
  CGAN_CHECK(g && (y || act == Act::none), "bias_act_backward: null y or g");
  const OpTimer timer(op_profile_, OpKind::act_bwd);
  bias_act_backward_impl(act, slope, rows, cols, y, g, gbias);
}
void Backend::mul(size_t n, const float* a, float* b) {
  if (n == 0) return;
  CGAN_CHECK(a && b, "mul: null pointer");
  const OpTimer timer(op_profile_, OpKind::dropout);
  mul_impl(n, a, b);
}
void Backend::axpy(size_t n, float alpha, const float* x, float* y) {
  if (n == 0) return;
  CGAN_CHECK(x && y, "axpy: null pointer");
  const OpTimer timer(op_profile_, OpKind::bn_fwd);
  axpy_impl(n, alpha, x, y);
}
void Backend::dropout_forward(size_t n, float p, uint64_t seed, RngStream stream, float* x, float* mask,
                              uint64_t offset) {
  CGAN_CHECK(p >= 0.f && p < 1.f, "dropout: p must be in [0, 1), got ", p);
  if (n == 0) return;
  CGAN_CHECK(x && mask, "dropout_forward: null pointer");
  const OpTimer timer(op_profile_, OpKind::dropout);
  dropout_forward_impl(n, p, seed, stream, x, mask, offset);
}

void Backend::batchnorm_forward_train(int N, int C, int S, float eps, float momentum, const float* x,
                                      const float* gamma, const float* beta, float* y, float* save_mean,
                                      float* save_invstd, float* run_mean, float* run_var, Act act, float slope) {
  CGAN_CHECK(N > 0 && C > 0 && S > 0, "batchnorm: bad shape N=", N, " C=", C, " S=", S);
  CGAN_CHECK(static_cast<long long>(N) * S > 1,
             "batchnorm (training): need more than one value per channel, got N*S=", static_cast<long long>(N) * S);
  CGAN_CHECK(eps > 0.f, "batchnorm: eps must be positive");
  CGAN_CHECK(x && gamma && beta && y && save_mean && save_invstd, "batchnorm_forward_train: null pointer");
  CGAN_CHECK((run_mean == nullptr) == (run_var == nullptr),
             "batchnorm_forward_train: run_mean and run_var must both be given or both null");
  const OpTimer timer(op_profile_, OpKind::bn_fwd);
  batchnorm_forward_train_impl(N, C, S, eps, momentum, x, gamma, beta, y, save_mean, save_invstd, run_mean, run_var,
                               act, slope);
}
void Backend::batchnorm_forward_eval(int N, int C, int S, float eps, const float* x, const float* gamma,
                                     const float* beta, const float* run_mean, const float* run_var, float* y, Act act,
                                     float slope) {
  CGAN_CHECK(N >= 0 && C > 0 && S > 0, "batchnorm: bad shape N=", N, " C=", C, " S=", S);
  CGAN_CHECK(eps > 0.f, "batchnorm: eps must be positive");
  if (N == 0) return;
  CGAN_CHECK(x && gamma && beta && run_mean && run_var && y, "batchnorm_forward_eval: null pointer");
  const OpTimer timer(op_profile_, OpKind::bn_fwd);
  batchnorm_forward_eval_impl(N, C, S, eps, x, gamma, beta, run_mean, run_var, y, act, slope);
}
void Backend::batchnorm_backward(int N, int C, int S, const float* x, const float* gamma, const float* save_mean,
                                 const float* save_invstd, const float* gy, float* gx, float* ggamma, float* gbeta) {
  CGAN_CHECK(N > 0 && C > 0 && S > 0, "batchnorm: bad shape N=", N, " C=", C, " S=", S);
  CGAN_CHECK(x && gamma && save_mean && save_invstd && gy && gx, "batchnorm_backward: null pointer");
  const OpTimer timer(op_profile_, OpKind::bn_bwd);
  batchnorm_backward_impl(N, C, S, x, gamma, save_mean, save_invstd, gy, gx, ggamma, gbeta);
}

void Backend::batchnorm_forward_train_sync(int N, int C, int S, float eps, float momentum, const float* x,
                                           const float* gamma, const float* beta, float* y, float* save_mean,
                                           float* save_invstd, float* run_mean, float* run_var, RankReduce& sync,
                                           Act act, float slope) {
  CGAN_CHECK(N > 0 && C > 0 && S > 0, "batchnorm_sync: bad shape N=", N, " C=", C, " S=", S);
  CGAN_CHECK(sync.ranks() >= 1, "batchnorm_sync: bad rank count ", sync.ranks());
  CGAN_CHECK(static_cast<long long>(N) * S * sync.ranks() > 1,
             "batchnorm (training): need more than one value per channel, got N*S*ranks=",
             static_cast<long long>(N) * S * sync.ranks());
  CGAN_CHECK(eps > 0.f, "batchnorm: eps must be positive");
  CGAN_CHECK(x && gamma && beta && y && save_mean && save_invstd, "batchnorm_forward_train_sync: null pointer");
  CGAN_CHECK((run_mean == nullptr) == (run_var == nullptr),
             "batchnorm_forward_train_sync: run_mean and run_var must both be given or both null");
  const OpTimer timer(op_profile_, OpKind::bn_fwd);
  batchnorm_forward_train_sync_impl(N, C, S, eps, momentum, x, gamma, beta, y, save_mean, save_invstd, run_mean,
                                    run_var, sync, act, slope);
}
void Backend::batchnorm_backward_sync(int N, int C, int S, const float* x, const float* gamma, const float* save_mean,
                                      const float* save_invstd, const float* gy, float* gx, float* ggamma, float* gbeta,
                                      RankReduce& sync) {
  CGAN_CHECK(N > 0 && C > 0 && S > 0, "batchnorm_sync: bad shape N=", N, " C=", C, " S=", S);
  CGAN_CHECK(sync.ranks() >= 1, "batchnorm_sync: bad rank count ", sync.ranks());
  CGAN_CHECK(x && gamma && save_mean && save_invstd && gy && gx, "batchnorm_backward_sync: null pointer");
  const OpTimer timer(op_profile_, OpKind::bn_bwd);
  batchnorm_backward_sync_impl(N, C, S, x, gamma, save_mean, save_invstd, gy, gx, ggamma, gbeta, sync);
}

static void check_conv(const char* op, const ConvShape& s) {
  CGAN_CHECK(s.N > 0 && s.C > 0 && s.H > 0 && s.W > 0 && s.K > 0 && s.R > 0 && s.S > 0, op, ": bad shape N=", s.N,
             " C=", s.C, " H=", s.H, " W=", s.W, " K=", s.K, " R=", s.R, " S=", s.S);
  CGAN_CHECK(s.stride_h > 0 && s.stride_w > 0 && s.pad_h >= 0 && s.pad_w >= 0, op, ": bad stride ", s.stride_h, "x",
             s.stride_w, " or padding ", s.pad_h, "x", s.pad_w);
  CGAN_CHECK(s.H + 2 * s.pad_h >= s.R && s.W + 2 * s.pad_w >= s.S, op, ": kernel ", s.R, "x", s.S,
             " larger than the padded input ", s.H + 2 * s.pad_h, "x", s.W + 2 * s.pad_w);
}
size_t Backend::conv2d_workspace(const ConvShape& s) {
  check_conv("conv2d_workspace", s);
  return conv2d_workspace_impl(s);
}
void Backend::conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y, float* ws,
                             Act act, float slope) {
  check_conv("conv2d_forward", s);
  CGAN_CHECK(x && w && y, "conv2d_forward: null pointer");
  const OpTimer timer(op_profile_, OpKind::conv_fwd);
  conv2d_forward_impl(s, x, w, bias, y, ws, act, slope);
}
void Backend::conv2d_backward_data(const ConvShape& s, const float* gy, const float* w, float* gx, float* ws) {
  check_conv("conv2d_backward_data", s);
  CGAN_CHECK(gy && w && gx, "conv2d_backward_data: null pointer");
  const OpTimer timer(op_profile_, OpKind::conv_bwd_data);
  conv2d_backward_data_impl(s, gy, w, gx, ws);
}
void Backend::conv2d_backward_filter(const ConvShape& s, const float* x, const float* gy, float* gw, float* gbias,
                                     float* ws) {
  check_conv("conv2d_backward_filter", s);
  CGAN_CHECK(x && gy && gw, "conv2d_backward_filter: null pointer");
  const OpTimer timer(op_profile_, OpKind::conv_bwd_filter);
  conv2d_backward_filter_impl(s, x, gy, gw, gbias, ws);
}
static void check_pool(const char* op, Pool k, const PoolShape& s) {
  CGAN_CHECK(k == Pool::avg || k == Pool::max, op, ": unknown pooling kind");
  CGAN_CHECK(s.N > 0 && s.C > 0 && s.H > 0 && s.W > 0 && s.R > 0 && s.S > 0, op, ": bad shape N=", s.N, " C=", s.C,
             " H=", s.H, " W=", s.W, " window ", s.R, "x", s.S);
  CGAN_CHECK(s.stride_h > 0 && s.stride_w > 0 && s.pad_h >= 0 && s.pad_w >= 0, op, ": bad stride or padding");
  CGAN_CHECK(2 * s.pad_h <= s.R && 2 * s.pad_w <= s.S, op, ": padding must be at most half the window");
  CGAN_CHECK(s.H + 2 * s.pad_h >= s.R && s.W + 2 * s.pad_w >= s.S, op, ": window ", s.R, "x", s.S,
             " larger than the padded input");
}
void Backend::pool2d_forward(Pool k, const PoolShape& s, const float* x, float* y) {
  check_pool("pool2d_forward", k, s);
  CGAN_CHECK(x && y, "pool2d_forward: null pointer");
  const OpTimer timer(op_profile_, OpKind::pool_fwd);
  pool2d_forward_impl(k, s, x, y);
}
void Backend::pool2d_backward(Pool k, const PoolShape& s, const float* x, const float* y, const float* gy, float* gx) {
  check_pool("pool2d_backward", k, s);
  CGAN_CHECK(x && y && gy && gx, "pool2d_backward: null pointer");
  const OpTimer timer(op_profile_, OpKind::pool_bwd);
  pool2d_backward_impl(k, s, x, y, gy, gx);
}

static void check_fusion(const char* op, Fusion f, int B, int in, int E) {
  CGAN_CHECK(B >= 0 && in >= 0 && E >= 0, op, ": negative size B=", B, " in=", in, " E=", E);
  CGAN_CHECK(f == Fusion::concat || f == Fusion::embed_concat || f == Fusion::embed_multiply, op, ": unknown fusion ",
             static_cast<int>(f));
  CGAN_CHECK(f != Fusion::embed_multiply || E == in, op, ": embed_multiply needs E == in, got E=", E, " in=", in);
}

void Backend::fuse_forward(Fusion f, int B, int in, int E, int K, const float* x, const float* cond,
                           const int32_t* labels, const float* table, float* out) {
  check_fusion("fuse_forward", f, B, in, E);
  CGAN_CHECK(f == Fusion::concat || K > 0, "fuse_forward: the table needs K > 0 rows, got ", K);
  if (B == 0) return;
  CGAN_CHECK(out && (x || in == 0), "fuse_forward: null x or out");
  if (f == Fusion::concat)
    CGAN_CHECK(cond || E == 0, "fuse_forward: concat needs cond");
  else
    CGAN_CHECK(labels && table, "fuse_forward: embedding modes need labels and table");
  const OpTimer timer(op_profile_, OpKind::fuse);
  fuse_forward_impl(f, B, in, E, K, x, cond, labels, table, out);
}
void Backend::fuse_backward(Fusion f, int B, int in, int E, int K, const float* x, const int32_t* labels,
                            const float* table, const float* gout, float* gx, float* gtable) {
  check_fusion("fuse_backward", f, B, in, E);
  CGAN_CHECK(f == Fusion::concat || K > 0, "fuse_backward: the table needs K > 0 rows, got ", K);
  if (B == 0) return;
  CGAN_CHECK(gout, "fuse_backward: null gout");
  if (f == Fusion::concat) gtable = nullptr;  // concat has no table
  if (gtable || (gx && f == Fusion::embed_multiply)) CGAN_CHECK(labels, "fuse_backward: null labels");
  if (f == Fusion::embed_multiply) {
    CGAN_CHECK(!gx || table, "fuse_backward: embed_multiply gx needs table");
    CGAN_CHECK(!gtable || x, "fuse_backward: embed_multiply gtable needs x");
  }
  const OpTimer timer(op_profile_, OpKind::fuse);
  fuse_backward_impl(f, B, in, E, K, x, labels, table, gout, gx, gtable);
}
void Backend::one_hot(int B, int K, const int32_t* labels, float* out) {
  CGAN_CHECK(B >= 0 && K > 0, "one_hot: bad shape B=", B, " K=", K);
  if (B == 0) return;
  CGAN_CHECK(labels && out, "one_hot: null pointer");
  const OpTimer timer(op_profile_, OpKind::fuse);
  one_hot_impl(B, K, labels, out);
}

void Backend::loss_fused(LossKind k, int n, const float* x, float target, float weight, float* grad, float* acc) {
  CGAN_CHECK(n > 0, "loss_fused: n must be positive, got ", n);
  CGAN_CHECK(x && grad && acc, "loss_fused: null pointer");
  CGAN_CHECK(static_cast<int>(k) >= 0 && static_cast<int>(k) <= static_cast<int>(LossKind::linear),
             "loss_fused: unknown loss kind ", static_cast<int>(k));
  const OpTimer timer(op_profile_, OpKind::loss);
  loss_fused_impl(k, n, x, target, weight, grad, acc);
}
void Backend::softmax_xent(int B, int K, const float* logits, const int32_t* labels, float weight, float* grad,
                           float* acc) {
  CGAN_CHECK(B > 0 && K > 0, "softmax_xent: bad shape B=", B, " K=", K);
  CGAN_CHECK(logits && labels && grad && acc, "softmax_xent: null pointer");
  const OpTimer timer(op_profile_, OpKind::loss);
  softmax_xent_impl(B, K, logits, labels, weight, grad, acc);
}
void Backend::adam(size_t n, float* p, const float* g, float* m, float* v, float lr, float b1, float b2, float eps,
                   int t, const int32_t* t_counter) {
  if (t_counter)
    CGAN_CHECK(t >= 0, "adam: negative step base ", t);
  else
    CGAN_CHECK(t >= 1, "adam: step must be >= 1, got ", t);
  if (n == 0) return;
  CGAN_CHECK(p && g && m && v, "adam: null pointer");
  const OpTimer timer(op_profile_, OpKind::adam);
  adam_impl(n, p, g, m, v, lr, b1, b2, eps, t, t_counter);
}
void Backend::ema_update(size_t n, float* avg, const float* p, float decay, int start, int t,
                         const int32_t* t_counter) {
  CGAN_CHECK(decay >= 0.f && decay <= 1.f, "ema_update: decay must be in [0, 1], got ", decay);
  CGAN_CHECK(start >= 0 && t >= 0, "ema_update: negative start ", start, " or step ", t);
  if (n == 0) return;
  CGAN_CHECK(avg && p, "ema_update: null pointer");
  const OpTimer timer(op_profile_, OpKind::ema);
  ema_update_impl(n, avg, p, decay, start, t, t_counter);
}

void Backend::rand_normal(size_t n, uint64_t seed, RngStream stream, uint64_t offset, float mean, float stddev,
                          float* out) {
  if (n == 0) return;
  CGAN_CHECK(out, "rand_normal: null out");
  const OpTimer timer(op_profile_, OpKind::rng);
  rand_normal_impl(n, seed, stream, offset, mean, stddev, out);
}
void Backend::rand_uniform(size_t n, uint64_t seed, RngStream stream, uint64_t offset, float lo, float hi, float* out) {
  if (n == 0) return;
  CGAN_CHECK(out, "rand_uniform: null out");
  const OpTimer timer(op_profile_, OpKind::rng);
  rand_uniform_impl(n, seed, stream, offset, lo, hi, out);
}
void Backend::rand_below(size_t n, uint64_t seed, RngStream stream, uint64_t offset, int32_t K, int32_t* out) {
  CGAN_CHECK(K > 0, "rand_below: K must be positive, got ", K);
  if (n == 0) return;
  CGAN_CHECK(out, "rand_below: null out");
  const OpTimer timer(op_profile_, OpKind::rng);
  rand_below_impl(n, seed, stream, offset, K, out);
}
void Backend::permutation(int n, uint64_t seed, uint64_t stream, int32_t* out) {
  CGAN_CHECK(n >= 0, "permutation: negative n");
  if (n == 0) return;
  CGAN_CHECK(out, "permutation: null out");
  const OpTimer timer(op_profile_, OpKind::rng);
  permutation_impl(n, seed, stream, out);
}

void Backend::gather_rows(int B, int cols, int rows, const float* src, const int32_t* idx, float* dst,
                          const int32_t* idx_offset) {
  CGAN_CHECK(B >= 0 && cols >= 0 && rows >= 0, "gather_rows: negative size");
  if (B == 0 || cols == 0) return;
  CGAN_CHECK(src && idx && dst, "gather_rows: null pointer");
  const OpTimer timer(op_profile_, OpKind::gather);
  gather_rows_impl(B, cols, rows, src, idx, dst, idx_offset);
}
void Backend::gather_int(int B, int rows, const int32_t* src, const int32_t* idx, int32_t* dst,
                         const int32_t* idx_offset) {
  CGAN_CHECK(B >= 0 && rows >= 0, "gather_int: negative size");
  if (B == 0) return;
  CGAN_CHECK(src && idx && dst, "gather_int: null pointer");
  const OpTimer timer(op_profile_, OpKind::gather);
  gather_int_impl(B, rows, src, idx, dst, idx_offset);
}

void Backend::copy_cols(int B, int src_cols, int col0, int n, const float* src, float* dst) {
  CGAN_CHECK(B >= 0 && n >= 0 && col0 >= 0 && col0 + n <= src_cols, "copy_cols: columns [", col0, ", ", col0 + n,
             ") outside a row of ", src_cols);
  if (B == 0 || n == 0) return;
  CGAN_CHECK(src && dst, "copy_cols: null pointer");
  const OpTimer timer(op_profile_, OpKind::gather);
  copy_cols_impl(B, src_cols, col0, n, src, dst);
}

void Backend::add_ints(int n, int32_t* x, const int32_t* delta) {
  CGAN_CHECK(n >= 0 && n <= 8, "add_ints: n must be in [0, 8], got ", n);
  if (n == 0) return;
  CGAN_CHECK(x && delta, "add_ints: null pointer");
  const OpTimer timer(op_profile_, OpKind::counters);
  add_ints_impl(n, x, delta);
}
void Backend::copy_to_slot(size_t n, const float* src, float* dst, const int32_t* slot, int slots) {
  CGAN_CHECK(slots > 0, "copy_to_slot: slots must be positive, got ", slots);
  if (n == 0) return;
  CGAN_CHECK(src && dst && slot, "copy_to_slot: null pointer");
  const OpTimer timer(op_profile_, OpKind::counters);
  copy_to_slot_impl(n, src, dst, slot, slots);
}

// ---- conditional family
void Backend::projection_forward(int B, int F, const float* phi, const float* e, float* out) {
  CGAN_CHECK(B >= 0 && F > 0, "projection_forward: bad shape B=", B, " F=", F);
  if (B == 0) return;
  CGAN_CHECK(phi && e && out, "projection_forward: null pointer");
  const OpTimer timer(op_profile_, OpKind::fuse);
  projection_forward_impl(B, F, phi, e, out);
}
void Backend::projection_backward(int B, int F, const float* phi, const float* e, const float* g, float* gphi,
                                  float* ge) {
  CGAN_CHECK(B >= 0 && F > 0, "projection_backward: bad shape B=", B, " F=", F);
  if (B == 0 || (!gphi && !ge)) return;
  CGAN_CHECK(g && (!gphi || e) && (!ge || phi), "projection_backward: null pointer");
  const OpTimer timer(op_profile_, OpKind::fuse);
  projection_backward_impl(B, F, phi, e, g, gphi, ge);
}
void Backend::cbn_forward_train(int N, int C, int S, float eps, float momentum, const float* x, const float* dgain,
                                const float* dbias, float* y, float* save_mean, float* save_invstd, float* run_mean,
                                float* run_var, Act act, float slope) {
  CGAN_CHECK(N > 0 && C > 0 && S > 0, "cbn_forward_train: bad shape N=", N, " C=", C, " S=", S);
  CGAN_CHECK(static_cast<long long>(N) * S > 1,
             "cbn_forward_train: need more than one value per channel, got N*S=", static_cast<long long>(N) * S);
  CGAN_CHECK(eps > 0.f, "cbn_forward_train: eps must be positive");
  CGAN_CHECK(x && dgain && dbias && y && save_mean && save_invstd, "cbn_forward_train: null pointer");
  CGAN_CHECK((run_mean == nullptr) == (run_var == nullptr),
             "cbn_forward_train: run_mean and run_var must both be given or both null");
  const OpTimer timer(op_profile_, OpKind::bn_fwd);
  cbn_forward_train_impl(N, C, S, eps, momentum, x, dgain, dbias, y, save_mean, save_invstd, run_mean, run_var, act,
                         slope);
}
void Backend::cbn_forward_eval(int N, int C, int S, float eps, const float* x, const float* dgain, const float* dbias,
                               const float* run_mean, const float* run_var, float* y, Act act, float slope) {
  CGAN_CHECK(N >= 0 && C > 0 && S > 0, "cbn_forward_eval: bad shape N=", N, " C=", C, " S=", S);
  CGAN_CHECK(eps > 0.f, "cbn_forward_eval: eps must be positive");
  if (N == 0) return;
  CGAN_CHECK(x && dgain && dbias && run_mean && run_var && y, "cbn_forward_eval: null pointer");
  const OpTimer timer(op_profile_, OpKind::bn_fwd);
  cbn_forward_eval_impl(N, C, S, eps, x, dgain, dbias, run_mean, run_var, y, act, slope);
}
void Backend::cbn_backward(int N, int C, int S, const float* x, const float* dgain, const float* save_mean,
                           const float* save_invstd, const float* gy, float* gx, float* gdgain, float* gdbias) {
  CGAN_CHECK(N > 0 && C > 0 && S > 0, "cbn_backward: bad shape N=", N, " C=", C, " S=", S);
  CGAN_CHECK(x && dgain && save_mean && save_invstd && gy && gx && gdgain && gdbias, "cbn_backward: null pointer");
  const OpTimer timer(op_profile_, OpKind::bn_bwd);
  cbn_backward_impl(N, C, S, x, dgain, save_mean, save_invstd, gy, gx, gdgain, gdbias);
}
void Backend::spectral_norm_vec(int n, const float* t, bool normalize, float eps, float* u, float* sigma) {
  CGAN_CHECK(n > 0, "spectral_norm_vec: n must be positive, got ", n);
  CGAN_CHECK(eps > 0.f, "spectral_norm_vec: eps must be positive, got ", eps);
  CGAN_CHECK(t && u, "spectral_norm_vec: null pointer");
  CGAN_CHECK(normalize || sigma, "spectral_norm_vec: nothing to do (no normalisation, no sigma)");
  const OpTimer timer(op_profile_, OpKind::spectral_norm);
  spectral_norm_vec_impl(n, t, normalize, eps, u, sigma);
}
void Backend::spectral_norm_scale(size_t n, const float* w, const float* sigma, float* w_sn) {
  if (n == 0) return;
  CGAN_CHECK(w && sigma && w_sn, "spectral_norm_scale: null pointer");
  const OpTimer timer(op_profile_, OpKind::spectral_norm);
  spectral_norm_scale_impl(n, w, sigma, w_sn);
}
void Backend::spectral_norm_grad(int rows, int cols, const float* g, const float* dot, const float* left,
                                 const float* right, const float* sigma, float* gw) {
  CGAN_CHECK(rows > 0 && cols > 0, "spectral_norm_grad: bad shape ", rows, "x", cols);
  CGAN_CHECK(g && dot && left && right && sigma && gw, "spectral_norm_grad: null pointer");
  const OpTimer timer(op_profile_, OpKind::spectral_norm);
  spectral_norm_grad_impl(rows, cols, g, dot, left, right, sigma, gw);
}
namespace {
// The checks both augment ops share; returns C*H*W.
size_t check_augment(const AugmentSpec& a, int B, const char* op) {
  CGAN_CHECK(B >= 0, op, ": negative batch ", B);
  CGAN_CHECK(a.C > 0 && a.H > 0 && a.W > 0, op, ": bad image shape C=", a.C, " H=", a.H, " W=", a.W);
  const size_t n = static_cast<size_t>(a.C) * a.H * a.W;
  CGAN_CHECK(n <= static_cast<size_t>(INT32_MAX), op, ": image of ", n, " values is too large");
  CGAN_CHECK(a.translation_ratio >= 0.f && a.translation_ratio <= 1.f && a.cutout_ratio >= 0.f && a.cutout_ratio <= 1.f,
             op, ": translation and cutout ratios must lie in [0, 1], got ", a.translation_ratio, " and ",
             a.cutout_ratio);
  CGAN_CHECK(std::isfinite(a.center) && std::isfinite(a.half) && a.half > 0.f, op, ": bad data range (center ",
             a.center, ", half width ", a.half, ")");
  return n;
}
bool overlap(const float* a, size_t na, const float* b, size_t nb) { return a < b + nb && b < a + na; }
}  // namespace

void Backend::augment_forward(const AugmentSpec& a, int B, uint64_t seed, RngStream stream, uint64_t offset,
                              const float* x, float* y, float* params) {
  const size_t n = check_augment(a, B, "augment_forward");
  if (B == 0) return;
  CGAN_CHECK(x && y && params, "augment_forward: null pointer");
  const size_t total = n * static_cast<size_t>(B);
  const size_t np = static_cast<size_t>(B) * kAugmentParams;
  CGAN_CHECK(!overlap(x, total, y, total), "augment_forward: x and y overlap (the op is not in place)");
  CGAN_CHECK(!overlap(params, np, x, total) && !overlap(params, np, y, total),
             "augment_forward: params overlaps x or y");
  const OpTimer timer(op_profile_, OpKind::augment);
  augment_forward_impl(a, B, seed, stream, offset, x, y, params);
}
void Backend::augment_backward(const AugmentSpec& a, int B, const float* params, const float* gy, float* gx) {
  const size_t n = check_augment(a, B, "augment_backward");
  if (B == 0) return;
  CGAN_CHECK(params && gy && gx, "augment_backward: null pointer");
  CGAN_CHECK(!overlap(gy, n * static_cast<size_t>(B), gx, n * static_cast<size_t>(B)),
             "augment_backward: gy and gx overlap (the op is not in place)");
  const OpTimer timer(op_profile_, OpKind::augment);
  augment_backward_impl(a, B, params, gy, gx);
}

void Backend::graph_begin() { throw Error(cat("backend ", name(), " has no CUDA graphs")); }
int Backend::graph_end() { throw Error(cat("backend ", name(), " has no CUDA graphs")); }
void Backend::graph_launch(int) { throw Error(cat("backend ", name(), " has no CUDA graphs")); }

std::unique_ptr<Backend> make_backend(const std::string& device, const BackendOptions& options) {
  if (options.precision != "fp32" && options.precision != "tf32" && options.precision != "bf16")
    throw Error(cat("precision: expected fp32, tf32 or bf16, got '", options.precision, "'"));
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda" || device == "auto") {
    std::string why;
    if (cuda_available(&why)) {
#ifdef CGAN_HAVE_CUDA
      if (options.precision == "bf16")
        throw Error(
            "precision bf16: the CUDA backend has no bf16 path yet (issue 20); use tf32 or fp32 on the GPU, "
            "or bf16 with --device cpu");
      CudaOptions o;
      o.tf32 = options.precision == "tf32";
      o.device = options.cuda_device;
      return make_cuda_backend(o);
#endif
    }
    if (device == "auto") return make_cpu_backend();
    throw Error(cat("--device cuda: ", why));
  }
  throw Error(cat("--device: expected auto, cpu or cuda, got '", device, "'"));
}

}  // namespace cgan
