// Model tests for the image layers (reshape, conv2d, batch norm over channels, pooling): shapes and
// parameter slots, the errors for misplaced layers, and Model::backward's parameter and input
// gradients against central finite differences of the model's own forward pass.
//
// Inputs are fresh on every run: each test seeds its std::mt19937 from std::random_device (or from
// CGAN_TEST_SEED to replay a failure); the seed is printed with every failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/base/error.hpp"
#include "cgan/nn/model.hpp"
#include "model_fd.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

using json = nlohmann::json;

using testutil::test_seed;

// A NetSpec from the config's JSON form of a network (parsed as a discriminator).
NetSpec net(const json& layers, const std::string& mode = "none", int embed_dim = 0) {
  json cond = {{"mode", mode}};
  if (embed_dim) cond["embed_dim"] = embed_dim;
  json cfg = {{"data", {{"kind", "mixture"}, {"count", 100}}},
              {"generator", {{"noise_dim", 2}, {"condition", {{"mode", "none"}}}, {"layers", {{{"linear", 2}}}}}},
              {"discriminator", {{"condition", cond}, {"layers", layers}}}};
  return parse_config(cfg).discriminator;
}

struct Case {
  std::string what;
  json layers;
  std::string mode;
  int in_dim, classes, batch;
  int embed_dim = 0;  // label_plane: plane size
};

// reshape -> conv2d -> batchnorm -> leaky_relu -> avgpool2d -> maxpool2d -> linear, and a conv with
// a fused activation after a one-hot conditioner (input 47 + 3 labels = 2x5x5).
std::vector<Case> cases() {
  return {
      {"bn", json::parse(R"([{"reshape": [2, 6, 7]},
                               {"conv2d": {"out": 3, "kernel": [3, 2], "stride": [1, 2], "padding": [1, 1]}},
                               {"batchnorm": {}}, {"leaky_relu": 0.2},
                               {"avgpool2d": {"kernel": 2, "stride": 1}},
                               {"maxpool2d": {"kernel": 2, "padding": 1}},
                               {"linear": 3}])"),
       "none", 84, 0, 3},
      {"fused", json::parse(R"([{"reshape": [2, 5, 5]},
                                  {"conv2d": {"out": 4, "kernel": 3, "stride": 2, "padding": 1}}, {"tanh": {}},
                                  {"maxpool2d": {"kernel": [2, 1], "stride": [1, 2]}},
                                  {"conv2d": {"out": 2, "kernel": 1}},
                                  {"linear": 2}])"),
       "concat_onehot", 47, 3, 4},
      // seed 001's discriminator in miniature: a 3x4x5 image plus a label plane (Linear from a
      // multi-hot tag vector of 4 to 4*5) as the fourth channel
      {"label_plane", json::parse(R"([{"reshape": [4, 4, 5]},
                                        {"conv2d": {"out": 3, "kernel": 3, "padding": 1}}, {"leaky_relu": 0.2},
                                        {"avgpool2d": {"kernel": 2, "stride": 3}},
                                        {"linear": 1}])"),
       "label_plane", 60, 4, 3, 20},
  };
}

