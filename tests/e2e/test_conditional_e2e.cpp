// Whole runs with a projection discriminator and conditional batch norm in the generator (CPU
// backend): the labelled 2-D mixture is learnt with the label entering G only through its batch
// norms and D only through the projection; resume is exact (labels and tags, dense and conv);
// checkpoints name the new tensors as PyTorch's state_dict would; `cgan_gpu sample` draws from
// such a checkpoint what the trainer's own generator draws.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/data/image.hpp"
#include "cgan/train/sample.hpp"
#include "cgan/train/trainer.hpp"
#include "e2e_util.hpp"

using namespace cgan;

namespace {

// mixture_cond with a generator conditioned only by its batch norms and a projection discriminator
const std::vector<std::string> kMixtureSets = {
    R"(generator.condition={"mode":"none"})",
    R"(generator.layers=[{"linear":64},{"batchnorm":{"conditional":true}},{"relu":{}},{"linear":64},)"
    R"({"batchnorm":{"conditional":true}},{"relu":{}},{"linear":2}])",
    R"(discriminator.condition={"mode":"projection"})"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST(ConditionalTraining, MixtureIsLearntThroughProjectionAndConditionalBatchNorm) {
  e2e::check_mixture_labels_on_their_modes(kMixtureSets);
}

TEST(ConditionalTraining, ResumeIsExactWithLabels) {
  e2e::check_resume_exact(*make_cpu_backend(), "configs/mixture_cond.json",
                          with(kMixtureSets, {"data.count=700", "train.batch_size=32", "loss.kind=three_term",
                                              "train.fake_labels=random", "train.d_steps=2"}));
}

TEST(ConditionalTraining, ResumeIsExactWithTagsAndConvLayers) {
  // conv batch norms ([N, C, S]) conditioned on multi-hot tags; a conv projection discriminator
  e2e::check_resume_exact(
      *make_cpu_backend(), "configs/anime_small.json",
      {"data.count=120", "train.batch_size=8", "train.fake_labels=random",
       R"(generator.layers=[{"linear":2048},{"reshape":[32,8,8]},{"batchnorm":{"conditional":true}},{"relu":{}},)"
       R"({"conv2d":{"out":32,"kernel":3,"padding":1}},{"batchnorm":{"conditional":true}},{"relu":{}},)"
       R"({"reshape":[2,32,32]},{"conv2d":{"out":3,"kernel":3,"padding":1}},{"tanh":{}}])",
       R"(discriminator.condition={"mode":"projection"})",
       R"(discriminator.layers=[{"reshape":[3,32,32]},{"conv2d":{"out":8,"kernel":4,"stride":2,"padding":1}},)"
       R"({"leaky_relu":0.2},{"conv2d":{"out":16,"kernel":4,"stride":2,"padding":1}},{"leaky_relu":0.2},)"
       R"({"linear":1}])"});
}

// v2 names: discriminator.embed.weight (nn.Embedding [K, F]); generator.<i>.gain.weight and
// .bias.weight (nn.Linear(K, C, bias=False), [C, K], the transpose of the engine's [K, C]) with the
// batch norm's running statistics and no weight/bias of its own; Adam moments for each.
TEST(ConditionalTraining, CheckpointNamesAndRoundTrip) {
  auto be = make_cpu_backend();
  const Config cfg = load_config(e2e::source("configs/mixture_cond.json"),
                                 with(kMixtureSets, {"data.count=500", "train.batch_size=16"}));
  const HostDataset data = load_dataset(cfg.data);
  Trainer t(cfg, *be, data);
  t.init();
  for (int i = 0; i < 3; ++i) t.step(), t.take_rows();
  const SafeTensors st = t.snapshot();
  std::map<std::string, std::vector<int64_t>> got;
  for (const NamedTensor& n : st.tensors) got[n.name] = n.shape;
  const std::map<std::string, std::vector<int64_t>> want = {{"generator.1.gain.weight", {64, 8}},
                                                            {"generator.1.bias.weight", {64, 8}},
                                                            {"generator.1.running_mean", {64}},
                                                            {"generator.1.running_var", {64}},
                                                            {"generator.1.num_batches_tracked", {}},
                                                            {"generator.4.gain.weight", {64, 8}},
                                                            {"discriminator.embed.weight", {8, 64}},
                                                            {"optim.generator.m.1.gain.weight", {64, 8}},
                                                            {"optim.discriminator.v.embed.weight", {8, 64}}};
  for (const auto& [name, shape] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_EQ(got[name], shape) << name;
  }
  EXPECT_FALSE(got.count("generator.1.weight"));
  EXPECT_FALSE(got.count("generator.1.bias"));
  // the engine's [K, C] held, the file's [C, K]
  const Model& G = t.generator();
  std::vector<float> gp(G.param_count());
  be->download(gp.data(), G.params(), gp.size());
  const ParamSlot* sl = nullptr;
  for (const ParamSlot& s : G.slots())
    if (s.name == "layers.1.gain.weight") sl = &s;
  ASSERT_NE(sl, nullptr);
  const NamedTensor& gt = st.at("generator.1.gain.weight");
  bool moved = false;
  for (int64_t c = 0; c < 64; ++c)
    for (int64_t k = 0; k < 8; ++k) {
      ASSERT_EQ(gt.data[c * 8 + k], gp[sl->offset + k * 64 + c]);
      moved = moved || gt.data[c * 8 + k] != 0.f;
    }
  EXPECT_TRUE(moved) << "three Adam steps move the gain map off its zero start";

  e2e::TempDir dir("cond_ck");
  write_safetensors(dir / "ck.safetensors", st);
  const SafeTensors back = read_safetensors(dir / "ck.safetensors");
  Trainer u(cfg, *be, data);
  u.restore(back, dir / "ck.safetensors");
  e2e::expect_models_identical(*be, t.generator(), u.generator());
  e2e::expect_models_identical(*be, t.discriminator(), u.discriminator());

  // sampling from the checkpoint (sample_from_checkpoint, behind `cgan_gpu sample`) draws what the
  // trainer's generator draws for the same noise and labels, and the labels reach G: a request with
  // every label 0 changes exactly the samples whose label was not 0
  auto samples_of = [&](const std::vector<int32_t>& labels, const std::string& file) {
    SampleRequest req;
    req.labels = labels;
    req.seed = 9;
    req.save_tensors = dir / file;
    sample_from_checkpoint(*be, back, dir / "ck.safetensors", req);
    return read_safetensors(dir / file).at("samples").data;
  };
  const std::vector<int32_t> labels = {0, 1, 2, 3, 4, 5, 6, 7, 0, 7, 6, 5, 4, 3, 2, 1};
  const int n = static_cast<int>(labels.size());
  const std::vector<float> a = samples_of(labels, "a.safetensors");
  const std::vector<float> zero = samples_of(std::vector<int32_t>(n, 0), "z.safetensors");
  Model S(*be, cfg.generator, cfg.noise_dim, 8, n, "generator", &t.generator());
  float* z = be->alloc(static_cast<size_t>(n) * cfg.noise_dim);
  int32_t* y = be->alloc_int(n);
  float* cond = be->alloc(static_cast<size_t>(n) * 8);
  be->rand_normal(static_cast<size_t>(n) * cfg.noise_dim, 9, kSampleNoiseStream, 0, 0.f, 1.f, z);
  be->upload_int(y, labels.data(), n);
  be->one_hot(n, 8, y, cond);
  std::vector<float> direct(static_cast<size_t>(n) * 2);
  be->download(direct.data(), S.forward(z, y, cond, false), direct.size());
  be->free(z), be->free(y), be->free(cond);
  ASSERT_EQ(a.size(), direct.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], direct[i]) << i;
  for (int i = 0; i < n; ++i) {
    const bool same = a[2 * i] == zero[2 * i] && a[2 * i + 1] == zero[2 * i + 1];
    EXPECT_EQ(same, labels[i] == 0) << "sample " << i << " (label " << labels[i] << ")";
  }
}

// `cgan_gpu sample` from a checkpoint of a tagged conv model with conditional batch norm: the tags
// reach G (other tags, another picture for the same seed; the same tags, the same picture).
TEST(ConditionalTraining, CliSamplesTagsFromACheckpoint) {
  e2e::TempDir d("cond_cli");
  const std::string sets =
      " --set data.count=64 --set train.batch_size=8 --set train.steps=4 --set log.every=2 --set log.progress=plain"
      " --set 'generator.layers=[{\"linear\":1024},{\"reshape\":[16,8,8]},{\"batchnorm\":{\"conditional\":true}},"
      "{\"relu\":{}},{\"reshape\":[1,32,32]},{\"conv2d\":{\"out\":3,\"kernel\":3,\"padding\":1}},{\"tanh\":{}}]'"
      " --set 'discriminator.condition={\"mode\":\"projection\"}'"
      " --set 'discriminator.layers=[{\"reshape\":[3,32,32]},{\"conv2d\":{\"out\":8,\"kernel\":4,\"stride\":4}},"
      "{\"leaky_relu\":0.2},{\"linear\":1}]'";
  auto r = e2e::run_cli("--config configs/anime_small.json --device cpu" + sets + " --out " + (d / "run"), d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string ck = d / "run/checkpoints/step_4.safetensors";
  auto sample = [&](const std::string& tags, const std::string& out) {
    auto s = e2e::run_cli("sample --checkpoint " + ck + " --tags '" + tags + "' --count 4 --seed 3 --out " + (d / out),
                          d / "log_s");
    EXPECT_EQ(s.code, 0) << s.output;
    return testutil::slurp(d / out);
  };
  const std::string a = sample("blue hair, red eyes", "a.png"), a2 = sample("blue hair, red eyes", "a2.png");
  const std::string b = sample("green hair, yellow eyes", "b.png");
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
}
