// Layer kinds as units (cgan/nn/layer.hpp): a kind registered from this file alone parses,
// validates, writes back, plans its memory, builds into a model and trains there (its backward
// checked by finite differences) with no central switch; and the memory plan of every shipped
// config equals what the model actually builds.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/config/json_obj.hpp"
#include "cgan/config/layer_syntax.hpp"
#include "cgan/nn/layer.hpp"
#include "cgan/nn/memory_plan.hpp"
#include "cgan/nn/model.hpp"
#include "model_fd.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

using json = nlohmann::json;
using testutil::error_of;
using testutil::test_seed;

// The model layer of test_repeat: per sample b, y_b [n, w] = ones[n, 1] x_b [1, w] (one GEMM per
// sample), and dL/dx_b = ones[1, n] g_b [n, w].
class TestRepeatLayer final : public ModelLayer {
 public:
  TestRepeatLayer(int n, size_t ones) : n_(n), ones_(ones) {}
  void arena(LayerArena& a) override { a.take(&scratch_, static_cast<size_t>(batch) * in()); }
  const float* forward(const LayerRun& r, const float* x) override {
    const int w = in();
    r.be.copy(scratch_, x, static_cast<size_t>(r.B) * w);  // its input, the GEMMs' source
    for (int b = 0; b < r.B; ++b)
      r.be.gemm(false, false, n_, w, 1, 1.f, r.state + ones_, scratch_ + size_t(b) * w, 0.f, y + size_t(b) * n_ * w);
    return y;
  }
  float* backward(const LayerRun& r, float* g, float* spare, bool input_grad, bool) override {
    if (!input_grad) return g;
    const int w = in();
    for (int b = 0; b < r.B; ++b)
      r.be.gemm(false, false, 1, w, n_, 1.f, r.state + ones_, g + size_t(b) * n_ * w, 0.f, spare + size_t(b) * w);
    return spare;
  }
  void describe(std::ostream& os, int) const override { os << " x" << n_; }

 private:
  int n_;
  size_t ones_;               // state offset of n ones
  float* scratch_ = nullptr;  // [batch, width]: its last input
};

// A test-only kind: {"test_repeat": n} repeats each flat sample n times (width * n), no parameters,
// a state slot of n ones, one extra [batch, width] scratch buffer.
class TestRepeat final : public LayerUnit {
 public:
  const char* name() const override { return "test_repeat"; }
  void parse(const json& v, const std::string& vp, LayerSpec& l, const json**) const override {
    l.extra = cfg::Obj::as_integer(v, vp, 1, 64);
  }
  json to_json(const LayerSpec& l) const override { return l.extra; }
  void check_shape(const LayerSpec& l, ConfigShape& s, const std::string& lp) const override {
    if (s.image) throw Error(cat(lp, ": needs flat input"));
    if (s.width_known) s.width *= l.extra.get<int64_t>();
  }
  void plan(const LayerSpec& l, LayerPlan& p) const override {
    p.add_activations(LayerPlan::mul(p.B, p.width()));           // the scratch buffer
    p.add_state(static_cast<uint64_t>(l.extra.get<int64_t>()));  // the ones
    p.c = LayerPlan::mul(p.width(), static_cast<uint64_t>(l.extra.get<int64_t>()));
    p.h = p.w = 1;
    p.what = "its repeats";
  }
  std::unique_ptr<ModelLayer> build(LayerBuild& b, SampleShape* out) const override {
    b.require(!b.in.image, ": needs flat input");
    const int n = static_cast<int>(b.spec.extra.get<int64_t>());
    const size_t ones = b.slot(b.pre + "ones", {n}, true, '1', 1);
    *out = SampleShape{b.in.width() * n, 1, 1, false};
    return std::make_unique<TestRepeatLayer>(n, ones);
  }
};
const RegisterLayer<TestRepeat> reg;

json net_json(const json& layers) { return {{"condition", {{"mode", "none"}}}, {"layers", layers}}; }

