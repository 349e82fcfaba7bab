// Fixed-lane double sums and the block loop that the CPU backend's batch norms (plain and conditional) share.
//
// The sums run over a contiguous run of n floats, in double, as kLanes interleaved partial sums
// (element i goes to lane i % kLanes) combined in one fixed tree. The lanes make the loops
// vectorise without reassociation, and compiled for AVX-512, AVX2 and the baseline each clone
// performs the same IEEE-754 operations in the same order (no FMA: cpu_lanes.cpp is built with
// -ffp-contract=off), so every width gives the same bits. The sums keep the double accumulation
// (and the two-pass variance) that lets a large mean with a tiny spread come out as on the GPU.
//
// A norm over [N, C, S] takes one such sum per (sample, channel) block, on threads (for_blocks),
// and adds the blocks of each channel in sample order on one thread (add_parts): the same bits on
// any thread count.
#pragma once
#include <algorithm>
#include <cstddef>

namespace cgan {

// sum of a[i]
double lane_sum(const float* a, int n);
// sum of (x[i] - m)^2
double lane_sq_dev(const float* x, int n, double m);
// out[0] = sum gy[i], out[1] = sum gy[i] (x[i] - m), out[2] = sum (x[i] - m)
void lane_bn_backward(const float* x, const float* gy, int n, double m, double* out);

// f(i) for i in [0, count) on `threads` OpenMP threads (static schedule; one thread below 2 or in
// a file built without OpenMP).
template <typename F>
void for_blocks(int count, int threads, const F& f) {
#if CGAN_HAVE_DNNL
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
#endif
  for (int i = 0; i < count; ++i) f(i);
  (void)threads;
}

// Per channel c of [N, C, S]: out[c] = sum of a[n, c, s] (channel_sums) or of (x[n, c, s] -
// mean[c])^2 (channel_sq_dev), in double: one lane sum per (sample, channel) block into part (N C
// doubles) on `threads` threads, added in sample order. S == 1 (a norm after a linear layer) adds
// the rows in order on one thread (the same bits: a one-value lane sum is the value).
void channel_sums(int N, int C, int S, const float* a, double* out, double* part, int threads);
void channel_sq_dev(int N, int C, int S, const float* x, const double* mean, double* out, double* part, int threads);

// out[c] = sum over n, in order, of part[n C + c].
inline void add_parts(int N, int C, const double* part, double* out) {
  std::fill(out, out + C, 0.0);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) out[c] += part[static_cast<size_t>(n) * C + c];
}

}  // namespace cgan
