// The command line as a user meets it: real binary, real files, exit codes and messages.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "cgan/base/safetensors.hpp"
#include "cgan/data/image.hpp"
#include "cgan/report/rundir.hpp"
#include "e2e_util.hpp"

using namespace cgan;
using e2e::has_mnist;
using e2e::lines_of;
namespace fs = std::filesystem;

namespace {

// Bad sample requests: one line, the exit code (1 bad input, 2 bad command line), no file written.
struct Bad {
  std::string args;
  int code;
  std::string msg;
};
void expect_bad_samples(const std::string& ck, const std::vector<Bad>& bad, const e2e::TempDir& d) {
  for (const Bad& b : bad) {
    auto e = e2e::run_cli("sample --checkpoint " + ck + " " + b.args + " --out " + (d / "bad.png"), d / "log_e");
    EXPECT_EQ(e.code, b.code) << b.args << ": " << e.output;
    EXPECT_EQ(lines_of(e.output), 1) << e.output;
    EXPECT_NE(e.output.find(b.msg), std::string::npos) << b.args << ": " << e.output;
    EXPECT_FALSE(fs::exists(d / "bad.png"));
  }
}
}  // namespace

TEST(Cli, HelpVersionAndUsageErrors) {
  e2e::TempDir d("cli_help");
  auto r = e2e::run_cli("--help", d / "log");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("cgan_gpu sample --checkpoint"), std::string::npos);
  EXPECT_NE(r.output.find("Exit codes"), std::string::npos);
  r = e2e::run_cli("--version", d / "log");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output.rfind("cgan_gpu ", 0), 0u) << r.output;
  r = e2e::run_cli("--config configs/mixture_cond.json --frobnicate", d / "log");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output, "cgan_gpu: unknown option '--frobnicate' (see cgan_gpu --help)\n");
  r = e2e::run_cli("--config", d / "log");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output, "cgan_gpu: --config: missing value\n");
  r = e2e::run_cli("--config configs/mixture_cond.json --device tpu", d / "log");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
}

TEST(Cli, ConfigErrorsAreOneLineNamingTheKey) {
  e2e::TempDir d("cli_cfg");
  auto r = e2e::run_cli("--config configs/mixture_cond.json --set train.stepz=3 --out " + (d / "run"), d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("train.stepz: unknown key"), std::string::npos) << r.output;
  r = e2e::run_cli("--config configs/mixture_cond.json --set generator.layers[0].linear=-3", d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, "cgan_gpu: generator.layers[0].linear: expected a positive integer, got -3\n");
  r = e2e::run_cli("--config configs/mnist_mlp.json --set data.dir=" + (d / "nowhere"), d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_EQ(r.output.rfind("cgan_gpu: data.dir: " + (d / "nowhere"), 0), 0u) << r.output;
  EXPECT_NE(r.output.find("fetch_data.sh"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d / "run")) << "a failed start must not leave a run directory";
}

TEST(Cli, BadPathsAreOneLineErrors) {
  e2e::TempDir d("cli_paths");
  auto r = e2e::run_cli("--config configs", d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, "cgan_gpu: configs: is a directory, not a config file\n");
  r = e2e::run_cli("--config README.md", d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("README.md: not valid JSON"), std::string::npos) << r.output;
  r = e2e::run_cli("--resume " + (d / "nope.safetensors"), d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("nope.safetensors: cannot open"), std::string::npos) << r.output;
  testutil::spit(d / "file", "x");  // a run directory that cannot be created (its parent is a file)
  r = e2e::run_cli("--config configs/mixture_cond.json --out " + (d / "file/run"), d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("cannot create run directory"), std::string::npos) << r.output;
}

TEST(Cli, DeviceCudaWithoutGpuIsAClearError) {
  std::string why;
  if (cuda_available(&why)) GTEST_SKIP() << "a GPU is present; this test checks the no-GPU message";
  e2e::TempDir d("cli_dev");
  auto r = e2e::run_cli("--config configs/mixture_cond.json --device cuda --out " + (d / "run"), d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("--device cuda: "), std::string::npos) << r.output;
}

TEST(Cli, ResumeThroughTheCommandLineIsExact) {
  e2e::TempDir d("cli_resume");
  const std::string base =
      "--config configs/mixture_cond.json --set data.count=2000 --set log.progress=none "
      "--set log.sample_every=0 --set log.checkpoint_every=30 ";
  auto a = e2e::run_cli(base + "--set train.steps=60 --out " + (d / "a"), d / "log_a");
  ASSERT_EQ(a.code, 0) << a.output;
  auto b = e2e::run_cli(base + "--set train.steps=30 --out " + (d / "b"), d / "log_b");
  ASSERT_EQ(b.code, 0) << b.output;
  // no --out: a resumed run continues in the run directory its checkpoint is in
  auto c = e2e::run_cli(
      "--resume " + (d / "b/checkpoints/step_30.safetensors") + " --set train.steps=60 --set log.progress=none",
      d / "log_c");
  ASSERT_EQ(c.code, 0) << c.output;
  const SafeTensors x = read_safetensors(d / "a/checkpoints/step_60.safetensors");
  const SafeTensors y = read_safetensors(d / "b/checkpoints/step_60.safetensors");
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (const auto& t : x.tensors) {
    const NamedTensor& u = y.at(t.name);
    EXPECT_EQ(t.data, u.data) << t.name;
  }
  const auto la = read_loss_csv(d / "a/losses.csv"), lb = read_loss_csv(d / "b/losses.csv");
  ASSERT_EQ(la.size(), 60u);
  ASSERT_EQ(lb.size(), 60u);
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(la[i].step, lb[i].step);
    EXPECT_EQ(la[i].d_loss, lb[i].d_loss) << "step " << la[i].step;
    EXPECT_EQ(la[i].g_loss, lb[i].g_loss) << "step " << la[i].step;
  }
}

