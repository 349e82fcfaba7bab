// Whole training runs on the CPU backend: the toy GANs learn their targets, resume is exact.
#include <gtest/gtest.h>

#include <cmath>

#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/train/trainer.hpp"
#include "e2e_util.hpp"

using namespace cgan;

TEST(Training, MixtureCondPutsEachLabelOnItsMode) { e2e::check_mixture_labels_on_their_modes({}); }

TEST(Training, GaussianToyMatchesMeanAndStd) {
  Config cfg = load_config(e2e::source("configs/gaussian_toy.json"));
  auto be = make_cpu_backend();
  const HostDataset data = load_dataset(cfg.data);
  Trainer t(cfg, *be, data);
  t.init();
  float last_acc = 0;
  while (t.steps_done() < cfg.train.steps) {
    t.step();
    if (t.steps_done() % 100 == 0) last_acc = t.take_rows().back().d_acc;
  }
  const int n = 5000;
  const auto xy = e2e::generate(*be, cfg, t.generator(), n, 0, nullptr);
  double m[2] = {0, 0}, s[2] = {0, 0};
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < 2; ++d) m[d] += xy[2 * i + d] / n;
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < 2; ++d) s[d] += (xy[2 * i + d] - m[d]) * (xy[2 * i + d] - m[d]) / (n - 1);
  s[0] = std::sqrt(s[0]), s[1] = std::sqrt(s[1]);
  const double tm[2] = {cfg.data.mean_x, cfg.data.mean_y}, ts[2] = {cfg.data.std_x, cfg.data.std_y};
  std::printf("generated mean (%.3f, %.3f) std (%.3f, %.3f); target mean (%.3f, %.3f) std (%.3f, %.3f); D acc %.3f\n",
              m[0], m[1], s[0], s[1], tm[0], tm[1], ts[0], ts[1], last_acc);
  for (int d = 0; d < 2; ++d) {
    EXPECT_NEAR(m[d], tm[d], 0.1 * std::fabs(tm[d])) << "mean, axis " << d;
    EXPECT_NEAR(s[d], ts[d], 0.1 * ts[d]) << "std, axis " << d;
  }
}

TEST(Training, ResumeIsExactMixture) {
  // 37 steps of batch 128 over 1000 samples cross several epochs: reshuffles are replayed too
  e2e::check_resume_exact(*make_cpu_backend(), "configs/mixture_cond.json",
                          {"data.count=1000", "train.fake_labels=random"});
}

TEST(Training, ResumeIsExactWithBatchNormDropoutAndEmbeddings) {
  // the least-squares seed's layers (embedding, batch norm, dropout) on small point data
  e2e::check_resume_exact(
      *make_cpu_backend(), "configs/mixture_cond.json",
      {"data.count=500", "train.batch_size=32", "loss.kind=squared", "train.d_steps=2",
       R"(generator.condition={"mode":"embed_concat","embed_dim":5})",
       R"(generator.layers=[{"linear":32},{"batchnorm":{"eps":0.8}},{"leaky_relu":0.2},{"linear":2}])",
       R"(discriminator.condition={"mode":"embed_multiply"})",
       R"(discriminator.layers=[{"linear":32},{"dropout":0.4},{"leaky_relu":0.2},{"linear":1}])"});
}

TEST(Training, ResumeIsExactInBf16) {
  // bf16 convolutions (oneDNN) and bf16 dense GEMMs with batch norm, dropout and embeddings
  e2e::check_resume_exact(*make_cpu_backend(), "configs/anime_small.json",
                          {"data.count=120", "train.batch_size=8", "train.fake_labels=random", "precision=bf16"});
  e2e::check_resume_exact(
      *make_cpu_backend(), "configs/mixture_cond.json",
      {"data.count=500", "train.batch_size=32", "loss.kind=squared", "precision=bf16",
       R"(generator.condition={"mode":"embed_concat","embed_dim":5})",
       R"(generator.layers=[{"linear":32},{"batchnorm":{"eps":0.8}},{"leaky_relu":0.2},{"linear":2}])",
       R"(discriminator.layers=[{"linear":32},{"dropout":0.4},{"leaky_relu":0.2},{"linear":1}])"});
}

// precision "bf16" trains the conv model as fp32 does, with the noise of bf16 products: from the
// same weights and draws, the first iteration's losses agree to 1e-4 (measured: 4e-6; and they
// differ from fp32's), and over 60 iterations, long after the two runs' weights parted bit for
// bit, the mean losses of the last 30 stay within 5 % of each other (measured: 0.5 %).
TEST(Training, Bf16LossesTrackFp32s) {
  std::vector<LossRow> runs[2];
  for (int k = 0; k < 2; ++k) {
    const Config cfg = load_config(e2e::source("configs/anime_small.json"),
                                   {"data.count=256", "train.batch_size=16", k ? "precision=bf16" : "precision=fp32"});
    auto be = make_cpu_backend();
    const HostDataset data = load_dataset(cfg.data);
    Trainer t(cfg, *be, data);
    t.init();
    for (int i = 0; i < 60; ++i) {
      t.step();
      for (const LossRow& r : t.take_rows()) runs[k].push_back(r);
    }
  }
  ASSERT_EQ(runs[0].size(), 60u);
  ASSERT_EQ(runs[1].size(), 60u);
  const LossRow &f = runs[0][0], &b = runs[1][0];
  std::printf("first iteration: fp32 d %.6f g %.6f, bf16 d %.6f g %.6f\n", f.d_loss, f.g_loss, b.d_loss, b.g_loss);
  EXPECT_NE(f.d_loss, b.d_loss);
  EXPECT_NEAR(b.d_loss, f.d_loss, 1e-4 * std::fabs(f.d_loss));
  EXPECT_NEAR(b.g_loss, f.g_loss, 1e-4 * std::fabs(f.g_loss));
  double mean[2][2] = {};
  for (int k = 0; k < 2; ++k)
    for (size_t i = 30; i < 60; ++i) mean[k][0] += runs[k][i].d_loss / 30.0, mean[k][1] += runs[k][i].g_loss / 30.0;
  std::printf("iterations 31-60: fp32 d %.4f g %.4f, bf16 d %.4f g %.4f\n", mean[0][0], mean[0][1], mean[1][0],
              mean[1][1]);
  EXPECT_NEAR(mean[1][0], mean[0][0], 0.05 * mean[0][0]) << "D loss";
  EXPECT_NEAR(mean[1][1], mean[0][1], 0.05 * mean[0][1]) << "G loss";
}

