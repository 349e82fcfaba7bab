// The CPU backend's conditional family: see cpu_conditional.hpp and backend.hpp. Every sum is in
// double; cuda/conditional.cu takes the same steps (its sums in a fixed order, in double too).
#include "cpu_conditional.hpp"

#include <algorithm>
#include <cmath>

#include "cgan/backend/conditional_math.hpp"

namespace cgan {

namespace {
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
                           float* run_var, Act act, float slope, std::vector<double>& scratch) {
  double* mean = grow(scratch, 2 * static_cast<size_t>(C));
  double* m2 = mean + C;
  std::fill(mean, mean + 2 * static_cast<size_t>(C), 0.0);
  const double cnt = static_cast<double>(N) * S;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const float* xr = x + at(n, c, C) * S;
      double s = 0.0;
      for (int i = 0; i < S; ++i) s += xr[i];
      mean[c] += s;
    }
  for (int c = 0; c < C; ++c) mean[c] /= cnt;
  for (int n = 0; n < N; ++n)  // two-pass variance: no cancellation
    for (int c = 0; c < C; ++c) {
      const float* xr = x + at(n, c, C) * S;
      double s = 0.0;
      for (int i = 0; i < S; ++i) {
        const double d = static_cast<double>(xr[i]) - mean[c];
        s += d * d;
      }
      m2[c] += s;
    }
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
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const double istd = m2[c];
      const float m = save_mean[c];
      const float a = static_cast<float>(istd);
      const float b = static_cast<float>(-istd * (mean[c] - static_cast<double>(m)));
      const float dg = dgain[at(n, c, C)], db = dbias[at(n, c, C)];
      const size_t o = at(n, c, C) * S;
      for (int i = 0; i < S; ++i) y[o + i] = cbn_forward_point(act, slope, x[o + i], m, a, b, dg, db);
    }
}

void cpu_cbn_forward_eval(int N, int C, int S, float eps, const float* x, const float* dgain, const float* dbias,
                          const float* run_mean, const float* run_var, float* y, Act act, float slope) {
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const float a = static_cast<float>(1.0 / std::sqrt(static_cast<double>(run_var[c]) + eps));
      const float m = run_mean[c], dg = dgain[at(n, c, C)], db = dbias[at(n, c, C)];
      const size_t o = at(n, c, C) * S;
      for (int i = 0; i < S; ++i) y[o + i] = cbn_forward_point(act, slope, x[o + i], m, a, 0.f, dg, db);
    }
}

// xhat = (x - mean) invstd with mean = m + lo (m: the float save_mean, lo: its rounding), and
// gamma[n, c] = 1 + dgain[n, c]:
//   gdbias[n, c] = sum_s gy,  gdgain[n, c] = sum_s gy xhat = invstd (sum_s gy (x - m) - lo gdbias),
//   gx = invstd (gamma gy - A / cnt - xhat Bs / cnt),  A = sum_n gamma gdbias, Bs = sum_n gamma gdgain
//      = gamma invstd gy + u (x - m) + w,  u = -invstd^2 Bs / cnt,  w = -invstd A / cnt - u lo.
// The per-sample sums pass through the float outputs (as the GPU's do) before lo is applied.
void cpu_cbn_backward(int N, int C, int S, const float* x, const float* dgain, const float* save_mean,
                      const float* save_invstd, const float* gy, float* gx, float* gdgain, float* gdbias,
                      std::vector<double>& scratch) {
  double* lo = grow(scratch, 3 * static_cast<size_t>(C));
  double* A = lo + C;
  double* Bs = A + C;
  std::fill(lo, lo + 3 * static_cast<size_t>(C), 0.0);
  const double cnt = static_cast<double>(N) * S;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const size_t o = at(n, c, C) * S;
      const double m = save_mean[c];
      double sx = 0.0, sg = 0.0, sgd = 0.0;
      for (int i = 0; i < S; ++i) {
        const double g = gy[o + i];
        sx += x[o + i];
        sg += g;
        sgd += g * (static_cast<double>(x[o + i]) - m);
      }
      lo[c] += sx;
      gdbias[at(n, c, C)] = static_cast<float>(sg);
      gdgain[at(n, c, C)] = static_cast<float>(sgd);
    }
  for (int c = 0; c < C; ++c) lo[c] = lo[c] / cnt - static_cast<double>(save_mean[c]);
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
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const size_t o = at(n, c, C) * S;
      const float m = save_mean[c], istd = save_invstd[c], dg = dgain[at(n, c, C)];
      const float u = static_cast<float>(A[c]), w = static_cast<float>(Bs[c]);
      for (int i = 0; i < S; ++i) gx[o + i] = cbn_backward_point(gy[o + i], x[o + i], m, istd, dg, u, w);
    }
}

}  // namespace cgan
