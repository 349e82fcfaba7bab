// 2-D pooling over NCHW (backend.hpp: Pool, PoolShape). Window (p, q) covers input rows
// p*stride_h - pad_h .. + R-1 and columns q*stride_w - pad_w .. + S-1; cells outside the input are
// padding.
//  - avg: sum of the window's input cells (row-major, fp32) times 1/(R*S) (the float reciprocal, as
//    the CPU backend, so both round alike): padding counts in the divisor (count_include_pad=True).
//  - max: the CPU backend's rule, m = first cell, then m = v > m ? v : m in row-major order; padding
//    never wins. So a NaN comes out only when it is the window's first cell (a later NaN never
//    compares greater).
// Forward: one thread per output. Backward overwrites gx as a gather, one thread per input element
// summing, in (p, q) order, the windows that contain it: no atomics, deterministic. Max pooling sends
// a window's gradient to its first cell equal (==) to y in row-major order, recomputed from x and
// y, as the CPU does: a NaN output equals no cell, so its gradient goes nowhere.
#include <cmath>

#include "device.cuh"
#include "kernels.hpp"

namespace cgan::cuda {
namespace {

struct Geo {  // PoolShape plus its output size, by value into the kernels
  int H, W, R, S, sh, sw, ph, pw, P, Q;
};

Geo geo_of(const PoolShape& s) { return {s.H, s.W, s.R, s.S, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.P(), s.Q()}; }

template <Pool kKind>
__global__ void pool_forward_kernel(size_t total, Geo g, const float* x, float* y) {
  const size_t PQ = static_cast<size_t>(g.P) * g.Q, HW = static_cast<size_t>(g.H) * g.W;
  for (size_t o = global_index(); o < total; o += global_stride()) {
    const size_t nc = o / PQ;
    const int pq = static_cast<int>(o - nc * PQ);
    const int p = pq / g.Q, q = pq - p * g.Q;
    const int h0 = p * g.sh - g.ph, w0 = q * g.sw - g.pw;
    const int h_lo = max(h0, 0), h_hi = min(h0 + g.R, g.H);
    const int w_lo = max(w0, 0), w_hi = min(w0 + g.S, g.W);
    const float* xi = x + nc * HW;
    if constexpr (kKind == Pool::avg) {
      float sum = 0.f;
      for (int h = h_lo; h < h_hi; ++h)
        for (int w = w_lo; w < w_hi; ++w) sum += xi[static_cast<size_t>(h) * g.W + w];
      y[o] = sum * (1.f / static_cast<float>(g.R * g.S));  // as the CPU: sum * inv
    } else {
      float best = xi[static_cast<size_t>(h_lo) * g.W + w_lo];
      for (int h = h_lo; h < h_hi; ++h)
        for (int w = w_lo; w < w_hi; ++w) {
          const float v = xi[static_cast<size_t>(h) * g.W + w];
          best = v > best ? v : best;
        }
      y[o] = best;
    }
  }
}

// Output windows along one axis that contain input coordinate i: [*lo, *hi] (empty when lo > hi).
__device__ __forceinline__ void window_range(int i, int pad, int win, int stride, int n_out, int* lo, int* hi) {
  const int t = i + pad - win + 1;  // first window start (before padding) that still covers i
  *lo = t <= 0 ? 0 : (t + stride - 1) / stride;
  *hi = min(n_out - 1, (i + pad) / stride);
}

template <Pool kKind>
__global__ void pool_backward_kernel(size_t total, Geo g, const float* x, const float* y, const float* gy, float* gx) {
  const size_t PQ = static_cast<size_t>(g.P) * g.Q, HW = static_cast<size_t>(g.H) * g.W;
  const float inv = 1.f / static_cast<float>(g.R * g.S);  // as the CPU: each window adds g * inv
  for (size_t i = global_index(); i < total; i += global_stride()) {
    const size_t nc = i / HW;
    const int hw = static_cast<int>(i - nc * HW);
    const int h = hw / g.W, w = hw - h * g.W;
    int p_lo, p_hi, q_lo, q_hi;
    window_range(h, g.ph, g.R, g.sh, g.P, &p_lo, &p_hi);
    window_range(w, g.pw, g.S, g.sw, g.Q, &q_lo, &q_hi);
    const float* gyi = gy + nc * PQ;
    float acc = 0.f;
    if constexpr (kKind == Pool::avg) {
      for (int p = p_lo; p <= p_hi; ++p)
        for (int q = q_lo; q <= q_hi; ++q) acc += gyi[static_cast<size_t>(p) * g.Q + q] * inv;
    } else {
      const float* xi = x + nc * HW;
      const float* yi = y + nc * PQ;
      const float xv = x[i];
      for (int p = p_lo; p <= p_hi; ++p)
        for (int q = q_lo; q <= q_hi; ++q) {
          const size_t o = static_cast<size_t>(p) * g.Q + q;
          const float yv = yi[o];
          if (!(xv == yv)) continue;
          // (h, w) wins window (p, q) unless an earlier cell (row-major) also equals y.
          const int h0 = max(p * g.sh - g.ph, 0), w0 = max(q * g.sw - g.pw, 0);
          const int w_end = min(q * g.sw - g.pw + g.S, g.W);
          bool first = true;
          for (int hh = h0; hh <= h && first; ++hh) {
            const int we = hh < h ? w_end : w;
            for (int ww = w0; ww < we; ++ww)
              if (xi[static_cast<size_t>(hh) * g.W + ww] == yv) {
                first = false;
                break;
              }
          }
          if (first) acc += gyi[o];
        }
    }
    gx[i] = acc;
  }
}

}  // namespace

void launch_pool_forward(const Context& ctx, Pool k, const PoolShape& s, const float* x, float* y) {
  const Geo g = geo_of(s);
  const size_t total = static_cast<size_t>(s.N) * s.C * g.P * g.Q;
  if (k == Pool::avg) {
    pool_forward_kernel<Pool::avg><<<grid_for(total), kBlock, 0, ctx.stream>>>(total, g, x, y);
    CUDA_CHECK_LAUNCH("pool_forward_kernel<avg>");
  } else {
    pool_forward_kernel<Pool::max><<<grid_for(total), kBlock, 0, ctx.stream>>>(total, g, x, y);
    CUDA_CHECK_LAUNCH("pool_forward_kernel<max>");
  }
}

void launch_pool_backward(const Context& ctx, Pool k, const PoolShape& s, const float* x, const float* y,
                          const float* gy, float* gx) {
  const Geo g = geo_of(s);
  const size_t total = static_cast<size_t>(s.N) * s.C * s.H * s.W;
  if (k == Pool::avg) {
    pool_backward_kernel<Pool::avg><<<grid_for(total), kBlock, 0, ctx.stream>>>(total, g, x, y, gy, gx);
    CUDA_CHECK_LAUNCH("pool_backward_kernel<avg>");
  } else {
    pool_backward_kernel<Pool::max><<<grid_for(total), kBlock, 0, ctx.stream>>>(total, g, x, y, gy, gx);
    CUDA_CHECK_LAUNCH("pool_backward_kernel<max>");
  }
}

}  // namespace cgan::cuda