TEST(Cli, SigintWritesACheckpointAndExitsNonZero) {
  e2e::TempDir d("cli_sigint");
  // SIGINT once training has started (the banner naming the run directory is printed then): a
  // background job of a non-interactive shell starts with SIGINT ignored, so one sent before the
  // binary installs its handler (a fixed sleep on a loaded machine) would be lost.
  const std::string cmd = std::string("cd '") + CGAN_SOURCE_DIR + "' && ('" + CGAN_BINARY +
                          "' --config configs/mixture_cond.json --set train.steps=100000000 --set log.progress=plain "
                          "--set log.every=1000 --out '" +
                          (d / "run") + "' > '" + (d / "log") +
                          "' 2>&1 & pid=$!; i=0; while [ $i -lt 600 ] && ! grep -q 'run directory' '" + (d / "log") +
                          "'; do sleep 0.1; i=$((i+1)); done; sleep 1; kill -INT $pid; wait $pid; echo $? > '" +
                          (d / "code") + "')";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream cf(d / "code");
  int code = -1;
  cf >> code;
  std::ifstream lf(d / "log");
  std::string log((std::istreambuf_iterator<char>(lf)), std::istreambuf_iterator<char>());
  EXPECT_EQ(code, 130) << log;
  EXPECT_NE(log.find("stopped by SIGINT"), std::string::npos) << log;
  std::vector<fs::path> cks;
  for (auto& e : fs::directory_iterator(d / "run/checkpoints")) cks.push_back(e.path());
  ASSERT_EQ(cks.size(), 1u);
  const SafeTensors ck = read_safetensors(cks[0].string());
  const long long step = std::stoll(ck.metadata.at("step"));
  EXPECT_GT(step, 0);
  EXPECT_EQ(cks[0].filename().string(), "step_" + std::to_string(step) + ".safetensors");
  EXPECT_EQ(read_loss_csv(d / "run/losses.csv").size(), static_cast<size_t>(step));
  for (auto& e : fs::recursive_directory_iterator(d / "run"))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "left a temporary file " << e.path();
}

TEST(Cli, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
  e2e::TempDir d("cli_nan");
  const std::string base = "--config configs/gaussian_toy.json --set log.progress=none --set log.sample_every=0 ";
  auto a = e2e::run_cli(base + "--set train.steps=5 --out " + (d / "run"), d / "log_a");
  ASSERT_EQ(a.code, 0) << a.output;
  // resume on data whose scale overflows the squared loss at once (D is piecewise linear)
  auto b = e2e::run_cli("--resume " + (d / "run/checkpoints/step_5.safetensors") +
                            " --set train.steps=50 --set log.checkpoint_every=1 --set loss.kind=squared"
                            " --set data.mean=[1e30,1e30] --set log.progress=none --out " +
                            (d / "run"),
                        d / "log_b");
  EXPECT_EQ(b.code, 3) << b.output;
  EXPECT_NE(b.output.find("step 6: loss is not finite"), std::string::npos) << b.output;
  EXPECT_TRUE(fs::exists(d / "run/checkpoints/step_5.safetensors"));
  EXPECT_FALSE(fs::exists(d / "run/checkpoints/step_6.safetensors"));
  EXPECT_NO_THROW(read_safetensors(d / "run/checkpoints/step_5.safetensors"));
  const auto rows = read_loss_csv(d / "run/losses.csv");
  ASSERT_EQ(rows.size(), 6u) << "the history up to the failing step is kept";
  EXPECT_FALSE(std::isfinite(rows.back().d_loss) && std::isfinite(rows.back().g_loss));
}

