// The CPU backend's spectral-normalization ops (backend.hpp holds the contracts): plain loops,
// sums in double. Free functions so cpu_backend.cpp only forwards to them; the arguments have
// already been checked by the public Backend methods.
#pragma once
#include <cstddef>

namespace cgan {

void cpu_spectral_norm_vec(int n, const float* t, bool normalize, float eps, float* u, float* sigma);
void cpu_spectral_norm_scale(size_t n, const float* w, const float* sigma, float* w_sn);
void cpu_spectral_norm_grad(int rows, int cols, const float* g, const float* dot, const float* left, const float* right,
                            const float* sigma, float* gw);

}  // namespace cgan
