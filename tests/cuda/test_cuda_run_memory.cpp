// The whole-run memory check on the GPU (issue 22 item 4): an anime_conv-sized run scaled past the card
// is refused before set-up, naming the biggest consumers and the card's free memory (cudaMemGetInfo).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/train/datasets.hpp"
#include "cgan/train/run_memory.hpp"
#include "cuda_test_util.hpp"
#include "e2e/e2e_util.hpp"

namespace cgan {
namespace {

namespace fs = std::filesystem;

// anime_conv at batch 2,048 (2,048 faces): its activations alone are ~32x those of batch 64, which
// took 9 GiB on an H200, so the plan is far past any single card.
const std::vector<std::string> kScaled = {"data.count=2048", "train.batch_size=2048", "eval.every=0"};

TEST(CudaRunMemory, AnimeConvScaledPastTheCardIsRefusedBeforeSetUp) {
  CGAN_SKIP_WITHOUT_GPU();
  e2e::TempDir d("cuda_run_memory");
  std::string sets;
  for (const std::string& s : kScaled) sets += " --set " + s;
  const auto r =
      e2e::run_cli("--config configs/anime_conv.json --device cuda" + sets + " --out " + (d / "run"), d / "log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(r.output.rfind("cgan_gpu: config anime_conv does not fit: the run needs ", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("activations"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("but the cuda backend has "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" available (cudaMemGetInfo)"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_FALSE(fs::exists(d / "run")) << r.output;

  // The same plan at the shipped batch (64) fits the card: the check refuses only what cannot run.
  const Config cfg = load_config(e2e::source("configs/anime_conv.json"), {"data.count=256", "eval.every=0"});
  const auto be = make_backend("cuda", BackendOptions{cfg.precision});
  const HostDataset data = load_dataset(cfg.data, true);
  const RunMemoryPlan plan =
      plan_run_memory(cfg, data_shape_of(data, cfg.data), data.count, cfg.train.batch_size, false, *be);
  std::printf("anime_conv at batch %d: plan %.2f GiB (%s); the card has %.2f GiB free\n", cfg.train.batch_size,
              plan.total() / 1073741824.0, plan.biggest(4).c_str(), be->memory_available() / 1073741824.0);
  EXPECT_LT(plan.total(), be->memory_available());
  EXPECT_NO_THROW(check_run_memory(plan, cfg.name, *be));
}

}  // namespace
}  // namespace cgan
