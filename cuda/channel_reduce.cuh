// Per-channel work over tensors laid out [N, C, S]: full-grid deterministic split reductions (batch
// norm statistics, conv bias gradients) and a division-free cursor for elementwise passes.
//
// A split reduction runs in two launches: every block sums one chunk of one channel in double and
// writes NS partials to scratch (no atomics), then a per-channel finaliser adds the G partials of
// its channel in chunk order. The chunking (ChanSplit) is a function of the shape and the
// pointers' alignment only, so the result is the same on every run and every GPU.
//  - S > 1 (conv maps): grid (G chunks, C channels), 256 threads; a chunk is a contiguous range of
//    the channel's N*S values in (n, s) order, read as float4 when S % 4 == 0 and the inputs are
//    16-byte aligned. Each thread divides once to find its first (n, s) and then advances without
//    division.
//  - S == 1 (dense, x is [N, C]): grid (C/32 channel tiles, G row chunks), blocks of 32 channels x 8
//    row lanes (coalesced rows), lanes summed in a fixed tree in shared memory.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cgan/base/error.hpp"
#include "device.cuh"

namespace cgan::cuda {

constexpr int kChanBlock = 256;                 // threads of a spatial partial block
constexpr int kDenseChannels = 32;              // dense partial block: channels (blockDim.x)
constexpr int kDenseLanes = 8;                  // dense partial block: row lanes (blockDim.y)
constexpr long long kSpatialChunkUnits = 4096;  // units (float or float4) per spatial chunk
constexpr long long kDenseChunkRows = 256;      // rows per dense chunk
constexpr int kMaxSplit = 1024;                 // chunks per channel at most

struct ChanSplit {
  int N = 0, C = 0;
  long long S = 1;
  bool dense = false;   // S == 1
  bool vec = false;     // float4 units
  long long units = 0;  // per channel: N * S / (vec ? 4 : 1) (dense: N rows)
  long long chunk = 0;  // units per chunk
  int G = 1;            // chunks per channel
};

inline bool aligned16(const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The chunking of a reduction with NS sums per channel whose partials must fit in `capacity`
// doubles (C * G * NS <= capacity). `aligned`: every input the reduction reads is 16-byte aligned.
inline ChanSplit plan_split(int N, int C, long long S, bool aligned, int NS, size_t capacity, const char* op) {
  ChanSplit p;
  p.N = N, p.C = C, p.S = S;
  p.dense = S == 1;
  p.vec = !p.dense && S % 4 == 0 && aligned;
  p.units = p.dense ? N : static_cast<long long>(N) * (p.vec ? S / 4 : S);
  const long long target = p.dense ? kDenseChunkRows : kSpatialChunkUnits;
  const long long fit = static_cast<long long>(capacity / (static_cast<size_t>(C) * NS));
  CGAN_CHECK(fit >= 1, op, ": ", C, " channels exceed the backend's reduction scratch");
  long long G = (p.units + target - 1) / target;
  G = std::max<long long>(1, std::min<long long>({G, kMaxSplit, fit}));
  p.chunk = (p.units + G - 1) / G;
  p.G = static_cast<int>((p.units + p.chunk - 1) / p.chunk);  // no empty chunk
  return p;
}

// Partials of the spatial layout: partials[(c * G + g) * NS + k]. Op: set_channel(c), then
// add1(offset in floats, acc) or add4(offset in floats, multiple of 4, acc).
template <int NS, bool kVec, class Op>
__global__ void __launch_bounds__(kChanBlock) spatial_partials_kernel(ChanSplit sp, Op op, double* partials) {
  __shared__ double smem[32];
  const long long Su = kVec ? sp.S / 4 : sp.S;
  for (int c = blockIdx.y; c < sp.C; c += gridDim.y) {
    op.set_channel(c);
    double acc[NS];
    for (int k = 0; k < NS; ++k) acc[k] = 0.0;
    const long long u0 = static_cast<long long>(blockIdx.x) * sp.chunk;
    const long long u1 = min(u0 + sp.chunk, sp.units);
    long long u = u0 + threadIdx.x;
    if (u < u1) {
      long long n = u / Su, s = u - n * Su;  // once per thread
      const long long dn = blockDim.x / Su, ds = blockDim.x - dn * Su;
      for (; u < u1; u += blockDim.x) {
        const size_t off = (static_cast<size_t>(n) * sp.C + c) * static_cast<size_t>(Su) + s;
        if constexpr (kVec)
          op.add4(off * 4, acc);
        else
          op.add1(off, acc);
        s += ds;
        n += dn;
        if (s >= Su) s -= Su, ++n;
      }
    }
    for (int k = 0; k < NS; ++k) {
      const double t = block_sum(acc[k], smem);
      if (threadIdx.x == 0) partials[(static_cast<size_t>(c) * sp.G + blockIdx.x) * NS + k] = t;
    }
  }
}

// Partials of the dense layout [N, C]: block (kDenseChannels, kDenseLanes), grid (channel tiles,
// G row chunks).
template <int NS, class Op>
__global__ void __launch_bounds__(kDenseChannels* kDenseLanes)
    dense_partials_kernel(ChanSplit sp, Op op, double* partials) {
  __shared__ double sh[kDenseLanes][kDenseChannels];
  const int c = blockIdx.x * kDenseChannels + threadIdx.x;
  const bool ok = c < sp.C;
  if (ok) op.set_channel(c);
  double acc[NS];
  for (int k = 0; k < NS; ++k) acc[k] = 0.0;
  const long long r0 = static_cast<long long>(blockIdx.y) * sp.chunk;
  const long long r1 = min(r0 + sp.chunk, static_cast<long long>(sp.N));
  if (ok)
    for (long long n = r0 + threadIdx.y; n < r1; n += kDenseLanes) op.add1(static_cast<size_t>(n) * sp.C + c, acc);
  for (int k = 0; k < NS; ++k) {  // lanes summed in a fixed tree
    sh[threadIdx.y][threadIdx.x] = acc[k];
    __syncthreads();
    for (int s = kDenseLanes / 2; s > 0; s >>= 1) {
      if (threadIdx.y < static_cast<unsigned>(s)) sh[threadIdx.y][threadIdx.x] += sh[threadIdx.y + s][threadIdx.x];
      __syncthreads();
    }
    if (ok && threadIdx.y == 0) partials[(static_cast<size_t>(c) * sp.G + blockIdx.y) * NS + k] = sh[0][threadIdx.x];
    __syncthreads();
  }
}

// Launches the partial pass of `sp` on the stream.
template <int NS, class Op>
void launch_partials(cudaStream_t stream, const ChanSplit& sp, const Op& op, double* partials, const char* name) {
  if (sp.dense) {
    const dim3 grid((sp.C + kDenseChannels - 1) / kDenseChannels, sp.G);
    dense_partials_kernel<NS, Op><<<grid, dim3(kDenseChannels, kDenseLanes), 0, stream>>>(sp, op, partials);
  } else {
    const dim3 grid(sp.G, std::min(sp.C, 65535));
    if (sp.vec)
      spatial_partials_kernel<NS, true, Op><<<grid, kChanBlock, 0, stream>>>(sp, op, partials);
    else
      spatial_partials_kernel<NS, false, Op><<<grid, kChanBlock, 0, stream>>>(sp, op, partials);
  }
  check_launch(name, __FILE__, __LINE__);
}

// Sum k of channel c's G partials, in chunk order.
__device__ __forceinline__ double sum_partials(const double* partials, int c, int G, int NS, int k) {
  double s = 0.0;
  const double* p = partials + static_cast<size_t>(c) * G * NS + k;
  for (int g = 0; g < G; ++g) s += p[static_cast<size_t>(g) * NS];
  return s;
}

// Elementwise over [N, C, S] in units of 1 or 4 floats (4 when kVec: S % 4 == 0), grid-stride:
// f(u, c) for every unit u with its channel c. The channel is found by one division per thread
// and then advanced by the constant stride, with no division per element.
template <class F>
__global__ void ncs_apply_kernel(long long total_units, int C, long long Su, F f) {
  long long u = static_cast<long long>(global_index());
  if (u >= total_units) return;
  const long long stride = static_cast<long long>(global_stride());
  const long long row = u / Su;
  long long s = u - row * Su;
  int c = static_cast<int>(row % C);
  const long long drow = stride / Su, ds = stride - drow * Su;
  const int dc = static_cast<int>(drow % C);
  for (; u < total_units; u += stride) {
    f(u, c);
    s += ds;
    c += dc;
    if (s >= Su) s -= Su, ++c;
    if (c >= C) c -= C;  // c + dc + 1 <= 2C - 1
  }
}

template <class F>
void launch_ncs_apply(cudaStream_t stream, size_t N, int C, size_t S, bool vec, const F& f, const char* name) {
  const long long Su = static_cast<long long>(vec ? S / 4 : S);
  const long long total = static_cast<long long>(N) * C * Su;
  ncs_apply_kernel<F><<<grid_for(static_cast<size_t>(total)), kBlock, 0, stream>>>(total, C, Su, f);
  check_launch(name, __FILE__, __LINE__);
}

__device__ __forceinline__ float4 load4(const float* p, size_t off) {
  return *reinterpret_cast<const float4*>(p + off);
}
__device__ __forceinline__ void store4(float* p, size_t off, float4 v) { *reinterpret_cast<float4*>(p + off) = v; }

// The plain per-channel sum of x (batch norm's mean, the conv bias gradient): a reduction Op for
// launch_partials with one sum per channel.
struct SumOp {
  const float* x;
  __device__ void set_channel(int) {}
  __device__ void add1(size_t o, double* acc) const { acc[0] += x[o]; }
  __device__ void add4(size_t o, double* acc) const {
    const float4 v = load4(x, o);
    acc[0] += v.x;
    acc[0] += v.y;
    acc[0] += v.z;
    acc[0] += v.w;
  }
};

// Sum of (x - mean)^2 per channel, mean [C] in double (the two-pass variance of batch norm and
// conditional batch norm).
struct SqDevOp {
  const float* x;
  const double* mean;
  double m;
  __device__ void set_channel(int c) { m = mean[c]; }
  __device__ void one(float v, double* acc) const {
    const double d = static_cast<double>(v) - m;
    acc[0] += d * d;
  }
  __device__ void add1(size_t o, double* acc) const { one(x[o], acc); }
  __device__ void add4(size_t o, double* acc) const {
    const float4 v = load4(x, o);
    one(v.x, acc), one(v.y, acc), one(v.z, acc), one(v.w, acc);
  }
};

}  // namespace cgan::cuda
