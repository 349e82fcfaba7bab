// Model = a conditioner (how the label enters) followed by layers. Memory is planned at build time:
// parameters, gradients and Adam moments each sit in one contiguous backend buffer; activations in
// one arena sized for the batch; the conv layers share one workspace. Nothing is allocated in
// forward/backward.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/buffer.hpp"
#include "cgan/config/config.hpp"
#include "cgan/nn/model_layer.hpp"

namespace cgan {

// A named slice of a model's parameter (or state) buffer, for checkpoints.
struct ParamSlot {
  std::string name;  // e.g. "layers.0.weight"
  std::vector<int64_t> shape;
  size_t offset = 0, count = 0;  // in floats; offset is a multiple of 64 (256 bytes)
  bool state = false;            // true: non-trained state (batch-norm running stats)
};

class Model {
 public:
  // in_dim: width of x; num_classes: labels in [0, num_classes) (0 = unconditional).
  // share: another Model of the same spec whose parameters and state this one uses (e.g. a
  // sampling view with another batch size); it must outlive this one.
  Model(Backend& be, const NetSpec& spec, int in_dim, int num_classes, int batch, const std::string& name,
        const Model* share = nullptr);
  // A forward-only view of `share`'s architecture on other parameter and state buffers of its
  // layout (`params`: param_count() floats, `state`: state_count(); owned by the caller, e.g. the
  // weight average of cgan/nn/ema.hpp). It has no gradients or Adam moments: never call backward(),
  // zero_grads() or adam_step() on it. Views of this view (`share` = this) use the same buffers.
  Model(Backend& be, const NetSpec& spec, int in_dim, int num_classes, int batch, const std::string& name,
        const Model& share, float* params, float* state);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  int batch() const { return batch_; }
  int in_dim() const { return in_dim_; }
  int out_dim() const { return out_dim_; }
  int num_classes() const { return num_classes_; }
  const std::string& name() const { return name_; }
  // Whether forward() reads `cond` (one-hot or multi-hot [batch, K]): concat_onehot, label_plane,
  // projection, and any network with a conditional batch norm.
  bool uses_onehot() const {
    return fusion_ == FusionKind::concat || fusion_ == FusionKind::label_plane || fusion_ == FusionKind::projection ||
           has_cbn_;
  }
  std::string summary() const;  // one line per layer with shapes and parameter counts

  // Parameters initialised as PyTorch does (Linear: U(-1/sqrt(in), 1/sqrt(in)); Conv2d: weight
  // [K, C, R, S] and bias [K] U(-1/sqrt(C*R*S), 1/sqrt(C*R*S)); Embedding: N(0,1); batch norm:
  // gamma 1, beta 0, running mean 0, var 1), from Philox with `seed`. The projection's embedding:
  // Glorot uniform U(-a, a), a = sqrt(6 / (K + F)), as SNGAN-projection's; conditional batch norm's
  // gain and bias maps: 0 (every class starts at gain 1, bias 0, as SNGAN-projection's).
  void init_params(uint64_t seed);

  // x: [batch, in_dim]; labels: [batch] (embed modes); cond: [batch, K] (concat mode, one-hot or
  // multi-hot). train: batch-norm batch statistics + dropout (keyed by seed/stream; layer i draws
  // from stream.sub(64, i)). Returns the output [batch, out_dim], valid until the next forward.
  const float* forward(const float* x, const int32_t* labels, const float* cond, bool train, uint64_t seed = 0,
                       RngStream stream = 0);
  // The output of spec layer `layer_index` (an index into NetSpec::layers) as the last forward left
  // it, [batch, width] in backend memory, valid until the next forward; *width (if given) receives
  // its width. A dropout layer in evaluation mode returns its input. A linear layer that is fused
  // with the activation after it has no output of its own: ask for the activation's index (the
  // activated output) instead; asking for the linear's index, an index out of range or calling this
  // before any forward throws cgan::Error. Used to read a classifier's penultimate features.
  const float* output_of(int layer_index, int* width = nullptr) const;
  int layer_count() const { return spec_layers_; }  // NetSpec::layers.size()
  // The keep mask (0 or 1/(1-p) per value, [batch, width] in backend memory) that spec layer
  // `layer_index`, a dropout layer, applied in the last forward; nullptr when that forward did not
  // drop (evaluation, p = 0) or the layer is not a dropout. Used by the trainer's step trace.
  const float* dropout_mask(int layer_index) const;
  // The convolutions its conv2d layers run, with their spec layer indices, in layer order.
  std::vector<std::pair<int, ConvShape>> conv_shapes() const;