TEST(LayerUnits, ATestOnlyKindParsesValidatesAndRoundTrips) {
  const json j = net_json({{{"linear", 8}}, {{"test_repeat", 3}}, {{"relu", json::object()}}, {{"linear", 2}}});
  const NetSpec n = parse_net_spec(j, "discriminator");
  ASSERT_EQ(n.layers.size(), 4u);
  EXPECT_EQ(n.layers[1].kind, "test_repeat");
  EXPECT_EQ(n.layers[1].extra, 3);
  EXPECT_EQ(net_spec_to_json(n), net_spec_to_json(parse_net_spec(net_spec_to_json(n), "again")));
  EXPECT_EQ(net_spec_to_json(n)["layers"][1], json({{"test_repeat", 3}}));
  // its own validation, with the key path
  EXPECT_EQ(error_of([&] {
              parse_net_spec(net_json({{{"linear", 8}}, {{"test_repeat", 0}}}), "generator");
            }),
            "generator.layers[1].test_repeat: expected an integer in [1, 64], got 0");
  EXPECT_EQ(error_of([&] {
              parse_net_spec(net_json({{{"reshape", {1, 2, 2}}}, {{"test_repeat", 2}}}), "g");
            }),
            "g.layers[1].test_repeat: needs flat input");
  // the shape it gives flows into the next layer's check: 8 * 3 = 24 values
  EXPECT_EQ(error_of([&] {
              parse_net_spec(net_json({{{"linear", 8}}, {{"test_repeat", 3}}, {{"reshape", {1, 5, 5}}}}), "g");
            }),
            "g.layers[2].reshape: [1, 5, 5] holds 25 values but its input has 24");
  // listed among the kinds, after the shipped ones; an unknown kind still names them all
  const std::string list = layer_kind_list();
  EXPECT_EQ(list.rfind("linear, relu, leaky_relu, sigmoid, tanh, dropout, batchnorm, conv2d, avgpool2d, maxpool2d, "
                       "reshape",
                       0),
            0u)
      << list;
  EXPECT_NE(list.find(", test_repeat"), std::string::npos) << list;
  EXPECT_EQ(error_of([] { layer_unit("conv9d"); }), "unknown layer kind \"conv9d\" (expected one of " + list + ")");
  // spectral_norm only where the unit takes it
  EXPECT_EQ(error_of([&] {
              parse_net_spec(net_json({{{"linear", 8}}, {{"test_repeat", 2}, {"spectral_norm", true}}}), "g");
            }),
            "g.layers[1].spectral_norm: only linear and conv2d layers take spectral normalization (this is a "
            "test_repeat)");
}

TEST(LayerUnits, ATestOnlyKindPlansItsMemory) {
  const NetSpec n = parse_net_spec(net_json({{{"linear", 8}}, {{"test_repeat", 3}}, {{"linear", 2}}}), "discriminator");
  const uint64_t B = 5;
  const MemoryPlan p = plan_model_memory(n, 4, 0, static_cast<int>(B), "d", uint64_t(1) << 40, "cpu");
  EXPECT_EQ(p.params, 4u * 8 + 8 + 24u * 2 + 2);
  EXPECT_EQ(p.state, 3u);  // the ones
  // outputs 8, 24, 2; the repeat's scratch 8; gradient buffers 2 * widest (24) and dL/dout (2)
  EXPECT_EQ(p.activations, B * (8 + 24 + 2) + B * 8 + 2 * B * 24 + B * 2);
  EXPECT_EQ(error_of([&] { plan_model_memory(n, 4, 0, 1 << 20, "d", 4000, "cpu"); }).rfind("d.layers[", 0), 0u);
}

