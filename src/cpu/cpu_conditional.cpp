// The CPU backend's conditional family: see cpu_conditional.hpp and backend.hpp. Every sum is in
// double; cuda/conditional.cu takes the same steps (its sums in a fixed order, in double too).
#include "cpu_conditional.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cgan/backend/conditional_math.hpp"
#include "cpu_lanes.hpp"

namespace cgan {

namespace {

// f(std::integral_constant<Act, act>{}): a loop in f sees the activation as a constant.
template <typename F>
void with_act(Act act, const F& f) {
  switch (act) {
    case Act::none: return f(std::integral_constant<Act, Act::none>{});
    case Act::relu: return f(std::integral_constant<Act, Act::relu>{});
    case Act::leaky_relu: return f(std::integral_constant<Act, Act::leaky_relu>{});
    case Act::sigmoid: return f(std::integral_constant<Act, Act::sigmoid>{});
    case Act::tanh: return f(std::integral_constant<Act, Act::tanh>{});
  }
}
inline size_t at(int n, int c, int C) { return static_cast<size_t>(n) * C + c; }
double* grow(std::vector<double>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}
}  // namespace

void cpu_projection_forward(int B, int F, const float* phi, const float* e, float* out) {
  for (int b = 0; b < B; ++b) {
    const float* p = phi + at(b, 0, F);
    const float* q = e + at(b, 0, F);
    double s = 0.0;
    for (int j = 0; j < F; ++j) s += static_cast<double>(p[j]) * q[j];
    out[b] += static_cast<float>(s);
  }
}

void cpu_projection_backward(int B, int F, const float* phi, const float* e, const float* g, float* gphi, float* ge) {
  for (int b = 0; b < B; ++b) {
    const float gb = g[b];
    const size_t o = at(b, 0, F);
    if (gphi)
      for (int j = 0; j < F; ++j) gphi[o + j] += gb * e[o + j];
    if (ge)
      for (int j = 0; j < F; ++j) ge[o + j] = gb * phi[o + j];
  }
}

void cpu_cbn_forward_train(int N, int C, int S, float eps, float momentum, const float* x, const float* dgain,
                           const float* dbias, float* y, float* save_mean, float* save_invstd, float* run_mean,
                           float* run_var, Act act, float slope, int threads, std::vector<double>& scratch) {
  double* mean = grow(scratch, 2 * static_cast<size_t>(C) + static_cast<size_t>(N) * C);
  double* m2 = mean + C;
  double* part = m2 + C;  // one sum per (sample, channel) block (cpu_lanes.hpp)
  const double cnt = static_cast<double>(N) * S;
  channel_sums(N, C, S, x, mean, part, threads);
  for (int c = 0; c < C; ++c) mean[c] /= cnt;
  channel_sq_dev(N, C, S, x, mean, m2, part, threads);  // two-pass variance: no cancellation
  for (int c = 0; c < C; ++c) {
    const double istd = 1.0 / std::sqrt(m2[c] / cnt + static_cast<double>(eps));
    save_mean[c] = static_cast<float>(mean[c]);
    save_invstd[c] = static_cast<float>(istd);
    if (run_mean) {
      const double unbiased = m2[c] / (cnt - 1.0);
      run_mean[c] = static_cast<float>((1.0 - momentum) * run_mean[c] + momentum * mean[c]);
      run_var[c] = static_cast<float>((1.0 - momentum) * run_var[c] + momentum * unbiased);
    }
    m2[c] = istd;  // m2 now holds invstd
  }
  for_blocks(N * C, threads, [&](int i) {
    const int c = i % C;
    const double istd = m2[c];
    const float m = save_mean[c];
    const float a = static_cast<float>(istd);
    const float b = static_cast<float>(-istd * (mean[c] - static_cast<double>(m)));
    const float dg = dgain[i], db = dbias[i];
    const size_t o = static_cast<size_t>(i) * S;
    with_act(act, [&](auto k) {  // the activation a constant: the loop vectorises
      for (int j = 0; j < S; ++j) y[o + j] = cbn_forward_point(k.value, slope, x[o + j], m, a, b, dg, db);
    });
  });
}

void cpu_cbn_forward_eval(int N, int C, int S, float eps, const float* x, const float* dgain, const float* dbias,
                          const float* run_mean, const float* run_var, float* y, Act act, float slope) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const float a = static_cast<float>(1.0 / std::sqrt(static_cast<double>(run_var[c]) + eps));
      const float m = run_mean[c], dg = dgain[at(n, c, C)], db = dbias[at(n, c, C)];
      const size_t o = at(n, c, C) * S;
      with_act(act, [&](auto k) {
        for (int i = 0; i < S; ++i) y[o + i] = cbn_forward_point(k.value, slope, x[o + i], m, a, 0.f, dg, db);
      });
    }
}

