// Data-parallel training under mpirun (docs/DISTRIBUTED.md), 2 ranks on the CPU through
// tools/mpirun.sh: the weights after 50 steps equal a 1-process run at the same global batch (to
// the rounding of the batch sums' order), a resume with 2 ranks is exact, a killed rank ends the job
// with an error naming it, SIGTERM on the launcher stops every rank after one checkpoint, and an
// indivisible batch is a config error. Skipped, saying why, when the build has no MPI or mpirun is
// missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "cgan/base/safetensors.hpp"
#include "cgan/train/distributed.hpp"
#include "cgan/report/rundir.hpp"
#include "e2e_util.hpp"
#include "grad_compare.hpp"

namespace {
namespace fs = std::filesystem;
using cgan::SafeTensors;

bool mpi_ready(std::string* why) {
  if (!cgan::mpi_compiled()) {
    *why = "this build has no MPI (find_package(MPI) found none; tools/setup.sh installs Open MPI)";
    return false;
  }
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) {
    *why = "mpirun is not on PATH (tools/setup.sh installs openmpi-bin)";
    return false;
  }
  return true;
}
#define REQUIRE_MPI()                            \
  do {                                           \
    std::string why_;                            \
    if (!mpi_ready(&why_)) GTEST_SKIP() << why_; \
  } while (0)

// `tools/mpirun.sh -np N cgan_gpu ARGS`, run from the source tree (tools/mpirun.sh: root allowed,
// oversubscription, shared memory only, no core binding).
e2e::RunResult run_mpi(int np, const std::string& args, const std::string& log) {
  const std::string cmd = std::string("cd '") + CGAN_SOURCE_DIR + "' && tools/mpirun.sh -np " + std::to_string(np) +
                          " '" + CGAN_BINARY + "' " + args + " > '" + log + "' 2>&1";
  e2e::RunResult r;
  const int st = std::system(cmd.c_str());
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

std::string mnist_args(const std::string& config, int steps, int batch) {
  return "--config configs/" + config + ".json --set data.dir=data/mnist --set train.steps=" + std::to_string(steps) +
         " --set train.batch_size=" + std::to_string(batch) +
         " --set log.progress=none --set log.sample_every=0 --set log.every=10 --set log.flush_every=10 ";
}

// The networks' tensors (parameters and batch-norm statistics) of a checkpoint by name.
std::map<std::string, const cgan::NamedTensor*> nets(const SafeTensors& st) {
  std::map<std::string, const cgan::NamedTensor*> m;
  for (const auto& t : st.tensors)
    if (t.name.rfind("generator.", 0) == 0 || t.name.rfind("discriminator.", 0) == 0) m[t.name] = &t;
  return m;
}

// Largest |a - b| over the networks' parameters but `skip` (running statistics follow from them).
double max_param_diff(const SafeTensors& a, const SafeTensors& b, double* max_abs, const std::set<std::string>& skip) {
  const auto ma = nets(a), mb = nets(b);
  EXPECT_EQ(ma.size(), mb.size());
  double worst = 0, big = 0;
  for (const auto& [name, ta] : ma) {
    const bool stat = name.find("running_") != std::string::npos || name.find("num_batches") != std::string::npos;
    if (stat || skip.count(name)) continue;
    auto it = mb.find(name);
    if (it == mb.end()) {
      ADD_FAILURE() << name << " missing";
      continue;
    }
    const auto& x = ta->data;
    const auto& y = it->second->data;
    EXPECT_EQ(x.size(), y.size()) << name;
    for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(x[i]) - y[i]));
      big = std::max(big, std::fabs(static_cast<double>(x[i])));
    }
  }
  if (max_abs) *max_abs = big;
  return worst;
}

