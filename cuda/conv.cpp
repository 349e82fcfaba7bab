// Convolution (cross-correlation, NCHW, fp32 data) through cuDNN's legacy API, plus our own
// epilogue (bias + the following activation) and bias-gradient kernels (conv_bias.cu). One ConvPlan per ConvShape, cached in the Context: the tensor, filter and
// convolution descriptors and one algorithm per direction, chosen once, when the shape is first
// seen (normally conv2d_workspace, called when the model is built).
//
// Algorithm choice (cudnnGet*Algorithm_v7: cuDNN's heuristics, no timing runs, so the choice is a
// function of the shape, the GPU and the cuDNN version, the same every run): the first candidate,
// in cuDNN's order of expected speed, that
//  - is deterministic (CUDNN_DETERMINISTIC): the backend repeats a run bit for bit (resume);
//  - runs in the requested math: tf32 (CudaOptions::tf32, the default precision, as PyTorch's
//    default for cuDNN convolutions) takes the candidate's own math type, TF32 tensor cores
//    allowed, but never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, which may also round fp32 data to
//    fp16; fp32 (opt-in) sets CUDNN_FMA_MATH on the descriptor (CUDNN_DEFAULT_MATH would let cuDNN
//    use TF32 on Ampere and newer), so results agree with the CPU backend to fp32 tolerances;
//  - is accepted with that math type by cudnnGet*WorkspaceSize and needs at most
//    kWorkspaceLimitBytes of workspace (a fixed limit, so the choice does not depend on how much
//    memory happens to be free).
// Should no deterministic candidate qualify in tf32 math, the deterministic candidates are tried
// again in fp32 (CUDNN_FMA_MATH) math: a slower convolution that repeats bit for bit is preferred
// to a faster one that does not. Only when none of those qualifies either is the fastest
// qualifying non-deterministic candidate taken.
// CGAN_CUDNN_LOG=1 in the environment prints each choice (shape, direction, algorithm, math,
// determinism, workspace) to stderr when the plan is made.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>

#include "cgan/base/error.hpp"
#include "common.cuh"
#include "kernels.hpp"

namespace cgan::cuda {

#ifdef CGAN_HAVE_CUDNN

namespace {

constexpr size_t kWorkspaceLimitBytes = size_t{256} << 20;

enum Dir { kFwd = 0, kBwdData = 1, kBwdFilter = 2 };

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  // One convolution descriptor per direction: in tf32 mode the chosen algorithms may differ in
  // math type, which lives on the descriptor.
  cudnnConvolutionDescriptor_t conv[3] = {nullptr, nullptr, nullptr};
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t data_algo{};
  cudnnConvolutionBwdFilterAlgo_t filter_algo{};
  size_t bytes[3] = {0, 0, 0};  // workspace per direction

  ConvPlan() = default;
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;
  ~ConvPlan() {  // never throws (runs while unwinding too)
    for (auto& c : conv)
      if (c) cudnnDestroyConvolutionDescriptor(c);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
  size_t max_bytes() const { return std::max(bytes[0], std::max(bytes[1], bytes[2])); }
};

using Key = std::array<int, 11>;
Key key_of(const ConvShape& s) { return {s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride_h, s.stride_w, s.pad_h, s.pad_w}; }

std::string shape_text(const ConvShape& s) {
  return cat("N=", s.N, " C=", s.C, " H=", s.H, " W=", s.W, " K=", s.K, " kernel ", s.R, "x", s.S, " stride ",
             s.stride_h, "x", s.stride_w, " pad ", s.pad_h, "x", s.pad_w);
}

// The math type to run a heuristic candidate with, or false when it may not run in this mode.
bool math_for(bool tf32, cudnnMathType_t candidate, cudnnMathType_t* use) {
  if (candidate == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  if (!tf32) {
    if (candidate == CUDNN_TENSOR_OP_MATH) return false;
    *use = CUDNN_FMA_MATH;
    return true;
  }
  *use = candidate;
  return true;
}

// Workspace bytes of `algo` under the descriptor's current math type. Returns the status: success,
// or a "not supported" kind when cuDNN cannot run that combination (any other failure throws).
template <typename Algo>
cudnnStatus_t workspace_of(cudnnHandle_t h, const ConvPlan& p, Dir d, Algo algo, size_t* bytes) {
  cudnnStatus_t st;
  if constexpr (std::is_same_v<Algo, cudnnConvolutionFwdAlgo_t>)
    st = cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv[d], p.y, algo, bytes);
  else if constexpr (std::is_same_v<Algo, cudnnConvolutionBwdDataAlgo_t>)
    st = cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv[d], p.x, algo, bytes);
  else
    st = cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv[d], p.w, algo, bytes);
  if (!cudnn_not_supported(st)) CUDNN_CHECK(st);
  return st;
}

bool log_choices() {
  static const bool on = [] {
    const char* e = std::getenv("CGAN_CUDNN_LOG");
    return e && *e && std::string(e) != "0";
  }();
  return on;
}

