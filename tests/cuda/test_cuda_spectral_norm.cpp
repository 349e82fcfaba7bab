// Spectral normalization on the CUDA backend against the CPU backend (the reference): the three
// Backend ops on random inputs of odd and real model sizes, a SpectralNorm layer's power iterations,
// W_sn and weight gradient (cuBLAS GEMVs + our kernels), one whole training iteration of SN models,
// CUDA-graph replay against eager launches (sigma never leaves the device), and resume exactness.
// Every test skips, saying why, when no usable GPU is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/nn/spectral_norm.hpp"
#include "cgan/train/trainer.hpp"
#include "cuda_test_util.hpp"
#include "e2e/e2e_util.hpp"
#include "grad_compare.hpp"

namespace cgan {
namespace {

using cudatest::close;
using cudatest::CudaParityTest;
using cudatest::Floats;
using cudatest::identical;
using cudatest::Twin;

class CudaSpectralNorm : public CudaParityTest {};

// unit vector of n normal draws
Floats unit(CudaParityTest& t, int n) {
  Floats v = t.normal_(n);
  double s = 0;
  for (float x : v) s += double(x) * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(s));
  return v;
}

TEST_F(CudaSpectralNorm, OpsMatchCpu) {
  // spectral_norm_vec: odd sizes, one block's worth and past it, a real layer's width (4608 = a
  // linear after 32x12x12 features), and the zero vector (eps)
  for (int n : {1, 7, 1000, 1025, 4608, 65537}) {
    SCOPED_TRACE(cat("n=", n));
    Twin t(cpu(), gpu(), normal(n, 0.f, 0.5f)), u(cpu(), gpu(), normal(n)), s(cpu(), gpu(), Floats(1, 0.f));
    cpu().spectral_norm_vec(n, t.c, false, 1e-12f, u.c, s.c);  // sigma with the given u
    gpu().spectral_norm_vec(n, t.g, false, 1e-12f, u.g, s.g);
    EXPECT_TRUE(close(s.on_cpu(), s.on_gpu(), 1e-6, 1e-6, "sigma (given u)"));
    EXPECT_TRUE(identical(u.on_cpu(), u.on_gpu(), "u is read only"));
    cpu().spectral_norm_vec(n, t.c, true, 1e-12f, u.c, s.c);
    gpu().spectral_norm_vec(n, t.g, true, 1e-12f, u.g, s.g);
    EXPECT_TRUE(close(u.on_cpu(), u.on_gpu(), 1e-7, 1e-6, "normalised u"));
    EXPECT_TRUE(close(s.on_cpu(), s.on_gpu(), 0, 1e-6, "sigma = ||t||"));
    cpu().spectral_norm_vec(n, t.c, true, 1e-12f, u.c, nullptr);  // no sigma
    gpu().spectral_norm_vec(n, t.g, true, 1e-12f, u.g, nullptr);
    EXPECT_TRUE(close(u.on_cpu(), u.on_gpu(), 1e-7, 1e-6, "normalised u, no sigma"));
  }
  {
    Twin t(cpu(), gpu(), Floats(33, 0.f)), u(cpu(), gpu(), normal(33)), s(cpu(), gpu(), Floats(1, 5.f));
    cpu().spectral_norm_vec(33, t.c, true, 1e-12f, u.c, s.c);
    gpu().spectral_norm_vec(33, t.g, true, 1e-12f, u.g, s.g);
    EXPECT_TRUE(identical(u.on_cpu(), u.on_gpu(), "zero vector"));
    EXPECT_TRUE(identical(s.on_cpu(), s.on_gpu(), "zero sigma"));
  }
  // scale and the rank-one correction: the same float operations on both backends, bit for bit;
  // odd shapes and real ones (a 64x800 conv, D's 256x4608 linear, a 512x8192 conv of 4M values)
  const int shapes[][2] = {{1, 1}, {7, 13}, {64, 1025}, {64, 800}, {256, 4608}, {512, 8192}};
  for (const auto& sh : shapes) {
    const int rows = sh[0], cols = sh[1];
    const size_t n = static_cast<size_t>(rows) * cols;
    SCOPED_TRACE(cudatest::shape({rows, cols}));
    Twin w(cpu(), gpu(), normal(n)), out(cpu(), gpu(), Floats(n, 0.f)), g(cpu(), gpu(), normal(n));
    Twin gw(cpu(), gpu(), normal(n)), l(cpu(), gpu(), unit(*this, rows)), r(cpu(), gpu(), unit(*this, cols));
    Twin s(cpu(), gpu(), uniform(1, 0.5f, 4.f)), d(cpu(), gpu(), normal(1));
    cpu().spectral_norm_scale(n, w.c, s.c, out.c);
    gpu().spectral_norm_scale(n, w.g, s.g, out.g);
    EXPECT_TRUE(identical(out.on_cpu(), out.on_gpu(), "W / sigma"));
    cpu().spectral_norm_grad(rows, cols, g.c, d.c, l.c, r.c, s.c, gw.c);
    gpu().spectral_norm_grad(rows, cols, g.g, d.g, l.g, r.g, s.g, gw.g);
    EXPECT_TRUE(identical(gw.on_cpu(), gw.on_gpu(), "gradient correction"));
  }
}

// A SpectralNorm layer: three training forwards (power iterations through cuBLAS GEMVs), an
// evaluation forward, and a backward, from the same W, u, v and G on both backends.
TEST_F(CudaSpectralNorm, LayerMatchesCpu) {
  const SpectralNormShape shapes[] = {{1, 1, false},    {3, 5, true},      {17, 31, false},   {31, 17, true},
                                      {64, 800, false}, {256, 4608, true}, {512, 8192, false}};
  for (const SpectralNormShape& sh : shapes) {
    SCOPED_TRACE(cat(sh.rows, "x", sh.cols, sh.transposed ? " (stored transposed)" : ""));
    const size_t n = sh.count();
    const float scale = 1.f / std::sqrt(static_cast<float>(std::max(sh.rows, sh.cols)));
    Twin w(cpu(), gpu(), normal(n, 0.f, scale)), u(cpu(), gpu(), unit(*this, sh.rows)),
        v(cpu(), gpu(), unit(*this, sh.cols)), gw(cpu(), gpu(), normal(n, 0.f, 0.1f));
    const Floats G = normal(n);
    SpectralNorm sc(cpu(), sh), sg(gpu(), sh);
    for (int it = 0; it < 3; ++it) {
      sc.forward(w.c, u.c, v.c, true);
      sg.forward(w.g, u.g, v.g, true);
    }
    auto get = [](Backend& be, const float* p, size_t k) {
      Floats h(k);
      be.download(h.data(), p, k);
      return h;
    };
    EXPECT_TRUE(close(u.on_cpu(), u.on_gpu(), 1e-6, 1e-4, "u after 3 iterations"));
    EXPECT_TRUE(close(v.on_cpu(), v.on_gpu(), 1e-6, 1e-4, "v after 3 iterations"));
    EXPECT_TRUE(close(get(cpu(), sc.sigma(), 1), get(gpu(), sg.sigma(), 1), 0, 1e-5, "sigma"));
    EXPECT_TRUE(close(get(cpu(), sc.weight_sn(), n), get(gpu(), sg.weight_sn(), n), 1e-6, 1e-5, "W_sn"));
    sc.forward(w.c, u.c, v.c, false);
    sg.forward(w.g, u.g, v.g, false);
    EXPECT_TRUE(close(get(cpu(), sc.sigma(), 1), get(gpu(), sg.sigma(), 1), 0, 1e-5, "sigma (evaluation)"));
    cpu().upload(sc.grad_sn(), G.data(), n);
    gpu().upload(sg.grad_sn(), G.data(), n);
    sc.backward(u.c, v.c, gw.c);
    sg.backward(u.g, v.g, gw.g);
    EXPECT_TRUE(close(gw.on_cpu(), gw.on_gpu(), 1e-5, 1e-4, "weight gradient"));
  }
}

// Spectral norm on every layer of mixture_cond's G and D, and on anime_small's D (convolutions,
// label plane, three-term loss).
const std::vector<std::string> kSnMlp = {"data.count=600", "generator.spectral_norm=true",
                                         "discriminator.spectral_norm=true", "train.fake_labels=random"};
const std::vector<std::string> kSnConv = {"data.count=200", "train.batch_size=16", "discriminator.spectral_norm=true"};

std::vector<float> fetch(Backend& be, const float* p, size_t n) {
  std::vector<float> h(n);
  if (n) be.download(h.data(), p, n);
  return h;
}

// One iteration on each backend (fp32) from the same initial weights and u, v: the losses and every
// gradient (tests/grad_compare.hpp's norm-scaled comparison), and u, v after it.
void check_iteration(const std::string& config, const std::vector<std::string>& sets) {
  SCOPED_TRACE(config);
  const Config cfg = load_config(e2e::source(config), sets);
  const HostDataset data = load_dataset(cfg.data);
  auto cpu = make_cpu_backend();
  auto gpu = make_backend("cuda", {"fp32"});
  Trainer tc(cfg, *cpu, data), tg(cfg, *gpu, data);
  tc.init();
  tg.init();
  tc.step();
  tg.step();
  const LossRow rc = tc.take_rows().at(0), rg = tg.take_rows().at(0);
  EXPECT_NEAR(rc.d_loss, rg.d_loss, 1e-4 * std::max(1.f, std::fabs(rc.d_loss)));
  EXPECT_NEAR(rc.g_loss, rg.g_loss, 1e-4 * std::max(1.f, std::fabs(rc.g_loss)));
  const struct {
    Model &c, &g;
    const NetSpec& spec;
  } models[] = {{tc.generator(), tg.generator(), cfg.generator},
                {tc.discriminator(), tg.discriminator(), cfg.discriminator}};
  for (const auto& m : models) {
    const gradcheck::Result r =
        gradcheck::compare(m.c.slots(), fetch(*cpu, m.c.grads(), m.c.param_count()),
                           fetch(*gpu, m.g.grads(), m.g.param_count()), gradcheck::structurally_zero(m.spec));
    const std::string what = config + " (spectral norm) " + m.c.name() + " gradients after 1 step";
    std::printf("%s\n", r.describe(what).c_str());
    EXPECT_TRUE(r.pass(gradcheck::kTolFp32)) << r.describe(what);
    EXPECT_TRUE(close(fetch(*cpu, m.c.state(), m.c.state_count()), fetch(*gpu, m.g.state(), m.g.state_count()), 1e-5,
                      1e-4, m.c.name() + " state (u, v, batch-norm statistics)"));
  }
}

TEST(CudaSpectralNormTraining, WholeIterationMatchesCpu) {
  CGAN_SKIP_WITHOUT_GPU();
  check_iteration("configs/mixture_cond.json", kSnMlp);
  check_iteration("configs/anime_small.json", kSnConv);
}

// Captured and replayed (cuda_graphs on) against launched op by op: bit for bit, so sigma and
// <G, W_sn>, read from device memory, are the current step's in every replay.
void check_graph_equals_eager(const std::string& config, std::vector<std::string> sets, int steps) {
  SCOPED_TRACE(config);
  std::vector<std::string> on = sets, off = sets;
  on.push_back("cuda_graphs=true");
  off.push_back("cuda_graphs=false");
  const Config cg = load_config(e2e::source(config), on), ce = load_config(e2e::source(config), off);
  const HostDataset data = load_dataset(cg.data);
  auto bg = make_backend("cuda"), be = make_backend("cuda");
  Trainer tg(cg, *bg, data), te(ce, *be, data);
  tg.init();
  te.init();
  for (int i = 0; i < steps; ++i) tg.step(), te.step();
  EXPECT_TRUE(tg.graph_active()) << "the graph was never captured";
  const std::vector<LossRow> rg = tg.take_rows(), re = te.take_rows();
  ASSERT_EQ(rg.size(), re.size());
  for (size_t i = 0; i < rg.size(); ++i) {
    EXPECT_EQ(rg[i].d_loss, re[i].d_loss) << "step " << rg[i].step;
    EXPECT_EQ(rg[i].g_loss, re[i].g_loss) << "step " << rg[i].step;
  }
  for (auto [a, b] : {std::pair<Model*, Model*>{&tg.generator(), &te.generator()},
                      std::pair<Model*, Model*>{&tg.discriminator(), &te.discriminator()}}) {
    EXPECT_TRUE(identical(fetch(*bg, a->params(), a->param_count()), fetch(*be, b->params(), b->param_count()),
                          a->name() + " parameters"));
    EXPECT_TRUE(identical(fetch(*bg, a->state(), a->state_count()), fetch(*be, b->state(), b->state_count()),
                          a->name() + " state (u, v)"));
  }
}

TEST(CudaSpectralNormTraining, GraphReplayEqualsEagerAndResumeIsExact) {
  CGAN_SKIP_WITHOUT_GPU();
  check_graph_equals_eager("configs/mixture_cond.json", kSnMlp, 30);
  check_graph_equals_eager("configs/anime_small.json", kSnConv, 12);
  auto be = make_backend("cuda");
  e2e::check_resume_exact(*be, "configs/mixture_cond.json", kSnMlp);
  e2e::check_resume_exact(*be, "configs/anime_small.json",
                          {"data.count=120", "train.batch_size=8", "discriminator.spectral_norm=true"});
}

}  // namespace
}  // namespace cgan
