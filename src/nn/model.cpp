#include "cgan/nn/model.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include "cgan/base/error.hpp"
#include "cgan/nn/layer.hpp"
#include "cgan/nn/memory_plan.hpp"
#include "cgan/base/philox.hpp"
#include "cgan/backend/profile.hpp"
#include "cgan/nn/spectral_norm.hpp"

namespace cgan {

namespace {
constexpr size_t kAlignFloats = 64;  // 256 bytes: slots and arena slices start on this boundary
size_t aligned(size_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }
}  // namespace

Model::Model(Backend& be, const NetSpec& spec, int in_dim, int num_classes, int batch, const std::string& name,
             const Model* share)
    : be_(be),
      name_(name),
      cond_label_(name + ".condition"),
      adam_label_(name + ".adam"),
      batch_(batch),
      in_dim_(in_dim),
      num_classes_(num_classes) {
  CGAN_CHECK(batch > 0 && in_dim > 0, "model ", name, ": bad batch ", batch, " or input ", in_dim);
  // Every size bounded before anything is allocated (a one-line error naming the layer).
  (void)plan_model_memory(spec, in_dim, num_classes, batch, name, be.memory_capacity_bytes(), be.name(),
                          share != nullptr);
  size_t np = 0, ns = 0;
  // init: 'u' = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), 'n' = N(0, 1), '1' = ones, '0' = zeros,
  // 'x' = Glorot uniform U(-sqrt(6/fan), sqrt(6/fan)) with fan = fan_in + fan_out passed as fan_in.
  // 'r' = a random unit vector (a spectral norm's u, v).
  // Every slot starts on a kAlignFloats boundary (256 bytes) of its buffer; the gaps stay zero
  // (Adam keeps zeros at zero: its step is m / (sqrt(v) + eps) with m = 0).
  auto add_param = [&](const std::string& n, std::vector<int64_t> shape, bool state, char init, int fan_in = 1) {
    size_t count = 1;
    for (auto d : shape) count *= static_cast<size_t>(d);
    size_t& cursor = state ? ns : np;
    cursor = aligned(cursor);
    ParamSlot s{n, std::move(shape), cursor, count, state};
    cursor += count;
    slots_.push_back(s);
    init_.push_back({init, fan_in});
    return s.offset;
  };

  // conditioner
  const ConditionMode mode = spec.condition.mode;
  if (mode == ConditionMode::none || num_classes == 0) {
    CGAN_CHECK(mode == ConditionMode::none, name, ".condition.mode \"", mode, "\" needs labelled data");
    fusion_ = FusionKind::none;
    fused_dim_ = in_dim;
  } else if (mode == ConditionMode::concat_onehot) {
    fusion_ = FusionKind::concat;
    embed_dim_ = num_classes;
    fused_dim_ = in_dim + num_classes;
  } else if (mode == ConditionMode::embed_concat) {
    fusion_ = FusionKind::embed_concat;
    embed_dim_ = spec.condition.embed_dim > 0 ? spec.condition.embed_dim : num_classes;
    fused_dim_ = in_dim + embed_dim_;
    table_offset_ = add_param("cond.embedding", {num_classes, embed_dim_}, false, 'n');
  } else if (mode == ConditionMode::embed_multiply) {
    fusion_ = FusionKind::embed_multiply;
    embed_dim_ = in_dim;
    fused_dim_ = in_dim;
    table_offset_ = add_param("cond.embedding", {num_classes, in_dim}, false, 'n');
  } else if (mode == ConditionMode::label_plane) {
    // seed 001's discriminator: Linear(tags -> H*W), viewed as one more image channel after x's
    fusion_ = FusionKind::label_plane;
    embed_dim_ = spec.condition.embed_dim;
    CGAN_CHECK(embed_dim_ > 0, name,
               ".condition.embed_dim: label_plane needs the plane size H*W (e.g. 9216 for 96x96)");
    fused_dim_ = in_dim + embed_dim_;
    table_offset_ = add_param("cond.weight", {num_classes, embed_dim_}, false, 'u', num_classes);
    plane_bias_offset_ = add_param("cond.bias", {embed_dim_}, false, 'u', num_classes);
  } else if (mode == ConditionMode::projection) {
    // x enters unconditioned; the label's embedding is projected on the last linear's input (below)
    fusion_ = FusionKind::projection;
    fused_dim_ = in_dim;
    const LayerSpec& last = spec.layers.back();
    CGAN_CHECK(last.kind == LayerKind::linear && last.out == 1, name, ".layers[", spec.layers.size() - 1,
               "]: condition.mode \"projection\" needs the network to end with {\"linear\": 1}");
  } else {
    throw Error(cat(name, ".condition.mode: unknown mode \"", mode, "\""));
  }

  // layers: each built by its kind's unit; a unit that fuses_activation() followed by an activation
  // applies it in its own output pass (fuses_next_activation, shared with the memory plan)
  SampleShape sh;
  sh.c = fused_dim_;
  int max_width = std::max(fused_dim_, in_dim);
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& ls = spec.layers[i];
    const LayerUnit& unit = layer_unit(ls.kind);
    LayerBuild b{be_,
                 ls,
                 cat(name, ".layers[", i, "].", ls.kind),
                 cat("layers.", i, "."),
                 batch,
                 num_classes,
                 sh,
                 Act::none,
                 0.f,
                 add_param};
    b.mul = spec.bf16 ? MulPrecision::bf16 : MulPrecision::fp32;
    const size_t first = i;
    if (fuses_next_activation(spec, i)) {
      const LayerSpec& act = spec.layers[++i];
      b.act = layer_unit(act.kind).activation();
      b.slope = act.slope;
    }
    b.before_batchnorm = i + 1 < spec.layers.size() && spec.layers[i + 1].kind == LayerKind::batchnorm;
    if (!layers_.empty()) b.folded_bias = layers_.back()->bias_for_norm;  // the layer just before
    SampleShape out;
    std::unique_ptr<ModelLayer> L = unit.build(b, &out);
    L->kind_name = ls.kind;
    L->spec_index = static_cast<int>(first);
    L->spec_last = static_cast<int>(i);
    L->index = static_cast<int>(layers_.size());
    L->batch = batch;
    L->in_shape = sh;
    L->out_shape = out;
    L->label = b.act != Act::none ? cat(b.path, "+", act_name(b.act)) : b.path;
    has_cbn_ = has_cbn_ || L->reads_condition();
    sh = out;
    max_width = std::max(max_width, L->out());
    layers_.push_back(std::move(L));
  }
  out_dim_ = sh.width();
  if (fusion_ == FusionKind::projection) {  // E [K, F], F = the width of phi(x), the last linear's input
    proj_dim_ = layers_.back()->in();
    proj_offset_ = add_param("embed.weight", {num_classes, proj_dim_}, false, 'x', num_classes + proj_dim_);
  }
  first_compute_ = 0;
  while (first_compute_ < layers_.size() && !layer_unit(layers_[first_compute_]->kind_name).output_in_arena())
    ++first_compute_;
  spec_layers_ = static_cast<int>(spec.layers.size());
  n_params_ = np ? aligned(np) : 0;  // whole float4 groups for Adam
  n_state_ = ns;