  // Data-parallel training (cgan/train/distributed.hpp): this model's batch is samples
  // [sample_offset, sample_offset + batch) of each global batch, so dropout draws those samples'
  // masks; bn_sync (optional): training batch norm takes its statistics over every rank's samples
  // (Backend::batchnorm_*_sync). Defaults: offset 0, per-model statistics.
  void set_shard(uint64_t sample_offset, RankReduce* bn_sync) {
    sample_offset_ = sample_offset;
    bn_sync_ = bn_sync;
  }

  // Back-propagates dL/dout (consumed: overwritten) through the last forward; parameter gradients
  // are accumulated into grads(); dL/dx is written to gx when gx != null.
  // param_grads = false skips parameter gradients (the G step only needs dL/dx through D).
  void backward(float* gout, float* gx, bool param_grads = true);

  // Host copies of the whole parameter and state buffers (param_count / state_count floats).
  void set_params(const float* host_params, const float* host_state);
  void zero_grads();
  // Adam at step t + (*t_counter) (t_counter: optional int32 in backend memory).
  void adam_step(const AdamSpec& a, int t, const int32_t* t_counter = nullptr);

  float* params() const { return params_; }
  float* grads() const { return grads_; }
  float* state() const { return state_; }
  float* adam_m() const { return m_; }
  float* adam_v() const { return v_; }
  // Floats in the parameter (and gradient, Adam m, v) buffer: every slot starts on a 256-byte
  // boundary, so this includes the zero gaps between slots.
  size_t param_count() const { return n_params_; }
  // v1 checkpoints' Adam m and v: the trainable slots concatenated without the alignment gaps
  // (packed_param_count floats), spread back to their aligned offsets by unpack_params.
  size_t packed_param_count() const;
  std::vector<float> unpack_params(const std::vector<float>& packed) const;
  size_t state_count() const { return n_state_; }
  const std::vector<ParamSlot>& slots() const { return slots_; }
  // Floats of the activation arena's buffers, without the alignment gaps between them: what the
  // memory plan (cgan/nn/memory_plan.hpp) counts as activations.
  size_t activation_floats() const { return activation_floats_; }
  // A buffer of batch*out_dim floats owned by the model, for the caller's dL/dout.
  float* grad_out_buffer() const { return gout_buf_; }

 private:
  enum class FusionKind { none, concat, embed_concat, embed_multiply, label_plane, projection };
  Backend& be_;
  std::string name_;
  std::string cond_label_, adam_label_;  // ProfileRange names: "<name>.condition", "<name>.adam"
  int batch_, in_dim_, num_classes_, out_dim_ = 0, spec_layers_ = 0;
  FusionKind fusion_ = FusionKind::none;
  int embed_dim_ = 0, fused_dim_ = 0;
  size_t table_offset_ = 0, plane_bias_offset_ = 0;
  // the layers, each built by its kind's unit (cgan/nn/layer.hpp); an activation fused into the
  // layer before it is no layer of its own
  std::vector<std::unique_ptr<ModelLayer>> layers_;
  std::vector<ParamSlot> slots_;
  std::vector<std::pair<char, int>> init_;  // per slot: init rule and fan-in (see init_params)
  size_t n_params_ = 0, n_state_ = 0, activation_floats_ = 0;
  // The memory this model owns (empty for what a view shares); the pointers below point into it or
  // into the shared model's / the caller's buffers.
  Buffer<float> own_params_, own_grads_, own_m_, own_v_, own_state_, own_arena_, own_workspace_;
  float *params_ = nullptr, *grads_ = nullptr, *m_ = nullptr, *v_ = nullptr, *state_ = nullptr;
  float* arena_ = nullptr;
  float* workspace_ = nullptr;  // the layers' shared backend workspace (conv), the widest asked for
  size_t first_compute_ = 0;    // index of the first layer with an output of its own (not a reshape)
  float* fused_ = nullptr;      // conditioner output
  float *gbuf_a_ = nullptr, *gbuf_b_ = nullptr, *gout_buf_ = nullptr;
  // last forward's inputs (for backward)
  const float* x_ = nullptr;
  const int32_t* labels_ = nullptr;
  const float* cond_ = nullptr;
  float* plane_ = nullptr;  // label_plane: Linear(cond) [batch, embed_dim]
  // projection: e = cond . E [batch, proj_dim_] and its gradient; E at params_ + proj_offset_ [K, proj_dim_]
  int proj_dim_ = 0;
  size_t proj_offset_ = 0;
  float *proj_e_ = nullptr, *proj_ge_ = nullptr;
  bool has_cbn_ = false;  // a layer reads the condition (conditional batch norm)
  // the step's view of this model for its layers
  LayerRun run(bool train, uint64_t seed, RngStream stream) const;
  uint64_t sample_offset_ = 0;  // set_shard
  RankReduce* bn_sync_ = nullptr;
};

}  // namespace cgan
