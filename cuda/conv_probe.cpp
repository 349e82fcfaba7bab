// The convolution probe (`cgan_gpu bench --conv-probe`): every cuDNN algorithm of every direction of
// one conv shape, timed by cudnnFind*AlgorithmEx, in the layouts and precisions issue 20 weighs:
//
//   nchw-fp32       the engine's layout and math today with precision "fp32" (CUDNN_FMA_MATH)
//   nchw-tf32       the same tensors, tensor-op math (the default precision "tf32")
//   nhwc-pad4-tf32  channels-last, C and K rounded up to 4 (TF32 tensor cores want multiples of 4)
//   nhwc-pad8-bf16  channels-last bf16 storage, C and K rounded up to 8, fp32 accumulation
//
// Each row says whether the algorithm is deterministic and how much workspace it needs; the
// workspace offered is the backend's cap (conv_workspace_cap), so an algorithm that needs more shows
// up failing with cuDNN's "alloc failed". The tensors hold a constant (0x3c bytes: about 0.0115 in
// fp32 and bf16): timing does not depend on the values, and nothing is read back. A variant cuDNN
// cannot set up (a layout or type this cuDNN does not take) gives one row with algo -1 and the
// reason; every other cuDNN or CUDA failure throws. Nothing here is used by a training step.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cgan/base/error.hpp"
#include "common.cuh"
#include "kernels.hpp"

