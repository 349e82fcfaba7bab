// Elementwise math of conditional batch norm, shared by the CPU backend (src/cpu/cpu_conditional.cpp)
// and the CUDA kernels (cuda/conditional.cu), so the two cannot drift.
#pragma once
#include "cgan/base/hd.hpp"
#include "cgan/backend/scalar_math.hpp"

namespace cgan {

// y = act((1 + dgain) xhat + dbias), xhat = a (x - m) + b: a = invstd and b = -invstd lo, where
// lo = mean - m is the float mean m's rounding (batch statistics), or a = 1/sqrt(run_var + eps),
// b = 0, m = run_mean (evaluation).
CGAN_HD float cbn_forward_point(Act act, float slope, float x, float m, float a, float b, float dgain, float dbias) {
  return act_forward(act, slope, (1.f + dgain) * (a * (x - m) + b) + dbias);
}

// gx = (1 + dgain) invstd gy + u (x - m) + w (u, w: the channel's terms, see cpu_cbn_backward).
CGAN_HD float cbn_backward_point(float gy, float x, float m, float invstd, float dgain, float u, float w) {
  return (1.f + dgain) * invstd * gy + u * (x - m) + w;
}

}  // namespace cgan
