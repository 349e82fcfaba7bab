// conv2d as im2col + GEMM and pooling as plain loops, for the CPU backend (see cpu_conv.hpp).
//
// Layout: a chunk of nb samples is unfolded into col [C*R*S, nb*P*Q] (row (c, r, s), column
// (n, p, q)), so one GEMM covers the chunk:
//   forward        Y[K, nb*P*Q]   = W[K, CRS] * col
//   backward data  col            = W^T * GY[K, nb*P*Q], then col2im (accumulating) into gx
//   backward filter gw[K, CRS]   += GY * col^T
// Y / GY are [K, nb*P*Q] while the tensors are [nb, K, P*Q]: with nb > 1 they are staged in the
// workspace and transposed blockwise; with nb == 1 the tensor itself is the matrix. The chunk is
// sized so the im2col buffer stays around kColFloats (4 MiB): big enough that the GEMMs of a
// small CNN reach OpenBLAS's threaded path, small enough to stay mostly in the last-level cache.
#include "cpu_conv.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "cgan/backend/bf16.hpp"
#include "cgan/base/error.hpp"

namespace cgan {
namespace {

constexpr size_t kColFloats = size_t(1) << 20;

struct Dims {
  size_t CRS, PQ, CHW, KPQ;
  int P, Q, nb;
};

Dims dims(const ConvShape& s) {
  Dims d;
  d.P = s.P();
  d.Q = s.Q();
  d.CRS = static_cast<size_t>(s.C) * s.R * s.S;
  d.PQ = static_cast<size_t>(d.P) * d.Q;
  d.CHW = static_cast<size_t>(s.C) * s.H * s.W;
  d.KPQ = static_cast<size_t>(s.K) * d.PQ;
  const size_t per = d.CRS * d.PQ;
  d.nb = static_cast<int>(std::clamp<size_t>(kColFloats / std::max<size_t>(per, 1), 1, static_cast<size_t>(s.N)));
  return d;
}

// The q in [q0, q1) for which iw = q * stride - pad + off lies in [0, W).
inline void valid_range(int W, int Q, int stride, int pad, int off, int& q0, int& q1) {
  const int lo = pad - off;  // need q * stride >= lo
  q0 = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  const int hi = W - 1 + pad - off;  // need q * stride <= hi
  q1 = hi < 0 ? 0 : std::min(Q, hi / stride + 1);
  q0 = std::min(q0, q1);
}

// One sample x [C, H, W] into col rows (c, r, s), columns [0, P*Q) of a matrix with leading dim ld.
void im2col(const ConvShape& s, const Dims& d, const float* x, float* col, size_t ld) {
  const int P = d.P, Q = d.Q;
  for (int c = 0; c < s.C; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int t = 0; t < s.S; ++t) {
        float* row = col + ((static_cast<size_t>(c) * s.R + r) * s.S + t) * ld;
        int q0, q1;
        valid_range(s.W, Q, s.stride_w, s.pad_w, t, q0, q1);
        const int shift = t - s.pad_w;
        for (int p = 0; p < P; ++p) {
          float* out = row + static_cast<size_t>(p) * Q;
          const int ih = p * s.stride_h - s.pad_h + r;
          if (ih < 0 || ih >= s.H) {
            std::fill(out, out + Q, 0.f);
            continue;
          }
          const float* in = x + (static_cast<size_t>(c) * s.H + ih) * s.W;
          std::fill(out, out + q0, 0.f);
          if (s.stride_w == 1) {
            if (q1 > q0) std::memcpy(out + q0, in + q0 + shift, sizeof(float) * (q1 - q0));
          } else {
            for (int q = q0; q < q1; ++q) out[q] = in[q * s.stride_w + shift];
          }
          std::fill(out + q1, out + Q, 0.f);
        }
      }
}

// The adjoint of im2col: gx [C, H, W] += the col entries of one sample.
void col2im(const ConvShape& s, const Dims& d, const float* col, size_t ld, float* gx) {
  const int P = d.P, Q = d.Q;
  for (int c = 0; c < s.C; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int t = 0; t < s.S; ++t) {
        const float* row = col + ((static_cast<size_t>(c) * s.R + r) * s.S + t) * ld;
        int q0, q1;
        valid_range(s.W, Q, s.stride_w, s.pad_w, t, q0, q1);
        const int shift = t - s.pad_w;
        for (int p = 0; p < P; ++p) {
          const int ih = p * s.stride_h - s.pad_h + r;
          if (ih < 0 || ih >= s.H) continue;
          const float* in = row + static_cast<size_t>(p) * Q;
          float* out = gx + (static_cast<size_t>(c) * s.H + ih) * s.W;
          if (s.stride_w == 1) {
            float* o = out + shift;
            for (int q = q0; q < q1; ++q) o[q] += in[q];
          } else {
            for (int q = q0; q < q1; ++q) out[q * s.stride_w + shift] += in[q];
          }
        }
      }
}

void check_ws(const char* op, const ConvShape& s, const float* ws) {
  CGAN_CHECK(ws, op, ": null workspace (this shape needs ", cpu_conv2d_workspace(s), " floats)");
}

// A chunk of the batch: samples [n0, n0 + nb), ld = nb*P*Q matrix columns, and the workspace
// split into col [CRS, ld] and stage [K, ld] (the staging area for Y / GY when nb > 1).
struct Chunk {
  int n0, nb;
  size_t ld;
  float* col;
  float* stage;
};

// fn(chunk) for each chunk of at most d.nb samples, in order.
template <typename Fn>
void for_each_chunk(const ConvShape& s, const Dims& d, float* ws, Fn&& fn) {
  for (int n0 = 0; n0 < s.N; n0 += d.nb) {
    Chunk c;
    c.n0 = n0;
    c.nb = std::min(d.nb, s.N - n0);
    c.ld = c.nb * d.PQ;
    c.col = ws;
    c.stage = ws + d.CRS * d.nb * d.PQ;
    fn(c);
  }
}

// The chunk's samples of x [N, C, H, W] unfolded into its col.
void im2col_chunk(const ConvShape& s, const Dims& d, const float* x, const Chunk& c) {
  for (int i = 0; i < c.nb; ++i) im2col(s, d, x + (c.n0 + i) * d.CHW, c.col + i * d.PQ, c.ld);
}

// Copies the nb x K blocks of P*Q floats of a chunk between two layouts, block (i, k) at
// src + i * src_i + k * src_k and dst + i * dst_i + k * dst_k: tensor [nb, K, P*Q] (strides KPQ, PQ)
// to matrix [K, nb*P*Q] (strides PQ, ld) or back.
void copy_blocks(const ConvShape& s, const Dims& d, int nb, const float* src, size_t src_i, size_t src_k, float* dst,
                 size_t dst_i, size_t dst_k) {
  for (int i = 0; i < nb; ++i)
    for (int k = 0; k < s.K; ++k)
      std::memcpy(dst + i * dst_i + k * dst_k, src + i * src_i + k * src_k, sizeof(float) * d.PQ);
}

// GY for a chunk as a [K, nb*P*Q] matrix: the tensor itself when nb == 1, else staged.
const float* gy_matrix(const ConvShape& s, const Dims& d, const float* gy, const Chunk& c) {
  const float* gyc = gy + c.n0 * d.KPQ;
  if (c.nb == 1) return gyc;
  copy_blocks(s, d, c.nb, gyc, d.KPQ, d.PQ, c.stage, d.PQ, c.ld);
  return c.stage;
}

}  // namespace

size_t cpu_conv2d_workspace(const ConvShape& s) {
  const Dims d = dims(s);
  const size_t cols = static_cast<size_t>(d.nb) * d.PQ;
  return d.CRS * cols + (d.nb > 1 ? static_cast<size_t>(s.K) * cols : 0);
}

size_t cpu_conv2d_gemm_operands(const ConvShape& s) {
  const Dims d = dims(s);
  const size_t cols = static_cast<size_t>(d.nb) * d.PQ, K = static_cast<size_t>(s.K);
  // forward: w [K, CRS] and the columns [CRS, cols]; data gradient: w and the output gradient
  // [K, cols]; weight gradient: the output gradient and the columns
  return std::max({K * d.CRS + d.CRS * cols, K * d.CRS + K * cols, K * cols + d.CRS * cols});
}

void cpu_conv2d_forward(const CpuGemm& gemm, const ConvShape& s, const float* x, const float* w, const float* bias,
                        float* y, float* ws) {
  check_ws("conv2d_forward", s, ws);
  const Dims d = dims(s);
  for_each_chunk(s, d, ws, [&](const Chunk& c) {
    im2col_chunk(s, d, x, c);
    float* yc = y + c.n0 * d.KPQ;
    if (c.nb == 1) {
      gemm(false, false, s.K, static_cast<int>(c.ld), static_cast<int>(d.CRS), 1.f, w, c.col, 0.f, yc);
    } else {
      gemm(false, false, s.K, static_cast<int>(c.ld), static_cast<int>(d.CRS), 1.f, w, c.col, 0.f, c.stage);
      copy_blocks(s, d, c.nb, c.stage, d.PQ, c.ld, yc, d.KPQ, d.PQ);
    }
    if (bias)
      for (int i = 0; i < c.nb; ++i)
        for (int k = 0; k < s.K; ++k) {
          float* o = yc + i * d.KPQ + k * d.PQ;
          const float b = bias[k];
          for (size_t j = 0; j < d.PQ; ++j) o[j] += b;
        }
  });
}

void cpu_conv2d_backward_data(const CpuGemm& gemm, const ConvShape& s, const float* gy, const float* w, float* gx,
                              float* ws) {
  check_ws("conv2d_backward_data", s, ws);
  const Dims d = dims(s);
  std::fill(gx, gx + s.N * d.CHW, 0.f);
  for_each_chunk(s, d, ws, [&](const Chunk& c) {
    const float* g = gy_matrix(s, d, gy, c);
    gemm(true, false, static_cast<int>(d.CRS), static_cast<int>(c.ld), s.K, 1.f, w, g, 0.f, c.col);
    for (int i = 0; i < c.nb; ++i) col2im(s, d, c.col + i * d.PQ, c.ld, gx + (c.n0 + i) * d.CHW);
  });
}

void cpu_conv2d_backward_filter(const CpuGemm& gemm, const ConvShape& s, const float* x, const float* gy, float* gw,
                                float* gbias, float* ws) {
  check_ws("conv2d_backward_filter", s, ws);
  const Dims d = dims(s);
  for_each_chunk(s, d, ws, [&](const Chunk& c) {
    im2col_chunk(s, d, x, c);
    const float* g = gy_matrix(s, d, gy, c);
    gemm(false, true, s.K, static_cast<int>(d.CRS), static_cast<int>(c.ld), 1.f, g, c.col, 1.f, gw);
  });
  // The bias gradient sums the output gradient the products took: bf16-rounded for a bf16 shape
  // (as oneDNN's bf16 kernels sum their bf16 copy of it), in fp32 per plane, in double over planes.
  const bool bf16 = s.mul == MulPrecision::bf16;
  if (gbias)
    for (int k = 0; k < s.K; ++k) {
      double acc = 0;
      for (int n = 0; n < s.N; ++n) {
        const float* o = gy + n * d.KPQ + k * d.PQ;
        float part = 0.f;
        if (bf16)
          for (size_t j = 0; j < d.PQ; ++j) part += round_to_bf16(o[j]);
        else
          for (size_t j = 0; j < d.PQ; ++j) part += o[j];
        acc += part;
      }
      gbias[k] += static_cast<float>(acc);
    }
}

// ---- pooling. Windows are clipped to the input; avg divides by the full window R*S (padded cells
// count as zeros, PyTorch's count_include_pad), max never sees padded cells (at least one real
// cell is in every window since the padding is at most half the window).

namespace {

// fn(plane, o, h0, h1, w0, w1) for every output cell o = p * Q + q of every (n, c) plane, in order,
// with its window clipped to the input: rows [h0, h1), columns [w0, w1).
template <typename Fn>
void for_each_window(const PoolShape& s, Fn&& fn) {
  const int P = s.P(), Q = s.Q();
  for (size_t plane = 0; plane < static_cast<size_t>(s.N) * s.C; ++plane)
    for (int p = 0; p < P; ++p) {
      const int hs = p * s.stride_h - s.pad_h;
      const int h0 = std::max(hs, 0), h1 = std::min(hs + s.R, s.H);
      for (int q = 0; q < Q; ++q) {
        const int ws = q * s.stride_w - s.pad_w;
        const int w0 = std::max(ws, 0), w1 = std::min(ws + s.S, s.W);
        fn(plane, static_cast<size_t>(p) * Q + q, h0, h1, w0, w1);
      }
    }
}

}  // namespace

void cpu_pool2d_forward(Pool k, const PoolShape& s, const float* x, float* y) {
  const size_t HW = static_cast<size_t>(s.H) * s.W, PQ = static_cast<size_t>(s.P()) * s.Q();
  const float inv = 1.f / static_cast<float>(s.R * s.S);
  for_each_window(s, [&](size_t plane, size_t o, int h0, int h1, int w0, int w1) {
    const float* xp = x + plane * HW;
    float* yp = y + plane * PQ;
    if (k == Pool::avg) {
      float sum = 0.f;
      for (int h = h0; h < h1; ++h)
        for (int w = w0; w < w1; ++w) sum += xp[h * s.W + w];
      yp[o] = sum * inv;
    } else {
      float m = xp[h0 * s.W + w0];
      for (int h = h0; h < h1; ++h)
        for (int w = w0; w < w1; ++w) m = xp[h * s.W + w] > m ? xp[h * s.W + w] : m;
      yp[o] = m;
    }
  });
}

void cpu_pool2d_backward(Pool k, const PoolShape& s, const float* x, const float* y, const float* gy, float* gx) {
  const size_t HW = static_cast<size_t>(s.H) * s.W, PQ = static_cast<size_t>(s.P()) * s.Q();
  const float inv = 1.f / static_cast<float>(s.R * s.S);
  std::fill(gx, gx + static_cast<size_t>(s.N) * s.C * HW, 0.f);
  for_each_window(s, [&](size_t plane, size_t o, int h0, int h1, int w0, int w1) {
    const float* xp = x + plane * HW;
    float* gxp = gx + plane * HW;
    const float g = gy[plane * PQ + o];
    if (k == Pool::avg) {
      const float v = g * inv;
      for (int h = h0; h < h1; ++h)
        for (int w = w0; w < w1; ++w) gxp[h * s.W + w] += v;
    } else {
      const float m = y[plane * PQ + o];
      for (int h = h0; h < h1; ++h)
        for (int w = w0; w < w1; ++w)
          if (xp[h * s.W + w] == m) {
            gxp[h * s.W + w] += g;
            return;  // the first maximum in row-major order takes the gradient
          }
    }
  });
}

}  // namespace cgan