namespace cgan::cuda {

#ifdef CGAN_HAVE_CUDNN

namespace {

struct Variant {
  const char* name;
  cudnnTensorFormat_t format;
  cudnnDataType_t type;
  size_t bytes;  // per element
  cudnnMathType_t math;
  int pad;  // channel counts rounded up to a multiple of this
};
const Variant kVariants[] = {
    {"nchw-fp32", CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 4, CUDNN_FMA_MATH, 1},
    {"nchw-tf32", CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 4, CUDNN_TENSOR_OP_MATH, 1},
    {"nhwc-pad4-tf32", CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 4, CUDNN_TENSOR_OP_MATH, 4},
    {"nhwc-pad8-bf16", CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, 2, CUDNN_TENSOR_OP_MATH, 8},
};

int round_up(int v, int m) { return (v + m - 1) / m * m; }

// Device memory for the probe, freed on every path out.
class DeviceBytes {
 public:
  explicit DeviceBytes(size_t n) : n_(n) {
    if (n_ == 0) return;
    CUDA_CHECK(cudaMalloc(&p_, n_));
    CUDA_CHECK(cudaMemset(p_, 0x3c, n_));
  }
  ~DeviceBytes() {
    if (p_) cudaFree(p_);
  }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  void* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// The descriptors of one variant, destroyed on every path out.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descriptors() {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
  }
  ~Descriptors() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

bool unsupported(cudnnStatus_t st) { return cudnn_not_supported(st) || st == CUDNN_STATUS_BAD_PARAM; }

// A set-up call of a variant: success, or a "this cuDNN does not take it" status (returned as the
// reason); anything else throws.
std::string setup(cudnnStatus_t st, const char* call) {
  if (st == CUDNN_STATUS_SUCCESS) return "";
  if (unsupported(st)) return cat(call, ": ", cudnnGetErrorString(st));
  check_cudnn(st, call, __FILE__, __LINE__);
  return "";
}

// The rows of one cudnnFind*Ex call: one per algorithm it returned, or one naming why the call
// could not run (`st`, a "not supported" kind; any other failure throws).
template <typename Perf>
void add_rows(std::vector<ConvProbeRow>& rows, const ConvProbeRow& base, cudnnStatus_t st, const char* call,
              const Perf* perf, int got) {
  if (const std::string why = setup(st, call); !why.empty()) {
    ConvProbeRow r = base;
    r.status = why;
    rows.push_back(r);
    return;
  }
  for (int i = 0; i < got; ++i) {
    ConvProbeRow r = base;
    r.algo = static_cast<int>(perf[i].algo);
    r.math = cudnn_math_name(perf[i].mathType);
    r.status = perf[i].status == CUDNN_STATUS_SUCCESS ? "ok" : cudnnGetErrorString(perf[i].status);
    r.ms = perf[i].status == CUDNN_STATUS_SUCCESS ? static_cast<double>(perf[i].time) : 0.0;
    r.deterministic = perf[i].determinism == CUDNN_DETERMINISTIC;
    r.workspace = perf[i].memory;
    rows.push_back(r);
  }
}

void probe_variant(Context& ctx, const ConvShape& s, const Variant& v, DeviceBytes& ws,
                   std::vector<ConvProbeRow>& rows) {
  const int C = round_up(s.C, v.pad), K = round_up(s.K, v.pad), P = s.P(), Q = s.Q();
  ConvProbeRow base;
  base.variant = v.name;
  base.C = C;
  base.K = K;
  static const char* const kDirs[3] = {"forward", "backward-data", "backward-filter"};
  auto failed = [&](const std::string& why) {
    for (const char* d : kDirs) {
      ConvProbeRow r = base;
      r.direction = d;
      r.status = why;
      rows.push_back(r);
    }
  };
  Descriptors d;
  std::string why = setup(cudnnSetTensor4dDescriptor(d.x, v.format, v.type, s.N, C, s.H, s.W), "x descriptor");
  if (why.empty()) why = setup(cudnnSetTensor4dDescriptor(d.y, v.format, v.type, s.N, K, P, Q), "y descriptor");
  if (why.empty()) why = setup(cudnnSetFilter4dDescriptor(d.w, v.type, v.format, K, C, s.R, s.S), "w descriptor");
  if (why.empty())
    why = setup(cudnnSetConvolution2dDescriptor(d.conv, s.pad_h, s.pad_w, s.stride_h, s.stride_w, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "convolution descriptor");
  if (why.empty()) why = setup(cudnnSetConvolutionMathType(d.conv, v.math), "math type");
  if (!why.empty()) return failed(why);

  DeviceBytes x(static_cast<size_t>(s.N) * C * s.H * s.W * v.bytes);
  DeviceBytes y(static_cast<size_t>(s.N) * K * P * Q * v.bytes);
  DeviceBytes w(static_cast<size_t>(K) * C * s.R * s.S * v.bytes);
  cudnnHandle_t h = cudnn_handle(ctx);
  {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    base.direction = kDirs[0];
    const cudnnStatus_t st =
        cudnnFindConvolutionForwardAlgorithmEx(h, d.x, x.get(), d.w, w.get(), d.conv, d.y, y.get(),
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf, ws.get(), ws.size());
    add_rows(rows, base, st, "cudnnFindConvolutionForwardAlgorithmEx", perf, got);
  }
  {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int got = 0;
    base.direction = kDirs[1];
    const cudnnStatus_t st = cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, w.get(), d.y, y.get(), d.conv, d.x,
                                                                         x.get(), CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                         &got, perf, ws.get(), ws.size());
    add_rows(rows, base, st, "cudnnFindConvolutionBackwardDataAlgorithmEx", perf, got);
  }
  {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int got = 0;
    base.direction = kDirs[2];
    const cudnnStatus_t st = cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h, d.x, x.get(), d.y, y.get(), d.conv, d.w, w.get(), CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf,
        ws.get(), ws.size());
    add_rows(rows, base, st, "cudnnFindConvolutionBackwardFilterAlgorithmEx", perf, got);
  }
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

}  // namespace

std::vector<ConvProbeRow> conv_probe(Context& ctx, const ConvShape& s) {
  CGAN_CHECK(s.N > 0 && s.C > 0 && s.H > 0 && s.W > 0 && s.K > 0 && s.R > 0 && s.S > 0 && s.P() > 0 && s.Q() > 0,
             "conv_probe: empty convolution shape");
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));  // the probe's timings have the GPU to themselves
  DeviceBytes ws(conv_workspace_cap() * sizeof(float));
  std::vector<ConvProbeRow> rows;
  for (const Variant& v : kVariants) probe_variant(ctx, s, v, ws, rows);
  return rows;
}

#else  // no cuDNN in this build

std::vector<ConvProbeRow> conv_probe(Context&, const ConvShape&) {
  throw Error(
      "--conv-probe: the CUDA backend was built without cuDNN (reconfigure with CGAN_WITH_CUDNN=ON and "
      "-DCUDNN_ROOT=<folder with include/cudnn.h and lib/>)");
}

#endif

}  // namespace cgan::cuda
