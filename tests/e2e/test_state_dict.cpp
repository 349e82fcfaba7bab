// Checkpoints in PyTorch's state_dict layout (format v2), and the v1 files written before it: names,
// shapes, values and metadata of a fresh checkpoint; a checked-in v1 file resumes and samples as its
// re-saved (v2) copy does.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>

#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/nn/state_dict.hpp"
#include "cgan/train/trainer.hpp"
#include "e2e_util.hpp"

using namespace cgan;

namespace {

// tests/data/v1_checkpoint.safetensors: `cgan_gpu --config tests/data/v1_checkpoint.json` (5 steps)
// with the engine as of commit d437f3d, the last to write format v1.
const std::string kV1File = e2e::source("tests/data/v1_checkpoint.safetensors");

std::vector<float> fetch(Backend& be, const float* p, size_t n) {
  std::vector<float> h(n);
  if (n) be.download(h.data(), p, n);
  return h;
}

const ParamSlot& slot(const Model& m, const std::string& name) {
  for (const ParamSlot& s : m.slots())
    if (s.name == name) return s;
  throw Error("no slot " + name);
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Every tensor of a and b has the same name, dtype, shape and bits (metadata not compared).
void expect_same_tensors(const SafeTensors& a, const SafeTensors& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const NamedTensor& t : a.tensors) {
    SCOPED_TRACE(t.name);
    const NamedTensor* u = b.find(t.name);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(t.dtype, u->dtype);
    EXPECT_EQ(t.shape, u->shape);
    EXPECT_TRUE(bit_equal(t.data, u->data));
    EXPECT_EQ(t.ints, u->ints);
  }
}

}  // namespace

// A v2 checkpoint of a model with every kind of stored tensor (embedding, linear, batch norm with
// the activation fused into the linear before it, label plane, dropout): the names, shapes and
// values are those of PyTorch's state_dict, the Adam moments follow their parameters' layout.
TEST(StateDict, CheckpointNamesShapesAndValuesArePyTorchs) {
  auto be = make_cpu_backend();
  const Config cfg = load_config(e2e::source("tests/data/v1_checkpoint.json"));
  const HostDataset data = load_dataset(cfg.data);
  Trainer t(cfg, *be, data);
  t.init();
  const int steps = 3;
  for (int i = 0; i < steps; ++i) t.step(), t.take_rows();
  const SafeTensors st = t.snapshot();
  EXPECT_EQ(st.metadata.at("format"), "cgan_gpu.checkpoint.v2");
  EXPECT_EQ(st.metadata.at("step"), "3");

  // G: embed_concat (4 labels x 3) + noise 3 -> [0] linear 8, [1] batchnorm, [2] leaky (fused into
  // nothing: it follows the batch norm), [3] linear 2. D: label plane Linear(4 -> 3) + x 2 ->
  // [0] linear 8, [1] dropout, [2] leaky, [3] linear 1.
  const std::map<std::string, std::vector<int64_t>> want = {
      {"generator.condition.weight", {4, 3}},
      {"generator.0.weight", {8, 6}},
      {"generator.0.bias", {8}},
      {"generator.1.weight", {8}},
      {"generator.1.bias", {8}},
      {"generator.1.running_mean", {8}},
      {"generator.1.running_var", {8}},
      {"generator.1.num_batches_tracked", {}},
      {"generator.3.weight", {2, 8}},
      {"generator.3.bias", {2}},
      {"discriminator.condition.weight", {3, 4}},
      {"discriminator.condition.bias", {3}},
      {"discriminator.0.weight", {8, 5}},
      {"discriminator.0.bias", {8}},
      {"discriminator.3.weight", {1, 8}},
      {"discriminator.3.bias", {1}},
  };
  std::map<std::string, std::vector<int64_t>> got, optim;
  for (const NamedTensor& n : st.tensors) {
    if (n.name.rfind("optim.", 0) == 0)
      optim[n.name] = n.shape;
    else
      got[n.name] = n.shape;
  }
  EXPECT_EQ(got, want);
  // Adam: one m and one v per trained parameter, under optim.<net>.{m,v}.<name>, same shape
  std::map<std::string, std::vector<int64_t>> want_optim;
  for (const auto& [name, shape] : want) {
    if (name.find("running_") != std::string::npos || name.find("num_batches") != std::string::npos) continue;
    const size_t dot = name.find('.');
    for (const char* w : {".m.", ".v."}) want_optim["optim." + name.substr(0, dot) + w + name.substr(dot + 1)] = shape;
  }
  EXPECT_EQ(optim, want_optim);

  // num_batches_tracked: I64 scalar, G's training forwards (d_steps = 2 in the D steps + 1 in the G step)
  const NamedTensor& nbt = st.at("generator.1.num_batches_tracked");
  EXPECT_EQ(nbt.dtype, DType::i64);
  EXPECT_EQ(nbt.ints, (std::vector<int64_t>{steps * 3}));

  // values: linear weights are the transpose of the engine's [in, out]; the rest as held
  Model& G = t.generator();
  Model& D = t.discriminator();
  const std::vector<float> gp = fetch(*be, G.params(), G.param_count()), dp = fetch(*be, D.params(), D.param_count());
  const std::vector<float> gs = fetch(*be, G.state(), G.state_count());
  const std::vector<float> gm = fetch(*be, G.adam_m(), G.param_count()), dv = fetch(*be, D.adam_v(), D.param_count());
  auto expect_transposed = [&](const std::vector<float>& engine, const ParamSlot& sl, const NamedTensor& n) {
    SCOPED_TRACE(n.name);
    const int64_t in = sl.shape[0], out = sl.shape[1];
    ASSERT_EQ(n.shape, (std::vector<int64_t>{out, in}));
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) ASSERT_EQ(n.data[o * in + i], engine[sl.offset + i * out + o]) << o << "," << i;
  };
  auto expect_copied = [&](const std::vector<float>& engine, const ParamSlot& sl, const NamedTensor& n) {
    SCOPED_TRACE(n.name);
    ASSERT_EQ(n.data.size(), sl.count);
    EXPECT_TRUE(
        bit_equal(n.data, std::vector<float>(engine.begin() + sl.offset, engine.begin() + sl.offset + sl.count)));
  };
  expect_transposed(gp, slot(G, "layers.0.weight"), st.at("generator.0.weight"));
  expect_transposed(gp, slot(G, "layers.3.weight"), st.at("generator.3.weight"));
  expect_transposed(dp, slot(D, "layers.0.weight"), st.at("discriminator.0.weight"));
  expect_transposed(dp, slot(D, "cond.weight"), st.at("discriminator.condition.weight"));  // [K, H*W] held
  expect_transposed(gm, slot(G, "layers.0.weight"), st.at("optim.generator.m.0.weight"));
  expect_transposed(dv, slot(D, "layers.3.weight"), st.at("optim.discriminator.v.3.weight"));
  expect_copied(gp, slot(G, "cond.embedding"), st.at("generator.condition.weight"));
  expect_copied(gp, slot(G, "layers.1.weight"), st.at("generator.1.weight"));
  expect_copied(gs, slot(G, "layers.1.running_var"), st.at("generator.1.running_var"));
  expect_copied(dp, slot(D, "cond.bias"), st.at("discriminator.condition.bias"));
  expect_copied(gm, slot(G, "layers.3.bias"), st.at("optim.generator.m.3.bias"));

  // and the file loads back into a fresh trainer as the same state
  e2e::TempDir dir("state_dict");
  write_safetensors(dir / "v2.safetensors", st);
  const SafeTensors back = read_safetensors(dir / "v2.safetensors");
  expect_same_tensors(st, back);
  Trainer u(cfg, *be, data);
  u.restore(back, dir / "v2.safetensors");
  e2e::expect_models_identical(*be, G, u.generator());
  e2e::expect_models_identical(*be, D, u.discriminator());
  expect_same_tensors(st, u.snapshot());
}

