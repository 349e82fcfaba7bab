// Config parsing: every shipped config parses and round-trips; errors name the key path.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cgan/eval/classifier.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/drawn_shapes.hpp"
#include "cgan/base/error.hpp"
#include "test_util.hpp"

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
  testutil::TempDir shapes("cfgshapes");
  cgan::write_shapes_folder(shapes.path, 2, 12, 1);
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    SCOPED_TRACE(e.path().string());
    if (e.path().stem().string().rfind("classifier_", 0) == 0) {  // the evaluator's classifier specs
      // the class-folder spec leaves data.dir and data.size to the run (a folder of drawn shapes here)
      cgan::DataSpec folder;
      folder.kind = cgan::DataKind::Kind::image_folder;
      folder.dir = shapes.path;
      folder.height = folder.width = 12;
      const cgan::ClassifierSpec s = e.path().stem() == "classifier_image_folder"
                                         ? cgan::load_classifier_spec_for(e.path().string(), folder)
                                         : cgan::load_classifier_spec(e.path().string());
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
  EXPECT_EQ(error_of(j), "precision: expected one of \"fp32\", \"tf32\", \"bf16\", got \"fp16\"");
  j = minimal();
  j["cuda_graphs"] = "yes";
  EXPECT_EQ(error_of(j), "cuda_graphs: expected true or false, got \"yes\"");
  j = minimal();
  j["loss"] = {{"kind", "wgan"}};  // (hinge is a kind since issue 12)
  EXPECT_EQ(error_of(j), "loss.kind: expected one of \"log\", \"squared\", \"hinge\", \"three_term\", got \"wgan\"");
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
  EXPECT_NE(
      error_of(j).find("generator.condition.embed_dim: only used with modes \"embed_concat\" and \"label_plane\""),
      std::string::npos)
      << error_of(j);
  j = minimal();
  // (issue 12: loss.mismatch adds the mismatched pair to any loss; "log" with it used to be refused)
  j["loss"] = {{"kind", "log"}, {"mismatch", "real_other_tags"}};
  j["generator"]["condition"] = {{"mode", "none"}};
  EXPECT_EQ(error_of(j),
            "loss.mismatch: the mismatched pair scores image/label pairs, so the generator and the "
            "discriminator must both be conditional");
  j = minimal();
  j["loss"] = {{"kind", "three_term"}, {"mismatch", "fake_other_tags"}};
  j["generator"]["condition"] = {{"mode", "none"}};
  EXPECT_NE(error_of(j).find("loss.kind: \"three_term\" scores mismatched image/label pairs"), std::string::npos)
      << error_of(j);
  j = minimal();
  j["loss"] = {{"kind", "three_term"}, {"mismatch", "other"}};
  EXPECT_EQ(error_of(j),
            "loss.mismatch: expected one of \"none\", \"real_other_tags\", \"fake_other_tags\", got \"other\"");
  j = minimal();
  j["discriminator"]["condition"] = {{"mode", "label_plane"}};
  EXPECT_EQ(error_of(j),
            "discriminator.condition.embed_dim: mode \"label_plane\" needs the plane size H*W (e.g. 9216 "
            "for 96x96)");
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

namespace {

json with_disc_layers(const char* layers) {
  json j = minimal();
  j["discriminator"]["layers"] = json::parse(layers);
  return j;
}

}  // namespace

TEST(Config, ImageLayersParseAndRoundTrip) {
  const json j = with_disc_layers(R"([
    {"reshape": [1, 28, 28]},
    {"conv2d": {"out": 8, "kernel": 5, "padding": 2}}, {"leaky_relu": 0.2},
    {"avgpool2d": {"kernel": 2, "stride": 3}},
    {"maxpool2d": {"kernel": [2, 3], "stride": 1, "padding": [1, 1]}},
    {"batchnorm": {}},
    {"conv2d": {"out": 4, "kernel": [3, 1], "stride": [2, 1]}},
    {"linear": 1}])");
  const Config c = cgan::parse_config(j);
  const auto& L = c.discriminator.layers;
  ASSERT_EQ(L.size(), 8u);
  EXPECT_EQ(L[0].kind, cgan::LayerKind::reshape);
  EXPECT_EQ(L[0].shape[0], 1);
  EXPECT_EQ(L[0].shape[1], 28);
  EXPECT_EQ(L[0].shape[2], 28);
  EXPECT_EQ(L[1].kind, cgan::LayerKind::conv2d);
  EXPECT_EQ(L[1].out, 8);
  EXPECT_EQ(L[1].kernel_h, 5);
  EXPECT_EQ(L[1].kernel_w, 5);
  EXPECT_EQ(L[1].stride_h, 1);  // default
  EXPECT_EQ(L[1].stride_w, 1);
  EXPECT_EQ(L[1].pad_h, 2);
  EXPECT_EQ(L[1].pad_w, 2);
  EXPECT_EQ(L[3].kind, cgan::LayerKind::avgpool2d);
  EXPECT_EQ(L[3].stride_h, 3);
  EXPECT_EQ(L[3].pad_h, 0);  // default
  EXPECT_EQ(L[4].kind, cgan::LayerKind::maxpool2d);
  EXPECT_EQ(L[4].kernel_h, 2);
  EXPECT_EQ(L[4].kernel_w, 3);
  EXPECT_EQ(L[4].stride_w, 1);
  EXPECT_EQ(L[4].pad_w, 1);
  EXPECT_EQ(L[6].kernel_h, 3);
  EXPECT_EQ(L[6].kernel_w, 1);
  EXPECT_EQ(L[6].stride_h, 2);
  EXPECT_EQ(L[6].pad_w, 0);
  // written back with every default filled in: squares as one int, the rest as [h, w]
  const json dumped = c.to_json();
  const json& d = dumped["discriminator"]["layers"];
  EXPECT_EQ(d[0], json::parse(R"({"reshape": [1, 28, 28]})"));
  EXPECT_EQ(d[1], json::parse(R"({"conv2d": {"out": 8, "kernel": 5, "stride": 1, "padding": 2}})"));
  EXPECT_EQ(d[3], json::parse(R"({"avgpool2d": {"kernel": 2, "stride": 3, "padding": 0}})"));
  EXPECT_EQ(d[4], json::parse(R"({"maxpool2d": {"kernel": [2, 3], "stride": 1, "padding": 1}})"));
  EXPECT_EQ(d[6], json::parse(R"({"conv2d": {"out": 4, "kernel": [3, 1], "stride": [2, 1], "padding": 0}})"));
  EXPECT_EQ(cgan::parse_config(dumped).to_json(), dumped);
  // pool stride defaults to the window
  const Config p = cgan::parse_config(
      with_disc_layers(R"([{"reshape": [2, 6, 6]}, {"maxpool2d": {"kernel": [3, 2]}}, {"linear": 1}])"));
  EXPECT_EQ(p.discriminator.layers[1].stride_h, 3);
  EXPECT_EQ(p.discriminator.layers[1].stride_w, 2);
  // a generator may reshape its noise first and end on a conv
  json g = minimal();
  g["generator"]["layers"] =
      json::parse(R"([{"reshape": [1, 2, 2]}, {"conv2d": {"out": 2, "kernel": 2}}, {"tanh": {}}])");
  EXPECT_NO_THROW(cgan::parse_config(g));
}

