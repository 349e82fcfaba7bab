// `--resume latest` / `--resume RUN_DIR` (the newest complete checkpoint) and log.keep_checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "cgan/base/safetensors.hpp"
#include "cgan/report/run_checkpoints.hpp"
#include "e2e_util.hpp"

using namespace cgan;
using e2e::lines_of;
namespace fs = std::filesystem;

namespace {

const std::string kBase =
    "--config configs/mixture_cond.json --set data.count=2000 --set log.progress=none "
    "--set log.sample_every=0 --set log.checkpoint_every=20 ";

void expect_same_tensors(const std::string& a, const std::string& b) {
  const SafeTensors x = read_safetensors(a), y = read_safetensors(b);
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (const auto& t : x.tensors) EXPECT_EQ(t.data, y.at(t.name).data) << t.name;
}

std::vector<int64_t> steps_in(const std::string& run) {
  std::vector<int64_t> s;
  for (const CheckpointFile& c : list_checkpoints(run)) s.push_back(c.step);
  return s;
}
}  // namespace

TEST(ResumeLatest, PicksTheNewestCompleteCheckpointAndContinuesBitExactly) {
  e2e::TempDir d("resume_latest");
  auto a = e2e::run_cli(kBase + "--set train.steps=60 --out " + (d / "a"), d / "log_a");
  ASSERT_EQ(a.code, 0) << a.output;
  for (const char* run : {"b", "c"}) {
    auto r = e2e::run_cli(kBase + "--set train.steps=45 --out " + (d / run), d / "log_r");
    ASSERT_EQ(r.code, 0) << r.output;
    ASSERT_EQ(steps_in(d / run), (std::vector<int64_t>{20, 40, 45}));
    // a writer's temporary of a later step and a foreign file are not checkpoints
    std::ofstream(d / (std::string(run) + "/checkpoints/step_99.safetensors.tmp.4242")) << "half-written";
    std::ofstream(d / (std::string(run) + "/checkpoints/notes.txt")) << "mine";
  }
  // `latest` of --out DIR
  auto b =
      e2e::run_cli("--resume latest --out " + (d / "b") + " --set train.steps=60 --set log.progress=none", d / "log_b");
  ASSERT_EQ(b.code, 0) << b.output;
  EXPECT_NE(b.output.find("resumed at step 45"), std::string::npos) << b.output;
  expect_same_tensors(d / "a/checkpoints/step_60.safetensors", d / "b/checkpoints/step_60.safetensors");
  // a run directory given as --resume DIR
  auto c = e2e::run_cli("--resume " + (d / "c") + " --set train.steps=60 --set log.progress=none", d / "log_c");
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_NE(c.output.find("resumed at step 45"), std::string::npos) << c.output;
  expect_same_tensors(d / "a/checkpoints/step_60.safetensors", d / "c/checkpoints/step_60.safetensors");
  EXPECT_TRUE(fs::exists(d / "c/checkpoints/notes.txt"));

  // a damaged newest checkpoint is refused, naming it and the one before it (no silent fall-back)
  fs::create_directories(d / "dmg/checkpoints");
  fs::copy_file(d / "a/checkpoints/step_20.safetensors", d / "dmg/checkpoints/step_20.safetensors");
  fs::copy_file(d / "a/checkpoints/step_40.safetensors", d / "dmg/checkpoints/step_40.safetensors");
  fs::resize_file(d / "dmg/checkpoints/step_40.safetensors", 100);
  auto e = e2e::run_cli("--resume latest --out " + (d / "dmg") + " --set train.steps=60", d / "log_e");
  EXPECT_EQ(e.code, 1) << e.output;
  EXPECT_EQ(lines_of(e.output), 1) << e.output;
  EXPECT_NE(e.output.find("the newest checkpoint is damaged (" + (d / "dmg/checkpoints/step_40.safetensors")),
            std::string::npos)
      << e.output;
  EXPECT_NE(e.output.find("resume from the one before it with --resume " + (d / "dmg/checkpoints/step_20.safetensors")),
            std::string::npos)
      << e.output;
}

TEST(ResumeLatest, BadTargetsAreOneLineErrorsNamingTheDirectory) {
  e2e::TempDir d("resume_bad");
  fs::create_directories(d / "empty/checkpoints");
  fs::create_directories(d / "plain");
  const struct {
    std::string args;
    int code;
    std::string msg;
  } bad[] = {
      {"--resume latest", 2, "--resume latest: give --out RUN_DIR or --config FILE"},
      {"--resume latest --out " + (d / "empty"), 1,
       "--resume latest: " + (d / "empty") + "/checkpoints holds no checkpoint (step_N.safetensors) to resume from"},
      {"--resume " + (d / "empty"), 1, (d / "empty") + "/checkpoints holds no checkpoint"},
      {"--resume " + (d / "plain"), 1,
       "--resume " + (d / "plain") + ": " + (d / "plain") + " is not a run directory (it has no checkpoints/ folder)"},
      {"--resume latest --out " + (d / "missing"), 1,
       "--resume latest: " + (d / "missing") + ": no such run directory"},
      // with --config: the run directory is out/<name>
      {"--resume latest --config configs/mixture_cond.json --set name=i21_no_such_run", 1,
       "--resume latest: out/i21_no_such_run: no such run directory"},
  };
  for (const auto& b : bad) {
    auto r = e2e::run_cli(b.args, d / "log");
    EXPECT_EQ(r.code, b.code) << b.args << ": " << r.output;
    EXPECT_EQ(lines_of(r.output), 1) << r.output;
    EXPECT_NE(r.output.find(b.msg), std::string::npos) << b.args << ": " << r.output;
  }
  EXPECT_FALSE(fs::exists(d / "missing"));
  EXPECT_TRUE(fs::is_empty(d / "empty/checkpoints"));
}

TEST(KeepCheckpoints, KeepsTheNewestNPlusTheFinalAndOnlyItsOwnFiles) {
  e2e::TempDir d("keep_ck");
  const std::string base =
      "--config configs/mixture_cond.json --set data.count=256 --set train.batch_size=32 "
      "--set log.progress=none --set log.sample_every=0 --set log.checkpoint_every=2 "
      "--set log.keep_checkpoints=2 ";
  auto r = e2e::run_cli(base + "--set train.steps=10 --out " + (d / "run"), d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  // five checkpoints written (2, 4, 6, 8, 10): the newest two before the final one, and the final one
  EXPECT_EQ(steps_in(d / "run"), (std::vector<int64_t>{6, 8, 10}));
  // a resumed run deletes only what it wrote itself: the earlier part's checkpoints stay
  r = e2e::run_cli("--resume latest --out " + (d / "run") + " --set train.steps=18 --set log.progress=none", d / "log");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(steps_in(d / "run"), (std::vector<int64_t>{6, 8, 10, 14, 16, 18}));
  // the key is an integer >= 1
  r = e2e::run_cli(base + "--set log.keep_checkpoints=0 --set train.steps=4 --out " + (d / "bad"), d / "log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("log.keep_checkpoints"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d / "bad"));
}
