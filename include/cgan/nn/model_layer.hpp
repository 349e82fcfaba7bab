// One built layer of a model (what a LayerUnit's build returns): its parameter slots, arena buffers, forward and backward through Backend ops, and its summary text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"
#include "cgan/config/config.hpp"

namespace cgan {

// The shape of one sample: an image (C, H, W) after a reshape or conv/pool, else `c` flat
// features (h = w = 1).
struct SampleShape {
  int c = 1, h = 1, w = 1;
  bool image = false;
  int width() const { return c * h * w; }
  std::string str() const { return image ? cat(c, "x", h, "x", w) : cat(c); }
};

const char* act_name(Act a);  // "relu", ..., "none"

// What a unit's build gets from the model being built.
struct LayerBuild {
  Backend& be;
  const LayerSpec& spec;
  std::string path;  // "generator.layers[2].linear", for errors
  std::string pre;   // "layers.2.", the prefix of its checkpoint names
  int batch = 0, num_classes = 0;
  SampleShape in;  // its input sample
  // The activation after it that the model fused into it (fuses_activation() units only), or none.
  Act act = Act::none;
  float slope = 0.f;
  // Adds a parameter (state = false) or state slot named `name`; returns its offset in floats.
  // init: 'u' = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), 'n' = N(0, 1), '1' = ones, '0' = zeros,
  // 'x' = Glorot uniform with fan = fan_in, 'r' = a random unit vector (see Model::init_params).
  std::function<size_t(const std::string& name, std::vector<int64_t> shape, bool state, char init, int fan_in)> slot;
  // Whether the layer after it is batch norm (with no activation fused between): a conv's bias is
  // then folded into that norm (ModelLayer::bias_for_norm).
  bool before_batchnorm = false;
  // For batch norm: the offset of the bias the layer before it folded into it (kNoBias: none).
  static constexpr size_t kNoBias = static_cast<size_t>(-1);
  size_t folded_bias = kNoBias;
  MulPrecision mul = MulPrecision::fp32;  // its GEMMs' and convolutions' operands (NetSpec::bf16)
  // A user's spec error: one line naming the layer's path.
  template <class... T>
  void require(bool ok, const T&... parts) const {
    if (!ok) throw Error(cat(path, parts...));
  }
};

// The activation buffers a built layer asks for; the model takes them from its arena in order.
struct LayerArena {
  struct Take {
    float** at;
    size_t floats;
    int shared;  // -1: its own; else buffers of the same id share one (the widest), after all layers'
  };
  std::vector<Take> takes;
  std::vector<std::pair<float**, size_t>> workspaces;  // backend memory outside the arena, shared by all
  void take(float** at, size_t floats) { takes.push_back({at, floats, -1}); }
  void take_shared(int id, float** at, size_t floats) { takes.push_back({at, floats, id}); }
  void workspace(float** at, size_t floats) { workspaces.push_back({at, floats}); }
};

// What forward and backward see of the model: the backend, its buffers and the step's inputs.
struct LayerRun {
  Backend& be;
  const std::string& model;  // its name, for errors
  int B = 0, K = 0;          // batch, classes
  float *params = nullptr, *grads = nullptr, *state = nullptr;
  const float* cond = nullptr;  // [B, K] (may be null)
  bool train = false;
  uint64_t seed = 0;
  RngStream stream = 0;
  uint64_t sample_offset = 0;  // the model's shard (Model::set_shard)
  RankReduce* bn_sync = nullptr;
};

class ModelLayer {
 public:
  virtual ~ModelLayer() = default;

  // Set by the model: its kind's name, spec index, the last spec index it covers (+1 when it applies
  // the activation after it), position in the model, the model's batch, shapes, ProfileRange label.
  std::string kind_name, label;
  int spec_index = 0, spec_last = 0, index = 0, batch = 0;
  SampleShape in_shape, out_shape;
  int in() const { return in_shape.width(); }
  int out() const { return out_shape.width(); }
  // The model's: the output slice [B, out] (null for a unit without output_in_arena()), the last
  // forward's input, output (may alias the input) and mode.
  float* y = nullptr;
  const float* x = nullptr;
  const float* y_used = nullptr;
  bool train = false;
  // A bias this layer leaves to the batch norm after it (LayerBuild::before_batchnorm): in training
  // the norm's output does not depend on it and its true gradient is 0, so the layer neither adds
  // nor differentiates it, and the norm adds momentum * bias to its running mean (which tracks the
  // mean of the biased output, as PyTorch's); evaluation adds it as usual. LayerBuild::kNoBias: none.
  size_t bias_for_norm = LayerBuild::kNoBias;

  // The buffers beyond its output it needs from the arena (taken once, after build).
  virtual void arena(LayerArena& a) { (void)a; }
  // Whether its forward reads the condition (conditional batch norm).
  virtual bool reads_condition() const { return false; }
  // y_used of x (writes y, or returns x for an identity).
  virtual const float* forward(const LayerRun& r, const float* x) = 0;
  // g: dL/d(its output), [B, out]; may be overwritten. Returns dL/d(its input): g itself (in place)
  // or `spare` ([B, max width], the model's other gradient buffer). input_grad: whether the caller
  // needs it (a layer that can skip it returns g unchanged); param_grads: accumulate into r.grads.
  virtual float* backward(const LayerRun& r, float* g, float* spare, bool input_grad, bool param_grads) = 0;
  // Appended to its summary line "  [i] kind in -> out" (e.g. " (kernel 4x4, stride 2x2)").
  virtual void describe(std::ostream& os, int num_classes) const { (void)os, (void)num_classes; }
  // The keep mask of its last forward (dropout), else nullptr.
  virtual const float* dropout_mask() const { return nullptr; }
  // The convolution it runs (conv2d), else nullptr.
  virtual const ConvShape* conv_shape() const { return nullptr; }
};

}  // namespace cgan