TEST(Config, ImageLayerErrorsNameTheirPath) {
  auto err = [](const char* layers) { return error_of(with_disc_layers(layers)); };
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"kernel": 3}}, {"linear": 1}])"),
            "discriminator.layers[1].conv2d.out: missing (the number of output channels is required)");
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"out": 2}}, {"linear": 1}])"),
            "discriminator.layers[1].conv2d.kernel: missing (the kernel size is required)");
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"out": 0, "kernel": 3}}, {"linear": 1}])"),
            "discriminator.layers[1].conv2d.out: expected a positive integer, got 0");
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"out": 2, "kernel": 0}}, {"linear": 1}])"),
            "discriminator.layers[1].conv2d.kernel: expected a positive integer or [h, w] of positive integers, "
            "got 0");
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"out": 2, "kernel": [3, 3, 3]}}, {"linear": 1}])"),
            "discriminator.layers[1].conv2d.kernel: expected a positive integer or [h, w] of positive integers, "
            "got [3,3,3]");
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"out": 2, "kernel": 3, "stride": [1, 0]}}, {"linear": 1}])"),
            "discriminator.layers[1].conv2d.stride: expected a positive integer or [h, w] of positive integers, "
            "got [1,0]");
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"out": 2, "kernel": 3, "padding": -1}}, {"linear": 1}])"),
            "discriminator.layers[1].conv2d.padding: expected a non-negative integer or [h, w] of non-negative "
            "integers, got -1");
  EXPECT_NE(err(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"out": 2, "kernel": 3, "strides": 2}}, {"linear": 1}])")
                .find("discriminator.layers[1].conv2d.strides: unknown key"),
            std::string::npos);
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"avgpool2d": {"kernel": 2, "padding": 2}}, {"linear": 1}])"),
            "discriminator.layers[1].avgpool2d.padding: must be at most half the window 2x2, got 2");
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"maxpool2d": {}}, {"linear": 1}])"),
            "discriminator.layers[1].maxpool2d.kernel: missing (the window size is required)");
  EXPECT_EQ(err(R"([{"reshape": [1, 28]}, {"linear": 1}])"),
            "discriminator.layers[0].reshape: expected [C, H, W] of positive integers, got [1,28]");
  EXPECT_EQ(err(R"([{"reshape": [1, 0, 28]}, {"linear": 1}])"),
            "discriminator.layers[0].reshape: expected [C, H, W] of positive integers, got [1,0,28]");
  // shapes: a conv needs an image, the kernel must fit, a reshape must keep the size
  EXPECT_EQ(err(R"([{"linear": 16}, {"conv2d": {"out": 2, "kernel": 3}}, {"linear": 1}])"),
            "discriminator.layers[1].conv2d: needs an image input (C, H, W) but gets 16 flat features; put a "
            "reshape before it");
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"linear": 8}, {"maxpool2d": {"kernel": 2}}, {"linear": 1}])"),
            "discriminator.layers[2].maxpool2d: needs an image input (C, H, W) but gets 8 flat features; put a "
            "reshape before it");
  EXPECT_EQ(err(R"([{"reshape": [3, 4, 4]}, {"conv2d": {"out": 2, "kernel": [5, 3], "padding": [0, 1]}},
                    {"linear": 1}])"),
            "discriminator.layers[1].conv2d: kernel 5x3 is larger than its padded input 4x6 (input 3x4x4)");
  EXPECT_EQ(err(R"([{"reshape": [1, 4, 4]}, {"conv2d": {"out": 2, "kernel": 3}}, {"avgpool2d": {"kernel": 3}},
                    {"linear": 1}])"),
            "discriminator.layers[2].avgpool2d: window 3x3 is larger than its padded input 2x2 (input 2x2x2)");
  EXPECT_EQ(err(R"([{"linear": 10}, {"reshape": [1, 3, 3]}, {"linear": 1}])"),
            "discriminator.layers[1].reshape: [1, 3, 3] holds 9 values but its input has 10");
  EXPECT_EQ(err(R"([{"conv2d": {"out": 2, "kernel": 3}}, {"linear": 1}])"),
            "discriminator.layers[0]: the first layer must be linear or reshape");
}

