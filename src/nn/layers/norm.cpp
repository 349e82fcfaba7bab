// The batchnorm layer unit: {"batchnorm": {"momentum", "eps", "conditional"}}, per channel on an image,
// per feature on flat input; conditional: per-sample gain and bias maps [K, C] from the condition.
#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"

namespace cgan {
namespace {

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
    if (l.conditional) {  // gain and bias maps [K, C], their outputs [B, C] (and the shared gradients)
      p.fits_int(LayerPlan::mul(p.K, ch), cat("the gain map ", p.K, "x", ch));
      p.add_params(LayerPlan::mul(2 * p.K, ch));
      p.add_activations(LayerPlan::mul(2 * p.B, ch));
      p.cbn_c = std::max(p.cbn_c, ch);
    } else {
      p.add_params(2 * ch);
    }
    p.what = cat(ch, " channels");
  }
};

const RegisterLayer<BatchNorm> reg;

}  // namespace
}  // namespace cgan
