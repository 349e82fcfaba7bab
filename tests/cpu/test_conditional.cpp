// The conditional family on the CPU backend: the projection discriminator and conditional batch
// norm (docs/DECISIONS.md "Projection discriminator and conditional batch norm"). The ops against
// double-precision references; Model::backward through both against central finite differences of
// the model's own forward (dense and conv layouts, one-hot labels and multi-hot tags); the config
// and model errors.
//
// Inputs are fresh on every run (std::random_device, or CGAN_TEST_SEED to replay a failure); the
// seed is printed with every failure.
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
#include "cgan/nn/memory_plan.hpp"
#include "cgan/nn/model.hpp"
#include "cgan/train/trainer.hpp"
#include "model_fd.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

using json = nlohmann::json;
using testutil::error_of;

using testutil::test_seed;

// A config on labelled 2-D points (8 classes) with the given generator and discriminator networks.
json config_with(const json& g, const json& d) {
  json gen = g;
  gen["noise_dim"] = 3;
  return {{"data", {{"kind", "mixture"}, {"count", 100}}}, {"generator", gen}, {"discriminator", d}};
}

NetSpec spec_of(const json& layers, const std::string& mode) {
  return parse_net_spec(json{{"condition", {{"mode", mode}}}, {"layers", layers}}, "net");
}

// ------------------------------------------------------------------------------------------- ops

TEST(ProjectionOp, ForwardAndBackwardMatchDoubleReference) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  for (auto [B, F] : {std::pair{1, 1}, std::pair{7, 13}, std::pair{64, 512}}) {
    SCOPED_TRACE(cat("B=", B, " F=", F));
    std::vector<float> phi(size_t(B) * F), e(phi.size()), out(B), g(B), gphi(phi.size()), ge(phi.size());
    for (auto* v : {&phi, &e, &gphi})
      for (float& f : *v) f = uni(-1, 1);
    for (float& f : out) f = uni(-1, 1);
    for (float& f : g) f = uni(-1, 1);
    const std::vector<float> out0 = out, gphi0 = gphi;
    be->projection_forward(B, F, phi.data(), e.data(), out.data());
    be->projection_backward(B, F, phi.data(), e.data(), g.data(), gphi.data(), ge.data());
    for (int b = 0; b < B; ++b) {
      double s = 0;
      for (int j = 0; j < F; ++j) s += double(phi[size_t(b) * F + j]) * e[size_t(b) * F + j];
      EXPECT_NEAR(out[b], out0[b] + s, 1e-6 * (1 + std::fabs(s))) << "row " << b;
      for (int j = 0; j < F; ++j) {
        const size_t i = size_t(b) * F + j;
        EXPECT_FLOAT_EQ(gphi[i], gphi0[i] + g[b] * e[i]);
        EXPECT_FLOAT_EQ(ge[i], g[b] * phi[i]);
      }
    }
  }
}

