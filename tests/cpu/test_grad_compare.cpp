// The whole-iteration gradient comparison (tests/grad_compare.hpp), which the CUDA parity test
// (tests/cuda/test_cuda_training.cpp) uses against the CPU backend, checked here on two CPU runs:
// identical runs pass, planted defects (a wrong leaky slope, a perturbed gradient) are flagged, and
// the slots it leaves out are exactly those whose true gradient is zero; and the tf32 bound scaled
// by the CPU's TF32 emulation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/train/trainer.hpp"
#include "e2e/e2e_util.hpp"
#include "grad_compare.hpp"

namespace cgan {
namespace {

// The least-squares seed's generator (linear -> batch norm) on small point data, as the CUDA
// training tests use it.
const std::vector<std::string> kLsganSets = {
    "data.count=256",
    "train.batch_size=32",
    "loss.kind=squared",
    R"(generator.condition={"mode":"embed_concat","embed_dim":5})",
    R"(generator.layers=[{"linear":32},{"batchnorm":{"eps":0.8}},{"leaky_relu":0.2},{"linear":2}])",
    R"(discriminator.layers=[{"linear":32},{"leaky_relu":0.2},{"linear":32},{"leaky_relu":0.2},{"linear":1}])"};

std::vector<float> grads_of(Backend& be, const Model& m) {
  std::vector<float> h(m.param_count());
  be.download(h.data(), m.grads(), h.size());
  return h;
}

struct CpuRun {
  std::unique_ptr<Backend> be;
  Config cfg;
  HostDataset data;
  std::unique_ptr<Trainer> t;
  CpuRun(const std::string& config, const std::vector<std::string>& sets, bool emulate_tf32 = false)
      : be(make_cpu_backend(emulate_tf32)), cfg(load_config(e2e::source(config), sets)), data(load_dataset(cfg.data)) {
    t = std::make_unique<Trainer>(cfg, *be, data);
    t->init();
    t->step();
  }
  std::vector<float> g() { return grads_of(*be, t->generator()); }
  std::vector<float> d() { return grads_of(*be, t->discriminator()); }
  // this run's gradients as the reference, `test` compared with them (structural zeros left out)
  gradcheck::Result cmp_g(const std::vector<float>& test) {
    return gradcheck::compare(t->generator().slots(), g(), test, gradcheck::structurally_zero(cfg.generator));
  }
  gradcheck::Result cmp_d(const std::vector<float>& test) {
    return gradcheck::compare(t->discriminator().slots(), d(), test, gradcheck::structurally_zero(cfg.discriminator));
  }
};

double norm_of(const std::vector<float>& g, const ParamSlot& s) {
  double n = 0;
  for (size_t i = s.offset; i < s.offset + s.count; ++i) n += double(g[i]) * g[i];
  return std::sqrt(n);
}

const ParamSlot& slot(const Model& m, const std::string& name) {
  for (const ParamSlot& s : m.slots())
    if (s.name == name) return s;
  throw Error("no slot " + name);
}

TEST(GradCompare, StructurallyZeroSlotsFollowTheSpec) {
  const Config lsgan = load_config(e2e::source("configs/mixture_cond.json"), kLsganSets);
  EXPECT_EQ(gradcheck::structurally_zero(lsgan.generator), std::set<std::string>{"layers.0.bias"});
  EXPECT_TRUE(gradcheck::structurally_zero(lsgan.discriminator).empty());
  // anime_small's generator: linear -> reshape -> batch norm (per pixel bias: not zero), then two
  // conv2d -> batch norm (zero)
  const Config anime = load_config(e2e::source("configs/anime_small.json"), {});
  EXPECT_EQ(gradcheck::structurally_zero(anime.generator), (std::set<std::string>{"layers.4.bias", "layers.7.bias"}));
}

// Every bias's gradient norm relative to its layer's weight gradient: the left-out biases' are
// rounding noise (below 1e-4), every other bias has a real gradient (above 1e-3), so the rule
// leaves out neither too little nor too much. Prints each ratio.
void check_exclusion(const std::string& config, const std::vector<std::string>& sets) {
  SCOPED_TRACE(config);
  CpuRun r(config, sets);
  int left_out = 0, compared = 0;
  for (Model* m : {&r.t->generator(), &r.t->discriminator()}) {
    const NetSpec& spec = m == &r.t->generator() ? r.cfg.generator : r.cfg.discriminator;
    const std::set<std::string> zero = gradcheck::structurally_zero(spec);
    const std::vector<float> g = grads_of(*r.be, *m);
    for (size_t i = 0; i < spec.layers.size(); ++i) {
      const std::string& k = spec.layers[i].kind;
      if (k != LayerKind::linear && k != LayerKind::conv2d) continue;
      const std::string pre = "layers." + std::to_string(i) + ".";
      const double w = norm_of(g, slot(*m, pre + "weight")), b = norm_of(g, slot(*m, pre + "bias"));
      ASSERT_GT(w, 0.0) << m->name() << " " << pre << "weight";
      const bool out = zero.count(pre + "bias") > 0;
      std::printf("  %s %sbias: |g_bias| / |g_weight| = %.3g%s\n", m->name().c_str(), pre.c_str(), b / w,
                  out ? " (left out: feeds a training-mode batch norm)" : "");
      if (out) {
        ++left_out;
        EXPECT_LT(b / w, 1e-4) << m->name() << " " << pre << "bias is left out but has a real gradient";
      } else {
        ++compared;
        EXPECT_GT(b / w, 1e-3) << m->name() << " " << pre << "bias is compared but its gradient vanishes";
      }
    }
  }
  EXPECT_GT(left_out, 0);
  EXPECT_GT(compared, 0);
}

TEST(GradCompare, LeftOutSlotsAreExactlyTheZeroGradients) {
  check_exclusion("configs/mixture_cond.json", kLsganSets);
  check_exclusion("configs/anime_small.json", {"data.count=16", "train.batch_size=4"});
}

// Two identical CPU runs agree exactly; a wrong leaky slope in the discriminator (what a kernel
// with a wrong slope would compute) and a gradient perturbed by 1% of one slot's norm are flagged
// at the fp32 tolerance (the slope also at the tf32 one); perturbing a left-out slot is not.
TEST(GradCompare, FlagsPlantedDefects) {
  CpuRun a("configs/mixture_cond.json", kLsganSets), b("configs/mixture_cond.json", kLsganSets);
  const auto& gs = a.t->generator().slots();
  const auto same_g = a.cmp_g(b.g());
  const auto same_d = a.cmp_d(b.d());
  EXPECT_EQ(same_g.worst, 0.0) << same_g.describe("identical runs, generator");
  EXPECT_EQ(same_d.worst, 0.0) << same_d.describe("identical runs, discriminator");

  // planted defect 1: the discriminator's leaky slope 0.2 -> 0.21
  std::vector<std::string> wrong = kLsganSets;
  wrong.back() =
      R"(discriminator.layers=[{"linear":32},{"leaky_relu":0.21},{"linear":32},{"leaky_relu":0.21},{"linear":1}])";
  CpuRun w("configs/mixture_cond.json", wrong);
  const auto slope_d = a.cmp_d(w.d());
  const auto slope_g = a.cmp_g(w.g());
  std::printf("planted wrong leaky slope: %s\n", slope_d.describe("discriminator").c_str());
  std::printf("planted wrong leaky slope: %s\n", slope_g.describe("generator").c_str());
  EXPECT_FALSE(slope_d.pass(gradcheck::kTolFp32)) << slope_d.describe("discriminator");
  EXPECT_FALSE(slope_g.pass(gradcheck::kTolFp32)) << slope_g.describe("generator");
  EXPECT_FALSE(slope_d.pass(gradcheck::kTolTf32)) << slope_d.describe("discriminator") << " at the tf32 tolerance";
  EXPECT_FALSE(slope_g.pass(gradcheck::kTolTf32)) << slope_g.describe("generator") << " at the tf32 tolerance";

  // planted defect 2: one element of one compared slot off by 1% of that slot's norm
  std::vector<float> g = a.g();
  const ParamSlot& w0 = slot(a.t->generator(), "layers.0.weight");
  g[w0.offset + w0.count / 2] += static_cast<float>(0.01 * norm_of(g, w0));
  const auto bumped = a.cmp_g(g);
  std::printf("planted perturbed gradient: %s\n", bumped.describe("generator").c_str());
  EXPECT_FALSE(bumped.pass(gradcheck::kTolFp32)) << bumped.describe("generator");
  EXPECT_EQ(bumped.worst_slot, "layers.0.weight");
  EXPECT_NEAR(bumped.worst, 0.01, 1e-4);

  // the left-out bias: noise of any size there is ignored, and flagged once it is compared
  g = a.g();
  const ParamSlot& b0 = slot(a.t->generator(), "layers.0.bias");
  for (size_t i = b0.offset; i < b0.offset + b0.count; ++i) g[i] = -g[i] + 1e-3f;
  EXPECT_TRUE(a.cmp_g(g).pass(gradcheck::kTolFp32));
  EXPECT_FALSE(gradcheck::compare(gs, a.g(), g, {}).pass(gradcheck::kTolFp32));
}

// The tf32 bound of the CUDA whole-iteration check: per slot, max(kTolTf32, 2 x what the CPU's TF32
// emulation alone moves that slot). The emulation's own difference is held to the flat kTolTf32
// directly, slot by slot; a run rounded independently of the one that measured the sensitivity
// (another seed: other weights, other draws, so other roundings; the CUDA test's GPU run plays this
// part there) is within the scaled bound; the planted wrong leaky slope, in a run that also rounds,
// is not.
TEST(GradCompare, ScaledBoundAcceptsTf32RoundingAndFlagsAWrongSlope) {
  CpuRun a("configs/mixture_cond.json", kLsganSets), e("configs/mixture_cond.json", kLsganSets, true);
  const auto sens_g = a.cmp_g(e.g());
  const auto sens_d = a.cmp_d(e.d());
  std::printf("TF32 emulation alone: %s\n", sens_g.describe("generator").c_str());
  std::printf("TF32 emulation alone: %s\n", sens_d.describe("discriminator").c_str());
  EXPECT_GT(sens_g.worst, 1e-5) << "the emulation changed nothing";
  EXPECT_GT(sens_d.worst, 1e-5) << "the emulation changed nothing";
  EXPECT_TRUE(sens_g.pass(gradcheck::kTolTf32)) << sens_g.describe("generator");
  EXPECT_TRUE(sens_d.pass(gradcheck::kTolTf32)) << sens_d.describe("discriminator");

  std::vector<std::string> other = kLsganSets;
  other.push_back("train.seed=2");
  CpuRun a2("configs/mixture_cond.json", other), e2("configs/mixture_cond.json", other, true);
  const auto ind_g = a2.cmp_g(e2.g());
  const auto ind_d = a2.cmp_d(e2.d());
  std::printf("independently rounded run (seed 2): %s\n", ind_g.describe("generator").c_str());
  std::printf("independently rounded run (seed 2): %s\n", ind_d.describe("discriminator").c_str());
  EXPECT_GT(ind_g.worst, 1e-5) << "the emulation changed nothing";
  EXPECT_NE(ind_g.worst, sens_g.worst) << "not an independent rounding";
  std::string why;
  EXPECT_TRUE(ind_g.pass_scaled(sens_g, 2.0, gradcheck::kTolTf32, &why)) << why;
  EXPECT_TRUE(ind_d.pass_scaled(sens_d, 2.0, gradcheck::kTolTf32, &why)) << why;

  std::vector<std::string> wrong = kLsganSets;
  wrong.back() =
      R"(discriminator.layers=[{"linear":32},{"leaky_relu":0.21},{"linear":32},{"leaky_relu":0.21},{"linear":1}])";
  CpuRun w("configs/mixture_cond.json", wrong, true);
  const auto slope_d = a.cmp_d(w.d());
  const auto slope_g = a.cmp_g(w.g());
  EXPECT_FALSE(slope_d.pass_scaled(sens_d, 2.0, gradcheck::kTolTf32, &why)) << slope_d.describe("discriminator");
  std::printf("planted wrong leaky slope, rounded run: %s\n", why.c_str());
  EXPECT_FALSE(slope_g.pass_scaled(sens_g, 2.0, gradcheck::kTolTf32, &why)) << slope_g.describe("generator");
  std::printf("planted wrong leaky slope, rounded run: %s\n", why.c_str());

  // slots that do not line up are refused
  gradcheck::Result fewer = sens_g;
  fewer.slots.pop_back();
  EXPECT_FALSE(sens_g.pass_scaled(fewer, 2.0, gradcheck::kTolTf32, &why));
  EXPECT_EQ(why, "gradient sizes differ");
}

}  // namespace
}  // namespace cgan
