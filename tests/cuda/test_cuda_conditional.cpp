// Parity of the conditional family (cuda/conditional.cu) with the CPU backend: the projection ops
// and conditional batch norm on random inputs of odd and real sizes, and whole models (a projection
// discriminator, a generator with conditional batch norm, dense and conv, labels and tags): forward,
// backward and parameter gradients, eagerly and replayed from a captured CUDA graph.
//
// Every test skips, saying why, when no usable GPU is present. Inputs are drawn from a seed printed
// with every failure; CGAN_TEST_SEED=<n> replays one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/nn/model.hpp"
#include "cuda_test_util.hpp"

namespace cgan {
namespace {

using namespace cudatest;
using json = nlohmann::json;

class CudaConditional : public CudaParityTest {};

TEST_F(CudaConditional, Projection) {
  const int shapes[][2] = {{1, 1}, {3, 7}, {5, 33}, {64, 512}, {63, 1000}, {256, 4608}};
  for (const auto& s : shapes) {
    const int B = s[0], F = s[1];
    const size_t n = static_cast<size_t>(B) * F;
    const std::string what = "projection " + shape({B, F});
    Twin phi(cpu(), gpu(), normal(n)), e(cpu(), gpu(), normal(n)), out(cpu(), gpu(), normal(B)),
        g(cpu(), gpu(), normal(B)), gphi(cpu(), gpu(), normal(n)), ge(cpu(), gpu(), Floats(n, 9.f));
    cpu().projection_forward(B, F, phi.c, e.c, out.c);
    gpu().projection_forward(B, F, phi.g, e.g, out.g);
    EXPECT_TRUE(close(out.on_cpu(), out.on_gpu(), 1e-6 * std::sqrt(double(F)), 1e-6, what + " out"));
    cpu().projection_backward(B, F, phi.c, e.c, g.c, gphi.c, ge.c);
    gpu().projection_backward(B, F, phi.g, e.g, g.g, gphi.g, ge.g);
    EXPECT_TRUE(identical(gphi.on_cpu(), gphi.on_gpu(), what + " gphi"));
    EXPECT_TRUE(identical(ge.on_cpu(), ge.on_gpu(), what + " ge"));
    // either output may be left out
    gpu().projection_backward(B, F, phi.g, e.g, g.g, nullptr, ge.g);
    EXPECT_TRUE(identical(ge.on_cpu(), ge.on_gpu(), what + " ge alone"));
  }
}

TEST_F(CudaConditional, ConditionalBatchNorm) {
  // dense and conv layouts, odd sizes, S % 4 == 0 and not, the real sizes (mnist dense 1024 at
  // batch 64; a 64-channel 8x8 and a 128-channel 16x16 conv map)
  const int shapes[][3] = {{2, 1, 1},    {3, 3, 1},   {64, 33, 1},   {257, 7, 1},  {1, 3, 7},     {3, 33, 7},
                           {16, 3, 257}, {8, 50, 33}, {64, 1024, 1}, {64, 64, 64}, {64, 128, 256}};
  for (const auto& s : shapes)
    for (Act act : {Act::none, Act::relu, Act::leaky_relu}) {
      const int N = s[0], C = s[1], S = s[2];
      const size_t n = static_cast<size_t>(N) * C * S, nc = static_cast<size_t>(N) * C;
      const std::string what = "cbn " + shape({N, C, S}) + " act " + std::to_string(static_cast<int>(act));
      Twin x(cpu(), gpu(), normal(n, 3.f, 2.f)), dg(cpu(), gpu(), normal(nc, 0.f, 0.3f)),
          db(cpu(), gpu(), normal(nc, 0.f, 0.3f)), y(cpu(), gpu(), Floats(n, 7.f)), mean(cpu(), gpu(), Floats(C)),
          invstd(cpu(), gpu(), Floats(C)), rm(cpu(), gpu(), normal(C)), rv(cpu(), gpu(), uniform(C, 0.5f, 2.f));
      cpu().cbn_forward_train(N, C, S, 1e-5f, 0.1f, x.c, dg.c, db.c, y.c, mean.c, invstd.c, rm.c, rv.c, act, 0.2f);
      gpu().cbn_forward_train(N, C, S, 1e-5f, 0.1f, x.g, dg.g, db.g, y.g, mean.g, invstd.g, rm.g, rv.g, act, 0.2f);
      EXPECT_TRUE(close(y.on_cpu(), y.on_gpu(), 2e-6, 2e-6, what + " train y"));
      EXPECT_TRUE(close(mean.on_cpu(), mean.on_gpu(), 1e-6, 1e-6, what + " save_mean"));
      EXPECT_TRUE(close(invstd.on_cpu(), invstd.on_gpu(), 1e-6, 1e-6, what + " save_invstd"));
      EXPECT_TRUE(close(rm.on_cpu(), rm.on_gpu(), 1e-6, 1e-6, what + " run_mean"));
      EXPECT_TRUE(close(rv.on_cpu(), rv.on_gpu(), 1e-6, 1e-6, what + " run_var"));

      Twin rm2(cpu(), gpu(), rm.on_cpu()), rv2(cpu(), gpu(), rv.on_cpu());
      cpu().cbn_forward_eval(N, C, S, 1e-5f, x.c, dg.c, db.c, rm2.c, rv2.c, y.c, act, 0.2f);
      gpu().cbn_forward_eval(N, C, S, 1e-5f, x.g, dg.g, db.g, rm2.g, rv2.g, y.g, act, 0.2f);
      EXPECT_TRUE(close(y.on_cpu(), y.on_gpu(), 2e-6, 2e-6, what + " eval y"));

      // backward from the CPU's saved statistics on both sides
      Twin sm(cpu(), gpu(), mean.on_cpu()), si(cpu(), gpu(), invstd.on_cpu()), gy(cpu(), gpu(), normal(n)),
          gx(cpu(), gpu(), Floats(n, 3.f)), gdg(cpu(), gpu(), Floats(nc, 5.f)), gdb(cpu(), gpu(), Floats(nc, 5.f));
      cpu().cbn_backward(N, C, S, x.c, dg.c, sm.c, si.c, gy.c, gx.c, gdg.c, gdb.c);
      gpu().cbn_backward(N, C, S, x.g, dg.g, sm.g, si.g, gy.g, gx.g, gdg.g, gdb.g);
      const double sum_tol = 1e-5 * std::sqrt(static_cast<double>(S));
      EXPECT_TRUE(close(gx.on_cpu(), gx.on_gpu(), 1e-5, 1e-5, what + " gx"));
      EXPECT_TRUE(close(gdg.on_cpu(), gdg.on_gpu(), sum_tol, 1e-5, what + " gdgain"));
      EXPECT_TRUE(close(gdb.on_cpu(), gdb.on_gpu(), sum_tol, 1e-5, what + " gdbias"));
      // in place (gx == gy)
      Twin gy2(cpu(), gpu(), gy.on_cpu());
      gpu().cbn_backward(N, C, S, x.g, dg.g, sm.g, si.g, gy2.g, gy2.g, gdg.g, gdb.g);
      EXPECT_TRUE(close(gx.on_cpu(), gy2.on_gpu(), 1e-5, 1e-5, what + " gx in place"));
    }
}

// Whole models on both backends from the same parameters: output, dL/dx and every parameter
// gradient after forward + backward, eagerly and from a captured CUDA graph replayed twice.
TEST_F(CudaConditional, ModelsMatchTheCpuEagerAndInAGraph) {
  struct Case {
    std::string what, mode;
    json layers;
    int in, K, B;
    bool tags;
  };
  const std::vector<Case> cases = {
      {"projection D dense labels", "projection",
       json::parse(R"([{"linear": 256}, {"leaky_relu": 0.2}, {"dropout": 0.3}, {"linear": 1}])"), 784, 10, 64, false},
      {"projection D conv tags", "projection",
       json::parse(R"([{"reshape": [3, 16, 16]}, {"conv2d": {"out": 32, "kernel": 4, "stride": 2, "padding": 1}},
                      {"leaky_relu": 0.1}, {"conv2d": {"out": 64, "kernel": 4, "stride": 2, "padding": 1}},
                      {"leaky_relu": 0.1}, {"linear": 1}])"),
       768, 9, 16, true},
      {"cbn G dense labels", "none",
       json::parse(R"([{"linear": 256}, {"batchnorm": {"conditional": true}}, {"relu": {}}, {"linear": 1024},
                      {"batchnorm": {"conditional": true}}, {"relu": {}}, {"linear": 784}, {"tanh": {}}])"),
       100, 10, 64, false},
      {"cbn G conv tags", "concat_onehot",
       json::parse(R"([{"linear": 1024}, {"reshape": [64, 4, 4]}, {"batchnorm": {"conditional": true}}, {"relu": {}},
                      {"conv2d": {"out": 32, "kernel": 3, "padding": 1}}, {"batchnorm": {"conditional": true}},
                      {"relu": {}}, {"conv2d": {"out": 3, "kernel": 3, "padding": 1}}, {"tanh": {}}])"),
       64, 9, 16, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const NetSpec spec = parse_net_spec(json{{"condition", {{"mode", c.mode}}}, {"layers", c.layers}}, "net");
    Model mc(cpu(), spec, c.in, c.K, c.B, "net"), mg(gpu(), spec, c.in, c.K, c.B, "net");
    mc.init_params(5);
    Floats p(mc.param_count()), st(mc.state_count());
    cpu().download(p.data(), mc.params(), p.size());
    cpu().download(st.data(), mc.state(), st.size());
    const Floats noise = normal(p.size(), 0.f, 0.2f);
    for (const ParamSlot& sl : mc.slots())
      if (!sl.state)
        for (size_t i = 0; i < sl.count; ++i) p[sl.offset + i] += noise[sl.offset + i];
    mc.set_params(p.data(), st.data());
    mg.set_params(p.data(), st.data());
    Floats cond(static_cast<size_t>(c.B) * c.K, 0.f);
    for (int b = 0; b < c.B; ++b) {
      cond[static_cast<size_t>(b) * c.K + pick(0, c.K - 1)] = 1.f;
      if (c.tags) cond[static_cast<size_t>(b) * c.K + pick(0, c.K - 1)] = 1.f;
    }
    const size_t O = static_cast<size_t>(c.B) * mc.out_dim();
    Twin x(cpu(), gpu(), normal(static_cast<size_t>(c.B) * c.in)), cd(cpu(), gpu(), cond),
        gx(cpu(), gpu(), Floats(static_cast<size_t>(c.B) * c.in)), r(cpu(), gpu(), normal(O)),
        outc(cpu(), gpu(), Floats(O));
    auto step = [&](Model& m, Backend& be, const float* xp, const float* cp, const float* rp, float* gxp, float* outp) {
      m.zero_grads();
      const float* out = m.forward(xp, nullptr, cp, true, 11, 3);
      be.copy(outp, out, O);
      be.copy(m.grad_out_buffer(), rp, O);
      m.backward(m.grad_out_buffer(), gxp, true);
    };
    step(mc, cpu(), x.c, cd.c, r.c, gx.c, outc.c);
    step(mg, gpu(), x.g, cd.g, r.g, gx.g, outc.g);
    auto grads = [](Backend& be, const Model& m) {
      Floats g(m.param_count());
      be.download(g.data(), m.grads(), g.size());
      return g;
    };
    const Floats gc = grads(cpu(), mc), gg = grads(gpu(), mg);
    EXPECT_TRUE(close(outc.on_cpu(), outc.on_gpu(), 1e-4, 1e-4, c.what + " output"));
    EXPECT_TRUE(close(gx.on_cpu(), gx.on_gpu(), 1e-4, 1e-3, c.what + " dL/dx"));
    for (const ParamSlot& sl : mc.slots()) {
      if (sl.state) continue;
      const Floats a(gc.begin() + sl.offset, gc.begin() + sl.offset + sl.count);
      const Floats b(gg.begin() + sl.offset, gg.begin() + sl.offset + sl.count);
      double scale = 0;
      for (float v : a) scale = std::max(scale, double(std::fabs(v)));
      EXPECT_TRUE(close(a, b, 1e-4 * (1 + scale), 1e-3, c.what + " grad " + sl.name));
    }
    // the same step captured as a CUDA graph and replayed twice (the running statistics move on,
    // so the outputs and gradients, which use batch statistics, must repeat exactly)
    if (gpu().graphs_supported()) {
      const Floats out_eager = outc.on_gpu();
      gpu().graph_begin();
      step(mg, gpu(), x.g, cd.g, r.g, gx.g, outc.g);
      const int id = gpu().graph_end();
      for (int rep = 0; rep < 2; ++rep) {
        gpu().graph_launch(id);
        gpu().synchronize();
        EXPECT_TRUE(identical(out_eager, outc.on_gpu(), c.what + " graph output"));
        EXPECT_TRUE(identical(gg, grads(gpu(), mg), c.what + " graph gradients"));
      }
      gpu().graph_drop(id);
    }
  }
}

}  // namespace
}  // namespace cgan
