// The batchnorm layer unit: {"batchnorm": {"momentum", "eps", "conditional"}}, per channel on an image,
// per feature on flat input; conditional: per-sample gain and bias maps [K, C] from the condition.
#include <memory>
#include <ostream>

#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"

namespace cgan {
namespace {

// Batch norm per channel over N*H*W (an image) or per feature (flat), with the fused activation in
// its output pass; conditional: gain = 1 + cond . W_gain, bias = cond . W_bias per sample.
class BatchNormLayer final : public ModelLayer {
 public:
  BatchNormLayer(int c, int s, float momentum, float eps, Act act, float slope)
      : c_(c), s_(s), momentum_(momentum), eps_(eps), act_(act), slope_(slope) {}
  void arena(LayerArena& a) override {
    const size_t B = static_cast<size_t>(batch);
    a.take(&save_mean_, c_);
    a.take(&save_invstd_, c_);
    if (!cond_) return;
    a.take(&dgain_, B * c_);
    a.take(&dbias_, B * c_);
    a.take_shared(kGradGain, &gdgain_, B * c_);  // the gain/bias gradients: one pair for all layers
    a.take_shared(kGradBias, &gdbias_, B * c_);
  }
  bool reads_condition() const override { return cond_; }
  const float* forward(const LayerRun& r, const float* x) override {
    Backend& be = r.be;
    const int B = r.B;
    float *rmean = r.state + rmean_, *rvar = r.state + rvar_;
    if (cond_) {
      CGAN_CHECK(r.cond, "model ", r.model, ": conditional batch norm needs the condition vectors");
      be.gemm(false, false, B, c_, r.K, 1.f, r.cond, r.params + gain_, 0.f, dgain_);
      be.gemm(false, false, B, c_, r.K, 1.f, r.cond, r.params + bias_, 0.f, dbias_);
      if (r.train)
        be.cbn_forward_train(B, c_, s_, eps_, momentum_, x, dgain_, dbias_, y, save_mean_, save_invstd_, rmean, rvar,
                             act_, slope_);
      else
        be.cbn_forward_eval(B, c_, s_, eps_, x, dgain_, dbias_, rmean, rvar, y, act_, slope_);
    } else if (r.train && r.bn_sync)
      be.batchnorm_forward_train_sync(B, c_, s_, eps_, momentum_, x, r.params + w_, r.params + b_, y, save_mean_,
                                      save_invstd_, rmean, rvar, *r.bn_sync, act_, slope_);
    else if (r.train)
      be.batchnorm_forward_train(B, c_, s_, eps_, momentum_, x, r.params + w_, r.params + b_, y, save_mean_,
                                 save_invstd_, rmean, rvar, act_, slope_);
    else
      be.batchnorm_forward_eval(B, c_, s_, eps_, x, r.params + w_, r.params + b_, rmean, rvar, y, act_, slope_);
    // the layer before left its bias to this norm (ModelLayer::bias_for_norm): the running mean is
    // that of the biased output, as without the fold
    if (r.train && folded_bias_ != LayerBuild::kNoBias) be.axpy(c_, momentum_, r.params + folded_bias_, rmean);
    return y;
  }
  float* backward(const LayerRun& r, float* g, float* gin, bool, bool param_grads) override {
    Backend& be = r.be;
    const int B = r.B;
    CGAN_CHECK(train, "model ", r.model, ": backward through batch norm needs a training forward");
    if (act_ != Act::none) be.bias_act_backward(act_, slope_, B, out(), y, g, nullptr);
    if (cond_) {
      be.cbn_backward(B, c_, s_, x, dgain_, save_mean_, save_invstd_, g, gin, gdgain_, gdbias_);
      if (param_grads) {
        be.gemm(true, false, r.K, c_, B, 1.f, r.cond, gdgain_, 1.f, r.grads + gain_);
        be.gemm(true, false, r.K, c_, B, 1.f, r.cond, gdbias_, 1.f, r.grads + bias_);
      }
    } else if (r.bn_sync) {
      be.batchnorm_backward_sync(B, c_, s_, x, r.params + w_, save_mean_, save_invstd_, g, gin, r.grads + w_,
                                 r.grads + b_, *r.bn_sync);
    } else {
      be.batchnorm_backward(B, c_, s_, x, r.params + w_, save_mean_, save_invstd_, g, gin, r.grads + w_, r.grads + b_);
    }
    return gin;
  }
  void describe(std::ostream& os, int K) const override {
    if (act_ != Act::none) os << " + " << act_name(act_) << " (fused)";
    if (cond_) os << " conditional (gain, bias " << K << "x" << c_ << ")";
  }
  // Its slots, in checkpoint order, and the bias the layer before it folded into it.
  void add_slots(LayerBuild& b) {
    folded_bias_ = b.folded_bias;
    if (b.spec.conditional) {
      b.require(b.num_classes > 0, ".conditional: conditional batch norm needs labelled data (labels or tags)");
      cond_ = true;
      gain_ = b.slot(b.pre + "gain.weight", {b.num_classes, c_}, false, '0', 1);
      bias_ = b.slot(b.pre + "bias.weight", {b.num_classes, c_}, false, '0', 1);
    } else {
      w_ = b.slot(b.pre + "weight", {c_}, false, '1', 1);
      b_ = b.slot(b.pre + "bias", {c_}, false, '0', 1);
    }
    rmean_ = b.slot(b.pre + "running_mean", {c_}, true, '0', 1);
    rvar_ = b.slot(b.pre + "running_var", {c_}, true, '1', 1);
  }