// y = act((1 + dgain) (x - mean) / sqrt(var + eps) + dbias) against a double reference; running
// statistics as PyTorch's; evaluation from the running statistics.
TEST(ConditionalBatchNormOp, ForwardMatchesDoubleReference) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  struct Shape {
    int N, C, S;
  };
  for (const Shape sh : {Shape{2, 1, 1}, Shape{5, 3, 1}, Shape{4, 3, 7}, Shape{16, 8, 25}}) {
    SCOPED_TRACE(cat("N=", sh.N, " C=", sh.C, " S=", sh.S));
    const size_t n = size_t(sh.N) * sh.C * sh.S, nc = size_t(sh.N) * sh.C;
    const float eps = 1e-5f, momentum = 0.1f;
    std::vector<float> x(n), dg(nc), db(nc), y(n), mean(sh.C), invstd(sh.C), rm(sh.C), rv(sh.C);
    for (float& v : x) v = uni(-2, 3);
    for (float& v : dg) v = uni(-0.5f, 0.5f);
    for (float& v : db) v = uni(-0.5f, 0.5f);
    for (int c = 0; c < sh.C; ++c) rm[c] = uni(-1, 1), rv[c] = uni(0.5f, 2);
    const std::vector<float> rm0 = rm, rv0 = rv;
    be->cbn_forward_train(sh.N, sh.C, sh.S, eps, momentum, x.data(), dg.data(), db.data(), y.data(), mean.data(),
                          invstd.data(), rm.data(), rv.data(), Act::leaky_relu, 0.2f);
    const double cnt = double(sh.N) * sh.S;
    for (int c = 0; c < sh.C; ++c) {
      double s = 0, q = 0;
      for (int b = 0; b < sh.N; ++b)
        for (int i = 0; i < sh.S; ++i) s += x[(size_t(b) * sh.C + c) * sh.S + i];
      const double mu = s / cnt;
      for (int b = 0; b < sh.N; ++b)
        for (int i = 0; i < sh.S; ++i) q += std::pow(x[(size_t(b) * sh.C + c) * sh.S + i] - mu, 2);
      const double var = q / cnt, is = 1 / std::sqrt(var + eps);
      EXPECT_NEAR(mean[c], mu, 1e-6);
      EXPECT_NEAR(invstd[c], is, 1e-5 * is);
      EXPECT_NEAR(rm[c], 0.9 * rm0[c] + 0.1 * mu, 1e-6);
      EXPECT_NEAR(rv[c], 0.9 * rv0[c] + 0.1 * q / (cnt - 1), 1e-5);
      for (int b = 0; b < sh.N; ++b)
        for (int i = 0; i < sh.S; ++i) {
          const size_t o = (size_t(b) * sh.C + c) * sh.S + i, k = size_t(b) * sh.C + c;
          double want = (1.0 + dg[k]) * (x[o] - mu) * is + db[k];
          want = want > 0 ? want : 0.2 * want;
          EXPECT_NEAR(y[o], want, 1e-5 * (1 + std::fabs(want))) << "n=" << b << " c=" << c << " s=" << i;
        }
    }
    be->cbn_forward_eval(sh.N, sh.C, sh.S, eps, x.data(), dg.data(), db.data(), rm.data(), rv.data(), y.data(),
                         Act::none, 0.f);
    for (int b = 0; b < sh.N; ++b)
      for (int c = 0; c < sh.C; ++c)
        for (int i = 0; i < sh.S; ++i) {
          const size_t o = (size_t(b) * sh.C + c) * sh.S + i, k = size_t(b) * sh.C + c;
          const double want = (1.0 + dg[k]) * (x[o] - rm[c]) / std::sqrt(double(rv[c]) + eps) + db[k];
          EXPECT_NEAR(y[o], want, 1e-5 * (1 + std::fabs(want)));
        }
  }
}

// The op's backward against central differences of L = sum r * y in double, for x, dgain and dbias.
TEST(ConditionalBatchNormOp, BackwardMatchesFiniteDifferences) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  struct Shape {
    int N, C, S;
  };
  for (const Shape sh : {Shape{3, 2, 1}, Shape{6, 5, 1}, Shape{4, 3, 9}}) {
    SCOPED_TRACE(cat("N=", sh.N, " C=", sh.C, " S=", sh.S));
    const size_t n = size_t(sh.N) * sh.C * sh.S, nc = size_t(sh.N) * sh.C;
    std::vector<float> x(n), dg(nc), db(nc), r(n), y(n), mean(sh.C), invstd(sh.C), gx(n), gdg(nc), gdb(nc);
    for (float& v : x) v = uni(-2, 2);
    for (float& v : dg) v = uni(-0.6f, 0.6f);
    for (float& v : db) v = uni(-0.6f, 0.6f);
    for (float& v : r) v = uni(-1, 1);
    auto loss = [&] {
      be->cbn_forward_train(sh.N, sh.C, sh.S, 1e-5f, 0.1f, x.data(), dg.data(), db.data(), y.data(), mean.data(),
                            invstd.data(), nullptr, nullptr);
      double L = 0;
      for (size_t i = 0; i < n; ++i) L += double(r[i]) * y[i];
      return L;
    };
    loss();
    be->cbn_backward(sh.N, sh.C, sh.S, x.data(), dg.data(), mean.data(), invstd.data(), r.data(), gx.data(), gdg.data(),
                     gdb.data());
    const double k = 1e-3;
    auto fd = [&](std::vector<float>& v, size_t i) {
      const float keep = v[i];
      v[i] = keep + float(k);
      const double up = loss();
      v[i] = keep - float(k);
      const double dn = loss();
      v[i] = keep;
      return (up - dn) / (2 * k);
    };
    auto tol = [](double a, double b) { return 2e-3 + 5e-3 * std::max(std::fabs(a), std::fabs(b)); };
    for (size_t i = 0; i < n; ++i) {
      const double want = fd(x, i);
      EXPECT_NEAR(gx[i], want, tol(gx[i], want)) << "x[" << i << "]";
    }
    for (size_t i = 0; i < nc; ++i) {
      const double wg = fd(dg, i), wb = fd(db, i);
      EXPECT_NEAR(gdg[i], wg, tol(gdg[i], wg)) << "dgain[" << i << "]";
      EXPECT_NEAR(gdb[i], wb, tol(gdb[i], wb)) << "dbias[" << i << "]";
    }
  }
}