// The three_term loss adds the mismatched pair to D's loss: from the same weights and the same
// draws, the first iteration's real and fake terms are those of the two-term loss, and d_loss
// exceeds the two-term one by the (positive) mismatched-pair BCE.
TEST(Training, ThreeTermAddsTheMismatchedPairToDLoss) {
  auto be = make_cpu_backend();
  auto first_row = [&](const std::vector<std::string>& sets) {
    const Config cfg = load_config(e2e::source("configs/mixture_cond.json"), sets);
    const HostDataset data = load_dataset(cfg.data);
    Trainer t(cfg, *be, data);
    t.init();
    t.step();
    return t.take_rows().at(0);
  };
  const LossRow two = first_row({"data.count=500"});
  for (const char* mismatch : {"real_other_tags", "fake_other_tags"}) {
    SCOPED_TRACE(mismatch);
    const LossRow three =
        first_row({"data.count=500", "loss.kind=three_term", std::string("loss.mismatch=") + mismatch});
    EXPECT_EQ(three.d_real, two.d_real);
    EXPECT_EQ(three.d_fake, two.d_fake);
    EXPECT_GT(three.d_loss - two.d_loss, 0.05f) << "three-term " << three.d_loss << " vs two-term " << two.d_loss;
    EXPECT_TRUE(std::isfinite(three.g_loss));
  }
}

TEST(Training, ResumeIsExactWithTheThreeTermLoss) {
  for (const char* mismatch : {"real_other_tags", "fake_other_tags"})
    e2e::check_resume_exact(*make_cpu_backend(), "configs/mixture_cond.json",
                            {"data.count=700", "loss.kind=three_term", std::string("loss.mismatch=") + mismatch,
                             "train.fake_labels=random"});
}

TEST(Training, ResumeIsExactForTheConvAnimeModel) {
  // conv layers, per-channel batch norm, the label plane, tag vectors and the fake_other_tags loss
  e2e::check_resume_exact(*make_cpu_backend(), "configs/anime_small.json",
                          {"data.count=120", "train.batch_size=8", "train.fake_labels=random"});
}

// A step trace (Trainer::set_trace, behind `cgan_gpu trace` and the PyTorch parity tests) only
// observes: the traced run ends with the same weights as an untraced one, and the trace holds each
// D sub-step's draws, every dropout mask (values 0 or 1/(1-p)), gradients and weights.
TEST(Training, StepTraceRecordsTheDrawsAndChangesNothing) {
  auto be = make_cpu_backend();
  const Config cfg =
      load_config(e2e::source("configs/mixture_cond.json"),
                  {"data.count=500", "train.batch_size=32", "loss.kind=squared", "train.d_steps=2",
                   "train.fake_labels=random", R"(generator.condition={"mode":"embed_concat","embed_dim":5})",
                   R"(generator.layers=[{"linear":32},{"batchnorm":{"eps":0.8}},{"leaky_relu":0.2},{"linear":2}])",
                   R"(discriminator.condition={"mode":"embed_multiply"})",
                   R"(discriminator.layers=[{"linear":32},{"dropout":0.4},{"leaky_relu":0.2},{"linear":1}])"});
  const HostDataset data = load_dataset(cfg.data);
  Trainer plain(cfg, *be, data), traced(cfg, *be, data);
  plain.init();
  traced.init();
  SafeTensors tr;
  for (int i = 0; i < 3; ++i) {
    plain.step(), plain.take_rows();
    tr = SafeTensors{};
    traced.set_trace(&tr, i < 2);
    traced.step(), traced.take_rows();
  }
  traced.set_trace(nullptr);
  e2e::expect_models_identical(*be, plain.generator(), traced.generator());
  e2e::expect_models_identical(*be, plain.discriminator(), traced.discriminator());
  // the last iteration was traced without weights
  for (const char* name : {"d0.x_real", "d0.y_real", "d0.y_fake", "d0.z", "d1.z", "d0.losses", "d1.fake.mask.1",
                           "g.y_fake", "g.z", "g.disc.mask.1", "g.losses"})
    EXPECT_NE(tr.find(name), nullptr) << name;
  EXPECT_EQ(tr.find("g.grad.generator.layers.0.weight"), nullptr);
  EXPECT_EQ(tr.find("d0.gen.mask.1"), nullptr) << "the generator has no dropout";
  const NamedTensor& m = tr.at("d0.real.mask.1");
  ASSERT_EQ(m.shape, (std::vector<int64_t>{32, 32}));
  int dropped = 0;
  for (float v : m.data) {
    EXPECT_TRUE(v == 0.f || v == 1.f / (1.f - 0.4f)) << v;
    dropped += v == 0.f;
  }
  EXPECT_GT(dropped, 0.25 * 32 * 32);
  EXPECT_LT(dropped, 0.55 * 32 * 32);
  EXPECT_NE(tr.at("d0.real.mask.1").data, tr.at("d0.fake.mask.1").data) << "each forward draws its own mask";
}
