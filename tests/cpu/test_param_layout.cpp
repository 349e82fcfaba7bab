// Parameter slots on 256-byte boundaries (src/nn/model.cpp), packing (v1 checkpoints store Adam's m
// and v as the trainable slots concatenated without the alignment gaps), and the v2 checkpoint's
// per-slot Adam moments, which must come from each slot's aligned offset.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/nn/model.hpp"
#include "cgan/train/trainer.hpp"
#include "e2e/e2e_util.hpp"

namespace cgan {
namespace {

// A generator with slots of 5*3, 32, 32, 32... floats (none a multiple of 64).
const std::vector<std::string> kSets = {
    "data.count=256", "train.batch_size=32", "loss.kind=squared",
    R"(generator.condition={"mode":"embed_concat","embed_dim":5})",
    R"(generator.layers=[{"linear":32},{"batchnorm":{"eps":0.8}},{"leaky_relu":0.2},{"linear":2}])"};

std::vector<float> fetch(Backend& be, const float* p, size_t n) {
  std::vector<float> h(n);
  be.download(h.data(), p, n);
  return h;
}

TEST(ParamLayout, SlotsAreAlignedAndUnpackingPlacesEverySlot) {
  const Config cfg = load_config(e2e::source("configs/mixture_cond.json"), kSets);
  auto be = make_cpu_backend();
  Model m(*be, cfg.generator, cfg.noise_dim, 3, 4, "g");
  size_t packed = 0;
  for (const ParamSlot& s : m.slots()) {
    EXPECT_EQ(s.offset % 64, 0u) << s.name;
    if (!s.state) packed += s.count;
  }
  EXPECT_EQ(m.param_count() % 64, 0u);
  EXPECT_EQ(m.packed_param_count(), packed);
  EXPECT_LT(packed, m.param_count()) << "the test wants gaps between slots";
  std::mt19937 rng(5);
  std::vector<float> x(packed);
  for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  const std::vector<float> full = m.unpack_params(x);
  ASSERT_EQ(full.size(), m.param_count());
  size_t at = 0;
  std::vector<bool> in_slot(full.size(), false);
  for (const ParamSlot& s : m.slots()) {
    if (s.state) continue;
    for (size_t i = 0; i < s.count; ++i, ++at) {
      EXPECT_EQ(full[s.offset + i], x[at]) << s.name << "[" << i << "]";
      in_slot[s.offset + i] = true;
    }
  }
  for (size_t i = 0; i < full.size(); ++i)
    if (!in_slot[i]) EXPECT_EQ(full[i], 0.f) << "gap at " << i;
}

// A v2 checkpoint's optim.<net>.m/v tensors hold exactly the trainable slots' moments (no gap
// values, nothing missing); restoring one puts every slot's moments back at its aligned offset, and
// the resumed run continues exactly.
TEST(ParamLayout, CheckpointAdamMomentsComeFromTheAlignedSlots) {
  const Config cfg = load_config(e2e::source("configs/mixture_cond.json"), kSets);
  const HostDataset data = load_dataset(cfg.data);
  auto be = make_cpu_backend();
  Trainer a(cfg, *be, data);
  a.init();
  for (int i = 0; i < 3; ++i) a.step();
  a.take_rows();
  const SafeTensors ck = a.snapshot();
  for (Model* m : {&a.generator(), &a.discriminator()}) {
    const std::string net = m == &a.generator() ? "generator" : "discriminator";
    for (const auto& [which, buf] : {std::pair<std::string, const float*>{"m", m->adam_m()}, {"v", m->adam_v()}}) {
      const std::string pre = "optim." + net + "." + which + ".";
      std::vector<float> want, got;
      const std::vector<float> dev = fetch(*be, buf, m->param_count());
      for (const ParamSlot& s : m->slots())
        if (!s.state) want.insert(want.end(), dev.begin() + s.offset, dev.begin() + s.offset + s.count);
      for (const NamedTensor& t : ck.tensors)  // in slot order, as written
        if (t.name.rfind(pre, 0) == 0) got.insert(got.end(), t.data.begin(), t.data.end());
      ASSERT_EQ(got.size(), m->packed_param_count()) << pre;
      std::vector<float> sorted_want = want, sorted_got = got;  // linear weights are transposed in v2
      std::sort(sorted_want.begin(), sorted_want.end());
      std::sort(sorted_got.begin(), sorted_got.end());
      EXPECT_EQ(sorted_got, sorted_want) << pre << ": not the slots' moments";
    }
  }
  Trainer b(cfg, *be, data);
  b.restore(ck, "memory");
  for (Model* m : {&b.generator(), &b.discriminator()}) {
    Model& o = m == &b.generator() ? a.generator() : a.discriminator();
    EXPECT_EQ(fetch(*be, m->adam_m(), m->param_count()), fetch(*be, o.adam_m(), o.param_count()));
    EXPECT_EQ(fetch(*be, m->adam_v(), m->param_count()), fetch(*be, o.adam_v(), o.param_count()));
  }
  a.step();
  b.step();
  EXPECT_EQ(fetch(*be, a.generator().params(), a.generator().param_count()),
            fetch(*be, b.generator().params(), b.generator().param_count()));
  EXPECT_EQ(fetch(*be, a.discriminator().params(), a.discriminator().param_count()),
            fetch(*be, b.discriminator().params(), b.discriminator().param_count()));
}

}  // namespace
}  // namespace cgan