// Picks the algorithm of direction d from the heuristic's candidates (see the top of the file),
// leaves the matching math type on p.conv[d] and records the workspace.
template <typename Perf, typename Algo>
void choose(cudnnHandle_t h, ConvPlan& p, Dir d, bool tf32, const Perf* perf, int count, Algo* algo,
            const char* dir_name, const ConvShape& s) {
  std::string why = "no candidates";
  // pass 0: deterministic, requested math; pass 1 (tf32 only): deterministic, fp32 math;
  // pass 2: any determinism, requested math
  static const char* const kPassName[3] = {"deterministic", "deterministic, fp32 math fallback",
                                           "NON-DETERMINISTIC fallback"};
  for (int pass = 0; pass < 3; ++pass) {
    if (pass == 1 && !tf32) continue;
    for (int i = 0; i < count; ++i) {
      const Perf& c = perf[i];
      if (c.status != CUDNN_STATUS_SUCCESS) {
        why = cat("candidate ", static_cast<int>(c.algo), ": ", cudnnGetErrorString(c.status));
        continue;
      }
      if (pass < 2 && c.determinism != CUDNN_DETERMINISTIC) continue;
      cudnnMathType_t math = CUDNN_FMA_MATH;  // pass 1: the algorithm, run without tensor ops
      if (pass != 1 && !math_for(tf32, c.mathType, &math)) {
        why = cat("candidate ", static_cast<int>(c.algo), ": math ", cudnn_math_name(c.mathType));
        continue;
      }
      CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv[d], math));
      size_t bytes = 0;
      const cudnnStatus_t st = workspace_of(h, p, d, c.algo, &bytes);
      if (st != CUDNN_STATUS_SUCCESS) {
        why = cat("candidate ", static_cast<int>(c.algo), ": ", cudnnGetErrorString(st));
        continue;
      }
      if (bytes > kWorkspaceLimitBytes) {
        why = cat("candidate ", static_cast<int>(c.algo), ": workspace ", bytes >> 20, " MiB");
        continue;
      }
      *algo = c.algo;
      p.bytes[d] = bytes;
      if (log_choices())
        std::fprintf(stderr,
                     "cgan_gpu: cuDNN %s %s: algorithm %d, math %s, %s, workspace %zu bytes (candidate %d of %d)\n",
                     dir_name, shape_text(s).c_str(), static_cast<int>(c.algo), cudnn_math_name(math), kPassName[pass],
                     bytes, i + 1, count);
      return;
    }
  }
  throw Error(cat("conv2d: cuDNN offers no ", dir_name, " algorithm for ", shape_text(s), " in ",
                  tf32 ? "tf32" : "fp32", " math within ", kWorkspaceLimitBytes >> 20, " MiB of workspace (", count,
                  " candidates; last rejected: ", why, ")"));
}

}  // namespace

cudnnHandle_t cudnn_handle(Context& ctx) {
  if (!ctx.cudnn) {
    cudnnHandle_t h = nullptr;
    CUDNN_CHECK(cudnnCreate(&h));
    const cudnnStatus_t st = cudnnSetStream(h, ctx.stream);
    if (st != CUDNN_STATUS_SUCCESS) {
      cudnnDestroy(h);
      CUDNN_CHECK(st);
    }
    ctx.cudnn = h;
  }
  return ctx.cudnn;
}

namespace {

std::unique_ptr<ConvPlan> make_plan(cudnnHandle_t h, const ConvShape& s, bool tf32) {
  // cuDNN's 4-d descriptors index with int.
  const auto fits = [](long long a, long long b, long long c, long long d) {
    return a * b * c * d <= std::numeric_limits<int>::max();
  };
  CGAN_CHECK(fits(s.N, s.C, s.H, s.W) && fits(s.N, s.K, s.P(), s.Q()) && fits(s.K, s.C, s.R, s.S),
             "conv2d: tensors of ", shape_text(s), " exceed cuDNN's 2^31 elements");
  auto p = std::make_unique<ConvPlan>();
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.N, s.C, s.H, s.W));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.K, s.C, s.R, s.S));
  for (auto& c : p->conv) {
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&c));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(c, s.pad_h, s.pad_w, s.stride_h, s.stride_w, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(c, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  }
  int n = 0, k = 0, oh = 0, ow = 0;
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv[kFwd], p->x, p->w, &n, &k, &oh, &ow));
  CGAN_CHECK(n == s.N && k == s.K && oh == s.P() && ow == s.Q(), "conv2d: cuDNN's output ", n, "x", k, "x", oh, "x", ow,
             " differs from ", s.N, "x", s.K, "x", s.P(), "x", s.Q(), " for ", shape_text(s));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, k, oh, ow));

  int got = 0;
  {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv[kFwd], p->y,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
    choose(h, *p, kFwd, tf32, perf, got, &p->fwd_algo, "forward", s);
  }
  {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv[kBwdData], p->x,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf));
    choose(h, *p, kBwdData, tf32, perf, got, &p->data_algo, "backward-data", s);
  }
  {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv[kBwdFilter], p->w,
                                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf));
    choose(h, *p, kBwdFilter, tf32, perf, got, &p->filter_algo, "backward-filter", s);
  }
  return p;
}

}  // namespace

