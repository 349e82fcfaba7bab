// The training session's set-up (cgan/train/session.hpp) called directly: run-directory claims,
// refusals with their messages, and a resume continuing in its checkpoint's run directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cgan/train/session.hpp"
#include "e2e_util.hpp"

namespace cgan {
namespace {
namespace fs = std::filesystem;

SessionOptions toy_options(const std::string& out_dir) {
  SessionOptions o;
  o.config_path = e2e::source("configs/mixture_cond.json");
  o.sets = {"data.count=256", "train.batch_size=32", "train.steps=3",
            "log.every=1",    "log.sample_every=0",  "log.progress=none"};
  o.out_dir = out_dir;
  o.device = "cpu";
  return o;
}

// What the message of fn's Error says (empty when it throws none).
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return std::string();
}

TEST(Session, AFreshSessionClaimsItsRunDirectoryAndASecondClaimIsRefused) {
  e2e::TempDir tmp("session");
  const std::string dir = tmp.path + "/run";
  {
    const auto s = open_training_session(toy_options(dir));
    ASSERT_NE(s->run_dir, nullptr);
    EXPECT_EQ(s->out_dir, dir);
    EXPECT_EQ(s->trainer->steps_done(), 0);
    EXPECT_TRUE(fs::is_directory(dir + "/samples"));
    // while it holds the directory, another session is refused (the lock)
    EXPECT_EQ(
        error_of([&] { open_training_session(toy_options(dir)); }),
        dir + ": run directory is in use by another cgan_gpu process; wait for it to finish or choose another --out");
    ASSERT_EQ(s->run(), 0);
  }
  // the run is there now: a fresh claim is refused with the message the CLI prints
  const std::string ck = dir + "/checkpoints/step_3.safetensors";
  ASSERT_TRUE(fs::exists(ck));
  const std::string msg = error_of([&] { open_training_session(toy_options(dir)); });
  EXPECT_EQ(msg.rfind(dir + ": already holds a run (", 0), 0u) << msg;
  EXPECT_NE(msg.find("continue it with --resume " + ck + ", replace it with --overwrite, or choose another --out"),
            std::string::npos)
      << msg;
  // --overwrite replaces it
  SessionOptions ow = toy_options(dir);
  ow.overwrite = true;
  const auto s = open_training_session(ow);
  EXPECT_NE(s->run_dir, nullptr);
  EXPECT_FALSE(fs::exists(ck));
}

TEST(Session, AResumeContinuesInItsCheckpointsRunDirectory) {
  e2e::TempDir tmp("session");
  const std::string dir = tmp.path + "/run";
  ASSERT_EQ(open_training_session(toy_options(dir))->run(), 0);
  const std::string ck = dir + "/checkpoints/step_3.safetensors";
  SessionOptions r;
  r.resume = ck;
  r.sets = {"train.steps=5"};
  r.device = "cpu";
  {
    const auto s = open_training_session(r);
    EXPECT_EQ(fs::weakly_canonical(s->out_dir), fs::weakly_canonical(dir));
    ASSERT_NE(s->run_dir, nullptr);
    EXPECT_EQ(s->trainer->steps_done(), 3);
    EXPECT_EQ(s->cfg.train.steps, 5);
  }
  EXPECT_EQ(default_run_dir(Config{}, ck), fs::absolute(dir).string());
  // --overwrite of the run being resumed would delete its history: a usage error
  r.overwrite = true;
  try {
    open_training_session(r);
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "--overwrite: " + fs::absolute(dir).string() +
                                         " is the run being resumed; it would delete that run's history");
  }
  // a checkpoint already at train.steps is refused, naming it
  SessionOptions done;
  done.resume = ck;
  done.device = "cpu";
  EXPECT_EQ(error_of([&] { open_training_session(done); }),
            ck + ": checkpoint is at step 3, train.steps is 3; raise it (e.g. --set train.steps=6) to train further");
}

TEST(Session, ABadDeviceIsAUsageErrorNamingTheOption) {
  EXPECT_EQ(check_device("cpu"), "cpu");
  try {
    check_device("tpu");
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "--device: expected auto, cpu or cuda, got 'tpu'");
  }
  EXPECT_EQ(default_run_dir(Config{}, ""), "out/" + Config{}.name);
}

}  // namespace
}  // namespace cgan
