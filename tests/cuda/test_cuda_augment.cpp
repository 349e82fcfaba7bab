// DiffAugment on the CUDA backend against the CPU backend (the reference): the draws bit for bit,
// the augmented images and their gradients to fp32 rounding on random odd shapes and the real model
// sizes, the device-counter form inside a captured graph, and whole training iterations with
// train.augment on (CPU parity, graph replay = eager launches, exact resume). Every test skips,
// saying why, when no usable GPU is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "cgan/backend/augment.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/train/trainer.hpp"
#include "cuda_test_util.hpp"
#include "e2e/e2e_util.hpp"
#include "grad_compare.hpp"

namespace cgan {
namespace {

using namespace cudatest;

class CudaAugment : public CudaParityTest {
 protected:
  // Forward and backward on both backends; draws identical, images and gradients within 1e-6.
  void check(const AugmentSpec& a, int B, RngStream sc, RngStream sg, uint64_t offset, const std::string& what) {
    SCOPED_TRACE(what);
    const size_t n = static_cast<size_t>(a.C) * a.H * a.W * B;
    const uint64_t seed = u64();
    Twin x(cpu(), gpu(), uniform(n, a.center - a.half, a.center + a.half)), y(cpu(), gpu(), Floats(n, 7.f)),
        p(cpu(), gpu(), Floats(static_cast<size_t>(B) * kAugmentParams)), gy(cpu(), gpu(), normal(n)),
        gx(cpu(), gpu(), Floats(n, 7.f));
    cpu().augment_forward(a, B, seed, sc, offset, x.c, y.c, p.c);
    gpu().augment_forward(a, B, seed, sg, offset, x.g, y.g, p.g);
    EXPECT_TRUE(identical(p.on_cpu(), p.on_gpu(), what + " draws"));
    EXPECT_TRUE(close(y.on_cpu(), y.on_gpu(), 1e-6, 1e-6, what + " images"));
    cpu().augment_backward(a, B, p.c, gy.c, gx.c);
    gpu().augment_backward(a, B, p.g, gy.g, gx.g);
    EXPECT_TRUE(close(gx.on_cpu(), gx.on_gpu(), 1e-6, 1e-6, what + " gradients"));
  }
  AugmentSpec spec(int C, int H, int W, int policy, bool unit) {
    AugmentSpec a;
    a.C = C, a.H = H, a.W = W;
    a.color = policy & 1, a.translation = policy & 2, a.cutout = policy & 4;
    a.center = unit ? 0.5f : 0.f, a.half = unit ? 0.5f : 1.f;
    return a;
  }
};

TEST_F(CudaAugment, RandomOddShapesMatchTheCpu) {
  for (int trial = 0; trial < 40; ++trial) {
    AugmentSpec a = spec(pick(1, 4), pick(1, 45), pick(1, 45), pick(1, 7), pick(0, 1));
    if (pick(0, 1)) a.translation_ratio = 0.05f + 0.01f * pick(0, 30);
    if (pick(0, 1)) a.cutout_ratio = 0.1f + 0.01f * pick(0, 80);
    const int B = pick(1, 9);
    const uint64_t stream = u64() >> 8, offset = u64() >> 24;
    check(a, B, stream, stream, offset,
          shape({B, a.C, a.H, a.W}) + " policy " + std::to_string(a.color + 2 * a.translation + 4 * a.cutout));
  }
}

TEST_F(CudaAugment, RealModelSizesMatchTheCpu) {
  // MNIST (MLP and conv see 1x28x28), anime_small 3x32x32, anime_conv 3x96x96 (512-thread blocks)
  const struct {
    int B, C, H, W;
    bool unit;
  } sizes[] = {{64, 1, 28, 28, true}, {64, 1, 28, 28, false}, {32, 3, 32, 32, false}, {64, 3, 96, 96, false}};
  for (const auto& s : sizes)
    for (int policy : {7, 6, 1})
      check(spec(s.C, s.H, s.W, policy, s.unit), s.B, 1234, 1234, 0,
            shape({s.B, s.C, s.H, s.W}) + " policy " + std::to_string(policy));
}

// Inside a captured graph the stream id is read from the step counter at each replay.
TEST_F(CudaAugment, GraphReplayDrawsFromTheCounter) {
  ASSERT_TRUE(gpu().graphs_supported());
  const AugmentSpec a = spec(3, 17, 23, 7, false);
  const int B = 5;
  const size_t n = static_cast<size_t>(a.C) * a.H * a.W * B;
  const uint64_t seed = u64();
  TwinInt step(cpu(), gpu(), Ints{0});
  Twin x(cpu(), gpu(), normal(n)), y(cpu(), gpu(), Floats(n)), p(cpu(), gpu(), Floats(B * kAugmentParams)),
      slots(cpu(), gpu(), Floats(n * 3));
  gpu().graph_begin();
  gpu().augment_forward(a, B, seed, RngStream(11, step.g, 256), 3, x.g, y.g, p.g);
  gpu().copy_to_slot(n, y.g, slots.g, step.g, 3);
  const Ints one = {1};
  gpu().add_ints(1, step.g, one.data());
  const int id = gpu().graph_end();
  for (int i = 0; i < 3; ++i) gpu().graph_launch(id);
  gpu().synchronize();
  const Floats got = slots.on_gpu();
  for (int i = 0; i < 3; ++i) {
    Floats want(n), params(B * kAugmentParams);
    const Floats xs = x.on_cpu();
    cpu().augment_forward(a, B, seed, 11 + 256 * static_cast<uint64_t>(i), 3, xs.data(), want.data(), params.data());
    EXPECT_TRUE(
        close(want, Floats(got.begin() + i * n, got.begin() + (i + 1) * n), 1e-6, 1e-6, "replay " + std::to_string(i)));
  }
  gpu().graph_drop(id);
}

// ---- whole iterations with train.augment on

const std::vector<std::string> kAnimeAug = {"data.count=200", "train.batch_size=16",
                                            "train.augment=color,translation,cutout"};

TEST(CudaAugmentTraining, OneIterationMatchesTheCpu) {
  CGAN_SKIP_WITHOUT_GPU();
  const Config cfg = load_config(e2e::source("configs/anime_small.json"), kAnimeAug);
  const HostDataset data = load_dataset(cfg.data);
  auto cpu = make_cpu_backend();
  auto gpu = make_backend("cuda", {"fp32"});
  Trainer tc(cfg, *cpu, data), tg(cfg, *gpu, data);
  tc.init(), tg.init();
  tc.step(), tg.step();
  const LossRow rc = tc.take_rows().at(0), rg = tg.take_rows().at(0);
  EXPECT_NEAR(rc.d_loss, rg.d_loss, 1e-4 * std::max(1.f, std::fabs(rc.d_loss)));
  EXPECT_NEAR(rc.g_loss, rg.g_loss, 1e-4 * std::max(1.f, std::fabs(rc.g_loss)));
  const struct {
    Model &c, &g;
    const NetSpec& spec;
  } models[] = {{tc.generator(), tg.generator(), cfg.generator},
                {tc.discriminator(), tg.discriminator(), cfg.discriminator}};
  for (const auto& m : models) {
    std::vector<float> a(m.c.param_count()), b(m.g.param_count());
    cpu->download(a.data(), m.c.grads(), a.size());
    gpu->download(b.data(), m.g.grads(), b.size());
    const gradcheck::Result r = gradcheck::compare(m.c.slots(), a, b, gradcheck::structurally_zero(m.spec));
    EXPECT_TRUE(r.pass(gradcheck::kTolFp32)) << r.describe(m.c.name() + " gradients with augment");
  }
}

TEST(CudaAugmentTraining, GraphReplayEqualsEagerAndResumeIsExact) {
  CGAN_SKIP_WITHOUT_GPU();
  std::vector<std::string> on = kAnimeAug, off = kAnimeAug;
  on.push_back("cuda_graphs=true");
  off.push_back("cuda_graphs=false");
  const Config cg = load_config(e2e::source("configs/anime_small.json"), on);
  const Config ce = load_config(e2e::source("configs/anime_small.json"), off);
  const HostDataset data = load_dataset(cg.data);
  auto bg = make_backend("cuda"), be = make_backend("cuda");
  Trainer tg(cg, *bg, data), te(ce, *be, data);
  tg.init(), te.init();
  for (int i = 0; i < 20; ++i) {
    tg.step(), te.step();
    const auto rg = tg.take_rows(), re = te.take_rows();
    ASSERT_EQ(rg.size(), re.size());
    for (size_t k = 0; k < rg.size(); ++k) {
      EXPECT_EQ(rg[k].d_loss, re[k].d_loss) << "step " << rg[k].step;
      EXPECT_EQ(rg[k].g_loss, re[k].g_loss) << "step " << rg[k].step;
    }
  }
  EXPECT_TRUE(tg.graph_active());
  for (auto [a, b] :
       {std::pair<Model*, Model*>{&tg.generator(), &te.generator()}, {&tg.discriminator(), &te.discriminator()}}) {
    Floats pa(a->param_count()), pb(b->param_count());
    bg->download(pa.data(), a->params(), pa.size());
    be->download(pb.data(), b->params(), pb.size());
    EXPECT_TRUE(identical(pa, pb, a->name() + " weights, graph vs eager"));
  }
  {
    auto b = make_backend("cuda");
    e2e::check_resume_exact(*b, "configs/anime_small.json",
                            {"data.count=120", "train.batch_size=8", "train.augment=color,translation,cutout"});
  }
}

}  // namespace
}  // namespace cgan
