// Shared helpers of the end-to-end tests.
#pragma once
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/nn/model.hpp"
#include "cgan/train/trainer.hpp"

namespace e2e {

using TempDir = testutil::TempDir;

inline std::string source(const std::string& rel) { return std::string(CGAN_SOURCE_DIR) + "/" + rel; }

// Whether tools/fetch_data.sh mnist has put MNIST's training images (plain or gzip) in data/mnist.
inline bool has_mnist() {
  return std::filesystem::exists(source("data/mnist/train-images-idx3-ubyte")) ||
         std::filesystem::exists(source("data/mnist/train-images-idx3-ubyte.gz"));
}

// How many lines a command's output holds ('\n' count): the one-line-error checks.
inline int lines_of(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

struct RunResult {
  int code = -1;
  std::string output;  // stdout + stderr
};

// Runs the real cgan_gpu binary with a shell-quoted argument string, in the source tree (or `cwd`).
inline RunResult run_cli(const std::string& args, const std::string& log_path,
                         const std::string& cwd = CGAN_SOURCE_DIR) {
  const std::string cmd = "cd '" + cwd + "' && '" + CGAN_BINARY + "' " + args + " > '" + log_path + "' 2>&1";
  RunResult r;
  const int st = std::system(cmd.c_str());
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(log_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

// Generates n samples from a trained generator (evaluation mode), label i % K for sample i.
inline std::vector<float> generate(cgan::Backend& be, const cgan::Config& cfg, cgan::Model& G, int n, int K,
                                   std::vector<int32_t>* labels_out, uint64_t seed = 99) {
  cgan::Model S(be, cfg.generator, cfg.noise_dim, K, n, "generator", &G);
  float* z = be.alloc(static_cast<size_t>(n) * cfg.noise_dim);
  int32_t* y = be.alloc_int(n);
  float* cond = be.alloc(static_cast<size_t>(n) * std::max(K, 1));
  std::vector<int32_t> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = K > 0 ? i % K : 0;
  be.rand_normal(static_cast<size_t>(n) * cfg.noise_dim, seed, 7, 0, 0.f, 1.f, z);
  be.upload_int(y, labels.data(), n);
  if (K > 0) be.one_hot(n, K, y, cond);
  const float* out = S.forward(z, y, cond, false);
  std::vector<float> h(static_cast<size_t>(n) * S.out_dim());
  be.download(h.data(), out, h.size());
  be.free(z), be.free(y), be.free(cond);
  if (labels_out) *labels_out = labels;
  return h;
}

// Bit-for-bit equality of two models' parameters and batch-norm running statistics.
inline void expect_models_identical(cgan::Backend& be, cgan::Model& a, cgan::Model& b) {
  ASSERT_EQ(a.param_count(), b.param_count()) << a.name();
  ASSERT_EQ(a.state_count(), b.state_count()) << a.name();
  auto fetch = [&](const float* p, size_t n) {
    std::vector<float> h(n);
    be.download(h.data(), p, n);
    return h;
  };
  const std::vector<float> pa = fetch(a.params(), a.param_count()), pb = fetch(b.params(), b.param_count());
  size_t diff = 0;
  for (size_t i = 0; i < pa.size(); ++i) diff += std::memcmp(&pa[i], &pb[i], sizeof(float)) != 0;
  EXPECT_EQ(diff, 0u) << a.name() << ": " << diff << " of " << pa.size() << " weights differ";
  if (a.state_count() > 0) {
    const std::vector<float> sa = fetch(a.state(), a.state_count()), sb = fetch(b.state(), b.state_count());
    EXPECT_EQ(0, std::memcmp(sa.data(), sb.data(), sa.size() * sizeof(float)))
        << a.name() << " batch-norm running statistics differ";
  }
}

// A model's parameters and batch-norm running statistics, read from its backend.
struct Weights {
  std::vector<float> params, state;
};
inline Weights weights_of(cgan::Backend& be, const cgan::Model& m) {
  Weights w{std::vector<float>(m.param_count()), std::vector<float>(m.state_count())};
  if (!w.params.empty()) be.download(w.params.data(), m.params(), w.params.size());
  if (!w.state.empty()) be.download(w.state.data(), m.state(), w.state.size());
  return w;
}

// train.ema's average after one G step past its start: avg = decay avg0 + (1 - decay) w, element by
// element for the parameters and the batch-norm statistics, where avg0 is the average before the
// step and w the generator after it, both read from the backend under test (so it is held to its
// own weights). Tolerance 1e-6 + 1e-6 |ref| (fp32 rounding of the update); the generator must have
// moved from avg0 by 100 times that somewhere, or an average left as it was would pass too.
inline void expect_average_is_one_decay_step(cgan::Backend& be, const Weights& avg0, const cgan::Model& G,
                                             const cgan::Model& avg, float decay) {
  const Weights w = weights_of(be, G), got = weights_of(be, avg);
  ASSERT_EQ(avg0.params.size(), w.params.size());
  ASSERT_EQ(avg0.state.size(), w.state.size());
  ASSERT_EQ(got.params.size(), w.params.size());
  ASSERT_EQ(got.state.size(), w.state.size());
  const struct {
    const char* what;
    const std::vector<float>&a0, &w, &got;
  } bufs[] = {{"parameters", avg0.params, w.params, got.params},
              {"batch-norm statistics", avg0.state, w.state, got.state}};
  double moved = 0;
  for (const auto& b : bufs) {
    size_t bad = 0, first = 0;
    double worst = 0;
    for (size_t i = 0; i < b.w.size(); ++i) {
      const double ref = decay * static_cast<double>(b.a0[i]) + (1.0 - decay) * static_cast<double>(b.w[i]);
      const double err = std::fabs(b.got[i] - ref);
      moved = std::max(moved, std::fabs(static_cast<double>(b.w[i]) - b.a0[i]));
      if (!(err <= 1e-6 + 1e-6 * std::fabs(ref))) {
        if (bad++ == 0) first = i;
        worst = std::max(worst, err);
      }
    }
    if (bad > 0) {
      const double ref = decay * static_cast<double>(b.a0[first]) + (1.0 - decay) * static_cast<double>(b.w[first]);
      ADD_FAILURE() << avg.name() << " " << b.what << ": " << bad << " of " << b.w.size()
                    << " elements are not decay x before + (1 - decay) x the generator's (decay " << decay
                    << "); worst error " << worst << "; first [" << first << "]: " << b.got[first] << ", expected "
                    << ref << " (before " << b.a0[first] << ", generator " << b.w[first] << ")";
    }
  }
  EXPECT_GT(moved, 1e-4) << "the generator did not move from the average's previous weights: the check proves nothing";
}

// N steps, checkpoint through a safetensors file, restore into a fresh trainer, M more steps: the
// weights equal those of N + M steps in one run, bit for bit. N = 37 steps cross epoch
// boundaries on the small sets the callers pass, so reshuffles are replayed too.
inline void check_resume_exact(cgan::Backend& be, const std::string& config, const std::vector<std::string>& sets) {
  SCOPED_TRACE(config);
  const cgan::Config cfg = cgan::load_config(source(config), sets);
  const cgan::HostDataset data = cgan::load_dataset(cfg.data);
  const int N = 37, M = 29;
  cgan::Trainer a(cfg, be, data);
  a.init();
  for (int i = 0; i < N + M; ++i) a.step(), a.take_rows();

  cgan::Trainer b(cfg, be, data);
  b.init();
  for (int i = 0; i < N; ++i) b.step(), b.take_rows();
  TempDir dir("resume");
  cgan::write_safetensors(dir / "ck.safetensors", b.snapshot());
  const cgan::SafeTensors ck = cgan::read_safetensors(dir / "ck.safetensors");
  cgan::Trainer c(cfg, be, data);
  c.restore(ck, dir / "ck.safetensors");
  EXPECT_EQ(c.steps_done(), N);
  for (int i = 0; i < M; ++i) c.step(), c.take_rows();
  EXPECT_EQ(c.steps_done(), N + M);
  expect_models_identical(be, a.generator(), c.generator());
  expect_models_identical(be, a.discriminator(), c.discriminator());
  ASSERT_EQ(a.weight_average() != nullptr, c.weight_average() != nullptr);
  if (a.weight_average())  // train.ema's average (weights and batch-norm statistics) too
    expect_models_identical(be, a.weight_average()->model(), c.weight_average()->model());
}

// Trains configs/mixture_cond.json (with `sets`) to its last step on the CPU, then draws 250
// samples per label: at least 95 % of each label's samples must lie nearest that label's mode.
inline void check_mixture_labels_on_their_modes(const std::vector<std::string>& sets) {
  const cgan::Config cfg = cgan::load_config(source("configs/mixture_cond.json"), sets);
  auto be = cgan::make_cpu_backend();
  const cgan::HostDataset data = cgan::load_dataset(cfg.data);
  cgan::Trainer t(cfg, *be, data);
  t.init();
  while (t.steps_done() < cfg.train.steps) {
    t.step();
    if (t.steps_done() % 100 == 0) t.take_rows();
  }
  t.take_rows();
  const int K = cfg.data.modes, per = 250;
  std::vector<int32_t> labels;
  const auto xy = generate(*be, cfg, t.generator(), K * per, K, &labels);
  const auto centers = cgan::mixture_centers(K, cfg.data.radius);
  std::vector<int> hit(K, 0), n(K, 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    int best = 0;
    double bd = 1e30;
    for (int k = 0; k < K; ++k) {
      const double dx = xy[2 * i] - centers[2 * k], dy = xy[2 * i + 1] - centers[2 * k + 1];
      if (dx * dx + dy * dy < bd) bd = dx * dx + dy * dy, best = k;
    }
    ++n[labels[i]];
    hit[labels[i]] += best == labels[i];
  }
  for (int k = 0; k < K; ++k) {
    const double share = static_cast<double>(hit[k]) / n[k];
    std::printf("label %d: %.1f%% of samples nearest its mode\n", k, 100 * share);
    EXPECT_GE(share, 0.95) << "label " << k;
  }
}

}  // namespace e2e
