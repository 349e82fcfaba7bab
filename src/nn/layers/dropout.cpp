// The dropout layer unit: {"dropout": p}, p in [0, 1); in training a keep mask of 0 or 1/(1-p).
#include <memory>
#include <ostream>

#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"

namespace cgan {
namespace {

class DropoutLayer final : public ModelLayer {
 public:
  explicit DropoutLayer(float p) : p_(p) {}
  void arena(LayerArena& a) override { a.take(&mask_, static_cast<size_t>(batch) * out()); }
  const float* forward(const LayerRun& r, const float* x) override {
    if (!(r.train && p_ > 0.f)) return x;  // identity at evaluation
    const size_t n = static_cast<size_t>(r.B) * out();
    r.be.copy(y, x, n);
    r.be.dropout_forward(n, p_, r.seed, r.stream.sub(64, index), y, mask_, r.sample_offset * out());
    return y;
  }
  float* backward(const LayerRun& r, float* g, float*, bool, bool) override {
    if (train && p_ > 0.f) r.be.mul(static_cast<size_t>(r.B) * out(), mask_, g);
    return g;
  }
  void describe(std::ostream& os, int) const override { os << " p=" << p_; }
  const float* dropout_mask() const override { return train && p_ > 0.f && y_used == y ? mask_ : nullptr; }

 private:
  float p_;
  float* mask_ = nullptr;
};

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
  std::unique_ptr<ModelLayer> build(LayerBuild& b, SampleShape* out) const override {
    *out = b.in;
    return std::make_unique<DropoutLayer>(b.spec.p);
  }
};

const RegisterLayer<Dropout> reg;

}  // namespace
}  // namespace cgan
