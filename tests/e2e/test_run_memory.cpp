// The whole run's memory plan (cgan/train/run_memory.hpp): not an underestimate of what set-up, a
// step and the sample grid allocate, and a config past CGAN_CPU_MEMORY_LIMIT refused before anything exists.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/train/datasets.hpp"
#include "cgan/train/run_memory.hpp"
#include "e2e_util.hpp"

namespace cgan {
namespace {
namespace fs = std::filesystem;

// For shipped configs (MLP, conv, spectral norm with EMA and projection), the plan's total is at
// least the CPU backend's peak allocated bytes after the trainer's set-up and two steps, and at most
// 1.5 times it: the plan's slack is allocation rounding and slot alignment, bounded per layer.
TEST(RunMemory, PlanBoundsThePeakOfSetUpAndSteps) {
  struct Case {
    const char* config;
    std::vector<std::string> sets;
  };
  const std::vector<Case> cases = {
      {"configs/mixture_cond.json", {"data.count=2048"}},
      {"configs/mnist_mlp.json", {}},
      {"configs/anime_small.json", {"data.count=256", "train.batch_size=16", "log.samples_per_label=2"}},
      {"configs/anime_sngan.json", {"data.count=128", "train.batch_size=8", "log.samples_per_label=2"}},
      {"configs/mnist_sngan_proj.json", {"train.batch_size=16"}},
      // bf16: the rounded copies of dense GEMM operands (and oneDNN's bf16 layout copies)
      {"configs/mnist_mlp.json", {"precision=bf16"}},
      {"configs/anime_small.json",
       {"data.count=256", "train.batch_size=16", "log.samples_per_label=2", "precision=bf16"}},
  };
  for (const Case& c : cases) {
    std::vector<std::string> sets = c.sets;
    sets.push_back("eval.every=0");
    const Config cfg = load_config(e2e::source(c.config), sets);
    const auto be = make_backend("cpu", BackendOptions{cfg.precision});
    Config run_cfg = cfg;
    if (run_cfg.data.dir.rfind("data/", 0) == 0) run_cfg.data.dir = e2e::source(run_cfg.data.dir);
    const HostDataset data = load_dataset(run_cfg.data, true);
    const RunMemoryPlan plan =
        plan_run_memory(run_cfg, data_shape_of(data, run_cfg.data), data.count, run_cfg.train.batch_size, false, *be);
    uint64_t peak = 0;
    {
      Trainer t(run_cfg, *be, data);
      t.init();
      t.step();
      t.step();
      peak = be->alloc_stats().peak;
    }
    EXPECT_EQ(be->alloc_stats().current, 0u) << c.config;
    ASSERT_GT(peak, 0u) << c.config;
    EXPECT_GE(plan.total(), peak) << c.config << ": plan " << plan.total() << " (" << plan.biggest(9) << ")";
    EXPECT_LE(static_cast<double>(plan.total()), 1.5 * static_cast<double>(peak))
        << c.config << ": plan " << plan.total() << " vs peak " << peak << " (" << plan.biggest(9) << ")";
    std::printf("%s: plan %llu bytes, peak %llu bytes (x%.3f)\n", c.config,
                static_cast<unsigned long long>(plan.total()), static_cast<unsigned long long>(peak),
                static_cast<double>(plan.total()) / static_cast<double>(peak));
  }
}

// Through the binary: a limit below the plan is one line naming the biggest consumers and the
// limit, exit 1, and no run directory; a malformed limit is a one-line error naming the variable.
TEST(RunMemory, ARunPastTheCpuLimitIsRefusedBeforeItsRunDirectoryExists) {
  e2e::TempDir d;
  const std::string out = d / "run";
  const std::string args = "train --config configs/mnist_mlp.json --device cpu --set eval.every=0 --out '" + out + "'";
  ::setenv("CGAN_CPU_MEMORY_LIMIT", "64M", 1);
  const auto r = e2e::run_cli(args, d / "log");
  ::setenv("CGAN_CPU_MEMORY_LIMIT", "64k", 1);
  const auto bad = e2e::run_cli(args, d / "log_bad");
  ::setenv("CGAN_CPU_MEMORY_LIMIT", "lots", 1);
  const auto malformed = e2e::run_cli(args, d / "log_malformed");
  ::unsetenv("CGAN_CPU_MEMORY_LIMIT");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("config mnist_mlp does not fit: the run needs "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("data set on the device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("but the cpu backend has 67 MB available (CGAN_CPU_MEMORY_LIMIT)"), std::string::npos)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_FALSE(fs::exists(out)) << r.output;
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("does not fit"), std::string::npos) << bad.output;
  EXPECT_EQ(malformed.code, 1) << malformed.output;
  EXPECT_NE(malformed.output.find("CGAN_CPU_MEMORY_LIMIT: expected a size in bytes"), std::string::npos)
      << malformed.output;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace cgan
