// The linear layer unit: {"linear": out}, y = x W + b (W [in, out]), optionally spectrally normalised.
#include <algorithm>
#include <memory>
#include <ostream>

#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"
#include "weight.hpp"

namespace cgan {
namespace {

// y = act(x W + b): one GEMM, then one bias+activation pass.
class LinearLayer final : public ModelLayer {
 public:
  LinearLayer(Act act, float slope, MulPrecision mul) : act_(act), slope_(slope), mul_(mul) {}
  const float* forward(const LayerRun& r, const float* x) override {
    weight.forward(r);
    r.be.gemm(false, false, r.B, out(), in(), 1.f, x, weight.weight(r.params), 0.f, y, mul_);
    r.be.bias_act_forward(act_, slope_, r.B, out(), r.params + b, y);
    return y;
  }
  float* backward(const LayerRun& r, float* g, float* spare, bool input_grad, bool param_grads) override {
    r.be.bias_act_backward(act_, slope_, r.B, out(), y, g, param_grads ? r.grads + b : nullptr);
    if (param_grads && weight.sn) {  // dL/dW_sn, then through W_sn = W / sigma into the weight's gradient
      r.be.gemm(true, false, in(), out(), r.B, 1.f, x, g, 0.f, weight.sn->grad_sn(), mul_);
      weight.backward(r);
    } else if (param_grads) {
      r.be.gemm(true, false, in(), out(), r.B, 1.f, x, g, 1.f, r.grads + weight.w, mul_);
    }
    if (!input_grad) return g;
    r.be.gemm(false, true, r.B, in(), out(), 1.f, g, weight.weight(r.params), 0.f, spare, mul_);
    return spare;
  }
  void describe(std::ostream& os, int) const override {
    if (act_ != Act::none) os << " + " << act_name(act_) << " (fused)";
    if (weight.sn) os << " + spectral norm";
  }
  LayerWeight weight;
  size_t b = 0;

 private:
  Act act_;
  float slope_;
  MulPrecision mul_;  // the network's (NetSpec::bf16)
};

class Linear final : public LayerUnit {
 public:
  const char* name() const override { return LayerKind::linear; }
  bool fuses_activation() const override { return true; }
  int rank() const override { return 0; }
  bool takes_spectral_norm() const override { return true; }
  bool can_start() const override { return true; }
  void parse(const nlohmann::json& v, const std::string& vp, LayerSpec& l, const nlohmann::json**) const override {
    l.out = static_cast<int>(cfg::Obj::as_integer(v, vp, 1, 1 << 24));
  }
  nlohmann::json to_json(const LayerSpec& l) const override { return l.out; }
  void check_shape(const LayerSpec& l, ConfigShape& s, const std::string&) const override {
    s.width_known = true, s.image = false, s.width = l.out;
  }
  void plan(const LayerSpec& l, LayerPlan& p) const override {
    const uint64_t width = p.width(), out = static_cast<uint64_t>(l.out);
    p.fits_int(LayerPlan::mul(width, out), cat("the weight ", width, "x", l.out));
    p.add_params(LayerPlan::add(LayerPlan::mul(width, out), out));
    if (l.spectral_norm) p.add_spectral_norm(out, width);
    p.c = out, p.h = p.w = 1, p.image = false;
    p.what = cat(l.out, " units");
  }
  uint64_t workspace_cap(const LayerSpec& l, const LayerPlan& p, Backend& be) const override {
    // the three GEMMs' operands (a gemm's rounded copies of bf16 operands: Backend::gemm_workspace_cap)
    const int B = static_cast<int>(p.B), in = static_cast<int>(p.width()), out = l.out;
    return std::max({be.gemm_workspace_cap(B, out, in, p.operands), be.gemm_workspace_cap(in, out, B, p.operands),
                     be.gemm_workspace_cap(B, in, out, p.operands)});
  }
  std::unique_ptr<ModelLayer> build(LayerBuild& b, SampleShape* out) const override {
    const int width = b.in.width(), n = b.spec.out;
    auto L = std::make_unique<LinearLayer>(b.act, b.slope, b.mul);
    L->weight.add_weight(b, {width, n}, width);
    L->b = b.slot(b.pre + "bias", {n}, false, 'u', width);
    L->weight.add_spectral_norm(b, SpectralNormShape{n, width, true});  // W = weight^T
    *out = SampleShape{n, 1, 1, false};
    return L;
  }
};

const RegisterLayer<Linear> reg;

}  // namespace
}  // namespace cgan
