// Label fusion (backend.hpp's Fusion) forward and backward, and one_hot.
//
// The table gradient is a scatter-add over repeated labels. Instead of one atomicAdd per element
// (whose order, and so whose rounding, changes from run to run), the block of the first row b of
// each label adds, for its label, the rows b' >= b in batch order to the table: the same sequence
// of float additions as the CPU backend's loop, so the two agree bit for bit and every run is
// identical. The rows of the label are found a tile of blockDim rows at a time by an
// order-preserving block compaction (warp ballots, then warp offsets) into shared memory, so each
// column's serial chain is only that label's rows (about B / labels), not all B rows.
//
// Labels outside the table's rows [0, K) are flagged (kStatusBadLabel, reported at the next
// synchronize/download) and produce zeros instead of reading or writing out of bounds.
#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

// concat / embed_concat: out[b, :] = [x[b, :] | cond[b, :] or table[label[b], :]]
__global__ void fuse_concat_forward_kernel(int B, int in, int E, int K, const float* x, const float* cond,
                                           const int32_t* labels, const float* table, float* out, unsigned* status) {
  const size_t W = static_cast<size_t>(in) + E;
  const size_t total = static_cast<size_t>(B) * W;
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const size_t b = i / W, j = i - b * W;
    float v;
    if (j < static_cast<size_t>(in)) {
      v = x[b * in + j];
    } else if (cond) {
      v = cond[b * E + (j - in)];
    } else {
      const int32_t l = labels[b];
      if (l < 0 || l >= K) {
        if (j == static_cast<size_t>(in)) report_status(status, kStatusBadLabel);
        v = 0.f;
      } else {
        v = table[static_cast<size_t>(l) * E + (j - in)];
      }
    }
    out[i] = v;
  }
}

// embed_multiply: out[b, i] = x[b, i] * table[label[b], i]
__global__ void fuse_multiply_forward_kernel(int B, int in, int K, const float* x, const int32_t* labels,
                                             const float* table, float* out, unsigned* status) {
  const size_t total = static_cast<size_t>(B) * in;
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const size_t b = i / in, j = i - b * in;
    const int32_t l = labels[b];
    if (l < 0 || l >= K) {
      if (j == 0) report_status(status, kStatusBadLabel);
      out[i] = 0.f;
    } else {
      out[i] = x[i] * table[static_cast<size_t>(l) * in + j];
    }
  }
}

// gx, one kernel for both layouts:
//  concat / embed_concat: the first `in` columns of gout (row width in + E);
//  embed_multiply:        gout * table[label] (row width in; E unused).
template <bool kMultiply>
__global__ void fuse_backward_x_kernel(int B, int in, int E, int K, const int32_t* labels, const float* table,
                                       const float* gout, float* gx, unsigned* status) {
  const size_t W = kMultiply ? static_cast<size_t>(in) : static_cast<size_t>(in) + E;
  const size_t total = static_cast<size_t>(B) * in;
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const size_t b = i / in, j = i - b * in;
    if constexpr (kMultiply) {
      const int32_t l = labels[b];
      if (l < 0 || l >= K) {
        if (j == 0) report_status(status, kStatusBadLabel);
        gx[i] = 0.f;
      } else {
        gx[i] = gout[i] * table[static_cast<size_t>(l) * in + j];
      }
    } else {
      gx[i] = gout[b * W + j];
    }
  }
}

// Table gradient. grid (ceil(W / blockDim.x), min(B, 65535)): block (., y) handles batch rows
// b = y, y + gridDim.y, ... and, for each b that is its label's first row in the batch, the table
// row labels[b].
//  embed_concat:   gtable[l, e] += sum over rows b' with label l of gout[b', in + e]   (W = E)
//  embed_multiply: gtable[l, e] += sum over rows b' with label l of gout[b', e] x[b', e] (W = in)
// blockDim.x: a multiple of 32, at most kTableThreads.
constexpr int kTableThreads = 256;

