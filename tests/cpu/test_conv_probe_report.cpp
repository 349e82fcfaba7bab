// The convolution probe's report (bench --conv-probe): which algorithm it names per conv, direction
// and variant, the sums, and the CPU backend's refusal.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/report/conv_probe.hpp"
#include "test_util.hpp"

using namespace cgan;

namespace {

ConvProbeRow row(const char* dir, const char* variant, int algo, double ms, bool det, const char* status = "ok") {
  ConvProbeRow r;
  r.direction = dir, r.variant = variant, r.algo = algo, r.ms = ms, r.deterministic = det, r.status = status;
  r.C = 8, r.K = 16, r.math = "tensor-op", r.workspace = 3u << 20;
  return r;
}

}  // namespace

TEST(ConvProbeReport, FastestDeterministicAndFastestOfAnyPerDirectionAndVariant) {
  ConvShape s;
  s.N = 2, s.C = 3, s.H = 8, s.W = 8, s.K = 16, s.R = 3, s.S = 3, s.pad_h = s.pad_w = 1;
  EXPECT_DOUBLE_EQ(conv_flops(s), 2.0 * 2 * 16 * 8 * 8 * 3 * 3 * 3);
  ConvProbeEntry e{"generator", 4, s, {}};
  // forward: algo 1 is faster but not deterministic; algo 6 failed (fastest time, but not "ok")
  e.rows = {row("forward", "v", 0, 2.0, true),
            row("forward", "v", 1, 1.0, false),
            row("forward", "v", 2, 1.5, true),
            row("forward", "v", 6, 0.1, true, "CUDNN_STATUS_NOT_SUPPORTED"),
            row("backward-data", "v", 0, 3.0, true),
            row("backward-filter", "v", 3, 4.0, false),  // no deterministic candidate
            row("forward", "w", 0, 0.5, true),
            row("backward-data", "w", 0, 0.5, true),
            row("backward-filter", "w", 1, 0.25, true)};
  EXPECT_EQ(fastest(e.rows, "forward", "v", true)->algo, 2);
  EXPECT_EQ(fastest(e.rows, "forward", "v", false)->algo, 1);
  EXPECT_EQ(fastest(e.rows, "backward-filter", "v", true), nullptr);
  EXPECT_EQ(fastest(e.rows, "backward-filter", "v", false)->algo, 3);
  EXPECT_EQ(fastest(e.rows, "forward", "x", false), nullptr);

  const std::string t = conv_probe_table({e});
  EXPECT_NE(t.find("| generator[4] | 2x3x8x8 -> 16 3x3/1 pad 1 | forward | v | 8, 16 | 1.500 | 2, tensor-op | 3.0 | "),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("| 1.000 | 1, no |"), std::string::npos) << t;  // fastest of any: the non-deterministic one
  EXPECT_NE(t.find("| backward-filter | v | 8, 16 | none | - | - | - | 4.000 | 3, no |"), std::string::npos) << t;
  EXPECT_NE(t.find("    v: none (a direction has no deterministic algorithm)"), std::string::npos) << t;
  EXPECT_NE(t.find("    w: 1.250 ms"), std::string::npos) << t;

  const nlohmann::json j = conv_probe_json({e});
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["model"], "generator");
  EXPECT_EQ(j[0]["shape"]["K"], 16);
  EXPECT_EQ(j[0]["rows"].size(), e.rows.size());
  EXPECT_EQ(j[0]["rows"][3]["status"], "CUDNN_STATUS_NOT_SUPPORTED");
  EXPECT_EQ(j[0]["rows"][1]["deterministic"], false);
}

TEST(ConvProbeReport, TheCpuBackendHasNoAlgorithmsToProbe) {
  auto be = make_cpu_backend();
  ConvShape s;
  EXPECT_EQ(testutil::error_of([&] { be->conv_probe(s); }),
            "--conv-probe: the cpu backend has no convolution algorithms to choose from; the probe times cuDNN's "
            "(--device cuda)");
}
