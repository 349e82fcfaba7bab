// The conv2d layer unit: {"conv2d": {"out", "kernel", "stride", "padding", "spectral_norm"}}, weight
// [K, C, R, S] and bias [K], optionally spectrally normalised.
#include <memory>
#include <ostream>

#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"
#include "weight.hpp"
#include "window.hpp"

namespace cgan {
namespace {

// y = act(conv(x, W) + b): the conv with a bias+activation epilogue; before batch norm the bias is
// left to the norm in training (ModelLayer::bias_for_norm): no bias pass, no bias-gradient pass.
class ConvLayer final : public ModelLayer {
 public:
  ConvLayer(const ConvShape& cs, Act act, float slope, size_t ws) : cs_(cs), act_(act), slope_(slope), ws_floats_(ws) {}
  void arena(LayerArena& a) override {
    if (ws_floats_) a.workspace(&ws_, ws_floats_);
  }
  const float* forward(const LayerRun& r, const float* x) override {
    weight.forward(r);
    const bool folded = bias_for_norm != LayerBuild::kNoBias && r.train;
    r.be.conv2d_forward(cs_, x, weight.weight(r.params), folded ? nullptr : r.params + b, y, ws_, act_, slope_);
    return y;
  }
  float* backward(const LayerRun& r, float* g, float* spare, bool input_grad, bool param_grads) override {
    if (act_ != Act::none) r.be.bias_act_backward(act_, slope_, r.B, out(), y, g, nullptr);
    float* gbias = bias_for_norm != LayerBuild::kNoBias ? nullptr : r.grads + b;  // folded: exactly 0
    if (param_grads && weight.sn) {                                               // as the linear's
      r.be.fill(weight.sn->grad_sn(), weight.sn->shape().count(), 0.f);
      r.be.conv2d_backward_filter(cs_, x, g, weight.sn->grad_sn(), gbias, ws_);
      weight.backward(r);
    } else if (param_grads) {
      r.be.conv2d_backward_filter(cs_, x, g, r.grads + weight.w, gbias, ws_);
    }
    if (!input_grad) return g;
    r.be.conv2d_backward_data(cs_, g, weight.weight(r.params), spare, ws_);
    return spare;
  }
  void describe(std::ostream& os, int) const override {
    window::describe(os, true, cs_.R, cs_.S, cs_.stride_h, cs_.stride_w, cs_.pad_h, cs_.pad_w);
    if (act_ != Act::none) os << " + " << act_name(act_) << " (fused)";
    if (bias_for_norm != LayerBuild::kNoBias) os << " (bias folded into the batch norm)";
    if (weight.sn) os << " + spectral norm";
  }
  const ConvShape* conv_shape() const override { return &cs_; }
  LayerWeight weight;
  size_t b = 0;

 private:
  ConvShape cs_;
  Act act_;
  float slope_;
  size_t ws_floats_;
  float* ws_ = nullptr;  // the model's conv workspace (the widest of its conv layers')
};

// The convolution a conv2d layer runs on an N x C x H x W input.
ConvShape conv_shape(const LayerSpec& l, int N, int C, int H, int W) {
  ConvShape s;
  s.N = N, s.C = C, s.H = H, s.W = W;
  s.K = l.out, s.R = l.kernel_h, s.S = l.kernel_w;
  s.stride_h = l.stride_h, s.stride_w = l.stride_w, s.pad_h = l.pad_h, s.pad_w = l.pad_w;
  return s;
}

class Conv2d final : public LayerUnit {
 public:
  const char* name() const override { return LayerKind::conv2d; }
  bool fuses_activation() const override { return true; }
  int rank() const override { return 7; }
  bool takes_spectral_norm() const override { return true; }
  void parse(const nlohmann::json& v, const std::string& vp, LayerSpec& l,
             const nlohmann::json** sn_inner) const override {
    cfg::Obj o(v, vp);
    const nlohmann::json* out = o.get("out");
    if (!out) throw Error(cat(o.at("out"), ": missing (the number of output channels is required)"));
    l.out = static_cast<int>(cfg::Obj::as_integer(*out, o.at("out"), 1, 1 << 20));
    const nlohmann::json* k = o.get("kernel");
    if (!k) throw Error(cat(o.at("kernel"), ": missing (the kernel size is required)"));
    cfg::int_pair(*k, o.at("kernel"), 1, l.kernel_h, l.kernel_w);
    if (const nlohmann::json* st = o.get("stride")) cfg::int_pair(*st, o.at("stride"), 1, l.stride_h, l.stride_w);
    if (const nlohmann::json* pd = o.get("padding")) cfg::int_pair(*pd, o.at("padding"), 0, l.pad_h, l.pad_w);
    *sn_inner = o.get("spectral_norm");
    o.finish();
  }
  nlohmann::json to_json(const LayerSpec& l) const override {
    nlohmann::json j = window::geometry_json(l);
    j["out"] = l.out;
    return j;
  }
  void check_shape(const LayerSpec& l, ConfigShape& s, const std::string& lp) const override {
    window::check_shape(l, s, lp, true);
  }
  void plan(const LayerSpec& l, LayerPlan& p) const override {
    uint64_t oh = 0, ow = 0;
    if (!window::plan_output(l, p, &oh, &ow)) return;
    const uint64_t K = static_cast<uint64_t>(l.out);
    const uint64_t wn = LayerPlan::mul(LayerPlan::mul(LayerPlan::mul(K, p.c), l.kernel_h), l.kernel_w);
    p.fits_int(wn, cat("the weight ", l.out, "x", p.c, "x", l.kernel_h, "x", l.kernel_w));
    p.add_params(LayerPlan::add(wn, K));
    if (l.spectral_norm) p.add_spectral_norm(K, LayerPlan::mul(LayerPlan::mul(p.c, l.kernel_h), l.kernel_w));
    p.c = K;
    window::plan_finish(p, oh, ow);
  }
  uint64_t workspace_cap(const LayerSpec& l, const LayerPlan& p, Backend& be) const override {
    if (!p.image) return 0;  // the model refuses it
    ConvShape s =
        conv_shape(l, static_cast<int>(p.B), static_cast<int>(p.c), static_cast<int>(p.h), static_cast<int>(p.w));
    s.mul = p.operands;
    return s.P() > 0 && s.Q() > 0 ? be.conv2d_workspace_cap(s) : 0;
  }
  std::unique_ptr<ModelLayer> build(LayerBuild& b, SampleShape* out) const override {
    const LayerSpec& ls = b.spec;
    window::require_image(b, true);
    b.require(ls.out > 0 && ls.stride_h > 0 && ls.stride_w > 0 && ls.pad_h >= 0 && ls.pad_w >= 0,
              ": bad output channels, stride or padding");
    ConvShape cs = conv_shape(ls, b.batch, b.in.c, b.in.h, b.in.w);
    cs.mul = b.mul;
    const int fan_in = cs.C * cs.R * cs.S;
    auto L = std::make_unique<ConvLayer>(cs, b.act, b.slope, b.be.conv2d_workspace(cs));
    L->weight.add_weight(b, {cs.K, cs.C, cs.R, cs.S}, fan_in);
    L->b = b.slot(b.pre + "bias", {cs.K}, false, 'u', fan_in);
    if (b.before_batchnorm) L->bias_for_norm = L->b;
    L->weight.add_spectral_norm(b, SpectralNormShape{cs.K, fan_in, false});
    *out = SampleShape{cs.K, cs.P(), cs.Q(), true};
    return L;
  }
};

const RegisterLayer<Conv2d> reg;

}  // namespace
}  // namespace cgan
