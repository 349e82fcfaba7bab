// The weight of a linear or conv2d layer unit, optionally spectrally normalised: its slots, the weight forward uses and the route of its gradient.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cgan/nn/layer.hpp"
#include "cgan/nn/spectral_norm.hpp"

namespace cgan {

class LayerWeight {
 public:
  // The weight slot ("<pre>weight", or the trained "<pre>weight_orig" when spectrally normalised).
  void add_weight(LayerBuild& b, std::vector<int64_t> shape, int fan_in) {
    w = b.slot(b.pre + (b.spec.spectral_norm ? "weight_orig" : "weight"), std::move(shape), false, 'u', fan_in);
  }
  // u and v as state slots (after the bias, as checkpoints name them), and the normaliser.
  void add_spectral_norm(LayerBuild& b, SpectralNormShape s) {
    if (!b.spec.spectral_norm) return;
    u_ = b.slot(b.pre + "weight_u", {s.rows}, true, 'r', 1);
    v_ = b.slot(b.pre + "weight_v", {s.cols}, true, 'r', 1);
    sn = std::make_unique<SpectralNorm>(b.be, s);
  }
  // Before the layer's forward: W_sn of this step (train: one power iteration).
  void forward(const LayerRun& r) const {
    if (sn) sn->forward(r.params + w, r.state + u_, r.state + v_, r.train);
  }
  const float* weight(const float* params) const { return sn ? sn->weight_sn() : params + w; }
  // After dL/dW_sn was written to sn->grad_sn(): into the weight's gradient.
  void backward(const LayerRun& r) const { sn->backward(r.state + u_, r.state + v_, r.grads + w); }

  size_t w = 0;  // the weight's offset in the parameters
  std::unique_ptr<SpectralNorm> sn;

 private:
  size_t u_ = 0, v_ = 0;
};

}  // namespace cgan
