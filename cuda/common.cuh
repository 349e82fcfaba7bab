// Shared by every file of the CUDA backend (host code and kernels): checked calls that throw
// cgan::Error naming the call, file and line; launch-shape helpers; the Context that owns the
// stream, the cuBLAS handle and the backend's preallocated scratch. Host-safe: .cpp files include it
// too; device-only helpers are in device.cuh.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#ifdef CGAN_HAVE_CUDNN
#include <cudnn.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cgan/base/error.hpp"

namespace cgan::cuda {

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess)
    throw Error(cat("CUDA error: ", call, " failed at ", file, ":", line, ": ", cudaGetErrorName(e), ": ",
                    cudaGetErrorString(e)));
}

inline void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Error(cat("cuBLAS error: ", call, " failed at ", file, ":", line, ": ", cublasGetStatusName(s), ": ",
                    cublasGetStatusString(s)));
}

#ifdef CGAN_HAVE_CUDNN
inline void check_cudnn(cudnnStatus_t s, const char* call, const char* file, int line) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw Error(cat("cuDNN error: ", call, " failed at ", file, ":", line, ": ", cudnnGetErrorString(s)));
}

// cuDNN 9: codes 3000..3999 are "not supported" kinds (a combination this cuDNN cannot run).
inline bool cudnn_not_supported(cudnnStatus_t st) {
  return static_cast<int>(st) / 1000 == static_cast<int>(CUDNN_STATUS_NOT_SUPPORTED) / 1000;
}

inline const char* cudnn_math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op-allow-conversion";
    case CUDNN_FMA_MATH: return "fma";
  }
  return "?";
}
#endif

// A kernel launch: reports a bad configuration (or an earlier asynchronous error) by the kernel's
// name. Does not synchronise, so it is safe inside CUDA graph capture.
inline void check_launch(const char* kernel, const char* file, int line) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw Error(cat("CUDA error: launch of ", kernel, " failed at ", file, ":", line, ": ", cudaGetErrorName(e), ": ",
                    cudaGetErrorString(e)));
}

}  // namespace cgan::cuda

#define CUDA_CHECK(call) ::cgan::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::cgan::cuda::check_cublas((call), #call, __FILE__, __LINE__)
#ifdef CGAN_HAVE_CUDNN
#define CUDNN_CHECK(call) ::cgan::cuda::check_cudnn((call), #call, __FILE__, __LINE__)
#endif
#define CUDA_CHECK_LAUNCH(kernel) ::cgan::cuda::check_launch(kernel, __FILE__, __LINE__)

namespace cgan::cuda {

constexpr int kBlock = 256;              // threads per block of the 1-D kernels
constexpr unsigned kMaxGrid = 1u << 20;  // 1-D kernels loop (grid-stride) beyond this many blocks

// Blocks for n elements at `block` threads each (at least 1, at most kMaxGrid).
inline unsigned grid_for(size_t n, int block = kBlock) {
  const size_t g = (n + static_cast<size_t>(block) - 1) / static_cast<size_t>(block);
  return static_cast<unsigned>(std::min<size_t>(std::max<size_t>(g, 1), kMaxGrid));
}

// Bits kernels set in Context::status when they meet input they cannot use (they never read or
// write out of bounds because of it). Checked, and reported as a cgan::Error, by the next
// synchronize() or download: the kernels themselves cannot throw and must not synchronise.
enum StatusBit : unsigned {
  kStatusBadLabel = 1u,    // fuse_*: label outside the table's rows [0, K)
  kStatusOneHot = 2u,      // one_hot: label outside [0, K)
  kStatusBadIndex = 4u,    // gather_rows / gather_int: index outside [0, rows), or negative offset
  kStatusBadSlot = 8u,     // copy_to_slot: slot outside [0, slots); negative RNG/Adam step counter
  kStatusXentLabel = 16u,  // softmax_xent: label outside [0, K)
};

struct ConvCache;                                // conv.cpp: cuDNN descriptors and algorithms per ConvShape
void destroy_conv_cache(ConvCache* c) noexcept;  // conv.cpp

// Everything the backend owns on the device, created once (no global handles). All work goes to
// `stream`; the scratch below is sized at construction so that ops do not allocate (which is also
// what lets a training step be captured in a CUDA graph). The exceptions are permutation()'s
// sort buffer, which grows on demand (permutation runs once per epoch, outside any capture), and
// the convolution state below, created for a shape the first time it is seen.
struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  bool tf32 = false;  // CudaOptions::tf32: cuBLAS GEMMs and cuDNN convolutions may use TF32
  cublasHandle_t cublas = nullptr;
  void* cublas_workspace = nullptr;  // given to cuBLAS so that it never allocates during capture
  size_t cublas_workspace_bytes = 0;

  unsigned* status = nullptr;       // device: StatusBit flags
  unsigned* status_host = nullptr;  // pinned host mirror, read after a stream sync

  // losses.cu: per-block partial sums (3 per block; softmax_xent uses 2) and the "last block done"
  // ticket.
  static constexpr int kLossMaxBlocks = 512;
  double* loss_partials = nullptr;
  unsigned* loss_ticket = nullptr;

  // channel_reduce.cuh (batchnorm.cu, conv_bias.cu): per-channel statistics and coefficients, then
  // the per-block partials of the split reductions.
  static constexpr size_t kChanWsDoubles = size_t{1} << 20;
  double* chan_ws = nullptr;

  // adam.cu: the step's bias-correction scalars (step, rc2, valid), written by a one-thread kernel
  // before each update.
  float* adam_step = nullptr;

  // activations.cu: per-row-chunk partial column sums of the bias gradient.
  static constexpr size_t kReduceFloats = size_t{1} << 20;
  float* reduce_ws = nullptr;

  // permutation.cu: keys, values and CUB temp storage (grows; see above).
  void* sort_buf = nullptr;
  size_t sort_bytes = 0;

  // conv.cpp: the cuDNN handle (bound to `stream`) and the per-shape descriptors and algorithms.
  // Both are created on first use (conv2d_workspace, which the model calls when it is built), so
  // models without convolutions never load cuDNN; like permutation()'s buffer, not capturable.
#ifdef CGAN_HAVE_CUDNN
  cudnnHandle_t cudnn = nullptr;
#endif
  ConvCache* conv_cache = nullptr;

  Context(int device, bool tf32_math);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

 private:
  void release() noexcept;
};

#ifdef CGAN_HAVE_CUDNN
// conv.cpp: ctx.cudnn, created (bound to ctx.stream) on first use.
cudnnHandle_t cudnn_handle(Context& ctx);
#endif

}  // namespace cgan::cuda
