// The windowed layers' shared shape logic (conv2d, avgpool2d, maxpool2d): kernel/stride/padding
// syntax, the config-time shape check and the memory plan's output shape.
#pragma once
#include <algorithm>
#include <ostream>
#include <string>

#include "cgan/config/json_obj.hpp"
#include "cgan/nn/layer.hpp"

namespace cgan::window {

inline nlohmann::json geometry_json(const LayerSpec& l) {
  return {{"kernel", cfg::pair_to_json(l.kernel_h, l.kernel_w)},
          {"stride", cfg::pair_to_json(l.stride_h, l.stride_w)},
          {"padding", cfg::pair_to_json(l.pad_h, l.pad_w)}};
}

// conv: changes the channels to l.out; word: "kernel " or "window ".
inline void check_shape(const LayerSpec& l, ConfigShape& s, const std::string& lp, bool conv) {
  if (!s.image) {
    if (s.width_known)
      throw Error(
          cat(lp, ": needs an image input (C, H, W) but gets ", s.width, " flat features; put a reshape before it"));
    throw Error(cat(lp, ": needs an image input (C, H, W); put a reshape before it"));
  }
  if (s.h + 2 * l.pad_h < l.kernel_h || s.w + 2 * l.pad_w < l.kernel_w)
    throw Error(cat(lp, ": ", conv ? "kernel " : "window ", l.kernel_h, "x", l.kernel_w,
                    " is larger than its padded input ", s.h + 2 * l.pad_h, "x", s.w + 2 * l.pad_w, " (input ", s.c,
                    "x", s.h, "x", s.w, ")"));
  s.h = (s.h + 2 * l.pad_h - l.kernel_h) / l.stride_h + 1;
  s.w = (s.w + 2 * l.pad_w - l.kernel_w) / l.stride_w + 1;
  if (conv) s.c = l.out;
  s.width = s.c * s.h * s.w;
}

// The plan's output size; false when the model will reject the layer (no image, window too large).
// On true, *oh, *ow are the output's height and width (the padded input checked to fit 32 bits).
inline bool plan_output(const LayerSpec& l, const LayerPlan& p, uint64_t* oh, uint64_t* ow) {
  if (!p.image) return false;  // the model says why (no image input)
  const uint64_t hp = p.h + 2 * static_cast<uint64_t>(l.pad_h), wp = p.w + 2 * static_cast<uint64_t>(l.pad_w);
  if (hp < static_cast<uint64_t>(l.kernel_h) || wp < static_cast<uint64_t>(l.kernel_w)) return false;
  p.fits_int(std::max(hp, wp), cat("the padded input ", hp, "x", wp));
  *oh = (hp - l.kernel_h) / l.stride_h + 1;
  *ow = (wp - l.kernel_w) / l.stride_w + 1;
  return true;
}

inline void plan_finish(LayerPlan& p, uint64_t oh, uint64_t ow) {
  p.fits_int(LayerPlan::mul(LayerPlan::mul(p.c, oh), ow), cat("the output ", p.c, "x", oh, "x", ow));
  p.h = oh, p.w = ow;
  p.what = cat("output ", p.c, "x", oh, "x", ow);
}

// The model's checks of a windowed layer's input (conv: "kernel ", pools: "window ").
inline void require_image(const LayerBuild& b, bool conv) {
  const LayerSpec& ls = b.spec;
  const SampleShape& sh = b.in;
  b.require(sh.image, ": needs an image input (C, H, W) but gets ", sh.width(),
            " flat features; put a reshape before it");
  b.require(sh.h + 2 * ls.pad_h >= ls.kernel_h && sh.w + 2 * ls.pad_w >= ls.kernel_w, ": ",
            conv ? "kernel " : "window ", ls.kernel_h, "x", ls.kernel_w, " is larger than its padded input ",
            sh.h + 2 * ls.pad_h, "x", sh.w + 2 * ls.pad_w, " (input ", sh.str(), ")");
}

// " (kernel 4x4, stride 2x2, padding 1x1)" of a summary line.
inline void describe(std::ostream& os, bool conv, int R, int S, int sh, int sw, int ph, int pw) {
  os << " (" << (conv ? "kernel " : "window ") << R << "x" << S << ", stride " << sh << "x" << sw;
  if (ph || pw) os << ", padding " << ph << "x" << pw;
  os << ")";
}

}  // namespace cgan::window
