// A fresh checkout trains every shipped config with one command: a config with evaluation whose
// default classifier is missing trains it first (from configs/classifier_<kind>.json, with its
// progress lines), then the run; and the curves a run draws (losses.png, metrics.png) and
// `cgan_gpu plot`. Runs in a scratch working directory that stands in for the checkout, with a
// tiny classifier spec in its configs/ so the test stays fast.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "cgan/base/safetensors.hpp"
#include "cgan/data/image.hpp"
#include "cgan/report/plot.hpp"
#include "e2e_util.hpp"
#include "plot_util.hpp"
#include "test_util.hpp"

using namespace cgan;
using e2e::has_mnist;
using e2e::lines_of;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> n;
  for (const auto& e : fs::directory_iterator(dir)) n.push_back(e.path().filename().string());
  return n;
}

// cgan_gpu with `args`, working directory `cwd`.
e2e::RunResult run_in(const std::string& cwd, const std::string& args, const std::string& log) {
  const std::string cmd = "cd '" + cwd + "' && '" + CGAN_BINARY + "' " + args + " > '" + log + "' 2>&1";
  e2e::RunResult r;
  const int st = std::system(cmd.c_str());
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.output = testutil::slurp(log);
  return r;
}

// A run's curves picture: a PNG of three 960 x 250 panels, each with curves in its plot area (not
// only the legend's swatches beside it).
void expect_curves(const std::string& png) {
  SCOPED_TRACE(png);
  ASSERT_TRUE(fs::exists(png));
  const Image img = read_image(png);
  EXPECT_EQ(img.width, 960);
  EXPECT_EQ(img.height, 750);
  EXPECT_EQ(img.channels, 3);
  const std::vector<size_t> n = plottest::coloured_in_plot_areas(img);
  ASSERT_EQ(n.size(), 3u);
  for (size_t i = 0; i < n.size(); ++i) EXPECT_GE(n[i], 500u) << "panel " << i << ": no curve in the plot area";
}

}  // namespace