TEST(ConditionalOps, BadArgumentsAreErrors) {
  auto be = make_cpu_backend();
  std::vector<float> a(8, 1.f);
  EXPECT_NE(error_of([&] { be->projection_forward(2, 0, a.data(), a.data(), a.data()); }).find("projection_forward"),
            std::string::npos);
  EXPECT_NE(error_of([&] { be->projection_forward(2, 2, nullptr, a.data(), a.data()); }).find("null"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              be->cbn_forward_train(1, 2, 1, 1e-5f, 0.1f, a.data(), a.data(), a.data(), a.data(), a.data(), a.data(),
                                    nullptr, nullptr);
            }).find("more than one value per channel"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              be->cbn_backward(2, 2, 1, a.data(), nullptr, a.data(), a.data(), a.data(), a.data(), a.data(), a.data());
            }).find("cbn_backward: null pointer"),
            std::string::npos);
}

// ------------------------------------------------------------------------- models, finite differences

struct Case {
  std::string what;
  json layers;
  std::string mode;
  int in_dim, classes, batch;
  bool tags;  // multi-hot condition vectors (else one-hot labels)
};

std::vector<Case> cases() {
  return {
      // projection discriminators: dense with labels, conv with multi-hot tags, and a single linear
      {"projection dense labels", json::parse(R"([{"linear": 6}, {"leaky_relu": 0.2}, {"linear": 1}])"), "projection",
       7, 4, 5, false},
      {"projection conv tags", json::parse(R"([{"reshape": [2, 3, 4]},
                                                 {"conv2d": {"out": 3, "kernel": 3, "padding": 1}},
                                                 {"leaky_relu": 0.2}, {"linear": 1}])"),
       "projection", 24, 5, 4, true},
      {"projection single linear", json::parse(R"([{"linear": 1}])"), "projection", 5, 3, 4, false},
      // conditional batch norm: dense with labels (the label enters only there), conv with tags
      {"cbn dense labels", json::parse(R"([{"linear": 6}, {"batchnorm": {"conditional": true}}, {"relu": {}},
                                             {"linear": 4}, {"batchnorm": {"conditional": true}}, {"tanh": {}}])"),
       "none", 3, 3, 6, false},
      {"cbn conv tags", json::parse(R"([{"linear": 18}, {"reshape": [2, 3, 3]},
                                          {"conv2d": {"out": 3, "kernel": 3, "padding": 1}},
                                          {"batchnorm": {"conditional": true}}, {"leaky_relu": 0.2},
                                          {"linear": 3}])"),
       "concat_onehot", 4, 4, 5, true},
  };
}