template <bool kMultiply>
__global__ void __launch_bounds__(kTableThreads)
    fuse_backward_table_kernel(int B, int in, int W, int K, const int32_t* labels, const float* x, const float* gout,
                               float* gtable, unsigned* status) {
  __shared__ int rows[kTableThreads];  // this tile's rows with the owner's label, in batch order
  __shared__ int warp_hits[kTableThreads / 32];
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = static_cast<int>(blockDim.x) >> 5;
  const size_t gw = kMultiply ? static_cast<size_t>(in) : static_cast<size_t>(in) + W;
  for (int b = blockIdx.y; b < B; b += gridDim.y) {  // every branch below is block-uniform
    const int32_t l = labels[b];
    if (l < 0 || l >= K) {
      if (blockIdx.x == 0 && threadIdx.x == 0) report_status(status, kStatusBadLabel);
      continue;
    }
    int seen = 0;
    for (int bb = threadIdx.x; bb < b; bb += blockDim.x) seen |= (labels[bb] == l);
    if (__syncthreads_or(seen)) continue;              // an earlier row owns this label
    const size_t te = static_cast<size_t>(l) * W + e;  // read and written only when e < W
    float acc = e < W ? gtable[te] : 0.f;
    for (int base = b; base < B; base += blockDim.x) {
      const int bb = base + static_cast<int>(threadIdx.x);
      const bool hit = bb < B && labels[bb] == l;
      const unsigned mask = __ballot_sync(0xffffffffu, hit);
      if (lane == 0) warp_hits[warp] = __popc(mask);
      __syncthreads();
      int before = 0, hits = 0;
      for (int w = 0; w < warps; ++w) {
        const int h = warp_hits[w];
        if (w < warp) before += h;
        hits += h;
      }
      if (hit) rows[before + __popc(mask & ((1u << lane) - 1u))] = bb;
      __syncthreads();
      if (e < W)
        for (int k = 0; k < hits; ++k) {
          const int r = rows[k];
          if (kMultiply) {
            const size_t o = static_cast<size_t>(r) * in + e;
            acc = __fadd_rn(acc, __fmul_rn(gout[o], x[o]));  // no FMA: the CPU's rounding exactly
          } else {
            acc = __fadd_rn(acc, gout[static_cast<size_t>(r) * gw + in + e]);
          }
        }
      __syncthreads();  // rows and warp_hits are refilled by the next tile
    }
    if (e < W) gtable[te] = acc;
  }
}

__global__ void one_hot_kernel(int B, int K, const int32_t* labels, float* out, unsigned* status) {
  const size_t total = static_cast<size_t>(B) * K;
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const size_t b = i / K;
    const int k = static_cast<int>(i - b * K);
    const int32_t l = labels[b];
    if (k == 0 && (l < 0 || l >= K)) report_status(status, kStatusOneHot);
    out[i] = (l == k) ? 1.f : 0.f;
  }
}

}  // namespace

void launch_fuse_forward(const Context& ctx, Fusion f, int B, int in, int E, int K, const float* x, const float* cond,
                         const int32_t* labels, const float* table, float* out) {
  if (f == Fusion::embed_multiply) {
    const size_t total = static_cast<size_t>(B) * in;
    if (total == 0) return;
    fuse_multiply_forward_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(B, in, K, x, labels, table, out,
                                                                             ctx.status);
    CUDA_CHECK_LAUNCH("fuse_multiply_forward_kernel");
    return;
  }
  const size_t total = static_cast<size_t>(B) * (static_cast<size_t>(in) + E);
  if (total == 0) return;
  fuse_concat_forward_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(
      B, in, E, K, x, f == Fusion::concat ? cond : nullptr, labels, table, out, ctx.status);
  CUDA_CHECK_LAUNCH("fuse_concat_forward_kernel");
}

void launch_fuse_backward(const Context& ctx, Fusion f, int B, int in, int E, int K, const float* x,
                          const int32_t* labels, const float* table, const float* gout, float* gx, float* gtable) {
  const size_t nx = static_cast<size_t>(B) * in;
  if (gx && nx > 0) {
    if (f == Fusion::embed_multiply)
      fuse_backward_x_kernel<true>
          <<<grid_for(nx), kBlock, 0, ctx.stream>>>(B, in, E, K, labels, table, gout, gx, ctx.status);
    else
      fuse_backward_x_kernel<false>
          <<<grid_for(nx), kBlock, 0, ctx.stream>>>(B, in, E, K, labels, table, gout, gx, ctx.status);
    CUDA_CHECK_LAUNCH("fuse_backward_x_kernel");
  }
  if (!gtable || f == Fusion::concat) return;
  const int W = f == Fusion::embed_multiply ? in : E;
  if (W == 0) return;
  const int threads = W >= kTableThreads ? kTableThreads : (W + 31) / 32 * 32;
  const dim3 grid((W + threads - 1) / threads, std::min(B, 65535));
  if (f == Fusion::embed_multiply) {
    fuse_backward_table_kernel<true>
        <<<grid, threads, 0, ctx.stream>>>(B, in, W, K, labels, x, gout, gtable, ctx.status);
  } else {
    fuse_backward_table_kernel<false>
        <<<grid, threads, 0, ctx.stream>>>(B, in, W, K, labels, x, gout, gtable, ctx.status);
  }
  CUDA_CHECK_LAUNCH("fuse_backward_table_kernel");
}

void launch_one_hot(const Context& ctx, int B, int K, const int32_t* labels, float* out) {
  const size_t total = static_cast<size_t>(B) * K;
  one_hot_kernel<<<grid_for(total), kBlock, 0, ctx.stream>>>(B, K, labels, out, ctx.status);
  CUDA_CHECK_LAUNCH("one_hot_kernel");
}

}  // namespace cgan::cuda