  if (share) {
    CGAN_CHECK(share->n_params_ == n_params_ && share->n_state_ == n_state_ && share->fused_dim_ == fused_dim_ &&
                   share->out_dim_ == out_dim_,
               "model ", name, ": shared parameters come from a different architecture");
    params_ = share->params_;
    grads_ = share->grads_;
    m_ = share->m_;
    v_ = share->v_;
    state_ = share->state_;
  } else {
    params_ = own_params_ = Buffer<float>(be_, std::max<size_t>(n_params_, 1));
    grads_ = own_grads_ = Buffer<float>(be_, std::max<size_t>(n_params_, 1));
    m_ = own_m_ = Buffer<float>(be_, std::max<size_t>(n_params_, 1));
    v_ = own_v_ = Buffer<float>(be_, std::max<size_t>(n_params_, 1));
    state_ = own_state_ = Buffer<float>(be_, std::max<size_t>(n_state_, 1));
  }

  // activation arena: the conditioner's buffers, each layer's output (unless its unit has none in
  // the arena) and the buffers it asks for, the shared ones, the gradient buffers
  const size_t B = static_cast<size_t>(batch_);
  LayerArena req;
  if (fusion_ != FusionKind::none && fusion_ != FusionKind::projection) req.take(&fused_, B * fused_dim_);
  if (fusion_ == FusionKind::label_plane) req.take(&plane_, B * embed_dim_);
  if (fusion_ == FusionKind::projection) {
    req.take(&proj_e_, B * proj_dim_);
    req.take(&proj_ge_, B * proj_dim_);
  }
  for (auto& L : layers_) {
    if (layer_unit(L->kind_name).output_in_arena()) req.take(&L->y, B * L->out());
    L->arena(req);
  }
  std::vector<LayerArena::Take> takes, shared;  // shared: the widest of each id, in id order
  for (const LayerArena::Take& t : req.takes) {
    if (t.shared < 0) {
      takes.push_back(t);
      continue;
    }
    auto s =
        std::find_if(shared.begin(), shared.end(), [&](const LayerArena::Take& o) { return o.shared == t.shared; });
    if (s == shared.end())
      shared.push_back(t);
    else
      s->floats = std::max(s->floats, t.floats);
  }
  std::sort(shared.begin(), shared.end(), [](const auto& a, const auto& b) { return a.shared < b.shared; });
  for (const LayerArena::Take& t : shared) takes.push_back(t);
  takes.push_back({&gbuf_a_, B * max_width, -1});
  takes.push_back({&gbuf_b_, B * max_width, -1});
  takes.push_back({&gout_buf_, B * out_dim_, -1});
  size_t arena = 0;
  activation_floats_ = 0;
  for (const LayerArena::Take& t : takes) activation_floats_ += t.floats, arena += aligned(t.floats);
  arena_ = own_arena_ = Buffer<float>(be_, std::max<size_t>(arena, 1));
  // Each slice starts on a 256-byte boundary (alloc returns 256-byte aligned memory), so cuDNN and
  // cuBLAS see aligned inputs, outputs and gradients and may use their vectorised kernels.
  float* cur = arena_;
  for (const LayerArena::Take& t : takes) *t.at = cur, cur += aligned(t.floats);
  for (const LayerArena::Take& t : req.takes)  // a shared buffer's other users
    if (t.shared >= 0)
      for (const LayerArena::Take& s : shared)
        if (s.shared == t.shared) *t.at = *s.at;
  size_t ws = 0;
  for (auto& [at, floats] : req.workspaces) ws = std::max(ws, floats);
  if (ws) workspace_ = own_workspace_ = Buffer<float>(be_, ws);
  for (auto& [at, floats] : req.workspaces) *at = workspace_;
}

