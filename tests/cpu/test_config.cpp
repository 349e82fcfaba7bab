// Config parsing: every shipped config parses and round-trips; errors name the key path.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cgan/classifier.hpp"
#include "cgan/config.hpp"
#include "cgan/error.hpp"

using cgan::Config;
using cgan::Error;
using json = nlohmann::json;

namespace {

json minimal() {
  return json::parse(R"({
    "data": {"kind": "mixture", "count": 100},
    "generator": {"noise_dim": 4, "layers": [{"linear": 8}, {"relu": {}}, {"linear": 2}]},
    "discriminator": {"layers": [{"linear": 8}, {"leaky_relu": 0.2}, {"linear": 1}]}
  })");
}

std::string error_of(const json& j) {
  try {
    cgan::parse_config(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Config, ShippedConfigsParseAndRoundTrip) {
  const std::string dir = std::string(CGAN_SOURCE_DIR) + "/configs";
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    SCOPED_TRACE(e.path().string());
    if (e.path().stem().string().rfind("classifier_", 0) == 0) {  // the evaluator's classifier specs
      const cgan::ClassifierSpec s = cgan::load_classifier_spec(e.path().string());
      EXPECT_EQ("classifier_" + s.data_kind, e.path().stem().string());
      EXPECT_EQ(s.to_json(), cgan::parse_classifier_spec(s.to_json(), "dumped").to_json());
      EXPECT_EQ(s.net.condition.mode, "none");
      continue;
    }
    ++n;
    const Config c = cgan::load_config(e.path().string());
    EXPECT_EQ(c.name, e.path().stem().string());
    const json dumped = c.to_json();
    const Config c2 = cgan::parse_config(dumped);
    EXPECT_EQ(dumped, c2.to_json());
  }
  EXPECT_GE(n, 6);
}

TEST(Config, DefaultsAreFilled) {
  const Config c = cgan::parse_config(minimal(), "mini");
  EXPECT_EQ(c.name, "mini");
  EXPECT_EQ(c.train.batch_size, 64);
  EXPECT_EQ(c.train.steps, 10000);
  EXPECT_EQ(c.log.every, 1000);
  EXPECT_EQ(c.loss.kind, "log");
  EXPECT_FLOAT_EQ(c.loss.d_weight, 1.f);
  EXPECT_FLOAT_EQ(c.g_optim.lr, 1e-3f);
  EXPECT_EQ(c.generator.condition.mode, "concat_onehot");
  json j = minimal();
  j["loss"] = {{"kind", "squared"}};
  EXPECT_FLOAT_EQ(cgan::parse_config(j).loss.d_weight, 0.5f);
  // the IDX folder follows data.kind unless given, so --set data.kind=fashion needs nothing else
  const Config m = cgan::load_config(std::string(CGAN_SOURCE_DIR) + "/configs/mnist_mlp.json");
  EXPECT_EQ(m.data.dir, "data/mnist");
  const Config f = cgan::load_config(std::string(CGAN_SOURCE_DIR) + "/configs/mnist_mlp.json", {"data.kind=fashion"});
  EXPECT_EQ(f.data.dir, "data/fashion");
}

TEST(Config, UnknownKeyNamesItsPath) {
  json j = minimal();
  j["train"] = {{"stepz", 10}};
  const std::string m = error_of(j);
  EXPECT_NE(m.find("train.stepz: unknown key"), std::string::npos) << m;
  j = minimal();
  j["bogus"] = 1;
  EXPECT_NE(error_of(j).find("bogus: unknown key"), std::string::npos) << error_of(j);
}

TEST(Config, WrongTypeNamesItsPath) {
  json j = minimal();
  j["train"] = {{"batch_size", "64"}};
  EXPECT_EQ(error_of(j), "train.batch_size: expected a positive integer, got \"64\"");
  j = minimal();
  j["log"] = {{"every", 2.5}};
  EXPECT_EQ(error_of(j), "log.every: expected a positive integer, got 2.5");
  j = minimal();
  j["precision"] = "fp16";
  EXPECT_EQ(error_of(j), "precision: expected one of \"fp32\", \"tf32\", got \"fp16\"");
  j = minimal();
  j["loss"] = {{"kind", "hinge"}};
  EXPECT_EQ(error_of(j), "loss.kind: expected one of \"log\", \"squared\", got \"hinge\"");
  j = minimal();
  j["generator"]["layers"][1] = {{"relu", 3}};
  EXPECT_EQ(error_of(j), "generator.layers[1].relu: expected {} (this layer takes no arguments), got 3");
}

TEST(Config, NegativeSizeNamesItsPath) {
  json j = minimal();
  j["generator"]["layers"][0] = {{"linear", -3}};
  EXPECT_EQ(error_of(j), "generator.layers[0].linear: expected a positive integer, got -3");
  j = minimal();
  j["train"] = {{"batch_size", -1}};
  EXPECT_EQ(error_of(j), "train.batch_size: expected a positive integer, got -1");
  j = minimal();
  j["discriminator"]["layers"][1] = {{"leaky_relu", 1.5}};
  EXPECT_EQ(error_of(j), "discriminator.layers[1].leaky_relu: expected a number in (0, 1), got 1.5");
}

TEST(Config, StructuralErrors) {
  json j = minimal();
  j["generator"]["layers"][0] = {{"conv9d", 3}};
  EXPECT_NE(error_of(j).find("generator.layers[0]: unknown layer type \"conv9d\""), std::string::npos);
  j = minimal();
  j["generator"].erase("layers");
  EXPECT_EQ(error_of(j), "generator.layers: missing (a list of layers is required)");
  j = minimal();
  j.erase("discriminator");
  EXPECT_NE(error_of(j).find("discriminator: missing"), std::string::npos);
  j = minimal();
  j["discriminator"]["layers"].push_back({{"sigmoid", json::object()}});
  EXPECT_NE(error_of(j).find("applies the sigmoid itself"), std::string::npos) << error_of(j);
  j = minimal();
  j["data"] = {{"kind", "gaussian"}};
  EXPECT_NE(error_of(j).find("generator.condition.mode: data.kind \"gaussian\" has no labels"), std::string::npos)
      << error_of(j);
  j = minimal();
  j["generator"]["condition"] = {{"mode", "concat_onehot"}, {"embed_dim", 4}};
  EXPECT_NE(error_of(j).find("generator.condition.embed_dim: only used with mode \"embed_concat\""), std::string::npos);
}

TEST(Config, OverridesReachAnyKey) {
  json j = minimal();
  cgan::apply_override(j, "train.steps=123");
  cgan::apply_override(j, "generator.layers[0].linear=16");
  cgan::apply_override(j, "name=my run");
  cgan::apply_override(j, "loss.kind=squared");
  const Config c = cgan::parse_config(j);
  EXPECT_EQ(c.train.steps, 123);
  EXPECT_EQ(c.generator.layers[0].out, 16);
  EXPECT_EQ(c.name, "my run");
  EXPECT_EQ(c.loss.kind, "squared");
  // a typo is created, then rejected by validation with its path
  cgan::apply_override(j, "train.stepss=5");
  EXPECT_NE(error_of(j).find("train.stepss: unknown key"), std::string::npos);
  json k = minimal();
  EXPECT_THROW(cgan::apply_override(k, "generator.layers[9].linear=1"), Error);
  EXPECT_THROW(cgan::apply_override(k, "novalue"), Error);
  EXPECT_THROW(cgan::apply_override(k, "train.steps[0]=1"), Error);
}

TEST(Config, FileErrors) {
  const auto dir = std::filesystem::temp_directory_path() / "cgan_cfg_test";
  std::filesystem::create_directories(dir);
  const std::string bad = (dir / "bad.json").string();
  std::ofstream(bad) << "{ \"train\": ";
  try {
    cgan::load_config(bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json: not valid JSON"), std::string::npos) << e.what();
  }
  try {
    cgan::load_config((dir / "missing.json").string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json: cannot open config file"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}
