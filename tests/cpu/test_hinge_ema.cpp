// Issue 12, hinge loss and the generator's weight average (train.ema): the hinge and linear fused
// losses against finite differences and closed forms, their log statistics (raw critic mean, sign
// accuracy), ema_update against a double-precision host reference (copy phase, averaging phase,
// device step counter), the config keys and their one-line errors, and the trainer's use of both.
//
// Inputs are fresh on every run (CGAN_TEST_SEED replays one; it is printed with every failure).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/base/error.hpp"
#include "cgan/backend/scalar_math.hpp"
#include "cgan/train/trainer.hpp"
#include "e2e/e2e_util.hpp"
#include "ops_test_util.hpp"

namespace cgan {
namespace {

using namespace opstest;
using json = nlohmann::json;

class HingeEma : public RandomCpuTest {};

// ------------------------------------------------------------------------------------ hinge losses

// Per-element loss in double: hinge max(0, 1 - y x), linear -y x, y = 2t - 1.
double hinge_ref(LossKind k, double x, double t) {
  const double y = 2 * t - 1;
  return k == LossKind::hinge ? std::max(0.0, 1 - y * x) : -y * x;
}

TEST_F(HingeEma, HingeAndLinearLossesMatchFiniteDifferencesAndValue) {
  for (LossKind k : {LossKind::hinge, LossKind::linear}) {
    for (float t : {0.f, 1.f, uni(0, 1)}) {
      const int n = size(1, 129);
      const float weight = uni(0.2f, 2.f);
      SCOPED_TRACE(cat("kind=", static_cast<int>(k), " t=", t, " n=", n, " w=", weight));
      const double y = 2.0 * t - 1.0;
      VecF x(n);
      for (auto& v : x)  // away from hinge's kink 1 - y x = 0 (the finite difference straddles it otherwise)
        do v = uni(-4, 4);
        while (std::fabs(1 - y * v) < 1e-2);
      check_loss_fused(*be_, k, x, t, weight, hinge_ref);
    }
  }
}

TEST_F(HingeEma, HingeClosedFormsAndTheKink) {
  struct Case {
    LossKind k;
    float x, t, loss, grad_unit;  // loss and dL/dx per element
  };
  const Case cases[] = {
      {LossKind::hinge, 2.f, 1.f, 0.f, 0.f},       // real, beyond the margin: no loss, no gradient
      {LossKind::hinge, 0.25f, 1.f, 0.75f, -1.f},  // real inside the margin: relu(1 - x)
      {LossKind::hinge, -3.f, 1.f, 4.f, -1.f},
      {LossKind::hinge, 1.f, 1.f, 0.f, 0.f},     // the kink: relu'(0) = 0, as PyTorch
      {LossKind::hinge, -2.f, 0.f, 0.f, 0.f},    // fake beyond the margin
      {LossKind::hinge, -0.5f, 0.f, 0.5f, 1.f},  // fake inside: relu(1 + x)
      {LossKind::hinge, 3.f, 0.f, 4.f, 1.f},
      {LossKind::hinge, -1.f, 0.f, 0.f, 0.f},      // the kink
      {LossKind::linear, 2.5f, 1.f, -2.5f, -1.f},  // G's hinge loss -D(G(z))
      {LossKind::linear, -80.f, 1.f, 80.f, -1.f},
      {LossKind::linear, 1.5f, 0.f, 1.5f, 1.f},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(cat("kind=", static_cast<int>(c.k), " x=", c.x, " t=", c.t));
    const int n = size(1, 33);
    const float weight = uni(0.5f, 2.f);
    VecF x(n, c.x), grad(n), acc = {0.f, 0.f, 0.f};
    be_->loss_fused(c.k, n, x.data(), c.t, weight, grad.data(), acc.data());
    EXPECT_NEAR(acc[0], weight * c.loss, 1e-5 * weight * (1 + std::fabs(c.loss)));
    for (float g : grad) EXPECT_NEAR(g, c.grad_unit * weight / n, 1e-6 * weight / n);
  }
}

TEST_F(HingeEma, HingeStatisticsAreTheRawCriticMeanAndSignAccuracy) {
  // hinge and linear: prob = x itself (D's raw score, summed); correct when (x > 0) == (t > 0.5); x = 0
  // is not "> 0": it counts as a fake decision.
  const int pos = size(1, 20), neg = size(1, 20);
  for (LossKind k : {LossKind::hinge, LossKind::linear}) {
    for (float t : {0.f, 1.f}) {
      VecF x;
      double sum = 0;
      for (int i = 0; i < pos; ++i) x.push_back(uni(0.01f, 3.f)), sum += x.back();
      for (int i = 0; i < neg; ++i) x.push_back(uni(-3.f, -0.01f)), sum += x.back();
      x.push_back(0.f);
      const int n = static_cast<int>(x.size());
      VecF grad(n), acc = {3.f, 10.f, 5.f};
      be_->loss_fused(k, n, x.data(), t, 1.f, grad.data(), acc.data());
      EXPECT_NEAR(acc[1], 10.0 + sum, 1e-4);
      EXPECT_EQ(acc[2], 5.f + (t > 0.5f ? pos : neg + 1));
    }
  }
  // log and squared keep their 0.5 threshold on prob (sigmoid(x), x): a squared D output of 0.3 is
  // a "fake" decision although positive
  VecF x = {0.3f}, grad(1), acc = {0.f, 0.f, 0.f};
  be_->loss_fused(LossKind::squared, 1, x.data(), 1.f, 1.f, grad.data(), acc.data());
  EXPECT_EQ(acc[2], 0.f);
  be_->loss_fused(LossKind::hinge, 1, x.data(), 1.f, 1.f, grad.data(), acc.data());
  EXPECT_EQ(acc[2], 1.f);
  EXPECT_THROW(be_->loss_fused(static_cast<LossKind>(7), 1, x.data(), 1.f, 1.f, grad.data(), acc.data()), Error);
}

// ------------------------------------------------------------------------------------------ ema_update

TEST_F(HingeEma, EmaUpdateMatchesAHostReference) {
  const size_t n = static_cast<size_t>(size(1, 129)) * static_cast<size_t>(randint(1, 40));
  const float decay = uni(0.5f, 0.999f);
  const int start = randint(0, 6), steps = 12;
  SCOPED_TRACE(cat("n=", n, " decay=", decay, " start=", start));
  float* avg = be_->alloc(n);
  float* p = be_->alloc(n);
  int32_t* ctr = be_->alloc_int(1);
  VecF init = randv(n, -2, 2);  // whatever the average held before (a fresh run copies G there)
  be_->upload(avg, init.data(), n);
  VecD ref(init.begin(), init.end());
  for (int s = 1; s <= steps; ++s) {
    const VecF w = randv(n, -3, 3);
    be_->upload(p, w.data(), n);
    const int32_t c = s - 1;  // base 1 + counter: step s, the counter as the trainer's G step counter
    be_->upload_int(ctr, &c, 1);
    be_->ema_update(n, avg, p, decay, start, 1, ctr);
    VecF got(n);
    be_->download(got.data(), avg, n);
    for (size_t i = 0; i < n; ++i) ref[i] = s <= start ? w[i] : decay * ref[i] + (1.0 - decay) * w[i];
    if (s <= start) {
      EXPECT_EQ(0, std::memcmp(got.data(), w.data(), n * sizeof(float))) << "step " << s << ": not a copy";
    } else {
      expect_close(got, ref, 1e-6, 1e-5, cat("average after step ", s));
    }
  }
  // without a counter: the step is t itself
  const VecF w = randv(n, -3, 3);
  be_->upload(p, w.data(), n);
  be_->ema_update(n, avg, p, decay, start, start, nullptr);  // t == start: still a copy
  VecF got(n);
  be_->download(got.data(), avg, n);
  EXPECT_EQ(0, std::memcmp(got.data(), w.data(), n * sizeof(float)));
  be_->free(avg), be_->free(p), be_->free(ctr);
}

TEST_F(HingeEma, EmaUpdateChecksItsArguments) {
  VecF a(4), b(4);
  EXPECT_THROW(be_->ema_update(4, a.data(), b.data(), 1.5f, 0, 1), Error);
  EXPECT_THROW(be_->ema_update(4, a.data(), b.data(), -0.1f, 0, 1), Error);
  EXPECT_THROW(be_->ema_update(4, a.data(), b.data(), 0.9f, -1, 1), Error);
  EXPECT_THROW(be_->ema_update(4, nullptr, b.data(), 0.9f, 0, 1), Error);
  be_->ema_update(0, nullptr, nullptr, 0.9f, 0, 1);  // nothing to do
}

// ------------------------------------------------------------------------------------------ config

json minimal() {
  return json::parse(R"({
    "data": {"kind": "mixture", "count": 100},
    "generator": {"noise_dim": 4, "layers": [{"linear": 8}, {"relu": {}}, {"linear": 2}]},
    "discriminator": {"layers": [{"linear": 8}, {"leaky_relu": 0.2}, {"linear": 1}]}
  })");
}

std::string error_of(const json& j) {
  try {
    parse_config(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

Config roundtrip(const Config& c) {
  const json d = c.to_json();
  const Config back = parse_config(d);
  EXPECT_EQ(d, back.to_json());
  return back;
}

TEST(HingeEmaConfig, LossKindsAndTheMismatchKey) {
  json j = minimal();
  j["loss"] = {{"kind", "hinge"}};
  Config c = parse_config(j);
  EXPECT_EQ(c.loss.base_kind(), "hinge");
  EXPECT_FALSE(c.loss.mismatched_pair());
  EXPECT_FLOAT_EQ(c.loss.d_weight, 1.f);
  EXPECT_FALSE(c.to_json()["loss"].contains("real_target"));
  EXPECT_FALSE(c.to_json()["loss"].contains("mismatch"));
  roundtrip(c);

  // the mismatched pair on any loss: hinge with it is the three-term hinge
  j["loss"] = {{"kind", "hinge"}, {"mismatch", "fake_other_tags"}};
  c = roundtrip(parse_config(j));
  EXPECT_TRUE(c.loss.mismatched_pair());
  EXPECT_EQ(c.loss.mismatch, "fake_other_tags");
  for (const char* kind : {"log", "squared"}) {
    j["loss"] = {{"kind", kind}, {"mismatch", "real_other_tags"}};
    c = roundtrip(parse_config(j));
    EXPECT_TRUE(c.loss.mismatched_pair()) << kind;
    EXPECT_EQ(c.loss.base_kind(), kind);
  }
  // three_term stays: log with the mismatched pair, real_other_tags by default
  j["loss"] = {{"kind", "three_term"}};
  c = roundtrip(parse_config(j));
  EXPECT_EQ(c.loss.base_kind(), "log");
  EXPECT_EQ(c.loss.mismatch, "real_other_tags");
  EXPECT_EQ(c.to_json()["loss"]["kind"], "three_term");
  j["loss"] = {{"kind", "log"}, {"mismatch", "none"}};
  EXPECT_FALSE(parse_config(j).loss.mismatched_pair());
  EXPECT_FALSE(parse_config(j).to_json()["loss"].contains("mismatch"));
}

TEST(HingeEmaConfig, LossErrorsNameTheKey) {
  json j = minimal();
  j["loss"] = {{"kind", "wasserstein"}};
  EXPECT_EQ(error_of(j),
            "loss.kind: expected one of \"log\", \"squared\", \"hinge\", \"three_term\", got \"wasserstein\"");
  j["loss"] = {{"kind", "three_term"}, {"mismatch", "none"}};
  EXPECT_EQ(error_of(j),
            "loss.mismatch: loss.kind \"three_term\" is the log loss with the mismatched pair; for no "
            "mismatched pair use loss.kind \"log\"");
  j["loss"] = {{"kind", "hinge"}, {"real_target", 0.9}};
  EXPECT_EQ(error_of(j),
            "loss.real_target: loss.kind \"hinge\" has fixed margins (relu(1 - D(x))); real_target is "
            "for log and squared");
  j["loss"] = {{"kind", "hinge"}, {"real_target", 1}};
  EXPECT_EQ(error_of(j), "(no error)");
  j["loss"] = {{"kind", "hinge"}, {"mismatch", "real_other_tags"}};  // an unconditional pair of networks
  j["generator"]["condition"] = {{"mode", "none"}};
  EXPECT_EQ(error_of(j),
            "loss.mismatch: the mismatched pair scores image/label pairs, so the generator and the "
            "discriminator must both be conditional");
  j = minimal();
  j["loss"] = {{"kind", "hinge"}};
  j["discriminator"]["layers"].push_back({{"sigmoid", json::object()}});
  EXPECT_EQ(error_of(j),
            "discriminator.layers[3]: loss.kind \"hinge\" scores D's raw output (a critic with margins "
            "at -1 and +1); end the discriminator with {\"linear\": 1}");
}

TEST(HingeEmaConfig, EmaKeysDefaultsAndRoundTrip) {
  json j = minimal();
  EXPECT_FALSE(parse_config(j).train.ema.enabled);
  EXPECT_FALSE(parse_config(j).to_json()["train"].contains("ema"));
  j["train"] = {{"ema", json::object()}};
  Config c = roundtrip(parse_config(j));
  EXPECT_TRUE(c.train.ema.enabled);
  EXPECT_FLOAT_EQ(c.train.ema.decay, 0.999f);
  EXPECT_EQ(c.train.ema.start, 1000);
  j["train"] = {{"ema", true}};
  EXPECT_TRUE(parse_config(j).train.ema.enabled);
  j["train"] = {{"ema", false}};
  EXPECT_FALSE(parse_config(j).train.ema.enabled);
  j["train"] = {{"ema", {{"decay", 0.9999}, {"start", 0}}}};
  c = roundtrip(parse_config(j));
  EXPECT_FLOAT_EQ(c.train.ema.decay, 0.9999f);
  EXPECT_EQ(c.train.ema.start, 0);
  // --set reaches into it
  json o = minimal();
  apply_override(o, "train.ema={\"start\":50}");
  apply_override(o, "train.ema.decay=0.99");
  c = parse_config(o);
  EXPECT_TRUE(c.train.ema.enabled);
  EXPECT_FLOAT_EQ(c.train.ema.decay, 0.99f);
  EXPECT_EQ(c.train.ema.start, 50);
}

TEST(HingeEmaConfig, EmaErrorsNameTheKey) {
  json j = minimal();
  for (double d : {0.0, 1.0, 1.5, -0.1}) {
    j["train"] = {{"ema", {{"decay", d}}}};
    EXPECT_EQ(error_of(j), cat("train.ema.decay: expected a number in (0, 1), got ", json(d).dump())) << d;
  }
  j["train"] = {{"ema", {{"decay", "high"}}}};
  EXPECT_EQ(error_of(j), "train.ema.decay: expected a number in (0, 1), got \"high\"");
  j["train"] = {{"ema", {{"start", -1}}}};
  EXPECT_EQ(error_of(j), "train.ema.start: expected a non-negative integer, got -1");
  j["train"] = {{"ema", {{"start", 2.5}}}};
  EXPECT_EQ(error_of(j), "train.ema.start: expected a non-negative integer, got 2.5");
  j["train"] = {{"ema", {{"rate", 0.9}}}};
  EXPECT_EQ(error_of(j), "train.ema.rate: unknown key (known keys here: decay, start)");
  j["train"] = {{"ema", 0.999}};
  EXPECT_EQ(error_of(j),
            "train.ema: expected an object such as {\"decay\": 0.999, \"start\": 1000}, true (the "
            "defaults) or false, got 0.999");
}

// ------------------------------------------------------------------------------------------ trainer

Config mixture(const std::vector<std::string>& sets) {
  json j = minimal();
  j["data"] = {{"kind", "mixture"}, {"count", 256}, {"modes", 4}};
  j["generator"] = json::parse(R"({"noise_dim": 3, "condition": {"mode": "concat_onehot"},
      "layers": [{"linear": 16}, {"batchnorm": {}}, {"relu": {}}, {"linear": 2}]})");
  j["discriminator"] = json::parse(R"({"condition": {"mode": "concat_onehot"},
      "layers": [{"linear": 16}, {"leaky_relu": 0.2}, {"linear": 1}]})");
  j["train"] = {{"batch_size", 32}, {"seed", 7}};
  for (const std::string& s : sets) apply_override(j, s);
  return parse_config(j);
}

VecF fetch(Backend& be, const float* p, size_t n) {
  VecF h(n);
  if (n) be.download(h.data(), p, n);
  return h;
}

// The trainer's average follows the host reference of the generator's weights after every G step:
// copies while step <= start, then decay avg + (1 - decay) w, for parameters and batch-norm running
// statistics alike; the raw generator is the same as a run without train.ema.
TEST(HingeEmaTrainer, AverageFollowsTheGeneratorAfterEveryStep) {
  auto be = make_cpu_backend();
  const float decay = 0.8f;
  const int start = 3;
  const Config cfg = mixture({"loss.kind=hinge", cat("train.ema={\"decay\":", decay, ",\"start\":", start, "}")});
  const Config plain = mixture({"loss.kind=hinge"});
  const HostDataset data = load_dataset(cfg.data);
  Trainer t(cfg, *be, data), p(plain, *be, data);
  t.init();
  p.init();
  ASSERT_NE(t.weight_average(), nullptr);
  EXPECT_EQ(p.weight_average(), nullptr);
  Model& G = t.generator();
  Model& A = t.weight_average()->model();
  ASSERT_GT(G.state_count(), 0u);  // batch norm: running statistics are averaged too
  VecD ref_p(G.param_count()), ref_s(G.state_count());
  {
    const VecF w = fetch(*be, G.params(), G.param_count()), s = fetch(*be, G.state(), G.state_count());
    EXPECT_EQ(fetch(*be, A.params(), A.param_count()), w);  // starts as a copy of the initial weights
    ref_p.assign(w.begin(), w.end());
    ref_s.assign(s.begin(), s.end());
  }
  for (int step = 1; step <= 9; ++step) {
    t.step(), p.step(), t.take_rows(), p.take_rows();
    const VecF w = fetch(*be, G.params(), G.param_count()), s = fetch(*be, G.state(), G.state_count());
    for (size_t i = 0; i < w.size(); ++i) ref_p[i] = step <= start ? w[i] : decay * ref_p[i] + (1.0 - decay) * w[i];
    for (size_t i = 0; i < s.size(); ++i) ref_s[i] = step <= start ? s[i] : decay * ref_s[i] + (1.0 - decay) * s[i];
    expect_close(fetch(*be, A.params(), A.param_count()), ref_p, 1e-6, 1e-5, cat("average weights, step ", step));
    expect_close(fetch(*be, A.state(), A.state_count()), ref_s, 1e-6, 1e-5, cat("average BN statistics, step ", step));
    EXPECT_EQ(w, fetch(*be, p.generator().params(), p.generator().param_count())) << "the raw G changed, step " << step;
  }
  // past the start the average is not the raw generator
  EXPECT_NE(fetch(*be, A.params(), A.param_count()), fetch(*be, G.params(), G.param_count()));
}

// The first iteration with train.ema {"decay": 0.9, "start": 0} on the three-term hinge with batch
// norm, the config CudaHingeEmaTraining.FirstIterationMatchesCpu runs: the average is decay x the
// initial weights + (1 - decay) x the generator after its step, to 1e-6 (Adam's first step moves a
// weight by about lr = 1e-3, so an average left as it was is off by about 1e-4).
TEST(HingeEmaTrainer, FirstIterationAverageIsOneDecayStep) {
  auto be = make_cpu_backend();
  const Config c = load_config(
      e2e::source("configs/mixture_cond.json"),
      {"data.count=500", "train.batch_size=32", "loss.kind=hinge", "loss.mismatch=real_other_tags", "train.d_steps=2",
       R"(generator.layers=[{"linear":32},{"batchnorm":{}},{"leaky_relu":0.2},{"linear":2}])",
       R"(train.ema={"decay":0.9,"start":0})"});
  const HostDataset data = load_dataset(c.data);
  Trainer t(c, *be, data);
  t.init();
  ASSERT_NE(t.weight_average(), nullptr);
  const e2e::Weights before = e2e::weights_of(*be, t.weight_average()->model());
  t.step(), t.take_rows();
  e2e::expect_average_is_one_decay_step(*be, before, t.generator(), t.weight_average()->model(), c.train.ema.decay);
}

// Checkpoints hold the average as generator_ema.<state_dict name> beside the raw generator, with the
// same names and shapes; load_generator picks it by default and the raw one when asked; a checkpoint
// without it gives the raw one either way.
TEST(HingeEmaTrainer, CheckpointsKeepBothGenerators) {
  auto be = make_cpu_backend();
  const Config cfg = mixture({"loss.kind=three_term", "train.ema={\"decay\":0.5,\"start\":1}"});
  const HostDataset data = load_dataset(cfg.data);
  Trainer t(cfg, *be, data);
  t.init();
  for (int i = 0; i < 4; ++i) t.step(), t.take_rows();
  const SafeTensors st = t.snapshot();
  EXPECT_TRUE(checkpoint_has_ema(st));
  int raw = 0, avg = 0;
  for (const NamedTensor& x : st.tensors) {
    if (x.name.rfind("generator.", 0) == 0) {
      ++raw;
      const NamedTensor* e = st.find("generator_ema." + x.name.substr(10));
      ASSERT_NE(e, nullptr) << x.name << " has no averaged twin";
      EXPECT_EQ(e->shape, x.shape) << x.name;
      EXPECT_EQ(e->dtype, x.dtype) << x.name;
    }
    if (x.name.rfind("generator_ema.", 0) == 0) ++avg;
  }
  EXPECT_GT(raw, 0);
  EXPECT_EQ(raw, avg);
  ASSERT_NE(st.find("generator_ema.1.running_mean"), nullptr);
  EXPECT_NE(st.find("generator_ema.1.running_mean")->data, st.find("generator.1.running_mean")->data);

  const CheckpointInfo info = read_checkpoint_info(st, "ck");
  const auto G_avg = load_generator(*be, info, st, "ck");
  const auto G_raw = load_generator(*be, info, st, "ck", false);
  Model& A = t.weight_average()->model();
  EXPECT_EQ(fetch(*be, G_avg->params(), G_avg->param_count()), fetch(*be, A.params(), A.param_count()));
  EXPECT_EQ(fetch(*be, G_avg->state(), G_avg->state_count()), fetch(*be, A.state(), A.state_count()));
  EXPECT_EQ(fetch(*be, G_raw->params(), G_raw->param_count()),
            fetch(*be, t.generator().params(), t.generator().param_count()));

  // without train.ema: no generator_ema tensors; load_generator gives the raw one either way
  const Config plain = mixture({"loss.kind=three_term"});
  Trainer q(plain, *be, data);
  q.init();
  q.step(), q.take_rows();
  const SafeTensors sq = q.snapshot();
  EXPECT_FALSE(checkpoint_has_ema(sq));
  const CheckpointInfo qi = read_checkpoint_info(sq, "q");
  EXPECT_EQ(fetch(*be, load_generator(*be, qi, sq, "q")->params(), q.generator().param_count()),
            fetch(*be, q.generator().params(), q.generator().param_count()));

  // resuming it with train.ema on: the average starts from its generator
  const Config with = mixture({"loss.kind=three_term", "train.ema={\"start\":0}"});
  Trainer r(with, *be, data);
  r.restore(sq, "q");
  Model& RA = r.weight_average()->model();
  EXPECT_EQ(fetch(*be, RA.params(), RA.param_count()), fetch(*be, q.generator().params(), q.generator().param_count()));
  EXPECT_EQ(fetch(*be, RA.state(), RA.state_count()), fetch(*be, q.generator().state(), q.generator().state_count()));
}

// The hinge loss in the trainer: D's loss is relu(1 - D(x)) + relu(1 + D(G(z))) + relu(1 + D(x, other
// labels)) (weights 1), G's is -D(G(z)); losses.csv's d_real / d_fake are the raw critic means and
// d_acc the sign accuracy. Each term is recomputed from a direct evaluation of the same networks (G
// and D as they were before the step) on the traced inputs of the first iteration, not from the
// engine's own sums.
TEST(HingeEmaTrainer, FirstIterationLossesAreTheHingeTerms) {
  auto be = make_cpu_backend();
  const Config cfg = mixture({"loss.kind=hinge", "loss.mismatch=real_other_tags"});
  const HostDataset data = load_dataset(cfg.data);
  Trainer t(cfg, *be, data);
  t.init();
  SafeTensors init_state = t.snapshot();
  SafeTensors tr;
  t.set_trace(&tr);
  t.step();
  t.set_trace(nullptr);
  const std::vector<LossRow> rows = t.take_rows();
  ASSERT_EQ(rows.size(), 1u);
  auto get = [&](const std::string& n) {
    const NamedTensor* x = tr.find(n);
    EXPECT_NE(x, nullptr) << n;
    return x ? x->data : VecF{};
  };
  // G and D as they were before D's step, on the traced inputs (no dropout in either; G's batch norm
  // in training mode, as the trainer runs it)
  Trainer ref(cfg, *be, data);
  ref.restore(init_state, "init");
  Model& G = ref.generator();
  Model& D = ref.discriminator();
  const int B = cfg.train.batch_size, K = 4;
  auto run = [&](Model& m, const VecF& x, const VecF& y) {
    float* dx = be->alloc(x.size());
    float* dc = be->alloc(static_cast<size_t>(B) * K);
    int32_t* dy = be->alloc_int(B);
    be->upload(dx, x.data(), x.size());
    std::vector<int32_t> yi(y.begin(), y.end());
    be->upload_int(dy, yi.data(), B);
    be->one_hot(B, K, dy, dc);
    const VecF out = fetch(*be, m.forward(dx, dy, dc, true), static_cast<size_t>(B) * m.out_dim());
    be->free(dx), be->free(dc), be->free(dy);
    return out;
  };
  ASSERT_EQ(tr.find("d0.y_fake"), nullptr) << "fake_labels=data: the fakes carry the real batch's labels";
  const VecF real = run(D, get("d0.x_real"), get("d0.y_real"));
  const VecF fake = run(D, run(G, get("d0.z"), get("d0.y_real")), get("d0.y_real"));
  const VecF mis = run(D, get("d0.x_real"), get("d0.y_other"));
  double l_real = 0, l_fake = 0, l_mis = 0, mean_real = 0, mean_fake = 0, right = 0;
  for (int b = 0; b < B; ++b) {
    l_real += std::max(0.0, 1.0 - real[b]) / B;
    l_fake += std::max(0.0, 1.0 + fake[b]) / B;
    l_mis += std::max(0.0, 1.0 + mis[b]) / B;
    mean_real += real[b] / B;
    mean_fake += fake[b] / B;
    right += real[b] > 0 ? 1 : 0;
  }
  EXPECT_GT(l_fake, 0.1) << "the fakes are beyond the margin: the fake term would be 0 either way";
  const VecF losses = get("d0.losses");
  ASSERT_EQ(losses.size(), 12u);
  EXPECT_NEAR(losses[0], l_real, 1e-5);
  EXPECT_NEAR(losses[1], mean_real * B, 1e-4);
  EXPECT_NEAR(losses[2], right, 0.5);
  EXPECT_NEAR(losses[3], l_fake, 1e-5);
  EXPECT_NEAR(losses[4], mean_fake * B, 1e-4);
  EXPECT_NEAR(losses[9], l_mis, 1e-5);
  EXPECT_NEAR(rows[0].d_real, mean_real, 1e-5);
  EXPECT_NEAR(rows[0].d_fake, mean_fake, 1e-5);
  EXPECT_NEAR(rows[0].d_loss, l_real + l_fake + l_mis, 1e-5);
  // G's loss is -mean D(G(z)) of the G step: minus the sum the statistics hold, over B
  const VecF g = get("g.losses");
  EXPECT_NEAR(g[6], -g[7] / B, 1e-5);
  EXPECT_NEAR(rows[0].g_loss, g[6], 1e-6);
}

}  // namespace
}  // namespace cgan
