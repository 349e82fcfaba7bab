// Layer kinds as units (cgan/nn/layer.hpp): a kind registered from this file alone parses,
// validates, writes back and plans its memory with no central switch; and the memory plan of every
// shipped config equals what the model actually builds.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/config/json_obj.hpp"
#include "cgan/config/layer_syntax.hpp"
#include "cgan/nn/layer.hpp"
#include "cgan/nn/memory_plan.hpp"
#include "cgan/nn/model.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

using json = nlohmann::json;
using testutil::error_of;

// A test-only kind: {"test_repeat": n} repeats each flat sample n times (width * n), no parameters,
// one extra [batch, width] scratch buffer.
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
    p.add_activations(LayerPlan::mul(p.B, p.width()));  // the scratch buffer
    p.c = LayerPlan::mul(p.width(), static_cast<uint64_t>(l.extra.get<int64_t>()));
    p.h = p.w = 1;
    p.what = "its repeats";
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
  EXPECT_EQ(error_of([&] { parse_net_spec(net_json({{{"linear", 8}}, {{"test_repeat", 0}}}), "generator"); }),
            "generator.layers[1].test_repeat: expected an integer in [1, 64], got 0");
  EXPECT_EQ(error_of([&] { parse_net_spec(net_json({{{"reshape", {1, 2, 2}}}, {{"test_repeat", 2}}}), "g"); }),
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
  EXPECT_EQ(error_of([] { layer_unit("conv9d"); }),
            "unknown layer kind \"conv9d\" (expected one of " + list + ")");
  // spectral_norm only where the unit takes it
  EXPECT_EQ(error_of([&] {
              parse_net_spec(net_json({{{"linear", 8}}, {{"test_repeat", 2}, {"spectral_norm", true}}}), "g");
            }),
            "g.layers[1].spectral_norm: only linear and conv2d layers take spectral normalization (this is a "
            "test_repeat)");
}

TEST(LayerUnits, ATestOnlyKindPlansItsMemory) {
  const NetSpec n =
      parse_net_spec(net_json({{{"linear", 8}}, {{"test_repeat", 3}}, {{"linear", 2}}}), "discriminator");
  const uint64_t B = 5;
  const MemoryPlan p = plan_model_memory(n, 4, 0, static_cast<int>(B), "d", uint64_t(1) << 40, "cpu");
  EXPECT_EQ(p.params, 4u * 8 + 8 + 24u * 2 + 2);
  // outputs 8, 24, 2; the repeat's scratch 8; gradient buffers 2 * widest (24) and dL/dout (2)
  EXPECT_EQ(p.activations, B * (8 + 24 + 2) + B * 8 + 2 * B * 24 + B * 2);
  EXPECT_EQ(error_of([&] { plan_model_memory(n, 4, 0, 1 << 20, "d", 4000, "cpu"); }).rfind("d.layers[", 0), 0u);
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
    const int K = c.data.kind == "gaussian" ? 0 : 10;
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