// 50 steps on 1 process and on 2 ranks at the same global batch (16): the same samples, noise,
// labels and dropout masks are drawn (Philox keyed by the global sample index) and the averaged
// gradient is the global batch's; only the order of the batch sums differs (one GEMM over 16 rows
// against two over 8 whose results MPI adds), about 1 float ulp of each gradient per step.
// - After 10 steps the weights agree to `tol10` (1e-4; measured 5e-6 at most): a missing
//   all-reduce, per-rank batch norm or a wrongly keyed draw changes them by 1e-3 or more from the
//   first step on.
// - After 50 steps they agree to `tol50`: mnist_mlp 2e-5 (measured 2e-6); mnist_lsgan_embed 1e-2
//   (measured 2.3e-3): its D saturates after ~25 steps (d_loss ~0.01) and Adam, which normalises
//   each gradient by its own size, turns rounding-level gradients into steps of up to lr = 2e-4 of
//   either sign, so ulp differences grow to lr-sized ones (docs/DISTRIBUTED.md). Left out: the
//   biases of the layers feeding a batch norm, whose true gradient is 0 and whose Adam steps are
//   rounding noise from the first step (gradcheck::structurally_zero).
void check_matches_one_process(const std::string& config, const std::string& extra, double tol50) {
  e2e::TempDir d("dist_" + config);
  const std::string args = mnist_args(config, 50, 16) + "--set log.checkpoint_every=10 " + extra;
  auto one = e2e::run_cli(args + "--out " + (d / "one"), d / "log_one");
  ASSERT_EQ(one.code, 0) << one.output;
  auto two = run_mpi(2, args + "--out " + (d / "two"), d / "log_two");
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_NE(two.output.find("data parallel: 2 ranks x 8 samples = batch 16"), std::string::npos) << two.output;
  const cgan::Config cfg = cgan::load_config(e2e::source("configs/" + config + ".json"));
  std::set<std::string> skip;
  for (const std::string& s : cgan::gradcheck::structurally_zero(cfg.generator))
    skip.insert("generator." + s.substr(7));
  for (const std::string& s : cgan::gradcheck::structurally_zero(cfg.discriminator))
    skip.insert("discriminator." + s.substr(7));
  for (int step : {10, 50}) {
    const std::string ck = "/checkpoints/step_" + std::to_string(step) + ".safetensors";
    const SafeTensors a = cgan::read_safetensors(d / ("one" + ck)), b = cgan::read_safetensors(d / ("two" + ck));
    double big = 0;
    const double diff = max_param_diff(a, b, &big, skip);
    const double tol = step == 10 ? 1e-4 : tol50;
    std::printf("[%s] 1 process vs 2 ranks after %d steps: max |dw| = %.3g (tolerance %.g, max |w| %.3g)\n",
                config.c_str(), step, diff, tol, big);
    EXPECT_GT(big, 0.0);
    EXPECT_LE(diff, tol) << "after " << step << " steps the 2-rank run drifted from the 1-process run";
  }
  // the logged losses are the global batch's (every rank's statistics reduced)
  const auto la = cgan::read_loss_csv(d / "one/losses.csv"), lb = cgan::read_loss_csv(d / "two/losses.csv");
  ASSERT_EQ(la.size(), 50u);
  ASSERT_EQ(lb.size(), 50u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_NEAR(la[i].d_loss, lb[i].d_loss, 1e-5 * (1 + std::fabs(la[i].d_loss))) << "step " << i + 1;
    EXPECT_NEAR(la[i].g_loss, lb[i].g_loss, 1e-5 * (1 + std::fabs(la[i].g_loss))) << "step " << i + 1;
    EXPECT_NEAR(la[i].d_real, lb[i].d_real, 1e-5) << "step " << i + 1;
    EXPECT_NEAR(la[i].d_acc, lb[i].d_acc, 1e-6) << "step " << i + 1;
  }
}

}  // namespace

TEST(Distributed, TwoRanksMatchOneProcessMnistMlp) {
  REQUIRE_MPI();
  check_matches_one_process("mnist_mlp", "", 2e-5);
}

// G has batch norm: the 1-process equivalence needs the global batch's statistics
// (distributed.sync_batchnorm); D's dropout masks are drawn by global sample index.
TEST(Distributed, TwoRanksMatchOneProcessLsganEmbedWithSyncBatchNorm) {
  REQUIRE_MPI();
  check_matches_one_process("mnist_lsgan_embed", "--set distributed.sync_batchnorm=true ", 1e-2);
}

TEST(Distributed, ResumeWithTwoRanksIsExact) {
  REQUIRE_MPI();
  e2e::TempDir d("dist_resume");
  const std::string args = mnist_args("mnist_lsgan_embed", 50, 16) + "--set log.checkpoint_every=25 ";
  auto a = run_mpi(2, args + "--out " + (d / "a"), d / "log_a");
  ASSERT_EQ(a.code, 0) << a.output;
  fs::create_directories(d / "b/checkpoints");
  fs::copy_file(d / "a/checkpoints/step_25.safetensors", d / "b/checkpoints/step_25.safetensors");
  auto b =
      run_mpi(2, "--resume " + (d / "b/checkpoints/step_25.safetensors") + " --set log.progress=none", d / "log_b");
  ASSERT_EQ(b.code, 0) << b.output;
  EXPECT_NE(b.output.find("resumed at step 25"), std::string::npos) << b.output;
  const SafeTensors x = cgan::read_safetensors(d / "a/checkpoints/step_50.safetensors");
  const SafeTensors y = cgan::read_safetensors(d / "b/checkpoints/step_50.safetensors");
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (size_t i = 0; i < x.tensors.size(); ++i) {  // every tensor (Adam moments too), bit for bit
    ASSERT_EQ(x.tensors[i].name, y.tensors[i].name);
    EXPECT_TRUE(x.tensors[i].data == y.tensors[i].data) << x.tensors[i].name << " differs after the resume";
  }
}

