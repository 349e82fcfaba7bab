// The memory plan of a model, checked before allocation; see include/cgan/nn/memory_plan.hpp.
#include "cgan/nn/memory_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "cgan/base/error.hpp"
#include "cgan/nn/spectral_norm.hpp"

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
  if (x >= 1e9) std::snprintf(buf, sizeof buf, "%.1f GB", x / 1e9);
  else if (x >= 1e6) std::snprintf(buf, sizeof buf, "%.0f MB", x / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f KB", std::max(1.0, x / 1e3));
  return buf;
}

MemoryPlan plan_model_memory(const NetSpec& spec, int in_dim, int num_classes, int batch, const std::string& name,
                             uint64_t capacity_bytes, const std::string& device, bool shares_params) {
  MemoryPlan p;
  const uint64_t B = static_cast<uint64_t>(std::max(batch, 1));
  std::string what;  // "<path>: <what> need ..." of the layer being added
  auto fits_int = [&](const std::string& path, uint64_t n, const std::string& of) {
    if (n > kMaxInt)
      throw Error(cat(path, ": ", of, " (", n, " values) does not fit the 32-bit sizes the ops take"));
  };
  auto check_total = [&](const std::string& path) {
    const uint64_t need = p.bytes(shares_params);
    if (need > capacity_bytes)
      throw Error(cat(path, ": ", what, " need ", format_bytes(need), " of parameters and activations at batch ", batch,
                      ", more than the ", format_bytes(capacity_bytes), " the ", device, " backend has"));
  };
  // a spectrally normalised weight W [rows, cols]: u and v as state, the layer's buffers
  // (spectral_norm_buffer_floats); sizes past 32 bits are refused by the weight's check first
  auto add_spectral_norm = [&](uint64_t rows, uint64_t cols) {
    if (rows > kMaxInt || cols > kMaxInt || mul(rows, cols) > kMaxInt) return;
    p.state = add(p.state, rows + cols);
    p.spectral_norm = add(p.spectral_norm, spectral_norm_buffer_floats(SpectralNormShape{
                                               static_cast<int>(rows), static_cast<int>(cols), false}));
  };
  // conditioner
  const std::string& mode = spec.condition.mode;
  const uint64_t K = static_cast<uint64_t>(std::max(num_classes, 0));
  uint64_t fused = static_cast<uint64_t>(in_dim), embed = 0;
  const std::string cpath = cat(name, ".condition");
  if (mode != "none" && mode != "projection" && K > 0) {
    if (mode == "concat_onehot") fused += K;
    if (mode == "embed_concat") embed = spec.condition.embed_dim > 0 ? spec.condition.embed_dim : K, fused += embed;
    if (mode == "embed_multiply") embed = static_cast<uint64_t>(in_dim);
    if (mode == "label_plane") embed = static_cast<uint64_t>(spec.condition.embed_dim), fused += embed;
    if (mode != "concat_onehot") {
      fits_int(cpath, mul(K, embed), cat("the label table ", K, "x", embed));
      p.params = add(p.params, add(mul(K, embed), mode == "label_plane" ? embed : 0));
    }
    fits_int(cpath, fused, "the conditioned input width");
    fits_int(cpath, mul(B, fused), cat("the conditioned input at batch ", batch));
    p.activations = add(p.activations, add(mul(B, fused), mode == "label_plane" ? mul(B, embed) : 0));
    what = cat(K, " classes");
    check_total(cpath);
  }
  // layers
  uint64_t c = fused, h = 1, w = 1, max_width = std::max<uint64_t>(fused, static_cast<uint64_t>(in_dim));
  bool image = false;
  uint64_t cbn_c = 0, last_in = 0;  // the widest conditional batch norm; the last layer's input width
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    const std::string path = cat(name, ".layers[", i, "].", layer_kind_name(l.kind));
    const uint64_t width = mul(mul(c, h), w);
    last_in = width;
    switch (l.kind) {
      case LayerKind::linear:
        fits_int(path, mul(width, l.out), cat("the weight ", width, "x", l.out));
        p.params = add(p.params, add(mul(width, l.out), l.out));
        if (l.spectral_norm) add_spectral_norm(static_cast<uint64_t>(l.out), width);
        c = l.out, h = w = 1, image = false;
        what = cat(l.out, " units");
        break;
      case LayerKind::conv2d:
      case LayerKind::avgpool2d:
      case LayerKind::maxpool2d: {
        if (!image) break;  // the model says why (no image input)
        const uint64_t hp = h + 2 * static_cast<uint64_t>(l.pad_h), wp = w + 2 * static_cast<uint64_t>(l.pad_w);
        if (hp < static_cast<uint64_t>(l.kernel_h) || wp < static_cast<uint64_t>(l.kernel_w)) break;  // the model says why
        fits_int(path, std::max(hp, wp), cat("the padded input ", hp, "x", wp));
        const uint64_t oh = (hp - l.kernel_h) / l.stride_h + 1, ow = (wp - l.kernel_w) / l.stride_w + 1;
        if (l.kind == LayerKind::conv2d) {
          const uint64_t wn = mul(mul(mul(static_cast<uint64_t>(l.out), c), l.kernel_h), l.kernel_w);
          fits_int(path, wn, cat("the weight ", l.out, "x", c, "x", l.kernel_h, "x", l.kernel_w));
          p.params = add(p.params, add(wn, l.out));
          if (l.spectral_norm) add_spectral_norm(static_cast<uint64_t>(l.out), mul(mul(c, l.kernel_h), l.kernel_w));
          c = l.out;
        }
        fits_int(path, mul(mul(c, oh), ow), cat("the output ", c, "x", oh, "x", ow));
        h = oh, w = ow;
        what = cat("output ", c, "x", oh, "x", ow);
        break;
      }
      case LayerKind::reshape:
        c = l.shape[0], h = l.shape[1], w = l.shape[2], image = true;
        what = "its output";
        break;
      case LayerKind::batchnorm: {
        const uint64_t ch = image ? c : width;
        p.state = add(p.state, 2 * ch);
        p.activations = add(p.activations, 2 * ch);
        if (l.conditional) {  // gain and bias maps [K, C], their outputs [B, C] (and the shared gradients)
          fits_int(path, mul(K, ch), cat("the gain map ", K, "x", ch));
          p.params = add(p.params, mul(2 * K, ch));
          p.activations = add(p.activations, mul(2 * B, ch));
          cbn_c = std::max(cbn_c, ch);
        } else {
          p.params = add(p.params, 2 * ch);
        }
        what = cat(ch, " channels");
        break;
      }
      case LayerKind::dropout:
        p.activations = add(p.activations, mul(B, width));  // the mask
        what = "its mask";
        break;
      default: what = "its output"; break;
    }
    const uint64_t out = mul(mul(c, h), w);
    fits_int(path, out, "a sample's output");
    fits_int(path, mul(B, out), cat("the output at batch ", batch));
    if (l.kind != LayerKind::reshape) p.activations = add(p.activations, mul(B, out));
    max_width = std::max(max_width, out);
    check_total(path);
  }
  p.activations = add(p.activations, add(mul(2 * B, max_width), mul(B, mul(mul(c, h), w))));  // gradient buffers
  p.activations = add(p.activations, mul(2 * B, cbn_c));  // conditional batch norm's gain/bias gradients
  if (mode == "projection" && K > 0) {  // the embedding E [K, F] and e = cond . E with its gradient [B, F]
    fits_int(cpath, mul(K, last_in), cat("the projection's embedding ", K, "x", last_in));
    p.params = add(p.params, mul(K, last_in));
    p.activations = add(p.activations, mul(2 * B, last_in));
  }
  what = "its gradient buffers";
  check_total(cat(name, ".layers"));
  return p;
}

}  // namespace cgan
