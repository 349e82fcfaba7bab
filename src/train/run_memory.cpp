// The whole run's memory plan, checked against the backend's available memory before set-up; see
// include/cgan/train/run_memory.hpp.
#include "cgan/train/run_memory.hpp"

#include <algorithm>
#include <filesystem>

#include "cgan/backend/augment.hpp"
#include "cgan/base/error.hpp"
#include "cgan/eval/classifier.hpp"
#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/nn/layer.hpp"
#include "cgan/nn/memory_plan.hpp"
#include "cgan/train/trainer.hpp"

namespace cgan {

namespace {

constexpr uint64_t kHuge = uint64_t(1) << 62;
uint64_t mul(uint64_t a, uint64_t b) { return a != 0 && b > kHuge / a ? kHuge : a * b; }
uint64_t add(uint64_t a, uint64_t b) { return std::min(kHuge, a + b); }

// One backend allocation of n 4-byte values, as the backends round it (64 bytes).
uint64_t alloc_bytes(uint64_t n) { return add(std::max<uint64_t>(mul(n, 4), 1), 63) / 64 * 64; }

// The most a model's slot alignment can add: every parameter and state slot, every arena slice
// starts on a 64-float boundary (the nn plan counts the values only). A layer has at most a
// weight, a bias and two statistics plus a few arena slices; the conditioner and the gradient
// buffers a handful more.
uint64_t alignment_floats(const NetSpec& s) { return mul(64, add(mul(8, s.layers.size()), 16)); }

// The workspace the model allocates at `batch`: the largest of its layers' workspace caps (conv2d's
// conv2d_workspace_cap), their input shapes followed through the units as the nn plan follows them.
uint64_t conv_workspace_floats(const NetSpec& spec, int in_dim, int batch, Backend& be) {
  MemoryPlan scratch;
  LayerPlan lp{scratch};
  lp.B = static_cast<uint64_t>(std::max(batch, 1));
  lp.c = static_cast<uint64_t>(in_dim);  // a conv2d needs a reshape before it, which sets the shape
  lp.operands = spec.bf16 ? MulPrecision::bf16 : MulPrecision::fp32;
  uint64_t ws = 0;
  for (const LayerSpec& l : spec.layers) {
    const LayerUnit& unit = layer_unit(l.kind);
    ws = std::max(ws, unit.workspace_cap(l, lp, be));
    unit.plan(l, lp);
  }
  return ws;
}

// What one Model instance allocates: its own parameters, gradients, Adam moments and state (unless
// a view on another's), its arena and spectral-norm buffers (the nn plan), alignment, workspace.
struct ModelBytes {
  uint64_t weights = 0, activations = 0, workspace = 0;
};
ModelBytes model_bytes(const NetSpec& spec, int in_dim, int classes, int batch, const std::string& name,
                       const std::string& device, bool view, Backend& be) {
  const MemoryPlan p = plan_model_memory(spec, in_dim, classes, batch, name, kHuge, device, view);
  const uint64_t align = alignment_floats(spec);
  ModelBytes m;
  if (!view) m.weights = add(mul(4, alloc_bytes(add(p.params, align))), alloc_bytes(add(p.state, align)));
  m.activations =
      add(alloc_bytes(add(add(p.activations, p.spectral_norm), align)), mul(64, add(spec.layers.size(), 8)));
  m.workspace = alloc_bytes(conv_workspace_floats(spec, in_dim, batch, be));
  return m;
}

}  // namespace

uint64_t RunMemoryPlan::total() const {
  uint64_t t = 0;
  for (const Item& i : items) t = add(t, i.bytes);
  return t;
}

std::string RunMemoryPlan::biggest(size_t n) const {
  std::vector<Item> v = items;
  std::stable_sort(v.begin(), v.end(), [](const Item& a, const Item& b) { return a.bytes > b.bytes; });
  std::string s;
  for (size_t i = 0; i < v.size() && i < n && v[i].bytes > 0; ++i)
    s += cat(i ? ", " : "", v[i].what, " ", format_bytes(v[i].bytes));
  return s;
}

RunMemoryPlan plan_run_memory(const Config& cfg, const DataShape& shape, int64_t count, int batch, bool evaluates,
                              Backend& be) {
  RunMemoryPlan plan;
  auto item = [&](const std::string& what, uint64_t bytes) { plan.items.push_back({what, bytes}); };
  const std::string dev = be.name();
  const uint64_t B = static_cast<uint64_t>(std::max(batch, 1));
  const uint64_t P = static_cast<uint64_t>(shape.dim()), N = static_cast<uint64_t>(std::max<int64_t>(count, 0));
  const uint64_t T = static_cast<uint64_t>(std::max(shape.cond_width(), 1)), Z = static_cast<uint64_t>(cfg.noise_dim);
  const int Kg = condition_width(cfg.generator, shape), Kd = condition_width(cfg.discriminator, shape);

  // the two models of the step, each with parameters, gradients and Adam's two moments
  const ModelBytes g = model_bytes(cfg.generator, cfg.noise_dim, Kg, batch, "generator", dev, false, be);
  const ModelBytes d = model_bytes(cfg.discriminator, shape.dim(), Kd, batch, "discriminator", dev, false, be);
  item("generator weights, gradients and Adam state", g.weights);
  item("generator activations", g.activations);
  item("discriminator weights, gradients and Adam state", d.weights);
  item("discriminator activations", d.activations);
  item("conv workspaces", add(g.workspace, d.workspace));

  // the sample grid's generator (a view at rows x cols; rows <= the classes, as Trainer's grid)
  const int K = shape.num_classes;
  const int rows = shape.is_points() ? 1 : (K > 0 ? K : 10);
  const int cols = shape.is_points() ? std::max(2000, K) : cfg.log.samples_per_label;
  const uint64_t S = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  const ModelBytes grid =
      model_bytes(cfg.generator, cfg.noise_dim, Kg, static_cast<int>(S), "generator", dev, true, be);
  item("sample grid generator",
       add(add(grid.activations, grid.workspace), add(add(alloc_bytes(S * Z), alloc_bytes(S)), alloc_bytes(S * T))));

  // train.ema: a copy of G's parameters and state, and a view on it at batch 1
  if (cfg.train.ema.enabled) {
    const ModelBytes e = model_bytes(cfg.generator, cfg.noise_dim, Kg, 1, "generator_ema", dev, true, be);
    item("EMA copy of the generator", add(g.weights / 4, add(e.activations, e.workspace)));
  }

  // the data set on the device: images, labels, the epoch's permutation, tags
  item("data set on the device", add(add(alloc_bytes(N * P), mul(2, alloc_bytes(N))),
                                     shape.tag_dim > 0 ? alloc_bytes(N * static_cast<uint64_t>(shape.tag_dim)) : 0));

  // the trainer's step buffers (Trainer's constructor)
  uint64_t step = add(mul(2, alloc_bytes(B * P)), mul(4, alloc_bytes(B)));  // x_real, gx; labels, draws
  step = add(step, add(alloc_bytes(B * Z), mul(3, alloc_bytes(B * T))));    // noise, the three conditions
  if (cfg.train.augment.any())
    step = add(step, add(mul(2, alloc_bytes(B * P)), alloc_bytes(B * static_cast<uint64_t>(kAugmentParams))));
  const uint64_t slots =
      static_cast<uint64_t>(std::max<int64_t>(std::min<int64_t>(cfg.log.flush_every, cfg.log.every), 1));
  step = add(step, add(alloc_bytes(slots * Trainer::kStatsPerStep),
                       add(alloc_bytes(Trainer::kStatsPerStep), alloc_bytes(Trainer::kCtrCount))));
  item("the trainer's step buffers", step);

  // evaluation: the classifier (its default spec; batch 500, as load_classifier) with its input
  // batch, and the generator view that draws eval.count images of a label at once
  if (evaluates && cfg.eval.every > 0) {
    const int eb = 500;
    uint64_t clf = alloc_bytes(static_cast<uint64_t>(eb) * P);
    const std::string spec_path = default_classifier_spec_path(cfg.data.kind.name());
    if (std::filesystem::exists(spec_path)) {
      const ClassifierSpec cs = load_classifier_spec_for(spec_path, cfg.data);
      const ModelBytes c = model_bytes(cs.net, shape.dim(), 0, eb, "classifier", dev, false, be);
      clf = add(clf, add(c.weights, add(c.activations, c.workspace)));
    }
    item("evaluation classifier", clf);
    const int n = std::max(cfg.eval.count, 1);
    const uint64_t En = static_cast<uint64_t>(n);
    const ModelBytes e = model_bytes(cfg.generator, cfg.noise_dim, Kg, n, "generator", dev, true, be);
    item("evaluation generator and its images",
         add(add(e.activations, e.workspace),
             add(add(alloc_bytes(En * Z), alloc_bytes(En)), alloc_bytes(En * static_cast<uint64_t>(std::max(Kg, 1))))));
  }
  return plan;
}

void check_run_memory(const RunMemoryPlan& plan, const std::string& config_name, Backend& be) {
  const uint64_t have = be.memory_available();
  const uint64_t need = plan.total();
  if (need <= have) return;
  throw Error(cat("config ", config_name, " does not fit: the run needs ", format_bytes(need), " (", plan.biggest(),
                  ") but the ", be.name(), " backend has ", format_bytes(have), " available (",
                  be.memory_available_source(), ")"));
}

}  // namespace cgan
