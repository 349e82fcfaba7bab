// The linear layer unit: {"linear": out}, y = x W + b (W [in, out]), optionally spectrally normalised.
#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"

namespace cgan {
namespace {

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
};

const RegisterLayer<Linear> reg;

}  // namespace
}  // namespace cgan
