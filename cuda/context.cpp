// Context: the CUDA backend's stream, cuBLAS handle and preallocated device scratch.
#include "common.cuh"

namespace cgan::cuda {

namespace {
// cuBLAS workspace given explicitly, so cuBLAS never allocates during a CUDA graph capture
// (NVIDIA recommends 32 MiB on Hopper; it also covers Ampere's 4 MiB).
constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;
}  // namespace

Context::Context(int dev, bool tf32_math) : device(dev), tf32(tf32_math) {
  try {
    CUDA_CHECK(cudaSetDevice(dev));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));  // resets the workspace: set it afterwards
    CUDA_CHECK(cudaMalloc(&cublas_workspace, kCublasWorkspaceBytes));
    cublas_workspace_bytes = kCublasWorkspaceBytes;
    CUBLAS_CHECK(cublasSetWorkspace(cublas, cublas_workspace, cublas_workspace_bytes));
    CUBLAS_CHECK(cublasSetPointerMode(cublas, CUBLAS_POINTER_MODE_HOST));
    CUBLAS_CHECK(cublasSetMathMode(cublas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));

    CUDA_CHECK(cudaMalloc(&status, sizeof(unsigned)));
    CUDA_CHECK(cudaMallocHost(&status_host, sizeof(unsigned)));
    *status_host = 0;
    CUDA_CHECK(cudaMalloc(&loss_partials, 3 * sizeof(double) * kLossMaxBlocks));
    CUDA_CHECK(cudaMalloc(&loss_ticket, sizeof(unsigned)));
    CUDA_CHECK(cudaMalloc(&reduce_ws, kReduceFloats * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&chan_ws, kChanWsDoubles * sizeof(double)));
    CUDA_CHECK(cudaMalloc(&adam_step, 4 * sizeof(float)));
    CUDA_CHECK(cudaMemsetAsync(status, 0, sizeof(unsigned), stream));
    CUDA_CHECK(cudaMemsetAsync(loss_ticket, 0, sizeof(unsigned), stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
  } catch (...) {
    release();
    throw;
  }
}

Context::~Context() { release(); }

// Frees whatever was created. Never throws (it runs in destructors and while unwinding from an
// error, when the device may hold a sticky error that every call now returns).
void Context::release() noexcept {
  if (stream) cudaStreamSynchronize(stream);
  if (conv_cache) destroy_conv_cache(conv_cache);  // descriptors, before the handle
#ifdef CGAN_HAVE_CUDNN
  if (cudnn) cudnnDestroy(cudnn);
  cudnn = nullptr;
#endif
  conv_cache = nullptr;
  if (sort_buf) cudaFree(sort_buf);
  if (reduce_ws) cudaFree(reduce_ws);
  if (chan_ws) cudaFree(chan_ws);
  if (adam_step) cudaFree(adam_step);
  if (loss_ticket) cudaFree(loss_ticket);
  if (loss_partials) cudaFree(loss_partials);
  if (status_host) cudaFreeHost(status_host);
  if (status) cudaFree(status);
  if (cublas) cublasDestroy(cublas);
  if (cublas_workspace) cudaFree(cublas_workspace);
  if (stream) cudaStreamDestroy(stream);
  sort_buf = nullptr;
  sort_bytes = 0;
  reduce_ws = nullptr;
  chan_ws = nullptr;
  adam_step = nullptr;
  loss_ticket = nullptr;
  loss_partials = nullptr;
  status_host = nullptr;
  status = nullptr;
  cublas = nullptr;
  cublas_workspace = nullptr;
  stream = nullptr;
}

}  // namespace cgan::cuda
