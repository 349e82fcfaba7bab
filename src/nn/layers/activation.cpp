// The activation layer units: {"relu": {}}, {"sigmoid": {}}, {"tanh": {}} (no arguments; true is
// accepted too) and {"leaky_relu": slope}, slope in (0, 1). Elementwise: the shape is kept.
#include <memory>

#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"

namespace cgan {
namespace {

// An activation that is a layer of its own (not fused into the layer before it): y = f(x).
class ActivationLayer final : public ModelLayer {
 public:
  ActivationLayer(Act act, float slope) : act_(act), slope_(slope) {}
  const float* forward(const LayerRun& r, const float* x) override {
    r.be.copy(y, x, static_cast<size_t>(r.B) * out());
    r.be.bias_act_forward(act_, slope_, r.B, out(), nullptr, y);
    return y;
  }
  float* backward(const LayerRun& r, float* g, float*, bool, bool) override {
    r.be.bias_act_backward(act_, slope_, r.B, out(), y, g, nullptr);
    return g;
  }

 private:
  Act act_;
  float slope_;
};

class Activation : public LayerUnit {
 public:
  void plan(const LayerSpec&, LayerPlan& p) const override { p.what = "its output"; }
  std::unique_ptr<ModelLayer> build(LayerBuild& b, SampleShape* out) const override {
    *out = b.in;
    return std::make_unique<ActivationLayer>(activation(), b.spec.slope);
  }
};

class NoArgActivation : public Activation {
 public:
  void parse(const nlohmann::json& v, const std::string& vp, LayerSpec&, const nlohmann::json**) const override {
    if (!(v.is_object() && v.empty()) && !(v.is_boolean() && v.get<bool>()))
      throw Error(cat(vp, ": expected {} (this layer takes no arguments), got ", cfg::describe(v)));
  }
  nlohmann::json to_json(const LayerSpec&) const override { return nlohmann::json::object(); }
};

class Relu final : public NoArgActivation {
 public:
  const char* name() const override { return LayerKind::relu; }
  Act activation() const override { return Act::relu; }
  int rank() const override { return 1; }
};

class Sigmoid final : public NoArgActivation {
 public:
  const char* name() const override { return LayerKind::sigmoid; }
  Act activation() const override { return Act::sigmoid; }
  int rank() const override { return 3; }
};

class Tanh final : public NoArgActivation {
 public:
  const char* name() const override { return LayerKind::tanh; }
  Act activation() const override { return Act::tanh; }
  int rank() const override { return 4; }
};

class LeakyRelu final : public Activation {
 public:
  const char* name() const override { return LayerKind::leaky_relu; }
  Act activation() const override { return Act::leaky_relu; }
  int rank() const override { return 2; }
  void parse(const nlohmann::json& v, const std::string& vp, LayerSpec& l, const nlohmann::json**) const override {
    l.slope = static_cast<float>(cfg::Obj::as_number(v, vp, 0.0, 1.0, true, true));
  }
  nlohmann::json to_json(const LayerSpec& l) const override { return l.slope; }
};

const RegisterLayer<Relu> reg_relu;
const RegisterLayer<LeakyRelu> reg_leaky;
const RegisterLayer<Sigmoid> reg_sigmoid;
const RegisterLayer<Tanh> reg_tanh;

}  // namespace
}  // namespace cgan