struct ConvCache {
  std::map<Key, std::unique_ptr<ConvPlan>> plans;
};

namespace {

const ConvPlan& plan(Context& ctx, const ConvShape& s) {
  if (s.mul != MulPrecision::fp32) throw Error("conv2d: the CUDA backend has no bf16 path yet (issue 20)");
  if (!ctx.conv_cache) ctx.conv_cache = new ConvCache;
  auto& plans = ctx.conv_cache->plans;
  const Key key = key_of(s);
  auto it = plans.find(key);
  if (it == plans.end())  // a failed make_plan leaves the cache as it was
    it = plans.emplace(key, make_plan(cudnn_handle(ctx), s, ctx.tf32)).first;
  return *it->second;
}

// The caller's workspace must hold what this direction needs (conv2d_workspace's contract).
void check_workspace(const char* op, const ConvPlan& p, Dir d, const float* ws) {
  CGAN_CHECK(ws || p.bytes[d] == 0, op, ": null workspace, but this shape needs ",
             (p.bytes[d] + sizeof(float) - 1) / sizeof(float), " floats (see conv2d_workspace)");
}

}  // namespace

void destroy_conv_cache(ConvCache* c) noexcept { delete c; }

size_t conv_workspace_cap() { return kWorkspaceLimitBytes / sizeof(float); }

size_t conv_workspace(Context& ctx, const ConvShape& s) {
  return (plan(ctx, s).max_bytes() + sizeof(float) - 1) / sizeof(float);
}

void conv_forward(Context& ctx, const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                  float* ws, Act act, float slope) {
  const ConvPlan& p = plan(ctx, s);
  check_workspace("conv2d_forward", p, kFwd, ws);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnnConvolutionForward(cudnn_handle(ctx), &one, p.x, x, p.w, w, p.conv[kFwd], p.fwd_algo, ws,
                                      p.bytes[kFwd], &zero, p.y, y));
  if (bias || act != Act::none)  // the epilogue: bias and activation in one pass
    launch_conv_bias_act_forward(ctx, s.N, s.K, static_cast<size_t>(s.P()) * s.Q(), bias, act, slope, y);
}

void conv_backward_data(Context& ctx, const ConvShape& s, const float* gy, const float* w, float* gx, float* ws) {
  const ConvPlan& p = plan(ctx, s);
  check_workspace("conv2d_backward_data", p, kBwdData, ws);
  const float one = 1.f, zero = 0.f;  // beta = 0: gx overwritten (not read)
  CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn_handle(ctx), &one, p.w, w, p.y, gy, p.conv[kBwdData], p.data_algo, ws,
                                           p.bytes[kBwdData], &zero, p.x, gx));
}

void conv_backward_filter(Context& ctx, const ConvShape& s, const float* x, const float* gy, float* gw, float* gbias,
                          float* ws) {
  const ConvPlan& p = plan(ctx, s);
  check_workspace("conv2d_backward_filter", p, kBwdFilter, ws);
  const float one = 1.f;  // beta = 1: gw accumulated
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn_handle(ctx), &one, p.x, x, p.y, gy, p.conv[kBwdFilter],
                                             p.filter_algo, ws, p.bytes[kBwdFilter], &one, p.w, gw));
  if (gbias) launch_conv_bias_backward(ctx, s.N, s.K, static_cast<size_t>(s.P()) * s.Q(), gy, gbias);
}

#else  // no cuDNN in this build

struct ConvCache {};

void destroy_conv_cache(ConvCache* c) noexcept { delete c; }

namespace {
[[noreturn]] void no_cudnn(const char* op) {
  throw Error(cat(op, ": the CUDA backend was built without cuDNN, which convolutions need ",
                  "(reconfigure with -DCUDNN_ROOT=<folder with include/cudnn.h and lib/> and ",
                  "CGAN_WITH_CUDNN=ON, or use the cpu device)"));
}
}  // namespace

size_t conv_workspace(Context&, const ConvShape&) { no_cudnn("conv2d_workspace"); }
size_t conv_workspace_cap() { return 0; }
void conv_forward(Context&, const ConvShape&, const float*, const float*, const float*, float*, float*, Act, float) {
  no_cudnn("conv2d_forward");
}
void conv_backward_data(Context&, const ConvShape&, const float*, const float*, float*, float*) {
  no_cudnn("conv2d_backward_data");
}
void conv_backward_filter(Context&, const ConvShape&, const float*, const float*, float*, float*, float*) {
  no_cudnn("conv2d_backward_filter");
}

#endif

}  // namespace cgan::cuda