// The test-only kind inside a model: its slots and summary, the plan equals the model, its backward
// (and the model's around it) matches finite differences, and Adam through it fits a target.
TEST(LayerUnits, ATestOnlyKindBuildsAndTrainsInAModel) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  const NetSpec n = parse_net_spec(
      net_json(
          {{{"linear", 5}}, {{"leaky_relu", 0.2}}, {{"test_repeat", 3}}, {{"tanh", json::object()}}, {{"linear", 2}}}),
      "discriminator");
  const int B = 4, in = 3;
  Model m(*be, n, in, 0, B, "d");
  EXPECT_EQ(m.out_dim(), 2);
  const MemoryPlan plan = plan_model_memory(n, in, 0, B, "d", uint64_t(1) << 40, "cpu");
  EXPECT_EQ(plan.params, m.packed_param_count());
  EXPECT_EQ(plan.activations, m.activation_floats());
  ASSERT_EQ(m.slots().size(), 5u);
  EXPECT_EQ(m.slots()[2].name, "layers.2.ones");
  EXPECT_TRUE(m.slots()[2].state);
  EXPECT_NE(m.summary().find("[2] test_repeat 5 -> 15 x3"), std::string::npos) << m.summary();
  m.init_params(rng());

  std::vector<float> x(size_t(B) * in), r(size_t(B) * 2);
  for (auto& v : x) v = uni(-1, 1);
  for (auto& v : r) v = uni(-1, 1);
  float* xd = be->alloc(x.size());
  float* gxd = be->alloc(x.size());
  be->upload(xd, x.data(), x.size());
  // forward: the repeat's output is its input three times
  std::vector<float> h5(size_t(B) * 5), h15(size_t(B) * 15);
  (void)m.forward(xd, nullptr, nullptr, true);
  int w = 0;
  be->download(h5.data(), m.output_of(1, &w), h5.size());
  EXPECT_EQ(w, 5);
  be->download(h15.data(), m.output_of(2, &w), h15.size());
  EXPECT_EQ(w, 15);
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < 15; ++k) EXPECT_EQ(h15[size_t(b) * 15 + k], h5[size_t(b) * 5 + k % 5]);

  // backward against finite differences (parameters and input)
  std::vector<float> p(m.param_count()), st(m.state_count());
  be->download(p.data(), m.params(), p.size());
  be->download(st.data(), m.state(), st.size());
  auto loss = [&]() { return modelfd::weighted_sum_loss(*be, m, xd, nullptr, r); };
  loss();
  std::vector<float> g, gx(x.size());
  modelfd::weighted_sum_backward(*be, m, r, gxd, g, gx);
  modelfd::FdCheck fd(loss);
  fd.params(
      m, p, st, g, [](const ParamSlot&) { return 6; }, rng);
  fd.inputs(*be, xd, x, gx, 12, rng);
  EXPECT_GE(fd.checked(), (fd.checked() + fd.skipped()) / 2);
  EXPECT_GE(fd.checked(), 20);

  // training: Adam on the squared error to a fixed target lowers it
  std::vector<float> target(size_t(B) * 2), out(target.size()), gout(target.size());
  for (auto& v : target) v = uni(-0.5f, 0.5f);
  auto mse = [&]() {
    be->download(out.data(), m.forward(xd, nullptr, nullptr, true), out.size());
    double e = 0;
    for (size_t i = 0; i < out.size(); ++i) e += double(out[i] - target[i]) * (out[i] - target[i]);
    return e / double(out.size());
  };
  const double before = mse();
  AdamSpec adam;
  adam.lr = 1e-2f;
  for (int t = 1; t <= 100; ++t) {
    mse();
    for (size_t i = 0; i < out.size(); ++i) gout[i] = 2.f * (out[i] - target[i]) / float(out.size());
    m.zero_grads();
    be->upload(m.grad_out_buffer(), gout.data(), gout.size());
    m.backward(m.grad_out_buffer(), nullptr, true);
    m.adam_step(adam, t);
  }
  const double after = mse();
  EXPECT_LT(after, 0.2 * before) << before << " -> " << after;
  std::vector<float> st_after(m.state_count());
  be->download(st_after.data(), m.state(), st_after.size());
  EXPECT_EQ(st_after, st);  // the ones are state: Adam leaves them
  be->free(xd);
  be->free(gxd);
}

// The memory plan and the model agree on every shipped config (both networks, batch 3): trained
// parameters, state and the activation arena's buffers.
TEST(LayerUnits, TheMemoryPlanIsWhatTheModelAllocates) {
  auto be = make_cpu_backend();
  const std::string dir = std::string(CGAN_SOURCE_DIR) + "/configs";
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json" || e.path().stem().string().rfind("classifier_", 0) == 0) continue;
    const Config c = load_config(e.path().string());
    const int K = c.data.kind == DataKind::Kind::gaussian ? 0 : 10;
    const int B = 3;
    Model g(*be, c.generator, c.noise_dim, K, B, "generator");
    for (int net = 0; net < 2; ++net) {
      const NetSpec& spec = net == 0 ? c.generator : c.discriminator;
      const int in_dim = net == 0 ? c.noise_dim : g.out_dim();
      SCOPED_TRACE(e.path().stem().string() + (net == 0 ? " generator" : " discriminator"));
      Model m(*be, spec, in_dim, K, B, "net");
      const MemoryPlan p = plan_model_memory(spec, in_dim, K, B, "net", uint64_t(1) << 40, "cpu");
      size_t state = 0;
      for (const ParamSlot& sl : m.slots()) state += sl.state ? sl.count : 0;
      EXPECT_EQ(p.params, m.packed_param_count());
      EXPECT_EQ(p.state, state);
      EXPECT_EQ(p.activations, m.activation_floats());
      ++n;
    }
  }
  EXPECT_GE(n, 12);
}

}  // namespace
}  // namespace cgan
