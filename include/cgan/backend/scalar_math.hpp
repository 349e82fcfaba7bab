// Scalar math shared by the CPU backend and the CUDA kernels, so the two cannot drift:
// activations and their derivatives (from the activation's output), and the fused losses.
#pragma once
#include <cmath>

#include "cgan/base/hd.hpp"

namespace cgan {

enum class Act { none = 0, relu, leaky_relu, sigmoid, tanh };
// log: BCE on a logit; squared: least squares; hinge: max(0, 1 - y x); linear: -y x (G's hinge loss).
enum class LossKind { log = 0, squared, hinge, linear };

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
//  hinge:   x is D's raw output (a critic score), y = 2t - 1 (t = 1: y = +1, t = 0: y = -1);
//           L = max(0, 1 - y x), dL/dx = -y where 1 - y x > 0, else 0 (0 at the kink, as
//           PyTorch's relu). D's hinge terms: relu(1 - D(x)) (t = 1) and relu(1 + D(G(z))) (t = 0).
//  linear:  x is D's raw output, y = 2t - 1; L = -y x, dL/dx = -y. G's hinge loss -D(G(z)) (t = 1).
// `prob` is what the log reports as D(x): sigmoid(x) for log, x itself for the others. `says_real`
// is D's decision (counted as correct when it equals t > 0.5): prob > 0.5 for log and squared
// (targets 0 and 1), x > 0 for hinge and linear (the sign of the critic, targets -1 and +1).
struct LossPoint {
  float loss, grad, prob;
  bool says_real;
};

CGAN_HD LossPoint loss_point(LossKind k, float x, float t) {
  LossPoint p;
  if (k == LossKind::log) {
    const float s = sigmoidf_stable(x);
    p.loss = fmaxf(x, 0.f) - x * t + log1pf(expf(-fabsf(x)));
    p.grad = s - t;
    p.prob = s;
    p.says_real = s > 0.5f;
  } else if (k == LossKind::squared) {
    const float d = x - t;
    p.loss = d * d;
    p.grad = 2.f * d;
    p.prob = x;
    p.says_real = x > 0.5f;
  } else {
    const float y = 2.f * t - 1.f;
    if (k == LossKind::hinge) {
      const float m = 1.f - y * x;
      p.loss = m > 0.f ? m : 0.f;
      p.grad = m > 0.f ? -y : 0.f;
    } else {
      p.loss = -(y * x);
      p.grad = -y;
    }
    p.prob = x;
    p.says_real = x > 0.f;
  }
  return p;
}

// Exponential moving average of a parameter after an optimiser step: avg <- avg - (1 - decay) (avg - p)
// (torch.lerp's form for a weight >= 0.5, and torch_ema's), `omd` = 1 - decay computed once per call
// (exact in float for decay in [0.5, 1)).
CGAN_HD float ema_point(float avg, float p, float omd) { return avg - omd * (avg - p); }

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