TEST(Cli, MnistMlpShortRunWritesGridsCsvsCheckpointsAndSamples) {
  if (!has_mnist()) GTEST_SKIP() << "data/mnist is missing: run tools/fetch_data.sh mnist";
  e2e::TempDir d("cli_mnist");
  auto r = e2e::run_cli(
      "--config configs/mnist_mlp.json --set train.steps=200 --set log.every=100 "
      "--set log.sample_every=100 --set log.checkpoint_every=100 --set log.progress=plain --out " +
          (d / "run"),
      d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("step 200/200"), std::string::npos) << r.output;
  const auto rows = read_loss_csv(d / "run/losses.csv");
  ASSERT_EQ(rows.size(), 200u);
  for (auto& row : rows) {
    EXPECT_TRUE(std::isfinite(row.d_loss) && std::isfinite(row.g_loss)) << "step " << row.step;
    EXPECT_GE(row.d_real, 0.f);
    EXPECT_LE(row.d_real, 1.f);
  }
  EXPECT_EQ(read_loss_csv(d / "run/losses_avg.csv").size(), 200u);
  const Image want = make_grid(std::vector<float>(100 * 784, 0.f).data(), 100, 1, 28, 28, 10, 10, 0.f, 1.f);
  for (int step : {100, 200}) {
    const Image g = read_image(d / ("run/samples/step_" + std::to_string(step) + ".png"));
    EXPECT_EQ(g.width, want.width);
    EXPECT_EQ(g.height, want.height);
    EXPECT_TRUE(fs::exists(d / ("run/checkpoints/step_" + std::to_string(step) + ".safetensors")));
  }
  EXPECT_TRUE(fs::exists(d / "run/config.json"));

  const std::string ck = d / "run/checkpoints/step_200.safetensors";
  auto s = e2e::run_cli("sample --checkpoint " + ck + " --labels 3,1,4,1,5 --out " + (d / "result.png"), d / "log_s");
  ASSERT_EQ(s.code, 0) << s.output;
  const Image row = read_image(d / "result.png");
  const Image want_row = make_grid(std::vector<float>(5 * 784, 0.f).data(), 5, 1, 28, 28, 1, 5, 0.f, 1.f);
  EXPECT_EQ(row.width, want_row.width);
  EXPECT_EQ(row.height, want_row.height);
  s = e2e::run_cli("sample --checkpoint " + ck + " --label 5 --count 16 --out " + (d / "five.png"), d / "log_s");
  ASSERT_EQ(s.code, 0) << s.output;
  const Image grid = read_image(d / "five.png");
  const Image want_grid = make_grid(std::vector<float>(16 * 784, 0.f).data(), 16, 1, 28, 28, 4, 4, 0.f, 1.f);
  EXPECT_EQ(grid.width, want_grid.width);
  EXPECT_EQ(grid.height, want_grid.height);

  // bad sample requests: one line, exit 1 (bad input) or 2 (bad command line), no file written
  const std::vector<Bad> bad = {
      {"--labels 3,x,4", 1, "'x' is not a label number"},
      {"--labels 3,10", 1, "label 10 is outside this model's classes 0..9"},
      {"--labels ''", 1, "the list is empty"},
      {"--labels 1,,2", 1, "'' is not a label number"},
      {"--label 12 --count 4", 1, "label 12 is outside"},
      {"", 2, "give --labels LIST or --label N"},
      {"--tags 'blue hair'", 2, "--tags is for models trained on tagged image sets"},
  };
  expect_bad_samples(ck, bad, d);
  // a truncated checkpoint and a checkpoint of another architecture
  {
    std::ifstream in(ck, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(d / "cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  auto e = e2e::run_cli("sample --checkpoint " + (d / "cut.safetensors") + " --labels 1 --out " + (d / "bad.png"),
                        d / "log_e");
  EXPECT_EQ(e.code, 1) << e.output;
  EXPECT_EQ(lines_of(e.output), 1) << e.output;
  EXPECT_NE(e.output.find("cut.safetensors"), std::string::npos) << e.output;
  e = e2e::run_cli("--config configs/mnist_lsgan_embed.json --resume " + ck + " --out " + (d / "other"), d / "log_e");
  EXPECT_EQ(e.code, 1) << e.output;
  EXPECT_EQ(lines_of(e.output), 1) << e.output;
  EXPECT_NE(e.output.find("another architecture"), std::string::npos) << e.output;
}

TEST(Cli, BenchPrintsOneJsonLineWithTheMedian) {
  e2e::TempDir d("cli_bench");
  const std::string cmd =
      std::string("cd '") + CGAN_SOURCE_DIR + "' && '" + CGAN_BINARY +
      "' bench --config configs/mixture_cond.json --steps 20 --repeats 3 --batch 32 --device cpu > '" + (d / "out") +
      "' 2> '" + (d / "err") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << testutil::slurp(d / "err");
  const std::string out = testutil::slurp(d / "out");
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j.at("config"), "mixture_cond");
  EXPECT_EQ(j.at("device"), "cpu");
  EXPECT_EQ(j.at("batch"), 32);
  EXPECT_EQ(j.at("repeats"), 3);
  const double med = j.at("ms_per_iter"), lo = j.at("min_ms"), hi = j.at("max_ms");
  EXPECT_GT(lo, 0.0);
  EXPECT_LE(lo, med);
  EXPECT_LE(med, hi);
  EXPECT_EQ(j.at("cuda_graph"), false);           // the CPU backend has no graphs
  EXPECT_TRUE(j.at("device_mem_mib").is_null());  // nor device memory
  auto r = e2e::run_cli("bench --config configs/mixture_cond.json --steps 0", d / "log");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--steps: expected an integer in [1, 1000000], got '0'"), std::string::npos) << r.output;
  // --conv-probe times cuDNN's algorithms: on the CPU a one-line error, nothing written
  r = e2e::run_cli("bench --conv-probe --config configs/anime_small.json --set data.count=64 --device cpu --json " +
                       (d / "probe.json"),
                   d / "log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(e2e::lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("--conv-probe: the cpu backend has no convolution algorithms to choose from"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(d / "probe.json"));
  // a config without convolutions has nothing to probe (whichever backend)
  r = e2e::run_cli("bench --conv-probe --config configs/mixture_cond.json --device cpu", d / "log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--conv-probe: config mixture_cond has no conv2d layer"), std::string::npos) << r.output;
}

// bench --per-op on a small conv GAN: the tables, and the JSON line (also written to --json) with
// the op kinds of that model timed, shares summing to 100 %, the timed ops inside the profiled
// iteration and near the plain bench's figure.
TEST(Cli, BenchPerOpTimesTheModelsOpsByKindLayerAndPhase) {
  e2e::TempDir d("cli_bench_per_op");
  const std::string cmd = std::string("cd '") + CGAN_SOURCE_DIR + "' && '" + CGAN_BINARY +
                          "' bench --config configs/anime_small.json --set data.count=256 --batch 8 --steps 4 "
                          "--repeats 3 --device cpu --per-op --json '" +
                          (d / "sub/bench.json") + "' > '" + (d / "out") + "' 2> '" + (d / "err") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << testutil::slurp(d / "err");
  const std::string out = testutil::slurp(d / "out");
  EXPECT_NE(out.find("| op kind | calls/iter | ms/iter | share |"), std::string::npos) << out;
  EXPECT_NE(out.find("| layer (innermost range) |"), std::string::npos) << out;
  EXPECT_NE(out.find("| phase (outermost range) |"), std::string::npos) << out;
  ASSERT_FALSE(out.empty());
  const size_t last = out.rfind('\n', out.size() - 2);
  const std::string line = out.substr(last == std::string::npos ? 0 : last + 1);
  EXPECT_EQ(testutil::slurp(d / "sub/bench.json"), line);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j.at("config"), "anime_small");
  EXPECT_EQ(j.at("cuda_graph"), false);
  const auto& p = j.at("per_op");
  EXPECT_EQ(p.at("iterations"), 4);
  auto names = [&](const char* table) {
    std::map<std::string, nlohmann::json> m;
    double share = 0;
    for (const auto& r : p.at(table)) {
      m[r.at("name").get<std::string>()] = r;
      EXPECT_GT(r.at("calls_per_iter").get<double>(), 0.0) << table << " " << r;
      share += r.at("share_pct").get<double>();
    }
    EXPECT_NEAR(share, 100.0, 0.01) << table;
    return m;
  };
  const auto kinds = names("kinds"), layers = names("layers"), phases = names("phases");
  for (const char* k : {"gemm", "conv_fwd", "conv_bwd_data", "conv_bwd_filter", "bn_fwd", "bn_bwd", "act_fwd",
                        "act_bwd", "pool_fwd", "pool_bwd", "fuse", "loss", "adam", "rng", "gather"})
    EXPECT_TRUE(kinds.count(k)) << "no " << k << " in " << line;
  EXPECT_FALSE(kinds.count("dropout")) << "the model has no dropout: " << line;
  EXPECT_EQ(kinds.at("adam").at("calls_per_iter").get<double>(), 2.0);  // one update per model
  EXPECT_EQ(kinds.at("loss").at("calls_per_iter").get<double>(), 4.0);  // real, fake, mismatched; G
  for (const char* l :
       {"generator.layers[0].linear", "generator.layers[4].conv2d", "generator.layers[2].batchnorm+relu",
        "generator.layers[10].conv2d+tanh", "discriminator.layers[1].conv2d+leaky_relu",
        "discriminator.layers[3].avgpool2d", "discriminator.condition", "generator.adam", "discriminator.adam"})
    EXPECT_TRUE(layers.count(l)) << "no layer " << l << " in " << line;
  for (const char* ph : {"data", "d_step", "g_step"}) EXPECT_TRUE(phases.count(ph)) << "no phase " << ph;
  // on the CPU the ops are disjoint intervals inside the profiled iterations, and nearly all of them.
  // (The profiled iterations are not compared with the plain timing, ms_per_iter: that is another
  // window of time, and under ctest's parallel runs on a shared machine the two need not agree.)
  const double timed = p.at("timed_ms_per_iter"), wall = p.at("wall_ms_per_iter");
  EXPECT_GT(timed, 0.0);
  EXPECT_LE(timed, wall * 1.0001) << line;
  EXPECT_GE(timed, 0.5 * wall) << line;
  auto r = e2e::run_cli("bench --config configs/anime_small.json --per-op --json", d / "log");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("--json: missing value"), std::string::npos) << r.output;
}