// A conv network's weights keep PyTorch's [K, C, R, S] and their bias [K]; the conv's config index
// names them though the activation after it is fused.
TEST(StateDict, ConvWeightsKeepTheirLayout) {
  auto be = make_cpu_backend();
  const Config cfg = load_config(e2e::source("configs/anime_small.json"), {"data.count=64", "train.batch_size=4"});
  const HostDataset data = load_dataset(cfg.data);
  Trainer t(cfg, *be, data);
  t.init();
  const SafeTensors st = t.snapshot();
  size_t convs = 0;
  for (size_t i = 0; i < cfg.discriminator.layers.size(); ++i) {
    const LayerSpec& ls = cfg.discriminator.layers[i];
    if (ls.kind != LayerKind::conv2d) continue;
    ++convs;
    const NamedTensor& w = st.at(cat("discriminator.", i, ".weight"));
    EXPECT_EQ(w.shape.size(), 4u) << i;
    EXPECT_EQ(w.shape[0], ls.out) << i;
    EXPECT_EQ(w.shape[2], ls.kernel_h) << i;
    EXPECT_EQ(w.shape[3], ls.kernel_w) << i;
    EXPECT_EQ(st.at(cat("discriminator.", i, ".bias")).shape, (std::vector<int64_t>{ls.out})) << i;
    const ParamSlot& sl = slot(t.discriminator(), cat("layers.", i, ".weight"));
    const std::vector<float> dp = fetch(*be, t.discriminator().params(), t.discriminator().param_count());
    EXPECT_TRUE(bit_equal(w.data, std::vector<float>(dp.begin() + sl.offset, dp.begin() + sl.offset + sl.count)));
  }
  EXPECT_GT(convs, 0u);
}