TEST(ConditionalModel, BackwardMatchesFiniteDifferences) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.what);
    Model m(*be, spec_of(c.layers, c.mode), c.in_dim, c.classes, c.batch, "net");
    ASSERT_TRUE(m.uses_onehot());
    m.init_params(rng());
    const int B = c.batch, O = m.out_dim(), K = c.classes;
    // random parameters everywhere (the gain and bias maps start at 0, which would hide their use)
    std::vector<float> p(m.param_count()), st(m.state_count());
    be->download(p.data(), m.params(), p.size());
    be->download(st.data(), m.state(), st.size());
    for (const ParamSlot& sl : m.slots())
      if (!sl.state)
        for (size_t i = 0; i < sl.count; ++i) p[sl.offset + i] += uni(-0.4f, 0.4f);
    m.set_params(p.data(), st.data());
    std::vector<float> x(size_t(B) * c.in_dim), r(size_t(B) * O), cond(size_t(B) * K, 0.f);
    for (auto& v : x) v = uni(-1, 1);
    for (auto& v : r) v = uni(-1, 1);
    for (int b = 0; b < B; ++b) {
      cond[size_t(b) * K + b % K] = 1.f;
      if (c.tags) cond[size_t(b) * K + (b + 2) % K] = 1.f;  // a second tag (multi-hot)
    }
    float* xd = be->alloc(x.size());
    float* cd = be->alloc(cond.size());
    float* gxd = be->alloc(x.size());
    be->upload(xd, x.data(), x.size());
    be->upload(cd, cond.data(), cond.size());
    auto loss = [&]() { return modelfd::weighted_sum_loss(*be, m, xd, cd, r); };
    loss();
    std::vector<float> g, gx(x.size());
    modelfd::weighted_sum_backward(*be, m, r, gxd, g, gx);

    // kinks (relu, leaky relu) inside the step are detected by one-sided differences and skipped
    // (tests/model_fd.hpp); the embedding and conditional tables get more samples
    modelfd::FdCheck fd(loss);
    bool saw_table = false;
    fd.params(
        m, p, st, g,
        [&](const ParamSlot& sl) {
          const bool table = sl.name == "embed.weight" || sl.name.find("gain.weight") != std::string::npos ||
                             sl.name.find("bias.weight") != std::string::npos;
          saw_table = saw_table || table;
          return table ? 10 : 4;
        },
        rng);
    EXPECT_TRUE(saw_table);
    fd.inputs(*be, xd, x, gx, 12, rng);
    const int checked = fd.checked(), skipped = fd.skipped();
    std::printf("[ %s ] %d coordinates checked, %d skipped (non-smooth within the step)\n", c.what.c_str(), checked,
                skipped);
    EXPECT_GE(checked, (checked + skipped) * 2 / 3);
    be->free(xd);
    be->free(cd);
    be->free(gxd);
  }
}

// D(x, y) = psi(phi(x)) + <cond . E, phi(x)>: the output minus the same network's output with a
// zero condition is exactly the inner product (checked in double from the downloaded E and phi).
TEST(ConditionalModel, ProjectionAddsTheEmbeddingInnerProduct) {
  auto be = make_cpu_backend();
  const json layers = json::parse(R"([{"linear": 5}, {"tanh": {}}, {"linear": 1}])");
  const int B = 4, K = 3, in = 6;
  Model m(*be, spec_of(layers, "projection"), in, K, B, "d");
  m.init_params(7);
  std::vector<float> x(B * in), cond(B * K, 0.f), zero(B * K, 0.f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * float(i));
  for (int b = 0; b < B; ++b) cond[b * K + b % K] = 1.f, cond[b * K + (b + 1) % K] = (b == 3) ? 1.f : 0.f;
  float* xd = be->alloc(x.size());
  float* cd = be->alloc(cond.size());
  float* zd = be->alloc(zero.size());
  be->upload(xd, x.data(), x.size());
  be->upload(cd, cond.data(), cond.size());
  std::vector<float> with(B), without(B), phi(B * 5), p(m.param_count());
  be->download(with.data(), m.forward(xd, nullptr, cd, false), B);
  be->download(phi.data(), m.output_of(1), phi.size());
  be->download(without.data(), m.forward(xd, nullptr, zd, false), B);
  be->download(p.data(), m.params(), p.size());
  const ParamSlot* E = nullptr;
  for (const ParamSlot& sl : m.slots())
    if (sl.name == "embed.weight") E = &sl;
  ASSERT_NE(E, nullptr);
  EXPECT_EQ(E->shape, (std::vector<int64_t>{K, 5}));
  // Glorot uniform: |E| <= sqrt(6 / (K + F)), and not all zero
  double maxabs = 0;
  for (size_t i = 0; i < E->count; ++i) maxabs = std::max(maxabs, double(std::fabs(p[E->offset + i])));
  EXPECT_GT(maxabs, 0.0);
  EXPECT_LE(maxabs, std::sqrt(6.0 / (K + 5)));
  for (int b = 0; b < B; ++b) {
    double s = 0;
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < 5; ++j) s += double(cond[b * K + k]) * p[E->offset + k * 5 + j] * phi[b * 5 + j];
    EXPECT_NEAR(with[b] - without[b], s, 1e-5) << "row " << b;
  }
  be->free(xd);
  be->free(cd);
  be->free(zd);
}

