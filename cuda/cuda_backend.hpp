// CUDA-only additions to backend.hpp: options for constructing the CUDA backend. Include only
// under #ifdef CGAN_HAVE_CUDA (the header is on cgan_core's include path in CUDA builds).
#pragma once
#include <memory>

#include "cgan/backend.hpp"

namespace cgan {

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

// The cudaStream_t every op of `be` (a CUDA backend) is enqueued on, for work outside the backend
// that must be ordered with its ops (NCCL all-reduces, cuda/nccl_reduce.cpp). Throws for another backend.
void* cuda_stream_of(Backend& be);

}  // namespace cgan