TEST(Distributed, IndivisibleBatchIsAConfigErrorSaidOnce) {
  REQUIRE_MPI();
  e2e::TempDir d("dist_indivisible");
  auto r = run_mpi(2, mnist_args("mnist_mlp", 5, 15) + "--out " + (d / "run"), d / "log");
  EXPECT_NE(r.code, 0) << r.output;
  const std::string msg = "cgan_gpu: train.batch_size: 15 does not divide among the 2 ranks of this job";
  const size_t at = r.output.find(msg);
  EXPECT_NE(at, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(msg, at + 1), std::string::npos) << "said more than once:\n" << r.output;
  EXPECT_FALSE(fs::exists(d / "run")) << "a failed start must not create the run directory";
}

namespace {
// Starts a long 2-rank run in the background, waits for its banner, runs `action` (shell, with
// $mp the launcher's pid and $r1 rank 1's), then waits for the launcher at most 120 s; the exit
// code goes to d/code, the seconds waited to d/secs, "HUNG" to the log when it had to be killed.
std::string background_job(const e2e::TempDir& d, const std::string& action) {
  return std::string("cd '") + CGAN_SOURCE_DIR + "' && (tools/mpirun.sh -np 2 '" + CGAN_BINARY + "' " +
         mnist_args("mnist_mlp", 100000000, 16) + "--set log.checkpoint_every=0 --out '" + (d / "run") + "' > '" +
         (d / "log") + "' 2>&1 & mp=$!; i=0; while [ $i -lt 900 ] && ! grep -q 'data parallel' '" + (d / "log") +
         "'; do sleep 0.1; i=$((i+1)); done; sleep 2; r1=''; for p in $(pgrep -P $mp); do "
         "if tr '\\0' '\\n' < /proc/$p/environ | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then r1=$p; fi; done; " +
         action +
         "; t0=$(date +%s); i=0; while [ $i -lt 1200 ] && kill -0 $mp 2>/dev/null; do sleep 0.1; "
         "i=$((i+1)); done; if kill -0 $mp 2>/dev/null; then echo HUNG >> '" +
         (d / "log") + "'; kill -9 $mp; fi; wait $mp; echo $? > '" + (d / "code") +
         "'; echo $(( $(date +%s) - t0 )) > '" + (d / "secs") + "')";
}
int read_int(const std::string& path) {
  std::ifstream f(path);
  int v = -1;
  f >> v;
  return v;
}
std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
}  // namespace

TEST(Distributed, AKilledRankEndsTheJobWithAnErrorNamingIt) {
  REQUIRE_MPI();
  e2e::TempDir d("dist_kill");
  ASSERT_EQ(std::system(background_job(d, "[ -n \"$r1\" ] && kill -9 $r1").c_str()), 0);
  const std::string log = read_text(d / "log");
  EXPECT_EQ(log.find("HUNG"), std::string::npos) << "the job did not end within 120 s of the kill:\n" << log;
  EXPECT_NE(read_int(d / "code"), 0) << log;
  // mpirun kills the survivors (blocked in an all-reduce) odls_base_sigkill_timeout = 10 s after
  // it sees the death (tools/mpirun.sh); 90 s leaves room for a loaded machine
  EXPECT_LE(read_int(d / "secs"), 90) << log;
  std::printf("killed rank 1: the job ended %d s later, exit %d\n", read_int(d / "secs"), read_int(d / "code"));
  EXPECT_NE(log.find("rank 1"), std::string::npos) << "no message names the killed rank:\n" << log;
  std::printf("%s\n", log.substr(log.find("rank 1") > 200 ? log.find("rank 1") - 200 : 0, 400).c_str());
}

TEST(Distributed, SigtermOnTheLauncherStopsEveryRankAfterOneCheckpoint) {
  REQUIRE_MPI();
  e2e::TempDir d("dist_term");
  ASSERT_EQ(std::system(background_job(d, "kill -TERM $mp").c_str()), 0);
  const std::string log = read_text(d / "log");
  EXPECT_EQ(log.find("HUNG"), std::string::npos) << log;
  EXPECT_NE(read_int(d / "code"), 0) << log;
  const size_t at = log.find("stopped by SIGTERM after step ");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_EQ(log.find("stopped by SIGTERM", at + 1), std::string::npos) << "rank 0 alone reports the stop:\n" << log;
  std::vector<fs::path> cks;
  for (auto& e : fs::directory_iterator(d / "run/checkpoints")) cks.push_back(e.path());
  ASSERT_EQ(cks.size(), 1u) << log;
  const SafeTensors ck = cgan::read_safetensors(cks[0].string());
  const long long step = std::stoll(ck.metadata.at("step"));
  EXPECT_GT(step, 0);
  EXPECT_EQ(cgan::read_loss_csv(d / "run/losses.csv").size(), static_cast<size_t>(step));
}
