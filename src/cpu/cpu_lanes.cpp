// Fixed-lane double sums of the CPU batch norms (see cpu_lanes.hpp).
#include "cpu_lanes.hpp"

namespace cgan {
namespace {

constexpr int kLanes = 8;

inline double lane_total(const double* l) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

}  // namespace

// sum of a[i]
__attribute__((target_clones("avx512f", "avx2", "default"))) double lane_sum(const float* __restrict a, int n) {
  double l[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) l[j] += static_cast<double>(a[i + j]);
  for (int j = 0; i < n; ++i, ++j) l[j] += static_cast<double>(a[i]);
  return lane_total(l);
}

// sum of (x[i] - m)^2
__attribute__((target_clones("avx512f", "avx2", "default"))) double lane_sq_dev(const float* __restrict x, int n,
                                                                                double m) {
  double l[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double d = static_cast<double>(x[i + j]) - m;
      l[j] += d * d;
    }
  for (int j = 0; i < n; ++i, ++j) {
    const double d = static_cast<double>(x[i]) - m;
    l[j] += d * d;
  }
  return lane_total(l);
}

// out[0] = sum gy[i], out[1] = sum gy[i] (x[i] - m), out[2] = sum (x[i] - m)
__attribute__((target_clones("avx512f", "avx2", "default"))) void lane_bn_backward(const float* __restrict x,
                                                                                   const float* __restrict gy, int n,
                                                                                   double m, double* out) {
  double a[kLanes] = {}, b[kLanes] = {}, e[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double g = gy[i + j], d = static_cast<double>(x[i + j]) - m;
      a[j] += g;
      b[j] += g * d;
      e[j] += d;
    }
  for (int j = 0; i < n; ++i, ++j) {
    const double g = gy[i], d = static_cast<double>(x[i]) - m;
    a[j] += g;
    b[j] += g * d;
    e[j] += d;
  }
  out[0] = lane_total(a);
  out[1] = lane_total(b);
  out[2] = lane_total(e);
}

void channel_sums(int N, int C, int S, const float* a, double* out, double* part, int threads) {
  if (S == 1) {
    std::fill(out, out + C, 0.0);
    for (int n = 0; n < N; ++n) {
      const float* an = a + static_cast<size_t>(n) * C;
      for (int c = 0; c < C; ++c) out[c] += an[c];
    }
    return;
  }
  for_blocks(N * C, threads, [&](int i) { part[i] = lane_sum(a + static_cast<size_t>(i) * S, S); });
  add_parts(N, C, part, out);
}

void channel_sq_dev(int N, int C, int S, const float* x, const double* mean, double* out, double* part, int threads) {
  if (S == 1) {
    std::fill(out, out + C, 0.0);
    for (int n = 0; n < N; ++n) {
      const float* xn = x + static_cast<size_t>(n) * C;
      for (int c = 0; c < C; ++c) {
        const double d = xn[c] - mean[c];
        out[c] += d * d;
      }
    }
    return;
  }
  for_blocks(N * C, threads, [&](int i) { part[i] = lane_sq_dev(x + static_cast<size_t>(i) * S, S, mean[i % C]); });
  add_parts(N, C, part, out);
}

}  // namespace cgan
