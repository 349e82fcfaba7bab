// The reshape layer unit: {"reshape": [C, H, W]}, the same values read as an image (no arena slice).
#include <memory>

#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"

namespace cgan {
namespace {

// The same values, now read as an image: no output of its own, the same gradient.
class ReshapeLayer final : public ModelLayer {
 public:
  const float* forward(const LayerRun&, const float* x) override { return x; }
  float* backward(const LayerRun&, float* g, float*, bool, bool) override { return g; }
};

class Reshape final : public LayerUnit {
 public:
  const char* name() const override { return LayerKind::reshape; }
  int rank() const override { return 10; }
  bool can_start() const override { return true; }
  void parse(const nlohmann::json& v, const std::string& vp, LayerSpec& l, const nlohmann::json**) const override {
    if (!v.is_array() || v.size() != 3)
      throw Error(cat(vp, ": expected [C, H, W] of positive integers, got ", cfg::describe(v)));
    for (int i = 0; i < 3; ++i) {
      if (!v[i].is_number_integer() || v[i].get<int64_t>() < 1 || v[i].get<int64_t>() > (1 << 24))
        throw Error(cat(vp, ": expected [C, H, W] of positive integers, got ", cfg::describe(v)));
      l.shape[i] = static_cast<int>(v[i].get<int64_t>());
    }
  }
  nlohmann::json to_json(const LayerSpec& l) const override { return {l.shape[0], l.shape[1], l.shape[2]}; }
  void check_shape(const LayerSpec& l, ConfigShape& s, const std::string& lp) const override {
    const int64_t n = int64_t(l.shape[0]) * l.shape[1] * l.shape[2];
    if (s.width_known && n != s.width)
      throw Error(cat(lp, ": [", l.shape[0], ", ", l.shape[1], ", ", l.shape[2], "] holds ", n,
                      " values but its input has ", s.width));
    s.width_known = true, s.image = true, s.width = n, s.c = l.shape[0], s.h = l.shape[1], s.w = l.shape[2];
  }
  void plan(const LayerSpec& l, LayerPlan& p) const override {
    p.c = l.shape[0], p.h = l.shape[1], p.w = l.shape[2], p.image = true;
    p.what = "its output";
  }
  bool output_in_arena() const override { return false; }
  std::unique_ptr<ModelLayer> build(LayerBuild& b, SampleShape* out) const override {
    const LayerSpec& ls = b.spec;
    const int width = b.in.width();
    const int64_t n = int64_t(ls.shape[0]) * ls.shape[1] * ls.shape[2];
    b.require(ls.shape[0] > 0 && ls.shape[1] > 0 && ls.shape[2] > 0 && n == width, ": [", ls.shape[0], ", ",
              ls.shape[1], ", ", ls.shape[2], "] holds ", n, " values but its input has ", width);
    *out = SampleShape{ls.shape[0], ls.shape[1], ls.shape[2], true};
    return std::make_unique<ReshapeLayer>();
  }
};

const RegisterLayer<Reshape> reg;

}  // namespace
}  // namespace cgan
