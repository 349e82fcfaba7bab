// The pooling layer units: {"avgpool2d" | "maxpool2d": {"kernel", "stride" (default: the window),
// "padding" (at most half the window)}}, per channel, no parameters.
#include <memory>
#include <ostream>

#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"
#include "window.hpp"

namespace cgan {
namespace {

class PoolLayer final : public ModelLayer {
 public:
  PoolLayer(Pool kind, const PoolShape& ps) : kind_(kind), ps_(ps) {}
  const float* forward(const LayerRun& r, const float* x) override {
    r.be.pool2d_forward(kind_, ps_, x, y);
    return y;
  }
  float* backward(const LayerRun& r, float* g, float* spare, bool, bool) override {
    r.be.pool2d_backward(kind_, ps_, x, y, g, spare);
    return spare;
  }
  void describe(std::ostream& os, int) const override {
    window::describe(os, false, ps_.R, ps_.S, ps_.stride_h, ps_.stride_w, ps_.pad_h, ps_.pad_w);
  }

 private:
  Pool kind_;
  PoolShape ps_;
};

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
        throw Error(cat(o.at("padding"), ": must be at most half the window ", l.kernel_h, "x", l.kernel_w, ", got ",
                        cfg::describe(*pd)));
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
  virtual Pool pool() const = 0;
  std::unique_ptr<ModelLayer> build(LayerBuild& b, SampleShape* out) const override {
    const LayerSpec& ls = b.spec;
    window::require_image(b, false);
    b.require(ls.stride_h > 0 && ls.stride_w > 0 && ls.pad_h >= 0 && ls.pad_w >= 0 && 2 * ls.pad_h <= ls.kernel_h &&
                  2 * ls.pad_w <= ls.kernel_w,
              ": bad stride, or padding more than half the window");
    PoolShape ps;
    ps.N = b.batch;
    ps.C = b.in.c, ps.H = b.in.h, ps.W = b.in.w;
    ps.R = ls.kernel_h, ps.S = ls.kernel_w;
    ps.stride_h = ls.stride_h, ps.stride_w = ls.stride_w, ps.pad_h = ls.pad_h, ps.pad_w = ls.pad_w;
    *out = SampleShape{b.in.c, ps.P(), ps.Q(), true};
    return std::make_unique<PoolLayer>(pool(), ps);
  }
};

class AvgPool2d final : public Pool2d {
 public:
  const char* name() const override { return LayerKind::avgpool2d; }
  int rank() const override { return 8; }
  Pool pool() const override { return Pool::avg; }
};

class MaxPool2d final : public Pool2d {
 public:
  const char* name() const override { return LayerKind::maxpool2d; }
  int rank() const override { return 9; }
  Pool pool() const override { return Pool::max; }
};

const RegisterLayer<AvgPool2d> reg_avg;
const RegisterLayer<MaxPool2d> reg_max;

}  // namespace
}  // namespace cgan
