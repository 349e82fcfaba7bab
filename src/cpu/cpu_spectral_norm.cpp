// The CPU backend's spectral-normalization ops; see cpu_spectral_norm.hpp.
#include "cpu_spectral_norm.hpp"

#include <algorithm>
#include <cmath>

namespace cgan {

void cpu_spectral_norm_vec(int n, const float* t, bool normalize, float eps, float* u, float* sigma) {
  if (normalize) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += static_cast<double>(t[i]) * t[i];
    const float denom = std::max(static_cast<float>(std::sqrt(ss)), eps);
    for (int i = 0; i < n; ++i) u[i] = t[i] / denom;
  }
  if (sigma) {
    double s = 0;
    for (int i = 0; i < n; ++i) s += static_cast<double>(u[i]) * t[i];
    *sigma = static_cast<float>(s);
  }
}

void cpu_spectral_norm_scale(size_t n, const float* w, const float* sigma, float* w_sn) {
  const float s = *sigma;
  for (size_t i = 0; i < n; ++i) w_sn[i] = w[i] / s;
}

void cpu_spectral_norm_grad(int rows, int cols, const float* g, const float* dot, const float* left, const float* right,
                            const float* sigma, float* gw) {
  const float d = *dot, s = *sigma;
  for (int r = 0; r < rows; ++r) {
    const float dl = d * left[r];
    const size_t o = static_cast<size_t>(r) * static_cast<size_t>(cols);
    for (int c = 0; c < cols; ++c) gw[o + c] += (g[o + c] - dl * right[c]) / s;
  }
}

}  // namespace cgan
