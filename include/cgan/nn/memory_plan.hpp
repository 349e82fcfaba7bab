// Memory plan: what a model of a given spec needs at a batch size, computed from the spec alone
// before anything is allocated, so an absurd config is a one-line error naming the layer.
#pragma once
#include <cstdint>
#include <string>

#include "cgan/config/config.hpp"

namespace cgan {

struct MemoryPlan {
  uint64_t params = 0;         // trained parameters (floats); each has a gradient and two Adam moments
  uint64_t state = 0;          // batch-norm running statistics (floats)
  uint64_t activations = 0;    // the activation arena at the batch size (floats)
  uint64_t spectral_norm = 0;  // the spectral norms' buffers (floats; W_sn, its gradient, ...), per model
  // Bytes the model allocates (shares_params: a view on another model's parameters, arena only).
  uint64_t bytes(bool shares_params = false) const;
};

// Walks the spec as Model's constructor does (conditioner, then the layers), in 64-bit arithmetic.
// Throws cgan::Error naming the layer (`generator.layers[0].linear: 16777216 units need 60.1 GB
// of parameters and activations at batch 64, more than the 31.2 GB the cpu backend has`) when a
// size does not fit the 32-bit sizes the ops take (a sample's width, a tensor, a batch of
// activations), or when the running total passes capacity_bytes. num_classes: the width the
// conditioner is built with (as Model's num_classes).
MemoryPlan plan_model_memory(const NetSpec& spec, int in_dim, int num_classes, int batch, const std::string& name,
                             uint64_t capacity_bytes, const std::string& device, bool shares_params = false);

// "60.1 GB", "512 MB", "3 KB".
std::string format_bytes(uint64_t bytes);

}  // namespace cgan
