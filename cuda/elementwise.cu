// Elementwise and data-movement kernels: fill, mul, axpy, scale (GEMM with K == 0), gather_rows,
// gather_int, the step-counter ops add_ints / copy_to_slot; plus the probe kernel cuda_available() uses to tell whether this binary has code for
// the GPU.
#include <string>

#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

__global__ void fill_kernel(float* x, size_t n, float v) {
  for (size_t i = global_index(); i < n; i += global_stride()) x[i] = v;
}

__global__ void mul_kernel(size_t n, const float* a, float* b) {
  for (size_t i = global_index(); i < n; i += global_stride()) b[i] *= a[i];
}

// y += alpha x with the product rounded before the sum (__fmul_rn / __fadd_rn are never contracted
// into an FMA), as the CPU backend's loop.
__global__ void axpy_kernel(size_t n, float alpha, const float* x, float* y) {
  for (size_t i = global_index(); i < n; i += global_stride()) y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i]));
}

__global__ void scale_kernel(float* x, size_t n, float beta) {
  for (size_t i = global_index(); i < n; i += global_stride()) x[i] *= beta;
}

// dst[b, c] = src[idx[b], c]; an index outside [0, rows) writes zeros and flags kStatusBadIndex.
// The batch's index window idx + *idx_offset (null: 0); a negative offset is flagged, read as 0.
__device__ __forceinline__ const int32_t* offset_indices(const int32_t* idx, const int32_t* off, unsigned* status) {
  if (!off) return idx;
  const int32_t o = *off;
  if (o < 0) {
    report_status(status, kStatusBadIndex);
    return idx;
  }
  return idx + o;
}

__global__ void gather_rows_kernel(int B, int cols, int rows, const float* src, const int32_t* idx,
                                   const int32_t* idx_offset, float* dst, unsigned* status) {
  idx = offset_indices(idx, idx_offset, status);
  const size_t total = static_cast<size_t>(B) * cols;
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const size_t b = i / static_cast<size_t>(cols), c = i - b * static_cast<size_t>(cols);
    const int32_t r = idx[b];
    if (r < 0 || r >= rows) {
      if (c == 0) report_status(status, kStatusBadIndex);
      dst[i] = 0.f;
    } else {
      dst[i] = src[static_cast<size_t>(r) * cols + c];
    }
  }
}

__global__ void gather_int_kernel(int B, int rows, const int32_t* src, const int32_t* idx, const int32_t* idx_offset,
                                  int32_t* dst, unsigned* status) {
  idx = offset_indices(idx, idx_offset, status);
  for (size_t b = global_index(); b < static_cast<size_t>(B); b += global_stride()) {
    const int32_t r = idx[b];
    if (r < 0 || r >= rows) {
      report_status(status, kStatusBadIndex);
      dst[b] = 0;
    } else {
      dst[b] = src[r];
    }
  }
}

__global__ void copy_cols_kernel(int B, int src_cols, int col0, int n, const float* src, float* dst) {
  const size_t total = static_cast<size_t>(B) * n;
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const size_t b = i / static_cast<size_t>(n), c = i - b * static_cast<size_t>(n);
    dst[i] = src[b * static_cast<size_t>(src_cols) + col0 + c];
  }
}

struct IntDeltas {
  int32_t d[8];
};

__global__ void add_ints_kernel(int n, int32_t* x, IntDeltas delta) {
  const int i = static_cast<int>(threadIdx.x);
  if (i < n) x[i] += delta.d[i];
}

__global__ void copy_to_slot_kernel(size_t n, const float* src, float* dst, const int32_t* slot, int slots,
                                    unsigned* status) {
  const int32_t s = *slot;
  if (s < 0 || s >= slots) {
    if (global_index() == 0) report_status(status, kStatusBadSlot);
    return;
  }
  float* d = dst + static_cast<size_t>(s) * n;
  for (size_t i = global_index(); i < n; i += global_stride()) d[i] = src[i];
}

__global__ void probe_kernel(int* out) {
  if (out) *out = 1;
}

}  // namespace

void launch_fill(const Context& ctx, float* x, size_t n, float value) {
  fill_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(x, n, value);
  CUDA_CHECK_LAUNCH("fill_kernel");
}

void launch_mul(const Context& ctx, size_t n, const float* a, float* b) {
  mul_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, a, b);
  CUDA_CHECK_LAUNCH("mul_kernel");
}

void launch_axpy(const Context& ctx, size_t n, float alpha, const float* x, float* y) {
  axpy_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, alpha, x, y);
  CUDA_CHECK_LAUNCH("axpy_kernel");
}

void launch_scale(const Context& ctx, float* x, size_t n, float beta) {
  if (beta == 0.f) {  // BLAS semantics: overwrite, even NaN
    CUDA_CHECK(cudaMemsetAsync(x, 0, n * sizeof(float), ctx.stream));
    return;
  }
  if (beta == 1.f) return;
  scale_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(x, n, beta);
  CUDA_CHECK_LAUNCH("scale_kernel");
}

void launch_gather_rows(const Context& ctx, int B, int cols, int rows, const float* src, const int32_t* idx, float* dst,
                        const int32_t* idx_offset) {
  const size_t total = static_cast<size_t>(B) * cols;
  gather_rows_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(B, cols, rows, src, idx, idx_offset, dst, ctx.status);
  CUDA_CHECK_LAUNCH("gather_rows_kernel");
}

void launch_gather_int(const Context& ctx, int B, int rows, const int32_t* src, const int32_t* idx, int32_t* dst,
                       const int32_t* idx_offset) {
  gather_int_kernel<<<grid_for(static_cast<size_t>(B)), kBlock, 0, ctx.stream>>>(B, rows, src, idx, idx_offset, dst,
                                                                                 ctx.status);
  CUDA_CHECK_LAUNCH("gather_int_kernel");
}

void launch_copy_cols(const Context& ctx, int B, int src_cols, int col0, int n, const float* src, float* dst) {
  const size_t total = static_cast<size_t>(B) * n;
  copy_cols_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(B, src_cols, col0, n, src, dst);
  CUDA_CHECK_LAUNCH("copy_cols_kernel");
}

void launch_add_ints(const Context& ctx, int n, int32_t* x, const int32_t* delta_host) {
  IntDeltas d{};
  for (int i = 0; i < n; ++i) d.d[i] = delta_host[i];
  add_ints_kernel<<<1, 32, 0, ctx.stream>>>(n, x, d);
  CUDA_CHECK_LAUNCH("add_ints_kernel");
}

void launch_copy_to_slot(const Context& ctx, size_t n, const float* src, float* dst, const int32_t* slot, int slots) {
  copy_to_slot_kernel<<<grid_for(n), kBlock, 0, ctx.stream>>>(n, src, dst, slot, slots, ctx.status);
  CUDA_CHECK_LAUNCH("copy_to_slot_kernel");
}

bool kernel_image_available(std::string* why_not) {
  cudaFuncAttributes attr{};
  const cudaError_t e = cudaFuncGetAttributes(&attr, probe_kernel);
  if (e == cudaSuccess) return true;
  cudaGetLastError();  // clear it: not a sticky error
  if (why_not) {
    int dev = 0, major = 0, minor = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    *why_not = cat("this build has no kernels for the GPU (compute capability ", major, ".", minor,
                   "; built for CMAKE_CUDA_ARCHITECTURES=", CGAN_CUDA_ARCHS, ": ", cudaGetErrorString(e),
                   "); rebuild with -DCMAKE_CUDA_ARCHITECTURES=", major, minor);
  }
  return false;
}

}  // namespace cgan::cuda