// log.tensorboard (issue 21): on by default and then absent from the dumped config (so configs and
// checkpoints written before the key read as before); false round-trips; a non-boolean names its path.
TEST(Config, LogTensorboardKey) {
  json j = minimal();
  const Config on = cgan::parse_config(j);
  EXPECT_TRUE(on.log.tensorboard);
  EXPECT_FALSE(on.to_json()["log"].contains("tensorboard"));
  j["log"] = {{"tensorboard", false}};
  const Config off = cgan::parse_config(j);
  EXPECT_FALSE(off.log.tensorboard);
  EXPECT_EQ(off.to_json()["log"]["tensorboard"], false);
  EXPECT_FALSE(cgan::parse_config(off.to_json()).log.tensorboard);
  j["log"] = {{"tensorboard", 1}};
  EXPECT_NE(error_of(j).find("log.tensorboard: expected true or false"), std::string::npos) << error_of(j);
}

// loss.kind, loss.mismatch and train.fake_labels are enums decided at parse time: every config name
// reads to its own value and writes back as itself, and any other string is refused by name.
TEST(Config, ConfigEnumsRoundTripTheirNames) {
  for (const char* n : cgan::LossTypeTraits::names) EXPECT_STREQ(cgan::LossType(n).name(), n);
  for (const char* n : cgan::MismatchTraits::names) EXPECT_STREQ(cgan::Mismatch(n).name(), n);
  for (const char* n : cgan::FakeLabelsTraits::names) EXPECT_STREQ(cgan::FakeLabels(n).name(), n);
  for (const char* n : cgan::DataKindTraits::names) EXPECT_STREQ(cgan::DataKind(n).name(), n);
  EXPECT_TRUE(cgan::DataSpec{cgan::DataKind::Kind::mixture}.points());
  EXPECT_TRUE(cgan::DataSpec{cgan::DataKind::Kind::fashion}.idx());
  EXPECT_FALSE(cgan::DataSpec{cgan::DataKind::Kind::image_folder}.idx() ||
               cgan::DataSpec{cgan::DataKind::Kind::anime}.points());
  EXPECT_NE(cgan::LossType("hinge"), cgan::LossType("log"));
  EXPECT_EQ(cgan::LossType("three_term").kind(), cgan::LossType::Kind::three_term);
  try {
    cgan::LossType bad("wgan");
    FAIL() << "accepted " << bad;
  } catch (const cgan::Error& e) {
    EXPECT_STREQ(e.what(), "unknown loss kind \"wgan\"");
  }
  // each kind's config round-trips through JSON with its name
  for (const char* n : {"log", "squared", "hinge"}) {
    json j = minimal();
    j["loss"] = {{"kind", n}};
    const Config c = cgan::parse_config(j, "t");
    EXPECT_EQ(cgan::parse_config(c.to_json(), "t").loss.kind, n);
    EXPECT_EQ(c.to_json()["loss"]["kind"], n);
  }
}
