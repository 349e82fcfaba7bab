// The model side of the layer registry: a kind's unit by name, and the memory plan's per-layer helpers.
#include "cgan/nn/layer.hpp"

#include "cgan/base/error.hpp"
#include "cgan/nn/spectral_norm.hpp"

namespace cgan {

const LayerUnit& layer_unit(const std::string& name) {
  const LayerUnit* u = dynamic_cast<const LayerUnit*>(&layer_syntax(name));
  if (!u) throw Error(cat("layer kind \"", name, "\" has a config syntax but no model unit"));
  return *u;
}

bool fuses_next_activation(const NetSpec& spec, size_t i) {
  return i + 1 < spec.layers.size() && layer_unit(spec.layers[i].kind).fuses_activation() &&
         layer_unit(spec.layers[i + 1].kind).is_activation();
}

const char* act_name(Act a) {
  switch (a) {
    case Act::relu: return "relu";
    case Act::leaky_relu: return "leaky_relu";
    case Act::sigmoid: return "sigmoid";
    case Act::tanh: return "tanh";
    default: return "none";
  }
}

void LayerPlan::fits_int(uint64_t n, const std::string& of) const {
  if (n > kMaxInt) throw Error(cat(path, ": ", of, " (", n, " values) does not fit the 32-bit sizes the ops take"));
}

void LayerPlan::add_spectral_norm(uint64_t rows, uint64_t cols) {
  // sizes past 32 bits are refused by the weight's check first
  if (rows > kMaxInt || cols > kMaxInt || mul(rows, cols) > kMaxInt) return;
  add_state(rows + cols);
  totals.spectral_norm =
      add(totals.spectral_norm,
          spectral_norm_buffer_floats(SpectralNormShape{static_cast<int>(rows), static_cast<int>(cols), false}));
}

}  // namespace cgan