TEST(ConvModel, ShapesSlotsAndSummary) {
  auto be = make_cpu_backend();
  const Case c = cases()[0];
  Model m(*be, net(c.layers), c.in_dim, 0, 5, "d");
  // conv: (6 + 2 - 3)/1 + 1 = 6, (7 + 2 - 2)/2 + 1 = 4; avg 2/1: 5x3; max 2/2 pad 1: 3x2
  EXPECT_EQ(m.out_dim(), 3);
  const std::string s = m.summary();
  EXPECT_NE(s.find("reshape 84 -> 2x6x7"), std::string::npos) << s;
  EXPECT_NE(s.find("conv2d 2x6x7 -> 3x6x4"), std::string::npos) << s;
  EXPECT_NE(s.find("batchnorm 3x6x4 -> 3x6x4"), std::string::npos) << s;
  EXPECT_NE(s.find("avgpool2d 3x6x4 -> 3x5x3"), std::string::npos) << s;
  EXPECT_NE(s.find("maxpool2d 3x5x3 -> 3x3x2"), std::string::npos) << s;
  EXPECT_NE(s.find("linear 3x3x2 -> 3"), std::string::npos) << s;
  std::vector<std::pair<std::string, std::vector<int64_t>>> want = {
      {"layers.1.weight", {3, 2, 3, 2}}, {"layers.1.bias", {3}},
      {"layers.2.weight", {3}},          {"layers.2.bias", {3}},
      {"layers.2.running_mean", {3}},    {"layers.2.running_var", {3}},
      {"layers.6.weight", {18, 3}},      {"layers.6.bias", {3}}};
  ASSERT_EQ(m.slots().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(m.slots()[i].name, want[i].first);
    EXPECT_EQ(m.slots()[i].shape, want[i].second);
  }
  // PyTorch's init: conv weight and bias U(-1/sqrt(C*R*S), 1/sqrt(C*R*S)) with C*R*S = 12
  m.init_params(7);
  std::vector<float> p(m.param_count());
  be->download(p.data(), m.params(), p.size());
  const float bound = 1.f / std::sqrt(12.f);
  float big = 0;
  for (int k = 0; k < 2; ++k) {  // layers.1.weight (36) and layers.1.bias (3)
    const ParamSlot& sl = m.slots()[k];
    EXPECT_EQ(sl.offset % 64, 0u) << sl.name << ": slots start on 256-byte boundaries";
    for (size_t i = sl.offset; i < sl.offset + sl.count; ++i) {
      EXPECT_LE(std::fabs(p[i]), bound);
      big = std::max(big, std::fabs(p[i]));
    }
  }
  EXPECT_GT(big, 0.5f * bound);

  const std::string f = Model(*be, net(cases()[1].layers, "concat_onehot"), 47, 3, 2, "g").summary();
  EXPECT_NE(f.find("conv2d 2x5x5 -> 4x3x3 (kernel 3x3, stride 2x2, padding 1x1) + tanh (fused)"), std::string::npos)
      << f;
  EXPECT_NE(f.find("maxpool2d 4x3x3 -> 4x2x2 (window 2x1, stride 1x2)"), std::string::npos) << f;
}

TEST(ConvModel, MisplacedLayersNameTheirPath) {
  auto be = make_cpu_backend();
  NetSpec n = net(json::parse(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"out": 2, "kernel": 3}}, {"linear": 2}])"));
  EXPECT_EQ(testutil::error_of([&] { Model(*be, n, 15, 0, 2, "discriminator"); }),
            "discriminator.layers[0].reshape: [1, 4, 4] holds 16 values but its input has 15");
  // a conv after a dense layer (the config rejects it too; a NetSpec built in code reaches the model)
  n.layers[0] = n.layers[2];
  n.layers[0].out = 16;
  EXPECT_EQ(testutil::error_of([&] { Model(*be, n, 16, 0, 2, "generator"); }),
            "generator.layers[1].conv2d: needs an image input (C, H, W) but gets 16 flat features; put a reshape "
            "before it");
  n = net(json::parse(R"([{"reshape": [1, 4, 4]}, {"maxpool2d": {"kernel": 2, "stride": 1}}, {"linear": 2}])"));
  n.layers[1].kernel_h = 7;
  const std::string m = testutil::error_of([&] { Model(*be, n, 16, 0, 2, "d"); });
  EXPECT_EQ(m, "d.layers[1].maxpool2d: window 7x2 is larger than its padded input 4x4 (input 1x4x4)");
}

// L = sum_i r_i out_i (accumulated in double) against Model::backward with gout = r, on random
// coordinates of every parameter tensor and of the input: relative 1e-2 (float forward passes).
TEST(ConvModel, BackwardMatchesFiniteDifferences) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.what);
    Model m(*be, net(c.layers, c.mode, c.embed_dim), c.in_dim, c.classes, c.batch, "d");
    m.init_params(rng());
    const int B = c.batch, O = m.out_dim();
    std::vector<float> x(size_t(B) * c.in_dim), r(size_t(B) * O), cond;
    for (auto& v : x) v = uni(-1, 1);
    for (auto& v : r) v = uni(-1, 1);
    if (c.classes) {
      cond.assign(size_t(B) * c.classes, 0.f);
      for (int b = 0; b < B; ++b) {
        cond[size_t(b) * c.classes + b % c.classes] = 1.f;
        if (c.embed_dim) cond[size_t(b) * c.classes + (b + 2) % c.classes] = 1.f;  // multi-hot tags
      }
    }
    float* xd = be->alloc(x.size());
    float* cd = be->alloc(std::max<size_t>(cond.size(), 1));
    float* gxd = be->alloc(x.size());
    be->upload(xd, x.data(), x.size());
    be->upload(cd, cond.data(), cond.size());
    std::vector<float> p(m.param_count()), st(m.state_count());
    be->download(p.data(), m.params(), p.size());
    be->download(st.data(), m.state(), st.size());

    auto loss = [&]() { return modelfd::weighted_sum_loss(*be, m, xd, c.classes ? cd : nullptr, r); };
    loss();
    std::vector<float> g, gx(x.size());
    modelfd::weighted_sum_backward(*be, m, r, gxd, g, gx);

    // Kinks within the step are skipped (tests/model_fd.hpp says how).
    modelfd::FdCheck fd(loss);
    fd.params(
        m, p, st, g, [](const ParamSlot&) { return 4; }, rng);
    fd.inputs(*be, xd, x, gx, 12, rng);
    const int checked = fd.checked(), skipped = fd.skipped();
    std::printf("[ %s ] %d coordinates checked, %d skipped (non-smooth within the step)\n", c.what.c_str(), checked,
                skipped);
    EXPECT_GE(checked, (checked + skipped) / 2);
    be->free(xd);
    be->free(cd);
    be->free(gxd);
  }
}