Model::Model(Backend& be, const NetSpec& spec, int in_dim, int num_classes, int batch, const std::string& name,
             const Model& share, float* params, float* state)
    : Model(be, spec, in_dim, num_classes, batch, name, &share) {
  CGAN_CHECK(params && (state || n_state_ == 0), "model ", name, ": a view needs parameter and state buffers");
  params_ = params;
  state_ = n_state_ ? state : share.state_;
  grads_ = m_ = v_ = nullptr;
}

Model::~Model() = default;  // the Buffers give the memory back

std::string Model::summary() const {
  std::ostringstream os;
  os << name_ << ": input " << in_dim_;
  switch (fusion_) {
    case FusionKind::none: break;
    case FusionKind::concat: os << " + one-hot/tags " << embed_dim_ << " (concat)"; break;
    case FusionKind::embed_concat: os << " + embedding " << num_classes_ << "x" << embed_dim_ << " (concat)"; break;
    case FusionKind::embed_multiply: os << " * embedding " << num_classes_ << "x" << embed_dim_; break;
    case FusionKind::label_plane: os << " + label plane Linear(" << num_classes_ << " -> " << embed_dim_ << ")"; break;
    case FusionKind::projection: break;
  }
  os << " -> " << fused_dim_ << "\n";
  for (auto& L : layers_) {
    os << "  [" << L->spec_index << "] " << L->kind_name << " " << L->in_shape.str() << " -> " << L->out_shape.str();
    L->describe(os, num_classes_);
    os << "\n";
  }
  if (fusion_ == FusionKind::projection)
    os << "  + projection <embedding " << num_classes_ << "x" << proj_dim_ << " of the condition, input of ["
       << layers_.back()->spec_index << "]>\n";
  os << "  parameters: " << n_params_;
  return os.str();
}

void Model::init_params(uint64_t seed) {
  std::vector<float> p(n_params_, 0.f), s(n_state_, 0.f);
  for (size_t si = 0; si < slots_.size(); ++si) {
    const ParamSlot& sl = slots_[si];
    const uint64_t stream = 0x1000 + si;
    float* dst = sl.state ? s.data() + sl.offset : p.data() + sl.offset;
    const auto [init, fan_in] = init_[si];
    const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
    if (init == 'r') {  // a spectral norm's u or v: a random unit vector
      SpectralNorm::init_vector(dst, static_cast<int>(sl.count), seed, stream);
      continue;
    }
    for (size_t i = 0; i < sl.count; ++i) {
      switch (init) {
        case 'u': dst[i] = (2.f * philox_uniform(seed, stream, i) - 1.f) * bound; break;
        case 'n': dst[i] = philox_normal(seed, stream, i); break;
        case '1': dst[i] = 1.f; break;
        case 'x':
          dst[i] = (2.f * philox_uniform(seed, stream, i) - 1.f) * std::sqrt(6.f / static_cast<float>(fan_in));
          break;
        default: dst[i] = 0.f;
      }
    }
  }
  if (n_params_) be_.upload(params_, p.data(), n_params_);
  if (n_state_) be_.upload(state_, s.data(), n_state_);
  be_.fill(m_, std::max<size_t>(n_params_, 1), 0.f);
  be_.fill(v_, std::max<size_t>(n_params_, 1), 0.f);
  zero_grads();
}