 private:
  enum { kGradGain = 0, kGradBias = 1 };
  int c_, s_;  // channels and values per channel of one sample
  float momentum_, eps_;
  Act act_;
  float slope_;
  bool cond_ = false;
  size_t w_ = 0, b_ = 0, gain_ = 0, bias_ = 0, rmean_ = 0, rvar_ = 0;
  size_t folded_bias_ = LayerBuild::kNoBias;  // LayerBuild::folded_bias
  float *save_mean_ = nullptr, *save_invstd_ = nullptr;
  float *dgain_ = nullptr, *dbias_ = nullptr;    // cond . W_gain, cond . W_bias [B, C] of the last forward
  float *gdgain_ = nullptr, *gdbias_ = nullptr;  // their gradients (shared)
};

class BatchNorm final : public LayerUnit {
 public:
  const char* name() const override { return LayerKind::batchnorm; }
  bool fuses_activation() const override { return true; }
  int rank() const override { return 6; }
  void parse(const nlohmann::json& v, const std::string& vp, LayerSpec& l, const nlohmann::json**) const override {
    cfg::Obj o(v, vp);
    l.momentum = static_cast<float>(o.number("momentum", 0.1, 0.0, 1.0, true, false));
    l.eps = static_cast<float>(o.number("eps", 1e-5, 0.0, 1.0, true, false));
    l.conditional = o.boolean("conditional", false);
    o.finish();
  }
  nlohmann::json to_json(const LayerSpec& l) const override {
    nlohmann::json b = {{"momentum", l.momentum}, {"eps", l.eps}};
    if (l.conditional) b["conditional"] = true;
    return b;
  }
  void plan(const LayerSpec& l, LayerPlan& p) const override {
    const uint64_t ch = p.image ? p.c : p.width();
    p.add_state(2 * ch);        // running mean and variance
    p.add_activations(2 * ch);  // the saved mean and inverse deviation
    if (l.conditional) {        // gain and bias maps [K, C], their outputs [B, C] (and the shared gradients)
      p.fits_int(LayerPlan::mul(p.K, ch), cat("the gain map ", p.K, "x", ch));
      p.add_params(LayerPlan::mul(2 * p.K, ch));
      p.add_activations(LayerPlan::mul(2 * p.B, ch));
      p.cbn_c = std::max(p.cbn_c, ch);
    } else {
      p.add_params(2 * ch);
    }
    p.what = cat(ch, " channels");
  }
  std::unique_ptr<ModelLayer> build(LayerBuild& b, SampleShape* out) const override {
    const SampleShape& sh = b.in;
    auto L = std::make_unique<BatchNormLayer>(sh.image ? sh.c : sh.width(), sh.image ? sh.h * sh.w : 1, b.spec.momentum,
                                              b.spec.eps, b.act, b.slope);
    L->add_slots(b);
    *out = sh;
    return L;
  }
};

const RegisterLayer<BatchNorm> reg;

}  // namespace
}  // namespace cgan
