// Shared helpers of the end-to-end tests.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "cgan/backend.hpp"
#include "cgan/model.hpp"
#include "cgan/trainer.hpp"

namespace e2e {

using TempDir = testutil::TempDir;

inline std::string source(const std::string& rel) { return std::string(CGAN_SOURCE_DIR) + "/" + rel; }

struct RunResult {
  int code = -1;
  std::string output;  // stdout + stderr
};

// Runs the real cgan_gpu binary with a shell-quoted argument string.
inline RunResult run_cli(const std::string& args, const std::string& log_path) {
  const std::string cmd = std::string("cd '") + CGAN_SOURCE_DIR + "' && '" + CGAN_BINARY + "' " + args + " > '" +
                          log_path + "' 2>&1";
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

}  // namespace e2e