// The checked-in v1 file: it resumes, and its re-saved v2 copy resumes to the same weights bit for
// bit; both sample the same images; the copy holds the v1 tensors, transposed where PyTorch's
// layout says so, and the v1 packed Adam vectors split by parameter.
TEST(StateDict, V1CheckpointResumesAndSamplesAsItsV2Copy) {
  auto be = make_cpu_backend();
  const SafeTensors v1 = read_safetensors(kV1File);
  ASSERT_EQ(v1.metadata.at("format"), "cgan_gpu.checkpoint.v1");
  ASSERT_EQ(checkpoint_layout(v1, kV1File), TensorLayout::v1);
  const Config cfg = config_from_checkpoint(v1, kV1File);
  const HostDataset data = load_dataset(cfg.data);

  Trainer a(cfg, *be, data);
  a.restore(v1, kV1File);
  EXPECT_EQ(a.steps_done(), 5);
  e2e::TempDir dir("v1");
  const std::string v2_path = dir / "v2.safetensors";
  write_safetensors(v2_path, a.snapshot());
  const SafeTensors v2 = read_safetensors(v2_path);
  ASSERT_EQ(checkpoint_layout(v2, v2_path), TensorLayout::torch);
  for (const char* k : {"config", "step", "epoch", "epoch_pos", "adam_t", "data_shape", "num_classes", "data_range"})
    EXPECT_EQ(v1.metadata.at(k), v2.metadata.at(k)) << k;

  // the copy's tensors are the v1 file's
  {
    const NamedTensor& o = v1.at("generator.layers.0.weight");  // [in, out]
    const NamedTensor& n = v2.at("generator.0.weight");         // [out, in]
    ASSERT_EQ(o.shape, (std::vector<int64_t>{n.shape[1], n.shape[0]}));
    for (int64_t i = 0; i < o.shape[0]; ++i)
      for (int64_t j = 0; j < o.shape[1]; ++j) ASSERT_EQ(o.data[i * o.shape[1] + j], n.data[j * o.shape[0] + i]);
    EXPECT_TRUE(bit_equal(v1.at("generator.cond.embedding").data, v2.at("generator.condition.weight").data));
    EXPECT_TRUE(bit_equal(v1.at("generator.layers.1.running_mean").data, v2.at("generator.1.running_mean").data));
    // the v1 Adam vector packs the trained slots in slot order: embedding [4*3] first, then layers.0.weight
    const NamedTensor& m = v1.at("generator.adam.m");
    const NamedTensor& mw = v2.at("optim.generator.m.0.weight");
    const int64_t in = o.shape[0], out = o.shape[1], off = 4 * 3;
    for (int64_t i = 0; i < in; ++i)
      for (int64_t j = 0; j < out; ++j) ASSERT_EQ(m.data[off + i * out + j], mw.data[j * in + i]);
    EXPECT_TRUE(bit_equal(std::vector<float>(m.data.begin(), m.data.begin() + off),
                          v2.at("optim.generator.m.condition.weight").data));
    const NamedTensor& dv = v1.at("discriminator.adam.v");
    const NamedTensor& last = v2.at("optim.discriminator.v.3.bias");
    EXPECT_TRUE(bit_equal(std::vector<float>(dv.data.end() - 1, dv.data.end()), last.data));
  }

  // resume both and train on: bit-identical
  Trainer b(cfg, *be, data);
  b.restore(v2, v2_path);
  expect_same_tensors(a.snapshot(), b.snapshot());
  for (int i = 0; i < 7; ++i) a.step(), a.take_rows(), b.step(), b.take_rows();
  e2e::expect_models_identical(*be, a.generator(), b.generator());
  e2e::expect_models_identical(*be, a.discriminator(), b.discriminator());
  expect_same_tensors(a.snapshot(), b.snapshot());

  // sample from both files: the same generator output
  const DataShape shape = data_shape_from_metadata(v1, kV1File);
  const int K = condition_width(cfg.generator, shape);
  Model g1(*be, cfg.generator, cfg.noise_dim, K, 1, "generator"),
      g2(*be, cfg.generator, cfg.noise_dim, K, 1, "generator");
  load_model_params(g1, v1, "generator", kV1File, checkpoint_layout(v1, kV1File));
  load_model_params(g2, v2, "generator", v2_path, checkpoint_layout(v2, v2_path));
  const std::vector<float> s1 = e2e::generate(*be, cfg, g1, 16, K, nullptr);
  const std::vector<float> s2 = e2e::generate(*be, cfg, g2, 16, K, nullptr);
  EXPECT_TRUE(bit_equal(s1, s2));
  EXPECT_GT(s1.size(), 0u);
}