TEST(RunOutputs, MissingDefaultClassifierIsTrainedFirstThenTheRunEvaluatesAndDrawsItsCurves) {
  if (!has_mnist()) GTEST_SKIP() << "MNIST not found in data/mnist (tools/fetch_data.sh mnist)";
  e2e::TempDir d("fresh_checkout");
  fs::create_directories(d / "configs");
  // the shipped spec's stand-in: a small MLP in 30 steps (the accuracy does not matter here)
  testutil::spit(d / "configs/classifier_mnist.json", R"({"data": {"kind": "mnist", "range": [0, 1]},
    "layers": [{"linear": 32}, {"relu": {}}, {"linear": 10}],
    "train": {"steps": 30, "batch_size": 64, "lr": 0.001, "seed": 1}})");
  const std::string cfg = "--config " + e2e::source("configs/mnist_cgan_wide.json") +
                          " --device cpu --set data.dir=" + e2e::source("data/mnist") +
                          " --set train.steps=20 --set log.every=10 --set log.sample_every=10 --set log.progress=plain "
                          "--set eval.every=10 --set eval.count=20 ";

  // without the spec either, the run cannot make its classifier: one line saying how, nothing written
  fs::rename(d / "configs/classifier_mnist.json", d / "spec.json");
  auto r = run_in(d.path, cfg + "--out run0", d / "log0");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("eval.classifier: classifiers/mnist.safetensors: classifier file not found, and "
                          "configs/classifier_mnist.json, the spec to train it from, is missing"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(d / "run0"));
  EXPECT_FALSE(fs::exists(d / "classifiers"));
  fs::rename(d / "spec.json", d / "configs/classifier_mnist.json");

  // one command: the classifier first (its progress lines), then the run with evaluation
  r = run_in(d.path, cfg + "--out run", d / "log1");
  ASSERT_EQ(r.code, 0) << r.output;
  const size_t said = r.output.find(
      "cgan_gpu: the evaluator's classifier classifiers/mnist.safetensors does not exist yet: training it first from "
      "configs/classifier_mnist.json (30 steps; once: later runs reuse it; --set eval.every=0 trains without "
      "evaluation)");
  ASSERT_NE(said, std::string::npos) << r.output;
  const size_t progress = r.output.find("step 30/30 | loss ");
  const size_t wrote = r.output.find("test images), 30 steps in ");
  const size_t run = r.output.find("mnist_cgan_wide on cpu");
  EXPECT_LT(said, progress) << r.output;
  EXPECT_LT(progress, wrote) << r.output;
  EXPECT_NE(r.output.find("; wrote classifiers/mnist.safetensors"), std::string::npos) << r.output;
  EXPECT_LT(wrote, run) << "the classifier is made before the run starts\n" << r.output;
  const SafeTensors clf = read_safetensors(d / "classifiers/mnist.safetensors");
  EXPECT_EQ(clf.metadata.at("format"), "cgan_gpu.classifier.v1");
  EXPECT_EQ(clf.metadata.at("steps"), "30");
  for (const std::string& f : names_in(d / "classifiers")) EXPECT_EQ(f, "mnist.safetensors") << "written atomically";
  const std::string csv = testutil::slurp(d / "run/metrics.csv");
  EXPECT_EQ(lines_of(csv), 3) << csv;
  EXPECT_NE(r.output.find("cond acc "), std::string::npos) << r.output;

  // the curves: drawn with the sample grids, both pictures with curves on them
  for (const char* png : {"run/losses.png", "run/metrics.png"}) expect_curves(d / png);
  for (const std::string& f : names_in(d / "run")) EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;

  // a second run reuses the classifier: no training message
  r = run_in(d.path, cfg + "--out run2", d / "log2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find("does not exist yet"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("cgan_gpu classifier:"), std::string::npos) << r.output;

  // `cgan_gpu plot RUN_DIR` redraws them from the CSVs after the fact: the same pictures
  const std::string drawn_losses = testutil::slurp(d / "run/losses.png");
  const std::string drawn_metrics = testutil::slurp(d / "run/metrics.png");
  fs::remove(d / "run/losses.png");
  fs::remove(d / "run/metrics.png");
  r = run_in(d.path, "plot run/", d / "log3");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote run/losses.png"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wrote run/metrics.png"), std::string::npos) << r.output;
  for (const char* png : {"run/losses.png", "run/metrics.png"}) expect_curves(d / png);
  EXPECT_TRUE(testutil::slurp(d / "run/losses.png") == drawn_losses) << "redrawn losses.png differs";
  EXPECT_TRUE(testutil::slurp(d / "run/metrics.png") == drawn_metrics) << "redrawn metrics.png differs";
  r = run_in(d.path, "plot classifiers", d / "log4");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("classifiers: nothing to plot"), std::string::npos) << r.output;
  r = run_in(d.path, "plot", d / "log5");
  EXPECT_EQ(r.code, 2) << r.output;
}

// --overwrite removes an old run's curves with the rest of it, and a run without evaluation draws
// losses.png only.
TEST(RunOutputs, CurvesBelongToTheRun) {
  e2e::TempDir d("curves");
  const std::string base =
      "--config configs/gaussian_toy.json --device cpu --set train.steps=30 --set log.every=10 "
      "--set log.sample_every=10 --set log.progress=plain --out " +
      (d / "run");
  auto r = e2e::run_cli(base, d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(d / "run/losses.png"));
  EXPECT_FALSE(fs::exists(d / "run/metrics.png"));
  testutil::spit(d / "run/metrics.png", "old");  // as an earlier run with evaluation left it
  r = e2e::run_cli(base, d / "log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("metrics.png"), std::string::npos) << "listed as the run's files: " << r.output;
  r = e2e::run_cli(base + " --overwrite", d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(d / "run/metrics.png"));
  EXPECT_TRUE(fs::exists(d / "run/losses.png"));
}