TEST(Cli, ClassifierEvalAndTrainingTimeEvaluation) {
  if (!has_mnist()) GTEST_SKIP() << "MNIST not found in data/mnist (tools/fetch_data.sh mnist)";
  e2e::TempDir d("cli_eval");
  const std::string clf = d / "clf.safetensors";
  // a small MLP classifier in a few steps (the accuracy does not matter here, and the shipped CNN
  // would spend most of this test's time on the 10,000 test images)
  testutil::spit(d / "clf.json", R"({"data": {"kind": "mnist", "range": [0, 1]},
    "layers": [{"linear": 32}, {"relu": {}}, {"linear": 10}],
    "train": {"steps": 300, "batch_size": 64, "lr": 0.001, "seed": 1}})");
  auto r = e2e::run_cli(
      "classifier --data mnist --config " + (d / "clf.json") + " --steps 30 --device cpu --out " + clf, d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("test accuracy"), std::string::npos) << r.output;
  const SafeTensors c = read_safetensors(clf);
  EXPECT_EQ(c.metadata.at("format"), "cgan_gpu.classifier.v1");
  EXPECT_EQ(c.metadata.at("steps"), "30");
  EXPECT_EQ(c.metadata.at("data_kind"), "mnist");

  // training with "eval" in the config: a missing classifier fails at start, saying how to make one
  const std::string base =
      "--config configs/mnist_mlp.json --device cpu --set train.steps=20 --set log.every=10 "
      "--set log.progress=plain --set eval.every=10 --set eval.count=20 ";
  r = e2e::run_cli(base + "--set eval.classifier=" + (d / "none.safetensors") + " --out " + (d / "bad"), d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("create it with: cgan_gpu classifier --data mnist"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d / "bad"));
  // ... and with one, metrics.csv gets a row per evaluation and the progress line the accuracy
  r = e2e::run_cli(base + "--set eval.classifier=" + clf + " --out " + (d / "run"), d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("cond acc "), std::string::npos) << r.output;
  const std::string csv = testutil::slurp(d / "run/metrics.csv");
  EXPECT_EQ(csv.rfind("step,cond_acc,fd,intra_fd,diversity,diversity_min,precision,recall,intra_precision,"
                      "intra_recall,kid_mean,kid_std\n10,",
                      0),
            0u)
      << csv;
  EXPECT_EQ(lines_of(csv), 3) << csv;

  // eval on the checkpoint: metrics.json in the run directory with every figure
  const std::string ck = d / "run/checkpoints/step_20.safetensors";
  r = e2e::run_cli("eval --checkpoint " + ck + " --classifier " + clf + " --count 20 --device cpu", d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("label  cond_acc"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("  KID "), std::string::npos) << r.output;
  const nlohmann::json j = nlohmann::json::parse(testutil::slurp(d / "run/metrics.json"));
  for (const char* k : {"cond_acc", "fd", "intra_fd", "diversity", "diversity_min", "precision", "recall",
                        "intra_precision", "intra_recall", "kid_mean", "kid_std", "per_label", "step", "classifier",
                        "classifier_test_accuracy", "count_per_label", "seed"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["per_label"].size(), 10u);
  EXPECT_EQ(j["step"], 20);
  EXPECT_EQ(j["count_per_label"], 20);
  for (auto& row : j["per_label"]) {
    EXPECT_GE(row["cond_acc"].get<double>(), 0.0);
    EXPECT_GE(row["precision"].get<double>(), 0.0);
    EXPECT_LE(row["recall"].get<double>(), 1.0);
    EXPECT_EQ(row["pr_count"], 20);
    EXPECT_TRUE(std::isfinite(row["fd"].get<double>()));
  }
  // reproducible: the same seed gives the same figures, into --out
  r = e2e::run_cli(
      "eval --checkpoint " + ck + " --classifier " + clf + " --count 20 --device cpu --out " + (d / "again"),
      d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json j2 = nlohmann::json::parse(testutil::slurp(d / "again/metrics.json"));
  EXPECT_EQ(j2["per_label"], j["per_label"]);

  // bad classifier paths and files: one line, exit 1, no metrics.json
  r = e2e::run_cli("eval --checkpoint " + ck + " --classifier " + (d / "nope.safetensors") + " --out " + (d / "x"),
                   d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("nope.safetensors: classifier file not found"), std::string::npos) << r.output;
  r = e2e::run_cli("eval --checkpoint " + ck + " --classifier " + ck + " --out " + (d / "x"), d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("not a cgan_gpu classifier"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d / "x/metrics.json"));
  r = e2e::run_cli("eval --checkpoint " + ck + " --count 1", d / "log");
  EXPECT_EQ(r.code, 2) << r.output;
}

// anime_small end to end on the CPU (a small procedural set): finite losses, the tag vocabulary in
// the run directory, a grid of one row per hair colour, `sample --tags`, the colour-probe
// evaluation, and one-line errors for bad tag requests.
TEST(Cli, AnimeSmallShortRunTagsSamplingAndEval) {
  e2e::TempDir d("cli_anime");
  auto r = e2e::run_cli(
      "--config configs/anime_small.json --set data.count=300 --set train.batch_size=16 "
      "--set train.steps=12 --set log.every=6 --set log.sample_every=12 --set log.progress=plain "
      "--out " +
          (d / "run"),
      d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_loss_csv(d / "run/losses.csv");
  ASSERT_EQ(rows.size(), 12u);
  for (auto& row : rows) EXPECT_TRUE(std::isfinite(row.d_loss) && std::isfinite(row.g_loss)) << "step " << row.step;
  std::ifstream vocab(d / "run/vocab.txt");
  std::string first;
  std::getline(vocab, first);
  EXPECT_EQ(first, "orange hair");
  const Image g = read_image(d / "run/samples/step_12.png");
  const Image want = make_grid(std::vector<float>(12 * 8 * 3 * 32 * 32, 0.f).data(), 96, 3, 32, 32, 12, 8, -1.f, 1.f);
  EXPECT_EQ(g.width, want.width);
  EXPECT_EQ(g.height, want.height);
  EXPECT_EQ(g.channels, 3);

  const std::string ck = d / "run/checkpoints/step_12.safetensors";
  auto s =
      e2e::run_cli("sample --checkpoint " + ck + " --tags 'blue hair, yellow eyes' --count 9 --out " + (d / "tags.png"),
                   d / "log_s");
  ASSERT_EQ(s.code, 0) << s.output;
  const Image t = read_image(d / "tags.png");
  const Image want_t = make_grid(std::vector<float>(9 * 3 * 32 * 32, 0.f).data(), 9, 3, 32, 32, 3, 3, -1.f, 1.f);
  EXPECT_EQ(t.width, want_t.width);
  EXPECT_EQ(t.height, want_t.height);
  const std::vector<Bad> bad = {
      {"--tags 'blue hair, purple nose'", 1, "unknown tag \"purple nose\""},
      {"--tags ''", 1, ""},
      {"--labels 1,2", 2, "this model is conditioned on tags"},
      {"", 2, "this model is conditioned on tags"},
  };
  expect_bad_samples(ck, bad, d);
  auto ev = e2e::run_cli("eval --checkpoint " + ck + " --count 24", d / "log_ev");
  ASSERT_EQ(ev.code, 0) << ev.output;
  std::ifstream mj(d / "run/metrics.json");
  const nlohmann::json m = nlohmann::json::parse(mj);
  EXPECT_EQ(m.at("images_per_hair_colour").get<int>(), 24);
  EXPECT_EQ(m.at("per_hair_colour").size(), 12u);
  EXPECT_GE(m.at("hair_acc").get<double>(), 0.0);
  EXPECT_LE(m.at("hair_acc").get<double>(), 1.0);

  // a hair-colour classifier for 32x32 faces (a few steps: the accuracy does not matter here) adds
  // the classifier figures; one for another image size is refused in one line
  testutil::spit(d / "clf.json", R"({"data": {"kind": "anime", "count": 400},
    "layers": [{"conv2d": {"out": 4, "kernel": 3, "padding": 1}}, {"relu": {}}, {"maxpool2d": {"kernel": 4}},
               {"linear": 16}, {"relu": {}}, {"linear": 12}],
    "train": {"steps": 20, "batch_size": 32}})");
  auto c = e2e::run_cli("classifier --data anime --config " + (d / "clf.json") + " --size 32 --device cpu --out " +
                            (d / "clf32.safetensors"),
                        d / "log_c");
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_NE(c.output.find("anime test images"), std::string::npos) << c.output;
  ev = e2e::run_cli(
      "eval --checkpoint " + ck + " --count 24 --classifier " + (d / "clf32.safetensors") + " --out " + (d / "ev"),
      d / "log_ev");
  ASSERT_EQ(ev.code, 0) << ev.output;
  const nlohmann::json m2 = nlohmann::json::parse(testutil::slurp(d / "ev/metrics.json"));
  ASSERT_TRUE(m2.contains("classifier_eval")) << m2.dump();
  EXPECT_EQ(m2["classifier_eval"]["per_label"].size(), 12u);
  EXPECT_TRUE(std::isfinite(m2["classifier_eval"]["fd"].get<double>()));
  c = e2e::run_cli("classifier --data anime --config " + (d / "clf.json") + " --size 16 --steps 5 --device cpu --out " +
                       (d / "clf16.safetensors"),
                   d / "log_c");
  ASSERT_EQ(c.code, 0) << c.output;
  ev = e2e::run_cli("eval --checkpoint " + ck + " --classifier " + (d / "clf16.safetensors") + " --out " + (d / "ev16"),
                    d / "log_ev");
  EXPECT_EQ(ev.code, 1) << ev.output;
  EXPECT_EQ(lines_of(ev.output), 1) << ev.output;
  EXPECT_NE(ev.output.find("does not match"), std::string::npos) << ev.output;
  EXPECT_FALSE(fs::exists(d / "ev16/metrics.json"));
}

// Training on a folder of your own images: PNGs of mixed sizes (resized to data.size) with a
// colour-text tags CSV; an unreadable image is skipped with a warning and counted.
TEST(Cli, AnimeSmallTrainsOnAnImageFolder) {
  e2e::TempDir d("cli_images");
  fs::create_directories(d / "faces");
  std::string csv;
  const char* hairs[] = {"blue hair", "red hair", "green hair"};
  const char* eyes[] = {"yellow eyes", "blue eyes"};
  for (int i = 0; i < 20; ++i) {
    Image im;
    im.width = 36 + i, im.height = 30 + 2 * i, im.channels = 3;
    im.pixels.assign(static_cast<size_t>(im.width) * im.height * 3, static_cast<uint8_t>(10 * i));
    write_png(d / ("faces/" + std::to_string(i) + ".png"), im);
    csv += std::to_string(i) + "," + hairs[i % 3] + " " + eyes[i % 2] + "\n";
  }
  csv += "20,blue hair yellow eyes\n";
  testutil::spit(d / "faces/20.png", "this is not a PNG");
  testutil::spit(d / "faces/tags.csv", csv);
  auto r =
      e2e::run_cli("--config configs/anime_small.json --set 'data={\"kind\":\"images\",\"dir\":\"" + (d / "faces") +
                       "\",\"size\":[32,32]}' --set train.steps=4 --set train.batch_size=8 "
                       "--set log.every=2 --set log.progress=plain --out " +
                       (d / "run"),
                   d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("20 images loaded"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("20.png"), std::string::npos) << r.output;  // the warning names the file
  EXPECT_NE(r.output.find("1 unreadable"), std::string::npos) << r.output;
  const auto rows = read_loss_csv(d / "run/losses.csv");
  ASSERT_EQ(rows.size(), 4u);
  for (auto& row : rows) EXPECT_TRUE(std::isfinite(row.d_loss) && std::isfinite(row.g_loss));
  EXPECT_TRUE(fs::exists(d / "run/vocab.txt"));
  // the evaluator scores the procedural set and MNIST-style data, not a folder of your images
  r = e2e::run_cli("eval --checkpoint " + (d / "run/checkpoints/step_4.safetensors"), d / "log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("the evaluator scores image models (mnist, fashion, anime, image_folder)"), std::string::npos)
      << r.output;
  // --size is for the anime classifier only
  r = e2e::run_cli("classifier --data mnist --size 32", d / "log");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("--size is for --data anime"), std::string::npos) << r.output;
  // a class-folder classifier needs the folder and the size, the size as N or HxW
  const std::vector<std::pair<std::string, std::string>> folder_usage = {
      {"classifier --data image_folder --size 16",
       "classifier: --data image_folder needs --data-dir DIR (the folder of class folders)"},
      {"classifier --data image_folder --data-dir " + (d / "faces"),
       "classifier: --data image_folder needs --size N (or HxW)"},
      {"classifier --data image_folder --data-dir " + (d / "faces") + " --size 16x",
       "--size: expected an integer in [1, 4096], got ''"},
      {"classifier --data cifar", "--data: expected mnist, fashion, anime or image_folder, got 'cifar'"}};
  for (const auto& [args, message] : folder_usage) {
    r = e2e::run_cli(args, d / "log");
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_EQ(lines_of(r.output), 1) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << ": " << r.output;
  }
  // data.strict turns the unreadable image into a one-line error naming it
  r = e2e::run_cli("--config configs/anime_small.json --set 'data={\"kind\":\"images\",\"dir\":\"" + (d / "faces") +
                       "\",\"size\":[32,32],\"strict\":true}' --set train.steps=2 --out " + (d / "strict"),
                   d / "log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("20.png"), std::string::npos) << r.output;
}

// ---------------------------------------------------------------- hostile input and run directories (issue 10)

TEST(Cli, EveryCommandPrintsItsOwnHelp) {
  e2e::TempDir d("cli_cmd_help");
  const std::vector<std::pair<std::string, std::string>> cmds = {
      {"train", "Training options:"},       {"sample", "Sample options:"}, {"bench", "Bench options"},
      {"classifier", "Classifier options"}, {"eval", "Eval options"},      {"export", "Export options"}};
  for (const auto& [cmd, section] : cmds) {
    auto r = e2e::run_cli(cmd + " --help", d / "log");
    EXPECT_EQ(r.code, 0) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find(section), std::string::npos) << cmd << ": " << r.output;
    for (const auto& [other, other_section] : cmds)
      if (other != cmd) EXPECT_EQ(r.output.find(other_section), std::string::npos) << cmd << " shows " << other;
  }
  auto r = e2e::run_cli("--help", d / "log");
  EXPECT_NE(r.output.find("--overwrite"), std::string::npos);
}

TEST(Cli, HostileCommandLinesAreOneLineErrorsLeavingNothingBehind) {
  e2e::TempDir d("cli_hostile");
  ASSERT_EQ(::mkfifo((d / "fifo").c_str(), 0600), 0);
  auto r = e2e::run_cli("--config " + (d / "fifo") + " --out " + (d / "run"), d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, "cgan_gpu: " + (d / "fifo") + ": is a FIFO, not a config file\n");
  r = e2e::run_cli("--config configs/mixture_cond.json --set \"description=$(printf 'a\\377')\" --out " + (d / "run"),
                   d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, "cgan_gpu: --set description: the value is not valid UTF-8\n");
  r = e2e::run_cli("--config configs/mixture_cond.json --set 'generator.layers[99999999999999999999].linear=5'",
                   d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("index [99999999999999999999] is too large"), std::string::npos) << r.output;
  r = e2e::run_cli(
      "--config configs/mixture_cond.json --set generator.layers[0].linear=16777216 --set "
      "generator.layers[2].linear=16777216 --out " +
          (d / "run"),
      d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("generator.layers["), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(".cpp"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d / "run")) << "a failed start must not leave a run directory";
  std::string many = "0";
  for (int i = 0; i < 10000; ++i) many += ",1";
  r = e2e::run_cli("sample --checkpoint " + (d / "none.safetensors") + " --labels " + many, d / "log");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output, "cgan_gpu: --labels: 10001 labels given, at most 10000 (one image each)\n");
}

TEST(Cli, RunDirectoriesAreClaimedRefusedLockedAndReplacedAsAWhole) {
  e2e::TempDir d("cli_rundir");
  const std::string base =
      "--config configs/mixture_cond.json --set data.count=500 --set log.progress=none "
      "--set log.sample_every=0 --out " +
      (d / "run") + " ";
  auto r = e2e::run_cli(base + "--set train.steps=4 --set log.checkpoint_every=2", d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  testutil::spit(d / "run/notes.txt", "mine");
  const std::string config = testutil::slurp(d / "run/config.json"), losses = testutil::slurp(d / "run/losses.csv");
  // A fresh run into it: refused, nothing touched, --resume suggested.
  r = e2e::run_cli(base + "--set train.steps=3", d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output,
            "cgan_gpu: " + (d / "run") +
                ": already holds a run (config.json, losses.csv, losses_avg.csv, checkpoints, samples, losses.png, "
                "reals.png, tb); "
                "continue it "
                "with --resume " +
                (d / "run/checkpoints/step_4.safetensors") +
                ", replace it with --overwrite, or choose another --out\n");
  EXPECT_EQ(testutil::slurp(d / "run/config.json"), config);
  EXPECT_EQ(testutil::slurp(d / "run/losses.csv"), losses);
  // A run directory in use (its lock held, as a running cgan_gpu holds it): fresh, resumed and
  // overwriting runs are all kept out.
  const int fd = ::open((d / "run").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  const std::string in_use = "cgan_gpu: " + (d / "run") +
                             ": run directory is in use by another cgan_gpu process; wait for it to finish or choose "
                             "another --out\n";
  r = e2e::run_cli(base + "--set train.steps=3 --overwrite", d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, in_use);
  r = e2e::run_cli("--resume " + (d / "run/checkpoints/step_4.safetensors") + " --set train.steps=6", d / "log");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, in_use);
  ::close(fd);
  EXPECT_EQ(testutil::slurp(d / "run/losses.csv"), losses);
  // --overwrite: the old run's files go as a whole (no step_2/step_4 beside the new step_3), the
  // user's own file stays, and what an overwrite stopped half-way had moved aside is removed.
  fs::create_directories(d / "run/.replaced-run-1/checkpoints");
  testutil::spit(d / "run/.replaced-run-1/checkpoints/step_9.safetensors", "old");
  r = e2e::run_cli(base + "--set train.steps=3 --overwrite", d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  std::vector<std::string> cks;
  for (const auto& e : fs::directory_iterator(d / "run/checkpoints")) cks.push_back(e.path().filename().string());
  EXPECT_EQ(cks, std::vector<std::string>{"step_3.safetensors"});
  EXPECT_EQ(read_loss_csv(d / "run/losses.csv").size(), 3u);
  EXPECT_EQ(testutil::slurp(d / "run/notes.txt"), "mine");
  std::vector<std::string> top;
  for (const auto& e : fs::directory_iterator(d / "run")) top.push_back(e.path().filename().string());
  std::sort(top.begin(), top.end());
  EXPECT_EQ(top, (std::vector<std::string>{"checkpoints", "config.json", "losses.csv", "losses.png", "losses_avg.csv",
                                           "notes.txt", "reals.png", "samples", "tb"}));
  // the old run's event files went with it: tb/ holds the new run's one
  std::vector<std::string> events;
  for (const auto& e : fs::directory_iterator(d / "run/tb")) events.push_back(e.path().filename().string());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].rfind("events.out.tfevents.", 0), 0u) << events[0];
}

TEST(Cli, SigtermBeforeTrainingStartsExits130WithNothingWritten) {
  e2e::TempDir d("cli_sigterm_early");
  // The child starts with SIGTERM blocked and already pending: it is seen as soon as train installs
  // its handlers, before any data is loaded, so the timing is deterministic.
  const std::string log = d / "log", run = d / "run";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigprocmask(SIG_BLOCK, &s, nullptr);
    ::raise(SIGTERM);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    if (::chdir(CGAN_SOURCE_DIR) != 0) ::_exit(99);
    ::execl(CGAN_BINARY, CGAN_BINARY, "--config", "configs/mixture_cond.json", "--out", run.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(98);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  EXPECT_EQ(WEXITSTATUS(st), 130);
  EXPECT_EQ(testutil::slurp(d / "log"), "cgan_gpu: stopped by SIGTERM before training started; nothing was written\n");
  EXPECT_FALSE(fs::exists(d / "run"));
}

// `plot` names what it was given when that is not a run directory.
TEST(Cli, PlotSaysWhatItWasGivenWhenItIsNotARunDirectory) {
  e2e::TempDir d("plot_args");
  testutil::spit(d / "losses.csv", "step,d_loss,g_loss\n");
  auto r = e2e::run_cli("plot " + (d / "losses.csv"), d / "log1");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, "cgan_gpu: " + (d / "losses.csv") + ": is a file, not a run directory\n");
  r = e2e::run_cli("plot " + (d / "missing"), d / "log2");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, "cgan_gpu: " + (d / "missing") + ": not a run directory (no such directory)\n");
}