// A conv before batch norm leaves its bias to the norm (ModelLayer::bias_for_norm): a training step
// neither adds nor differentiates it (its gradient is exactly 0; the FD test above sees the true 0),
// the norm's running mean is that of the biased output (momentum * mean of an evaluation forward's
// conv output, from running mean 0), and evaluation adds the bias. A conv followed by anything else
// keeps its bias and its gradient.
TEST(ConvModel, BiasBeforeBatchNormIsFoldedIntoItsRunningMean) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  const int B = 5, in = 2 * 6 * 7;
  Model m(*be, net(json::parse(R"([{"reshape": [2, 6, 7]}, {"conv2d": {"out": 3, "kernel": 3, "padding": 1}},
                                   {"batchnorm": {"momentum": 0.3}}, {"relu": {}},
                                   {"conv2d": {"out": 2, "kernel": 3}}, {"linear": 1}])")),
          in, 0, B, "d");
  EXPECT_NE(m.summary().find("3x6x7 (kernel 3x3, stride 1x1, padding 1x1) (bias folded into the batch norm)"),
            std::string::npos)
      << m.summary();
  EXPECT_EQ(m.summary().find("2x4x5 (kernel 3x3, stride 1x1) (bias folded"), std::string::npos) << m.summary();
  m.init_params(rng());
  auto slot = [&](const std::string& name) -> const ParamSlot& {
    for (const ParamSlot& s : m.slots())
      if (s.name == name) return s;
    throw Error(cat("no slot ", name));
  };
  std::vector<float> p(m.param_count()), st(m.state_count());
  be->download(p.data(), m.params(), p.size());
  be->download(st.data(), m.state(), st.size());
  for (int k = 0; k < 3; ++k) p[slot("layers.1.bias").offset + k] = 2.f + k;  // large: m * b shows
  be->upload(m.params(), p.data(), p.size());
  std::vector<float> x(size_t(B) * in), r(B);
  for (auto& v : x) v = uni(-1, 1);
  for (auto& v : r) v = uni(-1, 1);
  float* xd = be->alloc(x.size());
  be->upload(xd, x.data(), x.size());

  modelfd::weighted_sum_loss(*be, m, xd, nullptr, r, true);  // one training forward: running mean 0 -> 0.3 mean
  std::vector<float> g, gx(x.size());
  float* gxd = be->alloc(x.size());
  modelfd::weighted_sum_backward(*be, m, r, gxd, g, gx);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(g[slot("layers.1.bias").offset + k], 0.f) << "folded bias gradient " << k;
  double other = 0, wsum = 0;
  for (size_t i = 0; i < slot("layers.4.bias").count; ++i) other += std::fabs(g[slot("layers.4.bias").offset + i]);
  for (size_t i = 0; i < slot("layers.1.weight").count; ++i) wsum += std::fabs(g[slot("layers.1.weight").offset + i]);
  EXPECT_GT(other, 0.0) << "a conv before no batch norm keeps its bias gradient";
  EXPECT_GT(wsum, 0.0);
  std::vector<float> after(m.state_count());
  be->download(after.data(), m.state(), after.size());

  m.forward(xd, nullptr, nullptr, false);  // evaluation: the conv adds its bias
  int width = 0;
  const float* conv = m.output_of(1, &width);
  std::vector<float> y(size_t(B) * width);
  be->download(y.data(), conv, y.size());
  const int S = 6 * 7;
  for (int k = 0; k < 3; ++k) {
    double mean = 0;
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < S; ++i) mean += y[(size_t(b) * 3 + k) * S + i];
    mean /= double(B) * S;
    EXPECT_GT(mean, 1.0) << "the evaluation conv output includes the bias";
    EXPECT_NEAR(after[slot("layers.2.running_mean").offset + k], 0.3 * mean, 1e-6 + 1e-6 * std::fabs(mean))
        << "running mean of channel " << k;
  }
  be->free(xd);
  be->free(gxd);
}

