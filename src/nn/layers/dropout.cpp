// The dropout layer unit: {"dropout": p}, p in [0, 1); in training a keep mask of 0 or 1/(1-p).
#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"

namespace cgan {
namespace {

class Dropout final : public LayerUnit {
 public:
  const char* name() const override { return LayerKind::dropout; }
  int rank() const override { return 5; }
  void parse(const nlohmann::json& v, const std::string& vp, LayerSpec& l, const nlohmann::json**) const override {
    l.p = static_cast<float>(cfg::Obj::as_number(v, vp, 0.0, 1.0, false, true));
  }
  nlohmann::json to_json(const LayerSpec& l) const override { return l.p; }
  void plan(const LayerSpec&, LayerPlan& p) const override {
    p.add_activations(LayerPlan::mul(p.B, p.width()));  // the mask
    p.what = "its mask";
  }
};

const RegisterLayer<Dropout> reg;

}  // namespace
}  // namespace cgan