const float* Model::forward(const float* x, const int32_t* labels, const float* cond, bool train, uint64_t seed,
                            RngStream stream) {
  x_ = x;
  labels_ = labels;
  cond_ = cond;
  const int B = batch_;
  const float* h = x;
  std::optional<ProfileRange> cr(std::in_place, cond_label_.c_str());  // closed before the layers' ranges
  switch (fusion_) {
    case FusionKind::none: break;
    case FusionKind::concat:
      be_.fuse_forward(Fusion::concat, B, in_dim_, embed_dim_, 0, x, cond, labels, nullptr, fused_);
      h = fused_;
      break;
    case FusionKind::embed_concat:
      be_.fuse_forward(Fusion::embed_concat, B, in_dim_, embed_dim_, num_classes_, x, nullptr, labels,
                       params_ + table_offset_, fused_);
      h = fused_;
      break;
    case FusionKind::embed_multiply:
      be_.fuse_forward(Fusion::embed_multiply, B, in_dim_, embed_dim_, num_classes_, x, nullptr, labels,
                       params_ + table_offset_, fused_);
      h = fused_;
      break;
    case FusionKind::projection: break;  // applied at the last layer
    case FusionKind::label_plane:
      CGAN_CHECK(cond, "model ", name_, ": label_plane needs the condition vectors");
      be_.gemm(false, false, B, embed_dim_, num_classes_, 1.f, cond, params_ + table_offset_, 0.f, plane_);
      be_.bias_act_forward(Act::none, 0.f, B, embed_dim_, params_ + plane_bias_offset_, plane_);
      be_.fuse_forward(Fusion::concat, B, in_dim_, embed_dim_, 0, x, plane_, labels, nullptr, fused_);
      h = fused_;
      break;
  }
  cr.reset();
  const LayerRun r = run(train, seed, stream);
  for (auto& L : layers_) {
    const ProfileRange lr(L->label.c_str());
    L->x = h;
    L->train = train;
    L->y_used = L->forward(r, h);
    h = L->y_used;
  }
  if (fusion_ == FusionKind::projection) {  // out += <cond . E, phi(x)>, phi(x): the last linear's input
    CGAN_CHECK(cond, "model ", name_, ": projection needs the condition vectors");
    const ProfileRange pr(cond_label_.c_str());
    ModelLayer& L = *layers_.back();
    be_.gemm(false, false, B, proj_dim_, num_classes_, 1.f, cond, params_ + proj_offset_, 0.f, proj_e_);
    be_.projection_forward(B, proj_dim_, L.x, proj_e_, L.y);
  }
  return h;
}