// The memory plan (memory_plan.cpp, checked before a model allocates) counts the new tensors: its
// parameters and state are exactly the model's slots, and its activations cover the arena's new
// buffers (the projection's e and ge, the batch norms' gain/bias outputs and their gradients).
TEST(ConditionalModel, MemoryPlanCountsTheNewTensors) {
  auto be = make_cpu_backend();
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.what);
    const NetSpec spec = spec_of(c.layers, c.mode);
    Model m(*be, spec, c.in_dim, c.classes, c.batch, "net");
    const MemoryPlan p = plan_model_memory(spec, c.in_dim, c.classes, c.batch, "net", uint64_t(1) << 40, "cpu");
    size_t state = 0;
    for (const ParamSlot& sl : m.slots()) state += sl.state ? sl.count : 0;
    EXPECT_EQ(p.params, m.packed_param_count());
    EXPECT_EQ(p.state, state);
    // the same spec without its conditioning: the difference in activations is the new buffers
    NetSpec plain = spec;
    uint64_t extra = 0, widest = 0;
    for (LayerSpec& l : plain.layers)
      if (l.kind == LayerKind::batchnorm && l.conditional) l.conditional = false;
    if (c.mode == "projection") {
      plain.condition.mode = "none";
      extra += 2 * uint64_t(c.batch) * m.slots().back().shape[1];  // e and ge [B, F]
    }
    const MemoryPlan q = plan_model_memory(plain, c.in_dim, c.mode == "projection" ? 0 : c.classes, c.batch, "net",
                                           uint64_t(1) << 40, "cpu");
    for (const ParamSlot& sl : m.slots())
      if (sl.name.find("gain.weight") != std::string::npos) {
        const uint64_t C = uint64_t(sl.shape[1]);
        extra += 2 * uint64_t(c.batch) * C;  // dgain, dbias [B, C]
        widest = std::max(widest, C);
      }
    extra += 2 * uint64_t(c.batch) * widest;  // the shared gdgain, gdbias
    EXPECT_EQ(p.activations - q.activations, extra);
  }
}

// ------------------------------------------------------------------------------------ errors