// label_plane followed by one linear unit: every gradient has a closed form, checked exactly
// (out[b] = [x_b | cond_b W + c] . w + w0, so dL/dW[k,e] = sum_b cond[b,k] r[b] w[in+e], ...).
TEST(ConvModel, LabelPlaneGradientsMatchClosedForms) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  const int B = 5, in = 6, K = 4, E = 7;
  Model m(*be, net(json::parse(R"([{"linear": 1}])"), "label_plane", E), in, K, B, "d");
  ASSERT_EQ(m.slots()[0].name, "cond.weight");
  ASSERT_EQ(m.slots()[0].shape, (std::vector<int64_t>{K, E}));
  ASSERT_EQ(m.slots()[1].name, "cond.bias");
  m.init_params(rng());
  std::vector<float> x(B * in), cond(B * K, 0.f), r(B);
  for (auto& v : x) v = uni(-1, 1);
  for (auto& v : r) v = uni(-1, 1);
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < K; ++k) cond[b * K + k] = uni(0, 1) < 0.5f ? 1.f : 0.f;  // multi-hot
  float *xd = be->alloc(x.size()), *cd = be->alloc(cond.size()), *gxd = be->alloc(x.size());
  be->upload(xd, x.data(), x.size());
  be->upload(cd, cond.data(), cond.size());
  std::vector<float> p(m.param_count());
  be->download(p.data(), m.params(), p.size());
  const size_t oW = m.slots()[0].offset, oc = m.slots()[1].offset, ow = m.slots()[2].offset, ob = m.slots()[3].offset;
  const float* W = p.data() + oW;  // [K, E]
  const float* c = p.data() + oc;  // [E]
  const float* w = p.data() + ow;  // linear weight [in + E, 1]
  const float w0 = p[ob];
  std::vector<float> out(B);
  be->download(out.data(), m.forward(xd, nullptr, cd, true), B);
  for (int b = 0; b < B; ++b) {
    double o = w0;
    for (int i = 0; i < in; ++i) o += double(x[b * in + i]) * w[i];
    for (int e = 0; e < E; ++e) {
      double pl = c[e];
      for (int k = 0; k < K; ++k) pl += double(cond[b * K + k]) * W[k * E + e];
      o += pl * w[in + e];
    }
    EXPECT_NEAR(out[b], o, 1e-5 * (1 + std::fabs(o))) << "out[" << b << "]";
  }
  m.zero_grads();
  be->upload(m.grad_out_buffer(), r.data(), B);
  m.backward(m.grad_out_buffer(), gxd, true);
  std::vector<float> g(m.param_count()), gx(x.size());
  be->download(g.data(), m.grads(), g.size());
  be->download(gx.data(), gxd, gx.size());
  for (int k = 0; k < K; ++k)
    for (int e = 0; e < E; ++e) {
      double want = 0;
      for (int b = 0; b < B; ++b) want += double(cond[b * K + k]) * r[b] * w[in + e];
      EXPECT_NEAR(g[oW + k * E + e], want, 1e-5 * (1 + std::fabs(want))) << "cond.weight[" << k << "," << e << "]";
    }
  for (int e = 0; e < E; ++e) {
    double want = 0;
    for (int b = 0; b < B; ++b) want += double(r[b]) * w[in + e];
    EXPECT_NEAR(g[oc + e], want, 1e-5 * (1 + std::fabs(want))) << "cond.bias[" << e << "]";
  }
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < in; ++i)
      EXPECT_NEAR(gx[b * in + i], double(r[b]) * w[i], 1e-6) << "gx[" << b << "," << i << "]";
  be->free(xd);
  be->free(cd);
  be->free(gxd);
}

}  // namespace
}  // namespace cgan
