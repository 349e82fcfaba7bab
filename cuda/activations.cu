// Fused bias + activation, forward and backward. The activation math is scalar_math.hpp's, shared
// with the CPU backend. One kernel instance per activation (template), chosen at launch.
//
// Backward with a bias gradient is one pass: each block owns 32 adjacent columns and a chunk of
// rows, multiplies g by act'(y) in place and sums its columns (threads -> shared memory, in a fixed
// order). With one row chunk the block adds its sums to gbias; with several, each chunk writes its
// partial sums to the context's workspace and a second small kernel adds them up in chunk order.
// No atomics, so the result is the same on every run.
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

constexpr int kColTile = 32;  // columns per block (one warp wide: coalesced rows)
constexpr int kRowLanes = 8;  // rows processed side by side in a block
constexpr int kMinRowsPerChunk = 64;
constexpr int kMaxChunks = 1024;

template <Act A>
__global__ void bias_act_forward_kernel(size_t total, int cols, float slope, const float* bias, float* y) {
  for (size_t i = global_index(); i < total; i += global_stride()) {
    float v = y[i];
    if (bias) v += bias[i % static_cast<size_t>(cols)];
    y[i] = act_forward(A, slope, v);
  }
}

template <Act A>
__device__ __forceinline__ float act_grad_at(float slope, const float* y, size_t i) {
  if constexpr (A == Act::none) {
    return 1.f;  // y may be null for the identity
  } else {
    return act_grad_from_output(A, slope, y[i]);
  }
}

template <Act A>
__global__ void bias_act_backward_kernel(size_t total, float slope, const float* y, float* g) {
  for (size_t i = global_index(); i < total; i += global_stride()) g[i] *= act_grad_at<A>(slope, y, i);
}

// blockDim (kColTile, kRowLanes); grid (column tiles, row chunks).
template <Act A>
__global__ void bias_act_backward_colsum_kernel(int rows, int cols, int rows_per_chunk, float slope, const float* y,
                                                float* g, float* gbias, float* partial) {
  __shared__ float sums[kRowLanes][kColTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * kColTile + tx;
  const int r0 = blockIdx.y * rows_per_chunk;
  const int r1 = min(rows, r0 + rows_per_chunk);
  float s = 0.f;
  if (c < cols) {
    for (int r = r0 + ty; r < r1; r += kRowLanes) {
      const size_t i = static_cast<size_t>(r) * cols + c;
      const float v = g[i] * act_grad_at<A>(slope, y, i);
      g[i] = v;
      s += v;
    }
  }
  sums[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && c < cols) {
    float t = 0.f;
    for (int k = 0; k < kRowLanes; ++k) t += sums[k][tx];
    if (partial)
      partial[static_cast<size_t>(blockIdx.y) * cols + c] = t;
    else
      gbias[c] += t;
  }
}

__global__ void column_partials_finish_kernel(int chunks, int cols, const float* partial, float* gbias) {
  for (size_t c = global_index(); c < static_cast<size_t>(cols); c += global_stride()) {
    float t = 0.f;
    for (int k = 0; k < chunks; ++k) t += partial[static_cast<size_t>(k) * cols + c];
    gbias[c] += t;
  }
}

template <Act A>
void bias_act_forward_as(const Context& ctx, float slope, int rows, int cols, const float* bias, float* y) {
  const size_t total = static_cast<size_t>(rows) * cols;
  bias_act_forward_kernel<A><<<grid_for(total), kBlock, 0, ctx.stream>>>(total, cols, slope, bias, y);
  CUDA_CHECK_LAUNCH("bias_act_forward_kernel");
}

template <Act A>
void bias_act_backward_as(const Context& ctx, float slope, int rows, int cols, const float* y, float* g, float* gbias) {
  if (!gbias) {
    const size_t total = static_cast<size_t>(rows) * cols;
    bias_act_backward_kernel<A><<<grid_for(total), kBlock, 0, ctx.stream>>>(total, slope, y, g);
    CUDA_CHECK_LAUNCH("bias_act_backward_kernel");
    return;
  }
  // Row chunks: enough blocks to fill the GPU when rows are many, bounded by the workspace.
  int chunks = (rows + kMinRowsPerChunk - 1) / kMinRowsPerChunk;
  chunks = std::min(chunks, kMaxChunks);
  chunks = static_cast<int>(std::min<size_t>(static_cast<size_t>(chunks), Context::kReduceFloats / cols));
  chunks = std::max(chunks, 1);
  const int rows_per_chunk = (rows + chunks - 1) / chunks;
  chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  float* partial = chunks > 1 ? ctx.reduce_ws : nullptr;
  const dim3 block(kColTile, kRowLanes);
  const dim3 grid((cols + kColTile - 1) / kColTile, chunks);
  bias_act_backward_colsum_kernel<A>
      <<<grid, block, 0, ctx.stream>>>(rows, cols, rows_per_chunk, slope, y, g, gbias, partial);
  CUDA_CHECK_LAUNCH("bias_act_backward_colsum_kernel");
  if (partial) {
    column_partials_finish_kernel<<<grid_for(static_cast<size_t>(cols)), kBlock, 0, ctx.stream>>>(chunks, cols, partial,
                                                                                                  gbias);
    CUDA_CHECK_LAUNCH("column_partials_finish_kernel");
  }
}

}  // namespace

void launch_bias_act_forward(const Context& ctx, Act act, float slope, int rows, int cols, const float* bias,
                             float* y) {
  switch (act) {
    case Act::none: return bias_act_forward_as<Act::none>(ctx, slope, rows, cols, bias, y);
    case Act::relu: return bias_act_forward_as<Act::relu>(ctx, slope, rows, cols, bias, y);
    case Act::leaky_relu: return bias_act_forward_as<Act::leaky_relu>(ctx, slope, rows, cols, bias, y);
    case Act::sigmoid: return bias_act_forward_as<Act::sigmoid>(ctx, slope, rows, cols, bias, y);
    case Act::tanh: return bias_act_forward_as<Act::tanh>(ctx, slope, rows, cols, bias, y);
  }
  throw Error(cat("bias_act_forward: unknown activation ", static_cast<int>(act)));
}

void launch_bias_act_backward(const Context& ctx, Act act, float slope, int rows, int cols, const float* y, float* g,
                              float* gbias) {
  switch (act) {
    case Act::none: return bias_act_backward_as<Act::none>(ctx, slope, rows, cols, y, g, gbias);
    case Act::relu: return bias_act_backward_as<Act::relu>(ctx, slope, rows, cols, y, g, gbias);
    case Act::leaky_relu: return bias_act_backward_as<Act::leaky_relu>(ctx, slope, rows, cols, y, g, gbias);
    case Act::sigmoid: return bias_act_backward_as<Act::sigmoid>(ctx, slope, rows, cols, y, g, gbias);
    case Act::tanh: return bias_act_backward_as<Act::tanh>(ctx, slope, rows, cols, y, g, gbias);
  }
  throw Error(cat("bias_act_backward: unknown activation ", static_cast<int>(act)));
}

}  // namespace cgan::cuda