TEST(ConditionalConfig, ErrorsNameTheKey) {
  const json dlin = json::parse(R"({"condition": {"mode": "projection"},
                                    "layers": [{"linear": 8}, {"leaky_relu": 0.2}, {"linear": 1}]})");
  const json gplain = json::parse(R"({"condition": {"mode": "concat_onehot"}, "layers": [{"linear": 2}]})");
  // a valid pair parses, and the conditional key round-trips through to_json
  const json gcbn = json::parse(R"({"condition": {"mode": "none"},
                                    "layers": [{"linear": 4}, {"batchnorm": {"conditional": true}}, {"linear": 2}]})");
  const Config ok = parse_config(config_with(gcbn, dlin));
  EXPECT_TRUE(ok.generator.layers[1].conditional);
  EXPECT_TRUE(has_conditional_bn(ok.generator));
  EXPECT_TRUE(net_is_conditional(ok.generator));
  EXPECT_FALSE(has_conditional_bn(ok.discriminator));
  EXPECT_TRUE(parse_config(ok.to_json()).generator.layers[1].conditional);
  EXPECT_EQ(ok.to_json()["generator"]["layers"][1]["batchnorm"]["conditional"], true);
  EXPECT_FALSE(parse_config(config_with(gplain, dlin)).to_json()["generator"]["layers"][0].contains("conditional"));

  std::string e = error_of([&] {
    json g = gplain;
    g["condition"]["mode"] = "projection";
    parse_config(config_with(g, dlin));
  });
  EXPECT_EQ(e.rfind("generator.condition.mode: \"projection\" is a discriminator's mode", 0), 0u) << e;

  e = error_of([&] {
    json d = dlin;
    d["layers"] = json::parse(R"([{"linear": 8}, {"linear": 2}])");
    parse_config(config_with(gplain, d));
  });
  EXPECT_EQ(e.rfind("discriminator.layers[1]: condition.mode \"projection\" needs the discriminator to end with "
                    "{\"linear\": 1}",
                    0),
            0u)
      << e;
  EXPECT_NE(e.find("got {\"linear\":2}"), std::string::npos) << e;

  e = error_of([&] {
    json d = dlin;
    d["layers"] = json::parse(R"([{"linear": 1}, {"sigmoid": {}}])");
    json c = config_with(gplain, d);
    c["loss"] = {{"kind", "squared"}};
    parse_config(c);
  });
  EXPECT_EQ(e.rfind("discriminator.layers[1]: condition.mode \"projection\" needs", 0), 0u) << e;

  e = error_of([&] {
    json g = gcbn;
    g["layers"][1]["batchnorm"]["conditional"] = "yes";
    parse_config(config_with(g, dlin));
  });
  EXPECT_EQ(e, "generator.layers[1].batchnorm.conditional: expected true or false, got \"yes\"");

  // three_term and eval count a generator conditioned only through batch norm as conditional
  json c3 = config_with(gcbn, dlin);
  c3["loss"] = {{"kind", "three_term"}};
  EXPECT_NO_THROW(parse_config(c3));

  // the model: conditional batch norm without labels; projection not ending in one linear unit
  auto be = make_cpu_backend();
  e = error_of([&] {
    Model m(*be, spec_of(json::parse(R"([{"linear": 4}, {"batchnorm": {"conditional": true}}])"), "none"), 3, 0, 4,
            "classifier");
  });
  EXPECT_EQ(e,
            "classifier.layers[1].batchnorm.conditional: conditional batch norm needs labelled data (labels or tags)");
  e = error_of([&] {
    Model m(*be, spec_of(json::parse(R"([{"linear": 4}, {"linear": 2}])"), "projection"), 3, 5, 4, "discriminator");
  });
  EXPECT_NE(e.find("discriminator.layers[1]: condition.mode \"projection\" needs the network to end with"),
            std::string::npos)
      << e;

  // embedding modes read one label per sample: with tags, conditional batch norm is refused
  DataShape tags;
  tags.channels = 3, tags.height = 4, tags.width = 4, tags.num_classes = 5, tags.tag_dim = 9;
  NetSpec emb = spec_of(json::parse(R"([{"linear": 4}, {"batchnorm": {"conditional": true}}])"), "embed_concat");
  e = error_of([&] { condition_width(emb, tags); });
  EXPECT_EQ(e.rfind("condition.mode \"embed_concat\" embeds one label per sample but conditional batch norm", 0), 0u)
      << e;
  NetSpec none_cbn = spec_of(json::parse(R"([{"linear": 4}, {"batchnorm": {"conditional": true}}])"), "none");
  EXPECT_EQ(condition_width(none_cbn, tags), 9);
  DataShape labels = tags;
  labels.tag_dim = 0;
  EXPECT_EQ(condition_width(none_cbn, labels), 5);
  EXPECT_EQ(condition_width(emb, labels), 5);
}

}  // namespace
}  // namespace cgan
