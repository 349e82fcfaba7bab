// The memory plan of a model, checked before allocation; see include/cgan/nn/memory_plan.hpp.
#include "cgan/nn/memory_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "cgan/base/error.hpp"
#include "cgan/nn/layer.hpp"

namespace cgan {

namespace {
constexpr uint64_t kMaxInt = static_cast<uint64_t>(std::numeric_limits<int32_t>::max());
constexpr uint64_t kHuge = uint64_t(1) << 62;  // sums saturate here (no wrap-around)

uint64_t mul(uint64_t a, uint64_t b) { return a != 0 && b > kHuge / a ? kHuge : a * b; }
uint64_t add(uint64_t a, uint64_t b) { return std::min(kHuge, a + b); }
}  // namespace

uint64_t MemoryPlan::bytes(bool shares_params) const {
  const uint64_t floats = add(add(shares_params ? 0 : add(mul(4, params), state), activations), spectral_norm);
  return mul(floats, sizeof(float));
}

std::string format_bytes(uint64_t b) {
  char buf[32];
  const double x = static_cast<double>(b);
  if (x >= 1e9)
    std::snprintf(buf, sizeof buf, "%.1f GB", x / 1e9);
  else if (x >= 1e6)
    std::snprintf(buf, sizeof buf, "%.0f MB", x / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.0f KB", std::max(1.0, x / 1e3));
  return buf;
}

MemoryPlan plan_model_memory(const NetSpec& spec, int in_dim, int num_classes, int batch, const std::string& name,
                             uint64_t capacity_bytes, const std::string& device, bool shares_params) {
  MemoryPlan p;
  const uint64_t B = static_cast<uint64_t>(std::max(batch, 1));
  std::string what;  // "<path>: <what> need ..." of the layer being added
  auto fits_int = [&](const std::string& path, uint64_t n, const std::string& of) {
    if (n > kMaxInt) throw Error(cat(path, ": ", of, " (", n, " values) does not fit the 32-bit sizes the ops take"));
  };
  auto check_total = [&](const std::string& path) {
    const uint64_t need = p.bytes(shares_params);
    if (need > capacity_bytes)
      throw Error(cat(path, ": ", what, " need ", format_bytes(need), " of parameters and activations at batch ", batch,
                      ", more than the ", format_bytes(capacity_bytes), " the ", device, " backend has"));
  };
  // conditioner
  const ConditionMode mode = spec.condition.mode;
  const uint64_t K = static_cast<uint64_t>(std::max(num_classes, 0));
  uint64_t fused = static_cast<uint64_t>(in_dim), embed = 0;
  const std::string cpath = cat(name, ".condition");
  if (mode != ConditionMode::none && mode != ConditionMode::projection && K > 0) {
    if (mode == ConditionMode::concat_onehot) fused += K;
    if (mode == ConditionMode::embed_concat)
      embed = spec.condition.embed_dim > 0 ? spec.condition.embed_dim : K, fused += embed;
    if (mode == ConditionMode::embed_multiply) embed = static_cast<uint64_t>(in_dim);
    if (mode == ConditionMode::label_plane) embed = static_cast<uint64_t>(spec.condition.embed_dim), fused += embed;
    if (mode != ConditionMode::concat_onehot) {
      fits_int(cpath, mul(K, embed), cat("the label table ", K, "x", embed));
      p.params = add(p.params, add(mul(K, embed), mode == ConditionMode::label_plane ? embed : 0));
    }
    fits_int(cpath, fused, "the conditioned input width");
    fits_int(cpath, mul(B, fused), cat("the conditioned input at batch ", batch));
    p.activations = add(p.activations, add(mul(B, fused), mode == ConditionMode::label_plane ? mul(B, embed) : 0));
    what = cat(K, " classes");
    check_total(cpath);
  }
  // layers: each kind's unit moves the shape and adds what it needs (cgan/nn/layer.hpp)
  LayerPlan lp{p};
  lp.B = B, lp.K = K, lp.c = fused;
  uint64_t max_width = std::max<uint64_t>(fused, static_cast<uint64_t>(in_dim));
  uint64_t last_in = 0;  // the last layer's input width
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    const LayerUnit& unit = layer_unit(l.kind);
    lp.path = cat(name, ".layers[", i, "].", l.kind);
    lp.what = what;
    last_in = lp.width();
    unit.plan(l, lp);
    what = lp.what;
    const uint64_t out = lp.width();
    lp.fits_int(out, "a sample's output");
    lp.fits_int(mul(B, out), cat("the output at batch ", batch));
    const bool fused = i > 0 && fuses_next_activation(spec, i - 1);  // no output of its own (no model layer)
    if (unit.output_in_arena() && !fused) p.activations = add(p.activations, mul(B, out));
    max_width = std::max(max_width, out);
    check_total(lp.path);
  }
  const uint64_t c = lp.c, h = lp.h, w = lp.w, cbn_c = lp.cbn_c;
  p.activations = add(p.activations, add(mul(2 * B, max_width), mul(B, mul(mul(c, h), w))));  // gradient buffers
  p.activations = add(p.activations, mul(2 * B, cbn_c));  // conditional batch norm's gain/bias gradients
  if (mode == ConditionMode::projection && K > 0) {  // the embedding E [K, F] and e = cond . E with its gradient [B, F]
    fits_int(cpath, mul(K, last_in), cat("the projection's embedding ", K, "x", last_in));
    p.params = add(p.params, mul(K, last_in));
    p.activations = add(p.activations, mul(2 * B, last_in));
  }
  what = "its gradient buffers";
  check_total(cat(name, ".layers"));
  return p;
}

}  // namespace cgan