// The CLI samples from the v1 file and from its v2 copy the same PNG, and resumes from the v1 file.
TEST(StateDict, CliSamplesAndResumesFromAV1File) {
  e2e::TempDir d("v1_cli");
  auto r = e2e::run_cli("sample --checkpoint '" + kV1File + "' --labels 0,1,2,3 --out " + (d / "v1.png"), d / "log1");
  ASSERT_EQ(r.code, 0) << r.output;
  r = e2e::run_cli("--resume '" + kV1File + "' --set train.steps=8 --out " + (d / "run"), d / "log2");
  ASSERT_EQ(r.code, 0) << r.output;
  const SafeTensors resumed = read_safetensors(d / "run/checkpoints/step_8.safetensors");
  EXPECT_EQ(resumed.metadata.at("format"), "cgan_gpu.checkpoint.v2");
  EXPECT_EQ(resumed.metadata.at("step"), "8");
  // re-save the v1 file as v2 (restore + snapshot) and sample from it: the same bytes
  const SafeTensors v1 = read_safetensors(kV1File);
  const Config cfg = config_from_checkpoint(v1, kV1File);
  const HostDataset data = load_dataset(cfg.data);
  auto be = make_cpu_backend();
  Trainer t(cfg, *be, data);
  t.restore(v1, kV1File);
  write_safetensors(d / "v2.safetensors", t.snapshot());
  r = e2e::run_cli("sample --checkpoint " + (d / "v2.safetensors") + " --labels 0,1,2,3 --out " + (d / "v2.png"),
                   d / "log3");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(testutil::slurp(d / "v1.png"), testutil::slurp(d / "v2.png"));
}

// A checkpoint whose format this build does not know is refused with a message naming it.
TEST(StateDict, UnknownFormatIsAnError) {
  SafeTensors st;
  st.metadata["format"] = "cgan_gpu.checkpoint.v9";
  try {
    checkpoint_layout(st, "x.safetensors");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("x.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("cgan_gpu.checkpoint.v9"), std::string::npos) << m;
  }
  st.metadata.clear();  // files without a format (written before it was recorded) read as v1
  EXPECT_EQ(checkpoint_layout(st, "x.safetensors"), TensorLayout::v1);
}

// Every tensor the engine knows by name is checked when sample and eval read the file, used or not:
// the weight average's num_batches_tracked stored as F32 [2] (PyTorch: I64 []) is refused with the
// raw generator asked for; a tensor the engine does not know is allowed (a non-strict load).
TEST(StateDict, SampleAndEvalCheckEveryKnownTensorAndAllowUnknownOnes) {
  e2e::TempDir d("known_tensors");
  auto r = e2e::run_cli(
      "--config configs/mnist_lsgan_embed.json --set train.steps=2 --set train.ema.decay=0.9 "
      "--set log.progress=none --set log.sample_every=0 --set log.checkpoint_every=2 --out " +
          (d / "run"),
      d / "log_train");
  ASSERT_EQ(r.code, 0) << r.output;
  SafeTensors ck = read_safetensors(d / "run/checkpoints/step_2.safetensors");
  ck.tensors.push_back(NamedTensor{"notes.extra", {3}, {1.f, 2.f, 3.f}});  // unknown: allowed
  const std::string extra = d / "extra.safetensors";
  write_safetensors(extra, ck);
  r = e2e::run_cli("sample --checkpoint " + extra + " --labels 0,1 --out " + (d / "ok.png"), d / "log_ok");
  EXPECT_EQ(r.code, 0) << r.output;
  bool doctored = false;
  for (NamedTensor& t : ck.tensors)
    if (t.name == "generator_ema.3.num_batches_tracked") {
      ASSERT_EQ(t.dtype, DType::i64);
      t.dtype = DType::f32, t.shape = {2}, t.ints.clear(), t.data = {0.f, 0.f};
      doctored = true;
    }
  ASSERT_TRUE(doctored);
  const std::string bad = d / "bad.safetensors";
  write_safetensors(bad, ck);
  const std::string want =
      "cgan_gpu: " + bad + ": tensor 'generator_ema.3.num_batches_tracked' is F32 [2] but this model needs I64 []\n";
  r = e2e::run_cli("sample --no-ema --checkpoint " + bad + " --labels 0,1 --out " + (d / "bad.png"), d / "log_s");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, want);
  EXPECT_FALSE(std::ifstream(d / "bad.png").good());
  r = e2e::run_cli(
      "eval --no-ema --checkpoint " + bad + " --classifier " + (d / "none.safetensors") + " --out " + (d / "eval"),
      d / "log_e");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find(want), std::string::npos) << r.output;
  EXPECT_FALSE(std::ifstream(d / "eval/metrics.json").good());
  r = e2e::run_cli("--resume " + bad + " --set train.steps=3 --out " + (d / "resumed"), d / "log_r");  // strict too
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find(want), std::string::npos) << r.output;
}
