#include "cgan/nn/model.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include "cgan/base/error.hpp"
#include "cgan/nn/memory_plan.hpp"
#include "cgan/base/philox.hpp"
#include "cgan/backend/profile.hpp"
#include "cgan/nn/spectral_norm.hpp"

namespace cgan {

namespace {
constexpr size_t kAlignFloats = 64;  // 256 bytes: slots and arena slices start on this boundary
size_t aligned(size_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }
}  // namespace

// The shape of one sample: an image (C, H, W) after a reshape or conv/pool, else `c` flat
// features (h = w = 1).
struct SampleShape {
  int c = 1, h = 1, w = 1;
  bool image = false;
  int width() const { return c * h * w; }
  std::string str() const { return image ? cat(c, "x", h, "x", w) : cat(c); }
};

// The ops a layer runs in forward and backward, from its kind's name once at build time.
enum class Op { linear, relu, leaky_relu, sigmoid, tanh, dropout, batchnorm, conv2d, avgpool2d, maxpool2d, reshape };

static Op op_of(const std::string& k, const std::string& path) {
  static const std::pair<const char*, Op> ops[] = {
      {LayerKind::linear, Op::linear},       {LayerKind::relu, Op::relu},
      {LayerKind::leaky_relu, Op::leaky_relu}, {LayerKind::sigmoid, Op::sigmoid},
      {LayerKind::tanh, Op::tanh},           {LayerKind::dropout, Op::dropout},
      {LayerKind::batchnorm, Op::batchnorm}, {LayerKind::conv2d, Op::conv2d},
      {LayerKind::avgpool2d, Op::avgpool2d}, {LayerKind::maxpool2d, Op::maxpool2d},
      {LayerKind::reshape, Op::reshape}};
  for (auto& [n, op] : ops)
    if (k == n) return op;
  throw Error(cat(path, ": layer kind \"", k, "\" has no forward/backward in the model"));
}

struct Model::Layer {
  Op kind;
  std::string kind_name;
  int spec_index = 0;
  int in = 0, out = 0;  // values per sample
  SampleShape in_shape, out_shape;
  ConvShape conv;       // conv2d (N = the model's batch)
  PoolShape pool;       // avgpool2d / maxpool2d
  int bn_c = 0, bn_s = 1;  // batchnorm: channels and values per channel of one sample
  Act act = Act::none;  // linear / conv2d: fused activation; activation layers: their function
  int spec_last = 0;     // the last spec layer this one covers (spec_index + 1 for a fused linear)
  float slope = 0.f, p = 0.f, momentum = 0.f, eps = 0.f;
  size_t w = 0, b = 0;           // params offsets (linear weight/bias, batch-norm gamma/beta)
  size_t rmean = 0, rvar = 0;    // state offsets (batch-norm running stats)
  bool cond_bn = false;          // conditional batch norm: gain/bias maps at params offsets gain, bias [K, C]
  size_t gain = 0, bias = 0;
  float *dgain = nullptr, *dbias = nullptr;  // cond . W_gain, cond . W_bias [batch, C] of the last forward
  float* y = nullptr;            // output [batch, out] (arena)
  float* mask = nullptr;         // dropout mask
  float *save_mean = nullptr, *save_invstd = nullptr;
  const float* x = nullptr;      // input seen by the last forward
  const float* y_used = nullptr; // output produced by the last forward (may alias x)
  bool train = false;
  std::string label;             // its ProfileRange name: the spec path, "+act" when fused
  // spectral norm (linear / conv2d): W_sn replaces the weight w in forward and backward; u and v
  // are state slots (weight_u, weight_v)
  std::unique_ptr<SpectralNorm> sn;
  size_t sn_u = 0, sn_v = 0;
  const float* weight(const float* params) const { return sn ? sn->weight_sn() : params + w; }
};

static Act act_of(Op k) {
  switch (k) {
    case Op::relu: return Act::relu;
    case Op::leaky_relu: return Act::leaky_relu;
    case Op::sigmoid: return Act::sigmoid;
    case Op::tanh: return Act::tanh;
    default: return Act::none;
  }
}

static const char* act_name(Act a) {
  switch (a) {
    case Act::relu: return "relu";
    case Act::leaky_relu: return "leaky_relu";
    case Act::sigmoid: return "sigmoid";
    case Act::tanh: return "tanh";
    default: return "none";
  }
}

Model::Model(Backend& be, const NetSpec& spec, int in_dim, int num_classes, int batch,
             const std::string& name, const Model* share)
    : be_(be), name_(name), cond_label_(name + ".condition"), adam_label_(name + ".adam"), batch_(batch),
      in_dim_(in_dim), num_classes_(num_classes) {
  CGAN_CHECK(batch > 0 && in_dim > 0, "model ", name, ": bad batch ", batch, " or input ", in_dim);
  // Every size bounded before anything is allocated (a one-line error naming the layer).
  (void)plan_model_memory(spec, in_dim, num_classes, batch, name, be.memory_capacity_bytes(), be.name(), share != nullptr);
  size_t np = 0, ns = 0;
  // init: 'u' = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), 'n' = N(0, 1), '1' = ones, '0' = zeros,
  // 'x' = Glorot uniform U(-sqrt(6/fan), sqrt(6/fan)) with fan = fan_in + fan_out passed as fan_in.
  // 'r' = a random unit vector (a spectral norm's u, v).
  // Every slot starts on a kAlignFloats boundary (256 bytes) of its buffer; the gaps stay zero
  // (Adam keeps zeros at zero: its step is m / (sqrt(v) + eps) with m = 0).
  auto add_param = [&](const std::string& n, std::vector<int64_t> shape, bool state, char init,
                       int fan_in = 1) {
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
    CGAN_CHECK(embed_dim_ > 0, name, ".condition.embed_dim: label_plane needs the plane size H*W (e.g. 9216 for 96x96)");
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

  // layers (a linear, conv2d or batchnorm followed by an activation applies it in the same layer:
  // one bias+activation pass after the linear's GEMM, the conv's bias+activation epilogue, the
  // batch norm's output pass)
  SampleShape sh;
  sh.c = fused_dim_;
  int max_width = std::max(fused_dim_, in_dim);
  size_t conv_ws = 0;
  auto fuse_next_act = [&](Layer& L, size_t& i) {
    if (i + 1 < spec.layers.size() && act_of(op_of(spec.layers[i + 1].kind, name)) != Act::none) {
      L.act = act_of(op_of(spec.layers[i + 1].kind, name));
      L.slope = spec.layers[i + 1].slope;
      ++i;  // the activation layer is fused into this one
    }
  };
  // a user's spec error: one line naming the layer's path, as the config's errors do
  auto require = [](bool ok, const auto&... parts) {
    if (!ok) throw Error(cat(parts...));
  };
  // a spectrally normalised weight is the trained "<pre>weight_orig"; u and v are state
  auto weight_name = [](const LayerSpec& ls, const std::string& pre) {
    return pre + (ls.spectral_norm ? "weight_orig" : "weight");
  };
  auto add_spectral_norm = [&](Layer& L, const LayerSpec& ls, const std::string& pre, SpectralNormShape s) {
    if (!ls.spectral_norm) return;
    L.sn_u = add_param(pre + "weight_u", {s.rows}, true, 'r');
    L.sn_v = add_param(pre + "weight_v", {s.cols}, true, 'r');
    L.sn = std::make_unique<SpectralNorm>(be_, s);
  };
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& ls = spec.layers[i];
    auto L = std::make_unique<Layer>();
    const std::string path = cat(name, ".layers[", i, "].", ls.kind);
    L->kind = op_of(ls.kind, path);
    L->kind_name = ls.kind;
    L->spec_index = static_cast<int>(i);
    L->in_shape = sh;
    const int width = sh.width();
    L->in = width;
    const std::string pre = cat("layers.", i, ".");
    auto need_image = [&](int kh, int kw, int ph, int pw) {
      require(sh.image, path, ": needs an image input (C, H, W) but gets ", width,
                 " flat features; put a reshape before it");
      require(sh.h + 2 * ph >= kh && sh.w + 2 * pw >= kw, path, ": ",
                 L->kind == Op::conv2d ? "kernel " : "window ", kh, "x", kw,
                 " is larger than its padded input ", sh.h + 2 * ph, "x", sh.w + 2 * pw, " (input ", sh.str(), ")");
    };
    switch (L->kind) {
      case Op::linear:
        L->w = add_param(weight_name(ls, pre), {width, ls.out}, false, 'u', width);
        L->b = add_param(pre + "bias", {ls.out}, false, 'u', width);
        add_spectral_norm(*L, ls, pre, SpectralNormShape{ls.out, width, true});  // W = weight^T
        sh = SampleShape{ls.out, 1, 1, false};
        fuse_next_act(*L, i);
        break;
      case Op::conv2d: {
        need_image(ls.kernel_h, ls.kernel_w, ls.pad_h, ls.pad_w);
        require(ls.out > 0 && ls.stride_h > 0 && ls.stride_w > 0 && ls.pad_h >= 0 && ls.pad_w >= 0, path,
                   ": bad output channels, stride or padding");
        ConvShape& cs = L->conv;
        cs.N = batch;
        cs.C = sh.c, cs.H = sh.h, cs.W = sh.w;
        cs.K = ls.out, cs.R = ls.kernel_h, cs.S = ls.kernel_w;
        cs.stride_h = ls.stride_h, cs.stride_w = ls.stride_w, cs.pad_h = ls.pad_h, cs.pad_w = ls.pad_w;
        const int fan_in = cs.C * cs.R * cs.S;
        L->w = add_param(weight_name(ls, pre), {cs.K, cs.C, cs.R, cs.S}, false, 'u', fan_in);
        L->b = add_param(pre + "bias", {cs.K}, false, 'u', fan_in);
        add_spectral_norm(*L, ls, pre, SpectralNormShape{cs.K, fan_in, false});
        sh = SampleShape{cs.K, cs.P(), cs.Q(), true};
        conv_ws = std::max(conv_ws, be_.conv2d_workspace(cs));
        fuse_next_act(*L, i);
        break;
      }
      case Op::avgpool2d:
      case Op::maxpool2d: {
        need_image(ls.kernel_h, ls.kernel_w, ls.pad_h, ls.pad_w);
        require(ls.stride_h > 0 && ls.stride_w > 0 && ls.pad_h >= 0 && ls.pad_w >= 0 &&
                       2 * ls.pad_h <= ls.kernel_h && 2 * ls.pad_w <= ls.kernel_w,
                   path, ": bad stride, or padding more than half the window");
        PoolShape& ps = L->pool;
        ps.N = batch;
        ps.C = sh.c, ps.H = sh.h, ps.W = sh.w;
        ps.R = ls.kernel_h, ps.S = ls.kernel_w;
        ps.stride_h = ls.stride_h, ps.stride_w = ls.stride_w, ps.pad_h = ls.pad_h, ps.pad_w = ls.pad_w;
        sh = SampleShape{sh.c, ps.P(), ps.Q(), true};
        break;
      }
      case Op::reshape: {
        const int64_t n = int64_t(ls.shape[0]) * ls.shape[1] * ls.shape[2];
        require(ls.shape[0] > 0 && ls.shape[1] > 0 && ls.shape[2] > 0 && n == width, path, ": [", ls.shape[0],
                   ", ", ls.shape[1], ", ", ls.shape[2], "] holds ", n, " values but its input has ", width);
        sh = SampleShape{ls.shape[0], ls.shape[1], ls.shape[2], true};
        break;
      }
      case Op::relu:
      case Op::leaky_relu:
      case Op::sigmoid:
      case Op::tanh:
        L->act = act_of(L->kind);
        L->slope = ls.slope;
        break;
      case Op::dropout:
        L->p = ls.p;
        break;
      case Op::batchnorm:
        // per channel over N*H*W on an image, per feature on flat input
        L->bn_c = sh.image ? sh.c : width;
        L->bn_s = sh.image ? sh.h * sh.w : 1;
        L->momentum = ls.momentum;
        L->eps = ls.eps;
        if (ls.conditional) {  // gain = 1 + cond . W_gain, bias = cond . W_bias, per sample (no affine of its own)
          require(num_classes > 0, path, ".conditional: conditional batch norm needs labelled data (labels or tags)");
          L->cond_bn = true;
          has_cbn_ = true;
          L->gain = add_param(pre + "gain.weight", {num_classes, L->bn_c}, false, '0');
          L->bias = add_param(pre + "bias.weight", {num_classes, L->bn_c}, false, '0');
        } else {
          L->w = add_param(pre + "weight", {L->bn_c}, false, '1');
          L->b = add_param(pre + "bias", {L->bn_c}, false, '0');
        }
        L->rmean = add_param(pre + "running_mean", {L->bn_c}, true, '0');
        L->rvar = add_param(pre + "running_var", {L->bn_c}, true, '1');
        fuse_next_act(*L, i);  // applied in the batch norm's output pass
        break;
    }
    L->spec_last = static_cast<int>(i);
    L->label = L->act != Act::none && act_of(L->kind) == Act::none ? cat(path, "+", act_name(L->act)) : path;
    L->out_shape = sh;
    L->out = sh.width();
    max_width = std::max(max_width, L->out);
    layers_.push_back(std::move(L));
  }
  out_dim_ = sh.width();
  if (fusion_ == FusionKind::projection) {  // E [K, F], F = the width of phi(x), the last linear's input
    proj_dim_ = layers_.back()->in;
    proj_offset_ = add_param("embed.weight", {num_classes, proj_dim_}, false, 'x', num_classes + proj_dim_);
  }
  first_compute_ = 0;
  while (first_compute_ < layers_.size() && layers_[first_compute_]->kind == Op::reshape) ++first_compute_;
  spec_layers_ = static_cast<int>(spec.layers.size());
  n_params_ = np ? aligned(np) : 0;  // whole float4 groups for Adam
  n_state_ = ns;

  if (share) {
    CGAN_CHECK(share->n_params_ == n_params_ && share->n_state_ == n_state_ &&
                   share->fused_dim_ == fused_dim_ && share->out_dim_ == out_dim_,
               "model ", name, ": shared parameters come from a different architecture");
    owns_params_ = false;
    params_ = share->params_;
    grads_ = share->grads_;
    m_ = share->m_;
    v_ = share->v_;
    state_ = share->state_;
  } else {
    params_ = be_.alloc(std::max<size_t>(n_params_, 1));
    grads_ = be_.alloc(std::max<size_t>(n_params_, 1));
    m_ = be_.alloc(std::max<size_t>(n_params_, 1));
    v_ = be_.alloc(std::max<size_t>(n_params_, 1));
    state_ = be_.alloc(std::max<size_t>(n_state_, 1));
  }

  // activation arena
  const size_t B = static_cast<size_t>(batch_);
  size_t arena = 0;
  if (fusion_ != FusionKind::none && fusion_ != FusionKind::projection) arena += B * fused_dim_;
  if (fusion_ == FusionKind::label_plane) arena += B * embed_dim_;
  if (fusion_ == FusionKind::projection) arena += 2 * B * proj_dim_;
  size_t cbn_c = 0;  // the widest conditional batch norm: its gradient buffers are shared
  for (auto& L : layers_) {
    if (L->kind != Op::reshape) arena += B * L->out;
    if (L->kind == Op::dropout) arena += B * L->out;
    if (L->kind == Op::batchnorm) arena += 2 * static_cast<size_t>(L->bn_c);
    if (L->cond_bn) arena += 2 * B * L->bn_c, cbn_c = std::max<size_t>(cbn_c, L->bn_c);
  }
  arena += 2 * B * cbn_c;
  arena += 2 * B * max_width + B * out_dim_;
  activation_floats_ = arena;
  // room for aligning every take() below: 2 for the conditioner and 2 for the projection, at most 5
  // per layer, 5 buffers
  arena += (4 + 5 * layers_.size() + 5) * kAlignFloats;
  arena_ = be_.alloc(arena);
  float* cur = arena_;
  // Each slice starts on a 256-byte boundary (alloc returns 256-byte aligned memory), so cuDNN and
  // cuBLAS see aligned inputs, outputs and gradients and may use their vectorised kernels.
  auto take = [&](size_t n) {
    float* p = cur;
    cur += aligned(n);
    return p;
  };
  if (fusion_ != FusionKind::none && fusion_ != FusionKind::projection) fused_ = take(B * fused_dim_);
  if (fusion_ == FusionKind::label_plane) plane_ = take(B * embed_dim_);
  if (fusion_ == FusionKind::projection) {
    proj_e_ = take(B * proj_dim_);
    proj_ge_ = take(B * proj_dim_);
  }
  for (auto& L : layers_) {
    if (L->kind != Op::reshape) L->y = take(B * L->out);
    if (L->kind == Op::dropout) L->mask = take(B * L->out);
    if (L->kind == Op::batchnorm) {
      L->save_mean = take(L->bn_c);
      L->save_invstd = take(L->bn_c);
    }
    if (L->cond_bn) {
      L->dgain = take(B * L->bn_c);
      L->dbias = take(B * L->bn_c);
    }
  }
  if (cbn_c) {
    cbn_gdgain_ = take(B * cbn_c);
    cbn_gdbias_ = take(B * cbn_c);
  }
  gbuf_a_ = take(B * max_width);
  gbuf_b_ = take(B * max_width);
  gout_buf_ = take(B * out_dim_);
  CGAN_CHECK(static_cast<size_t>(cur - arena_) <= arena, "model ", name, ": arena plan too small");
  if (conv_ws) conv_ws_ = be_.alloc(conv_ws);
}

Model::Model(Backend& be, const NetSpec& spec, int in_dim, int num_classes, int batch, const std::string& name,
             const Model& share, float* params, float* state)
    : Model(be, spec, in_dim, num_classes, batch, name, &share) {
  CGAN_CHECK(params && (state || n_state_ == 0), "model ", name, ": a view needs parameter and state buffers");
  params_ = params;
  state_ = n_state_ ? state : share.state_;
  grads_ = m_ = v_ = nullptr;
}

Model::~Model() {
  be_.free(arena_);
  be_.free(conv_ws_);
  if (owns_params_) {
    be_.free(params_);
    be_.free(grads_);
    be_.free(m_);
    be_.free(v_);
    be_.free(state_);
  }
}

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
    os << "  [" << L->spec_index << "] " << L->kind_name << " " << L->in_shape.str() << " -> "
       << L->out_shape.str();
    if (L->kind == Op::conv2d || L->kind == Op::avgpool2d || L->kind == Op::maxpool2d) {
      const bool conv = L->kind == Op::conv2d;
      const int R = conv ? L->conv.R : L->pool.R, S = conv ? L->conv.S : L->pool.S;
      const int sh = conv ? L->conv.stride_h : L->pool.stride_h, sw = conv ? L->conv.stride_w : L->pool.stride_w;
      const int ph = conv ? L->conv.pad_h : L->pool.pad_h, pw = conv ? L->conv.pad_w : L->pool.pad_w;
      os << " (" << (conv ? "kernel " : "window ") << R << "x" << S << ", stride " << sh << "x" << sw;
      if (ph || pw) os << ", padding " << ph << "x" << pw;
      os << ")";
    }
    if ((L->kind == Op::linear || L->kind == Op::conv2d || L->kind == Op::batchnorm) &&
        L->act != Act::none)
      os << " + " << act_name(L->act) << " (fused)";
    if (L->kind == Op::dropout) os << " p=" << L->p;
    if (L->cond_bn) os << " conditional (gain, bias " << num_classes_ << "x" << L->bn_c << ")";
    if (L->sn) os << " + spectral norm";
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
        case 'x': dst[i] = (2.f * philox_uniform(seed, stream, i) - 1.f) * std::sqrt(6.f / static_cast<float>(fan_in)); break;
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

const float* Model::forward(const float* x, const int32_t* labels, const float* cond, bool train,
                            uint64_t seed, RngStream stream) {
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
      be_.fuse_forward(Fusion::embed_concat, B, in_dim_, embed_dim_, num_classes_, x, nullptr, labels, params_ + table_offset_, fused_);
      h = fused_;
      break;
    case FusionKind::embed_multiply:
      be_.fuse_forward(Fusion::embed_multiply, B, in_dim_, embed_dim_, num_classes_, x, nullptr, labels, params_ + table_offset_, fused_);
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
  for (size_t li = 0; li < layers_.size(); ++li) {
    Layer& L = *layers_[li];
    const ProfileRange lr(L.label.c_str());
    L.x = h;
    L.train = train;
    const size_t n = static_cast<size_t>(B) * L.out;
    switch (L.kind) {
      case Op::linear:
        if (L.sn) L.sn->forward(params_ + L.w, state_ + L.sn_u, state_ + L.sn_v, train);
        be_.gemm(false, false, B, L.out, L.in, 1.f, h, L.weight(params_), 0.f, L.y);
        be_.bias_act_forward(L.act, L.slope, B, L.out, params_ + L.b, L.y);
        L.y_used = L.y;
        break;
      case Op::relu:
      case Op::leaky_relu:
      case Op::sigmoid:
      case Op::tanh:
        be_.copy(L.y, h, n);
        be_.bias_act_forward(L.act, L.slope, B, L.out, nullptr, L.y);
        L.y_used = L.y;
        break;
      case Op::dropout:
        if (train && L.p > 0.f) {
          be_.copy(L.y, h, n);
          be_.dropout_forward(n, L.p, seed, stream.sub(64, li), L.y, L.mask, sample_offset_ * L.out);
          L.y_used = L.y;
        } else {
          L.y_used = h;  // identity at evaluation
        }
        break;
      case Op::batchnorm:
        if (L.cond_bn) {
          CGAN_CHECK(cond, "model ", name_, ": conditional batch norm needs the condition vectors");
          be_.gemm(false, false, B, L.bn_c, num_classes_, 1.f, cond, params_ + L.gain, 0.f, L.dgain);
          be_.gemm(false, false, B, L.bn_c, num_classes_, 1.f, cond, params_ + L.bias, 0.f, L.dbias);
          if (train)
            be_.cbn_forward_train(B, L.bn_c, L.bn_s, L.eps, L.momentum, h, L.dgain, L.dbias, L.y, L.save_mean,
                                  L.save_invstd, state_ + L.rmean, state_ + L.rvar, L.act, L.slope);
          else
            be_.cbn_forward_eval(B, L.bn_c, L.bn_s, L.eps, h, L.dgain, L.dbias, state_ + L.rmean, state_ + L.rvar, L.y,
                                 L.act, L.slope);
        } else if (train && bn_sync_)
          be_.batchnorm_forward_train_sync(B, L.bn_c, L.bn_s, L.eps, L.momentum, h, params_ + L.w, params_ + L.b,
                                           L.y, L.save_mean, L.save_invstd, state_ + L.rmean, state_ + L.rvar,
                                           *bn_sync_, L.act, L.slope);
        else if (train)
          be_.batchnorm_forward_train(B, L.bn_c, L.bn_s, L.eps, L.momentum, h, params_ + L.w, params_ + L.b, L.y,
                                      L.save_mean, L.save_invstd, state_ + L.rmean, state_ + L.rvar, L.act, L.slope);
        else
          be_.batchnorm_forward_eval(B, L.bn_c, L.bn_s, L.eps, h, params_ + L.w, params_ + L.b, state_ + L.rmean,
                                     state_ + L.rvar, L.y, L.act, L.slope);
        L.y_used = L.y;
        break;
      case Op::conv2d:
        if (L.sn) L.sn->forward(params_ + L.w, state_ + L.sn_u, state_ + L.sn_v, train);
        be_.conv2d_forward(L.conv, h, L.weight(params_), params_ + L.b, L.y, conv_ws_, L.act, L.slope);
        L.y_used = L.y;
        break;
      case Op::avgpool2d:
      case Op::maxpool2d:
        be_.pool2d_forward(L.kind == Op::avgpool2d ? Pool::avg : Pool::max, L.pool, h, L.y);
        L.y_used = L.y;
        break;
      case Op::reshape:
        L.y_used = h;  // the same values, now read as an image
        break;
    }
    h = L.y_used;
  }
  if (fusion_ == FusionKind::projection) {  // out += <cond . E, phi(x)>, phi(x): the last linear's input
    CGAN_CHECK(cond, "model ", name_, ": projection needs the condition vectors");
    const ProfileRange pr(cond_label_.c_str());
    Layer& L = *layers_.back();
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
  for (size_t li = layers_.size(); li-- > 0;) {
    Layer& L = *layers_[li];
    const ProfileRange lr(L.label.c_str());
    const bool first = li <= first_compute_;  // only reshapes before it: its input gradient is dL/dx
    switch (L.kind) {
      case Op::linear: {
        be_.bias_act_backward(L.act, L.slope, B, L.out, L.y, g, param_grads ? grads_ + L.b : nullptr);
        if (param_grads && L.sn) {  // dL/dW_sn, then through W_sn = W / sigma into the weight's gradient
          be_.gemm(true, false, L.in, L.out, B, 1.f, L.x, g, 0.f, L.sn->grad_sn());
          L.sn->backward(state_ + L.sn_u, state_ + L.sn_v, grads_ + L.w);
        } else if (param_grads) {
          be_.gemm(true, false, L.in, L.out, B, 1.f, L.x, g, 1.f, grads_ + L.w);
        }
        float* gy = g;  // dL/dout
        if (!first || need_input_grad) {
          float* gin = other(g);
          be_.gemm(false, true, B, L.in, L.out, 1.f, g, L.weight(params_), 0.f, gin);
          g = gin;
        }
        if (fusion_ == FusionKind::projection && li + 1 == layers_.size()) {
          const ProfileRange pr(cond_label_.c_str());
          be_.projection_backward(B, proj_dim_, L.x, proj_e_, gy, g != gy ? g : nullptr,
                                  param_grads ? proj_ge_ : nullptr);
          if (param_grads)
            be_.gemm(true, false, num_classes_, proj_dim_, B, 1.f, cond_, proj_ge_, 1.f, grads_ + proj_offset_);
        }
        break;
      }
      case Op::relu:
      case Op::leaky_relu:
      case Op::sigmoid:
      case Op::tanh:
        be_.bias_act_backward(L.act, L.slope, B, L.out, L.y, g, nullptr);
        break;
      case Op::dropout:
        if (L.train && L.p > 0.f) be_.mul(static_cast<size_t>(B) * L.out, L.mask, g);
        break;
      case Op::batchnorm: {
        CGAN_CHECK(L.train, "model ", name_, ": backward through batch norm needs a training forward");
        if (L.act != Act::none) be_.bias_act_backward(L.act, L.slope, B, L.out, L.y, g, nullptr);
        float* gin = other(g);
        if (L.cond_bn) {
          be_.cbn_backward(B, L.bn_c, L.bn_s, L.x, L.dgain, L.save_mean, L.save_invstd, g, gin, cbn_gdgain_,
                           cbn_gdbias_);
          if (param_grads) {
            be_.gemm(true, false, num_classes_, L.bn_c, B, 1.f, cond_, cbn_gdgain_, 1.f, grads_ + L.gain);
            be_.gemm(true, false, num_classes_, L.bn_c, B, 1.f, cond_, cbn_gdbias_, 1.f, grads_ + L.bias);
          }
        } else if (bn_sync_) {
          be_.batchnorm_backward_sync(B, L.bn_c, L.bn_s, L.x, params_ + L.w, L.save_mean, L.save_invstd, g, gin,
                                      grads_ + L.w, grads_ + L.b, *bn_sync_);
        } else {
          be_.batchnorm_backward(B, L.bn_c, L.bn_s, L.x, params_ + L.w, L.save_mean, L.save_invstd, g, gin,
                                 grads_ + L.w, grads_ + L.b);
        }
        g = gin;
        break;
      }
      case Op::conv2d: {
        if (L.act != Act::none) be_.bias_act_backward(L.act, L.slope, B, L.out, L.y, g, nullptr);
        if (param_grads && L.sn) {  // as the linear's
          be_.fill(L.sn->grad_sn(), L.sn->shape().count(), 0.f);
          be_.conv2d_backward_filter(L.conv, L.x, g, L.sn->grad_sn(), grads_ + L.b, conv_ws_);
          L.sn->backward(state_ + L.sn_u, state_ + L.sn_v, grads_ + L.w);
        } else if (param_grads) {
          be_.conv2d_backward_filter(L.conv, L.x, g, grads_ + L.w, grads_ + L.b, conv_ws_);
        }
        if (!first || need_input_grad) {
          float* gin = other(g);
          be_.conv2d_backward_data(L.conv, g, L.weight(params_), gin, conv_ws_);
          g = gin;
        }
        break;
      }
      case Op::avgpool2d:
      case Op::maxpool2d: {
        float* gin = other(g);
        be_.pool2d_backward(L.kind == Op::avgpool2d ? Pool::avg : Pool::max, L.pool, L.x, L.y, g, gin);
        g = gin;
        break;
      }
      case Op::reshape:
        break;  // same values, same gradient
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
      be_.fuse_backward(Fusion::embed_concat, B, in_dim_, embed_dim_, num_classes_, x_, labels_, params_ + table_offset_, g, gx,
                        param_grads ? grads_ + table_offset_ : nullptr);
      break;
    case FusionKind::embed_multiply:
      be_.fuse_backward(Fusion::embed_multiply, B, in_dim_, embed_dim_, num_classes_, x_, labels_, params_ + table_offset_, g,
                        gx, param_grads ? grads_ + table_offset_ : nullptr);
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
    if (width) *width = L->out;
    return L->y_used;
  }
  CGAN_CHECK(layer_index >= 0 && layer_index < spec_layers_, "model ", name_, ": output_of(", layer_index,
             "): no such layer (it has ", spec_layers_, ")");
  throw Error(cat("model ", name_, ": output_of(", layer_index, "): the layer is fused with the activation "
                  "after it, whose output (layer ", layer_index + 1, ") is the one kept"));
}

const float* Model::dropout_mask(int layer_index) const {
  for (auto& L : layers_)
    if (L->spec_index == layer_index && L->kind == Op::dropout)
      return L->train && L->p > 0.f && L->y_used == L->y ? L->mask : nullptr;
  return nullptr;
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