void Model::backward(float* gout, float* gx, bool param_grads) {
  const int B = batch_;
  float* g = gout;
  auto other = [&](float* p) { return p == gbuf_a_ ? gbuf_b_ : gbuf_a_; };
  const bool need_input_grad = gx != nullptr || fusion_ == FusionKind::embed_concat ||
                               fusion_ == FusionKind::embed_multiply ||
                               (fusion_ == FusionKind::label_plane && param_grads);
  const LayerRun r = run(false, 0, 0);  // each layer keeps the mode of its last forward
  for (size_t li = layers_.size(); li-- > 0;) {
    ModelLayer& L = *layers_[li];
    const ProfileRange lr(L.label.c_str());
    const bool first = li <= first_compute_;  // only reshapes before it: its input gradient is dL/dx
    float* gy = g;                            // dL/dout
    g = L.backward(r, g, other(g), !first || need_input_grad, param_grads);
    if (fusion_ == FusionKind::projection && li + 1 == layers_.size()) {  // the last linear's input phi(x)
      const ProfileRange pr(cond_label_.c_str());
      be_.projection_backward(B, proj_dim_, L.x, proj_e_, gy, g != gy ? g : nullptr, param_grads ? proj_ge_ : nullptr);
      if (param_grads)
        be_.gemm(true, false, num_classes_, proj_dim_, B, 1.f, cond_, proj_ge_, 1.f, grads_ + proj_offset_);
    }
  }
  // g is now dL/d(conditioner output)
  const ProfileRange cr(cond_label_.c_str());
  switch (fusion_) {
    case FusionKind::none:
    case FusionKind::projection:  // x entered unconditioned
      if (gx) be_.copy(gx, g, static_cast<size_t>(B) * in_dim_);
      break;
    case FusionKind::concat:
      if (gx) be_.fuse_backward(Fusion::concat, B, in_dim_, embed_dim_, 0, x_, labels_, nullptr, g, gx, nullptr);
      break;
    case FusionKind::embed_concat:
      be_.fuse_backward(Fusion::embed_concat, B, in_dim_, embed_dim_, num_classes_, x_, labels_,
                        params_ + table_offset_, g, gx, param_grads ? grads_ + table_offset_ : nullptr);
      break;
    case FusionKind::embed_multiply:
      be_.fuse_backward(Fusion::embed_multiply, B, in_dim_, embed_dim_, num_classes_, x_, labels_,
                        params_ + table_offset_, g, gx, param_grads ? grads_ + table_offset_ : nullptr);
      break;
    case FusionKind::label_plane:
      if (gx) be_.fuse_backward(Fusion::concat, B, in_dim_, embed_dim_, 0, x_, labels_, nullptr, g, gx, nullptr);
      if (param_grads) {  // the plane's share of g, back through the Linear (the tags get no gradient)
        float* gplane = g == gbuf_a_ ? gbuf_b_ : gbuf_a_;
        be_.copy_cols(B, fused_dim_, in_dim_, embed_dim_, g, gplane);
        be_.bias_act_backward(Act::none, 0.f, B, embed_dim_, plane_, gplane, grads_ + plane_bias_offset_);
        be_.gemm(true, false, num_classes_, embed_dim_, B, 1.f, cond_, gplane, 1.f, grads_ + table_offset_);
      }
      break;
  }
}

const float* Model::output_of(int layer_index, int* width) const {
  for (auto& L : layers_) {
    if (L->spec_last != layer_index) continue;
    CGAN_CHECK(L->y_used, "model ", name_, ": output_of(", layer_index, ") before any forward");
    if (width) *width = L->out();
    return L->y_used;
  }
  CGAN_CHECK(layer_index >= 0 && layer_index < spec_layers_, "model ", name_, ": output_of(", layer_index,
             "): no such layer (it has ", spec_layers_, ")");
  throw Error(cat("model ", name_, ": output_of(", layer_index,
                  "): the layer is fused with the activation "
                  "after it, whose output (layer ",
                  layer_index + 1, ") is the one kept"));
}

const float* Model::dropout_mask(int layer_index) const {
  for (auto& L : layers_)
    if (L->spec_index == layer_index) return L->dropout_mask();
  return nullptr;
}

std::vector<std::pair<int, ConvShape>> Model::conv_shapes() const {
  std::vector<std::pair<int, ConvShape>> v;
  for (auto& L : layers_)
    if (const ConvShape* s = L->conv_shape()) v.emplace_back(L->spec_index, *s);
  return v;
}

LayerRun Model::run(bool train, uint64_t seed, RngStream stream) const {
  LayerRun r{be_, name_, batch_, num_classes_};
  r.params = params_, r.grads = grads_, r.state = state_, r.cond = cond_;
  r.train = train, r.seed = seed, r.stream = stream, r.sample_offset = sample_offset_, r.bn_sync = bn_sync_;
  return r;
}

void Model::set_params(const float* host_params, const float* host_state) {
  if (n_params_) be_.upload(params_, host_params, n_params_);
  if (n_state_) be_.upload(state_, host_state, n_state_);
}

size_t Model::packed_param_count() const {
  size_t n = 0;
  for (const ParamSlot& s : slots_)
    if (!s.state) n += s.count;
  return n;
}

std::vector<float> Model::unpack_params(const std::vector<float>& packed) const {
  CGAN_CHECK(packed.size() == packed_param_count(), "unpack_params: ", packed.size(), " floats, expected ",
             packed_param_count());
  std::vector<float> out(n_params_, 0.f);
  size_t at = 0;
  for (const ParamSlot& s : slots_)
    if (!s.state) {
      std::copy(packed.begin() + at, packed.begin() + at + s.count, out.begin() + s.offset);
      at += s.count;
    }
  return out;
}

void Model::zero_grads() { be_.fill(grads_, std::max<size_t>(n_params_, 1), 0.f); }

void Model::adam_step(const AdamSpec& a, int t, const int32_t* t_counter) {
  const ProfileRange r(adam_label_.c_str());
  if (n_params_) be_.adam(n_params_, params_, grads_, m_, v_, a.lr, a.beta1, a.beta2, a.eps, t, t_counter);
}

}  // namespace cgan
