// Issue 12, hinge loss and train.ema end to end: resume stays exact with the average (before and
// after its start, with batch norm and the three-term hinge), and the command line samples and
// evaluates the averaged generator by default, the raw one with --no-ema, with a note when a
// checkpoint has no average.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgan/base/safetensors.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/data/image.hpp"
#include "cgan/report/plot.hpp"
#include "e2e_util.hpp"

using namespace cgan;
using e2e::has_mnist;
using e2e::lines_of;
namespace fs = std::filesystem;

namespace {

// The least-squares seed's layers (embedding, batch norm, dropout) on small point data, as the
// existing resume test, here with the three-term hinge loss.
std::vector<std::string> hinge_sets(const std::string& ema) {
  return {"data.count=500",
          "train.batch_size=32",
          "loss.kind=hinge",
          "loss.mismatch=real_other_tags",
          "train.d_steps=2",
          "train.fake_labels=random",
          R"(generator.condition={"mode":"embed_concat","embed_dim":5})",
          R"(generator.layers=[{"linear":32},{"batchnorm":{"eps":0.8}},{"leaky_relu":0.2},{"linear":2}])",
          R"(discriminator.layers=[{"linear":32},{"dropout":0.4},{"leaky_relu":0.2},{"linear":1}])",
          "train.ema=" + ema};
}

std::vector<float> tensor(const SafeTensors& st, const std::string& name) {
  const NamedTensor* t = st.find(name);
  EXPECT_NE(t, nullptr) << name;
  return t ? t->data : std::vector<float>{};
}

}  // namespace

// N steps, checkpoint, restore, M steps == N + M steps, bit for bit, the average included: the
// resume falls after the average's start (20 < 37) and before it (50 > 37, so the copies continue
// after the resume and the averaging starts there).
TEST(HingeEmaE2E, ResumeIsExactWithTheAverage) {
  auto be = make_cpu_backend();
  e2e::check_resume_exact(*be, "configs/mixture_cond.json", hinge_sets(R"({"decay":0.9,"start":20})"));
  e2e::check_resume_exact(*be, "configs/mixture_cond.json", hinge_sets(R"({"decay":0.9,"start":50})"));
}

