// Spectral normalization's three small kernels (backend.hpp: spectral_norm_vec / _scale / _grad;
// the power iteration's matrix-vector products and <G, W_sn> are cuBLAS GEMMs, issued by
// src/nn/spectral_norm.cpp through Backend::gemm). Sigma and <G, W_sn> are read from device memory
// when the kernels run: no host round trip, so a training step that normalises its weights can be
// captured in a CUDA graph and replayed. Sums in double in a fixed order (deterministic); the
// per-element float arithmetic is the CPU backend's (src/cpu/cpu_spectral_norm.cpp) operation for
// operation (--fmad=false: nothing contracted).
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

constexpr int kVecBlock = 1024;  // one block: u and v hold a layer's rows or columns (thousands)

__global__ void sn_vec_kernel(int n, const float* t, bool normalize, float eps, float* u, float* sigma) {
  __shared__ double smem[32];
  __shared__ float s_denom;
  if (normalize) {
    double ss = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const double ti = t[i];
      ss += ti * ti;
    }
    ss = block_sum(ss, smem);
    if (threadIdx.x == 0) s_denom = fmaxf(static_cast<float>(sqrt(ss)), eps);
    __syncthreads();
    const float denom = s_denom;
    for (int i = threadIdx.x; i < n; i += blockDim.x) u[i] = t[i] / denom;
  }
  if (sigma) {  // each thread reads back only the u[i] it wrote (or the stored u)
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += static_cast<double>(u[i]) * t[i];
    s = block_sum(s, smem);
    if (threadIdx.x == 0) *sigma = static_cast<float>(s);
  }
}

__global__ void sn_scale_kernel(size_t n, const float* w, const float* sigma, float* w_sn) {
  const float s = *sigma;
  for (size_t i = global_index(); i < n; i += global_stride()) w_sn[i] = w[i] / s;
}

__global__ void sn_grad_kernel(int rows, int cols, const float* g, const float* dot, const float* left,
                               const float* right, const float* sigma, float* gw) {
  const float d = *dot, s = *sigma;
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  for (size_t i = global_index(); i < n; i += global_stride()) {
    const size_t r = i / static_cast<size_t>(cols), c = i % static_cast<size_t>(cols);
    const float dl = d * left[r];
    gw[i] += (g[i] - dl * right[c]) / s;
  }
}

}  // namespace

void launch_spectral_norm_vec(const Context& ctx, int n, const float* t, bool normalize, float eps, float* u,
                              float* sigma) {
  sn_vec_kernel<<<1, kVecBlock, 0, ctx.stream>>>(n, t, normalize, eps, u, sigma);
  CUDA_CHECK_LAUNCH("sn_vec_kernel");
}

void launch_spectral_norm_scale(const Context& ctx, size_t n, const float* w, const float* sigma, float* w_sn) {
  sn_scale_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, w, sigma, w_sn);
  CUDA_CHECK_LAUNCH("sn_scale_kernel");
}

void launch_spectral_norm_grad(const Context& ctx, int rows, int cols, const float* g, const float* dot,
                               const float* left, const float* right, const float* sigma, float* gw) {
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  sn_grad_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(rows, cols, g, dot, left, right, sigma, gw);
  CUDA_CHECK_LAUNCH("sn_grad_kernel");
}

}  // namespace cgan::cuda
