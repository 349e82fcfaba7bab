// A layer kind as one unit: its config syntax (cgan/config/layer_syntax.hpp: parse, validate, write
// back, config-time shape) plus what a model of it needs (memory plan, and the built layer:
// cgan/nn/model_layer.hpp). Units live in src/nn/layers, one file per family, and register by name; the memory plan
// asks them, so no central switch names a kind.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "cgan/config/layer_syntax.hpp"
#include "cgan/nn/memory_plan.hpp"
#include "cgan/nn/model_layer.hpp"

namespace cgan {

// The memory plan's walk through one network in 64-bit arithmetic (sums saturate at 2^62).
struct LayerPlan {
  static constexpr uint64_t kMaxInt = static_cast<uint64_t>(std::numeric_limits<int32_t>::max());
  static constexpr uint64_t kHuge = uint64_t(1) << 62;
  static uint64_t mul(uint64_t a, uint64_t b) { return a != 0 && b > kHuge / a ? kHuge : a * b; }
  static uint64_t add(uint64_t a, uint64_t b) { return std::min(kHuge, a + b); }

  explicit LayerPlan(MemoryPlan& t) : totals(t) {}

  MemoryPlan& totals;
  uint64_t B = 1, K = 0;         // batch, classes (the conditioner's width)
  uint64_t c = 0, h = 1, w = 1;  // the layer's input sample shape; a unit sets its output here
  bool image = false;
  MulPrecision operands = MulPrecision::fp32;  // its GEMMs' and convolutions' (NetSpec::bf16)
  uint64_t cbn_c = 0;                          // the widest conditional batch norm (shared gradient buffers)
  std::string what = "its output";             // "<path>: <what> need ..." of the layer being added
  std::string path;                            // "generator.layers[2].linear"

  uint64_t width() const { return mul(mul(c, h), w); }
  // Throws "<path>: <of> (<n> values) does not fit the 32-bit sizes the ops take".
  void fits_int(uint64_t n, const std::string& of) const;
  // A spectrally normalised weight [rows, cols]: u and v as state, the layer's buffers.
  void add_spectral_norm(uint64_t rows, uint64_t cols);
  void add_params(uint64_t n) { totals.params = add(totals.params, n); }
  void add_state(uint64_t n) { totals.state = add(totals.state, n); }
  void add_activations(uint64_t n) { totals.activations = add(totals.activations, n); }
};

class LayerUnit : public LayerSyntax {
 public:
  // Moves p's shape through the layer and adds its parameters, state and activations beyond its
  // output (the plan adds the output [B, width] itself unless output_in_arena() is false). Cases
  // the model rejects (no image input, window larger than its input) are left to the model's error.
  virtual void plan(const LayerSpec& l, LayerPlan& p) const = 0;
  // The most backend workspace (floats) the layer may take at p's input shape and batch, outside the
  // arena (the whole-run memory plan, cgan/train/run_memory.hpp); asked before plan() moves p on.
  virtual uint64_t workspace_cap(const LayerSpec& l, const LayerPlan& p, Backend& be) const {
    (void)l, (void)p, (void)be;
    return 0;
  }
  // Whether the layer's output has its own [batch, width] slice of the arena (a reshape has not).
  virtual bool output_in_arena() const { return true; }
  // Whether an activation layer right after this one is applied in this layer's output pass
  // (linear, conv2d, batchnorm): the activation then has no output of its own.
  virtual bool fuses_activation() const { return false; }
  // The elementwise activation this kind is (relu, leaky_relu, sigmoid, tanh), else Act::none.
  virtual Act activation() const { return Act::none; }
  bool is_activation() const { return activation() != Act::none; }
  // The layer of a model: its slots (through b.slot, in checkpoint order), its output shape
  // (returned in *out), and its forward and backward. b.act is the activation fused into it.
  virtual std::unique_ptr<ModelLayer> build(LayerBuild& b, SampleShape* out) const = 0;
};

// The unit registered as `name`; throws cgan::Error for an unknown name.
const LayerUnit& layer_unit(const std::string& name);

// Whether spec layer i applies the activation layer i + 1 in its own output pass (a unit that
// fuses_activation() followed by one that is_activation()): the activation then is no layer of
// the model and has no output of its own. The one place fusion is decided (model and memory plan).
bool fuses_next_activation(const NetSpec& spec, size_t i);

}  // namespace cgan
