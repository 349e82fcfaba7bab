// The pooling layer units: {"avgpool2d" | "maxpool2d": {"kernel", "stride" (default: the window),
// "padding" (at most half the window)}}, per channel, no parameters.
#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"
#include "window.hpp"

namespace cgan {
namespace {

class Pool2d : public LayerUnit {
 public:
  void parse(const nlohmann::json& v, const std::string& vp, LayerSpec& l, const nlohmann::json**) const override {
    cfg::Obj o(v, vp);
    const nlohmann::json* k = o.get("kernel");
    if (!k) throw Error(cat(o.at("kernel"), ": missing (the window size is required)"));
    cfg::int_pair(*k, o.at("kernel"), 1, l.kernel_h, l.kernel_w);
    l.stride_h = l.kernel_h;
    l.stride_w = l.kernel_w;
    if (const nlohmann::json* st = o.get("stride")) cfg::int_pair(*st, o.at("stride"), 1, l.stride_h, l.stride_w);
    if (const nlohmann::json* pd = o.get("padding")) {
      cfg::int_pair(*pd, o.at("padding"), 0, l.pad_h, l.pad_w);
      if (2 * l.pad_h > l.kernel_h || 2 * l.pad_w > l.kernel_w)
        throw Error(cat(o.at("padding"), ": must be at most half the window ", l.kernel_h, "x", l.kernel_w,
                        ", got ", cfg::describe(*pd)));
    }
    o.finish();
  }
  nlohmann::json to_json(const LayerSpec& l) const override { return window::geometry_json(l); }
  void check_shape(const LayerSpec& l, ConfigShape& s, const std::string& lp) const override {
    window::check_shape(l, s, lp, false);
  }
  void plan(const LayerSpec& l, LayerPlan& p) const override {
    uint64_t oh = 0, ow = 0;
    if (window::plan_output(l, p, &oh, &ow)) window::plan_finish(p, oh, ow);
  }
};

class AvgPool2d final : public Pool2d {
 public:
  const char* name() const override { return LayerKind::avgpool2d; }
  int rank() const override { return 8; }
};

class MaxPool2d final : public Pool2d {
 public:
  const char* name() const override { return LayerKind::maxpool2d; }
  int rank() const override { return 9; }
};

const RegisterLayer<AvgPool2d> reg_avg;
const RegisterLayer<MaxPool2d> reg_max;

}  // namespace
}  // namespace cgan
