// The conv2d layer unit: {"conv2d": {"out", "kernel", "stride", "padding", "spectral_norm"}}, weight
// [K, C, R, S] and bias [K], optionally spectrally normalised.
#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"
#include "window.hpp"

namespace cgan {
namespace {

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
};

const RegisterLayer<Conv2d> reg;

}  // namespace
}  // namespace cgan
