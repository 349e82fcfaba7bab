// Scalar math shared by the CPU backend and the CUDA kernels, so the two cannot drift:
// activations and their derivatives (from the activation's output), and the fused losses.
#pragma once
#include <cmath>

#include "cgan/hd.hpp"

namespace cgan {

enum class Act { none = 0, relu, leaky_relu, sigmoid, tanh };
enum class LossKind { log = 0, squared };

CGAN_HD float sigmoidf_stable(float x) {
  if (x >= 0.f) {
    const float e = expf(-x);
    return 1.f / (1.f + e);
  }
  const float e = expf(x);
  return e / (1.f + e);
}

CGAN_HD float act_forward(Act a, float slope, float x) {
  switch (a) {
    case Act::relu: return x > 0.f ? x : 0.f;
    case Act::leaky_relu: return x > 0.f ? x : slope * x;
    case Act::sigmoid: return sigmoidf_stable(x);
    case Act::tanh: return tanhf(x);
    default: return x;
  }
}

// Derivative of the activation expressed through its output y (valid for slope > 0 and for relu;
// at the kink x == 0 the left slope is used, as PyTorch does).
CGAN_HD float act_grad_from_output(Act a, float slope, float y) {
  switch (a) {
    case Act::relu: return y > 0.f ? 1.f : 0.f;
    case Act::leaky_relu: return y > 0.f ? 1.f : slope;
    case Act::sigmoid: return y * (1.f - y);
    case Act::tanh: return 1.f - y * y;
    default: return 1.f;
  }
}

// Per-element loss and dL/dx for the fused losses.
//  log:     x is a logit; L = BCE(sigmoid(x), t) = max(x,0) - x t + log1p(exp(-|x|)), dL/dx = s - t.
//  squared: x is D's raw output; L = (x - t)^2, dL/dx = 2 (x - t).
// `prob` is what the log reports as D(x): sigmoid(x) for log, x itself for squared.
struct LossPoint {
  float loss, grad, prob;
};

CGAN_HD LossPoint loss_point(LossKind k, float x, float t) {
  LossPoint p;
  if (k == LossKind::log) {
    const float s = sigmoidf_stable(x);
    p.loss = fmaxf(x, 0.f) - x * t + log1pf(expf(-fabsf(x)));
    p.grad = s - t;
    p.prob = s;
  } else {
    const float d = x - t;
    p.loss = d * d;
    p.grad = 2.f * d;
    p.prob = x;
  }
  return p;
}

// Adam, PyTorch's formula: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). The per-step scalars are computed in double
// by adam_scalars (on the host, or by the CUDA kernel when t is read from device memory), the
// per-element update by both backends with the function below.
struct AdamScalars {
  float step;  // lr / (1 - b1^t)
  float rc2;   // 1 / sqrt(1 - b2^t)
};

CGAN_HD AdamScalars adam_scalars(float lr, float b1, float b2, int t) {
  const double c1 = 1.0 - pow(static_cast<double>(b1), static_cast<double>(t));
  const double c2 = 1.0 - pow(static_cast<double>(b2), static_cast<double>(t));
  return {static_cast<float>(lr / c1), static_cast<float>(1.0 / sqrt(c2))};
}

CGAN_HD void adam_update(float& p, float& m, float& v, float g, AdamScalars s, float b1, float b2, float eps) {
  m = b1 * m + (1.f - b1) * g;
  v = b2 * v + (1.f - b2) * g * g;
  p -= s.step * m / (sqrtf(v) * s.rc2 + eps);
}

}  // namespace cgan