// `sample` uses the average by default and the raw generator with --no-ema; the training-time grid
// shows the average too; a checkpoint without an average samples the raw generator either way, with
// a note for --no-ema.
TEST(HingeEmaE2E, SampleUsesTheAverageByDefault) {
  e2e::TempDir d("hinge_ema_sample");
  const std::string base =
      "--config configs/mixture_cond.json --set data.count=1000 --set train.steps=12 "
      "--set log.progress=none --set log.sample_every=0 --set log.checkpoint_every=0 "
      "--set loss.kind=hinge ";
  auto r = e2e::run_cli(base + "--set 'train.ema={\"decay\":0.5,\"start\":4}' --out " + (d / "ema"), d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  r = e2e::run_cli(base + "--out " + (d / "plain"), d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string ck = d / "ema/checkpoints/step_12.safetensors", plain = d / "plain/checkpoints/step_12.safetensors";
  const SafeTensors ce = read_safetensors(ck), cp = read_safetensors(plain);
  EXPECT_TRUE(checkpoint_has_ema(ce));
  EXPECT_FALSE(checkpoint_has_ema(cp));
  // the raw generators of the two runs are the same (the average does not feed back into training)
  EXPECT_EQ(tensor(ce, "generator.0.weight"), tensor(cp, "generator.0.weight"));
  EXPECT_NE(tensor(ce, "generator_ema.0.weight"), tensor(ce, "generator.0.weight"));
  // the grid written at the end shows the average: it differs from the plain run's
  EXPECT_NE(testutil::slurp(d / "ema/samples/step_12.png"), testutil::slurp(d / "plain/samples/step_12.png"));

  const std::string req = " --labels 0,1,2,3,4,5,6,7 --device cpu";
  r = e2e::run_cli(
      "sample --checkpoint " + ck + req + " --out " + (d / "avg.png") + " --save-tensors " + (d / "avg.st"), d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("averaged (train.ema) generator"), std::string::npos) << r.output;
  r = e2e::run_cli(
      "sample --checkpoint " + ck + req + " --no-ema --out " + (d / "raw.png") + " --save-tensors " + (d / "raw.st"),
      d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(lines_of(r.output), 1) << r.output;  // no note: the checkpoint has an average
  EXPECT_NE(r.output.find("raw generator"), std::string::npos) << r.output;
  r = e2e::run_cli(
      "sample --checkpoint " + plain + req + " --out " + (d / "plain.png") + " --save-tensors " + (d / "plain.st"),
      d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  const SafeTensors avg = read_safetensors(d / "avg.st"), raw = read_safetensors(d / "raw.st"),
                    pl = read_safetensors(d / "plain.st");
  EXPECT_EQ(avg.metadata.at("generator"), "generator_ema");
  EXPECT_EQ(raw.metadata.at("generator"), "generator");
  EXPECT_EQ(tensor(avg, "noise"), tensor(raw, "noise"));
  EXPECT_NE(tensor(avg, "samples"), tensor(raw, "samples"));
  EXPECT_EQ(tensor(raw, "samples"), tensor(pl, "samples"));  // --no-ema: the raw generator, the plain run's

  // --no-ema on a checkpoint without an average: the same picture, and a note saying it changes nothing
  r = e2e::run_cli("sample --checkpoint " + plain + req + " --no-ema --out " + (d / "plain2.png"), d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("cgan_gpu: note: " + plain +
                          " holds no averaged generator (trained without train.ema); --no-ema changes nothing"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(testutil::slurp(d / "plain2.png"), testutil::slurp(d / "plain.png"));
  // unknown spellings stay usage errors
  r = e2e::run_cli("sample --checkpoint " + ck + req + " --no-average --out " + (d / "x.png"), d / "log");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_FALSE(fs::exists(d / "x.png"));
}

// `eval` scores the average by default (and says so in metrics.json), the raw generator with --no-ema;
// training-time evaluation scores the average as `eval` does.
TEST(HingeEmaE2E, EvalUsesTheAverageByDefault) {
  if (!has_mnist()) GTEST_SKIP() << "MNIST not found in data/mnist (tools/fetch_data.sh mnist)";
  e2e::TempDir d("hinge_ema_eval");
  const std::string clf = d / "clf.safetensors";
  testutil::spit(d / "clf.json", R"({"data": {"kind": "mnist", "range": [0, 1]},
    "layers": [{"linear": 32}, {"relu": {}}, {"linear": 10}],
    "train": {"steps": 300, "batch_size": 64, "lr": 0.001, "seed": 1}})");
  auto r = e2e::run_cli(
      "classifier --data mnist --config " + (d / "clf.json") + " --steps 30 --device cpu --out " + clf, d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string base =
      "--config configs/mnist_mlp.json --device cpu --set train.steps=8 --set log.every=4 "
      "--set log.progress=none --set eval.every=8 --set eval.count=20 --set eval.classifier=" +
      clf + " ";
  r = e2e::run_cli(base + "--set 'train.ema={\"decay\":0.5,\"start\":2}' --out " + (d / "run"), d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string ck = d / "run/checkpoints/step_8.safetensors";
  r = e2e::run_cli("eval --checkpoint " + ck + " --classifier " + clf + " --count 20 --device cpu --out " + (d / "avg"),
                   d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("averaged (train.ema) generator"), std::string::npos) << r.output;
  r = e2e::run_cli(
      "eval --checkpoint " + ck + " --classifier " + clf + " --count 20 --device cpu --no-ema --out " + (d / "raw"),
      d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("raw generator"), std::string::npos) << r.output;
  const nlohmann::json ja = nlohmann::json::parse(testutil::slurp(d / "avg/metrics.json"));
  const nlohmann::json jr = nlohmann::json::parse(testutil::slurp(d / "raw/metrics.json"));
  EXPECT_EQ(ja["generator"], "ema");
  EXPECT_EQ(jr["generator"], "raw");
  EXPECT_NE(ja["fd"], jr["fd"]);  // different generators, different images
  // the training-time evaluation at step 8 scored the average: metrics.csv's row has eval's FD for the
  // average (printed to 6 decimals), which is not the raw generator's (conditional accuracy, in steps
  // of 1/200 here, can tie between the two; the FDs do not)
  const std::string csv = testutil::slurp(d / "run/metrics.csv");
  const CsvTable m = read_csv_table(d / "run/metrics.csv");
  ASSERT_TRUE(m.rows > 0 && m.column("step") && m.column("fd")) << csv;
  EXPECT_EQ(m.column("step")->back(), 8) << csv;
  const double fd = m.column("fd")->back(), fd_avg = ja["fd"].get<double>(), fd_raw = jr["fd"].get<double>();
  EXPECT_GT(std::fabs(fd_avg - fd_raw), 1e-3)
      << "the average's FD " << fd_avg << " and the raw one's " << fd_raw << " do not tell the two generators apart";
  EXPECT_NEAR(fd, fd_avg, 1e-6 + 1e-6 * std::fabs(fd_avg))
      << "training-time FD " << fd << "; eval: average " << fd_avg << ", raw " << fd_raw << "\n"
      << csv;

  // --no-ema on a checkpoint without an average: a note, then the raw generator's figures
  r = e2e::run_cli(base + "--out " + (d / "plain"), d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  r = e2e::run_cli("eval --checkpoint " + (d / "plain/checkpoints/step_8.safetensors") + " --classifier " + clf +
                       " --count 20 --device cpu --no-ema --out " + (d / "p"),
                   d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("holds no averaged generator (trained without train.ema); --no-ema changes nothing"),
            std::string::npos)
      << r.output;
  const nlohmann::json jp = nlohmann::json::parse(testutil::slurp(d / "p/metrics.json"));
  EXPECT_EQ(jp["generator"], "raw");
  EXPECT_EQ(jp["fd"], jr["fd"]);  // the raw generators of the two runs are the same
}