// xhat = (x - mean) invstd with mean = m + lo (m: the float save_mean, lo: its rounding), and
// gamma[n, c] = 1 + dgain[n, c]:
//   gdbias[n, c] = sum_s gy,  gdgain[n, c] = sum_s gy xhat = invstd (sum_s gy (x - m) - lo gdbias),
//   gx = invstd (gamma gy - A / cnt - xhat Bs / cnt),  A = sum_n gamma gdbias, Bs = sum_n gamma gdgain
//      = gamma invstd gy + u (x - m) + w,  u = -invstd^2 Bs / cnt,  w = -invstd A / cnt - u lo.
// The per-sample sums pass through the float outputs (as the GPU's do) before lo is applied.
void cpu_cbn_backward(int N, int C, int S, const float* x, const float* dgain, const float* save_mean,
                      const float* save_invstd, const float* gy, float* gx, float* gdgain, float* gdbias, int threads,
                      std::vector<double>& scratch) {
  double* lo = grow(scratch, 3 * static_cast<size_t>(C) + static_cast<size_t>(N) * C);
  double* A = lo + C;
  double* Bs = A + C;
  double* part = Bs + C;  // sum (x - m) per (sample, channel) block (cpu_lanes.hpp)
  std::fill(A, A + 2 * static_cast<size_t>(C), 0.0);
  const double cnt = static_cast<double>(N) * S;
  for_blocks(N * C, threads, [&](int i) {
    const size_t o = static_cast<size_t>(i) * S;
    double r[3];  // sum gy, sum gy (x - m), sum (x - m)
    lane_bn_backward(x + o, gy + o, S, save_mean[i % C], r);
    gdbias[i] = static_cast<float>(r[0]);
    gdgain[i] = static_cast<float>(r[1]);
    part[i] = r[2];
  });
  add_parts(N, C, part, lo);
  for (int c = 0; c < C; ++c) lo[c] /= cnt;  // the mean less the float save_mean
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const size_t k = at(n, c, C);
      const double istd = save_invstd[c];
      const double sg = gdbias[k];
      const float gg = static_cast<float>(istd * (static_cast<double>(gdgain[k]) - lo[c] * sg));
      gdgain[k] = gg;
      const double gam = static_cast<double>(1.f + dgain[k]);
      A[c] += gam * sg;
      Bs[c] += gam * gg;
    }
  for (int c = 0; c < C; ++c) {  // u, w into A, Bs
    const double istd = save_invstd[c];
    const double u = -istd * istd * Bs[c] / cnt;
    const double w = -istd * A[c] / cnt - u * lo[c];
    A[c] = u;
    Bs[c] = w;
  }
  for_blocks(N * C, threads, [&](int i) {
    const int c = i % C;
    const size_t o = static_cast<size_t>(i) * S;
    const float m = save_mean[c], istd = save_invstd[c], dg = dgain[i];
    const float u = static_cast<float>(A[c]), w = static_cast<float>(Bs[c]);
    for (int j = 0; j < S; ++j) gx[o + j] = cbn_backward_point(gy[o + j], x[o + j], m, istd, dg, u, w);
  });
}

}  // namespace cgan
