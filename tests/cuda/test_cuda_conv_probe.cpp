// The convolution probe on the GPU (issue 20 item 1): every variant and direction of a small odd conv
// comes back, with deterministic fp32 algorithms that ran. The real anime_conv sizes are probed by
// tools/gpu_check.sh (bench --conv-probe), whose table is the figure, not a pass/fail.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "cgan/backend/backend.hpp"
#include "cgan/report/conv_probe.hpp"
#include "cuda_test_util.hpp"

namespace cgan {
namespace {

void expect_probe(const ConvShape& s) {
  const auto be = make_backend("cuda", BackendOptions{});
  const std::vector<ConvProbeRow> rows = be->conv_probe(s);
  ConvProbeEntry e{"test", 0, s, rows};
  std::printf("%s\n", conv_probe_table({e}).c_str());
  for (const char* v : {"nchw-fp32", "nchw-tf32", "nhwc-pad4-tf32", "nhwc-pad8-bf16"})
    for (const char* d : {"forward", "backward-data", "backward-filter"}) {
      bool named = false;
      for (const ConvProbeRow& r : rows) named = named || (r.variant == v && r.direction == d);
      EXPECT_TRUE(named) << v << " " << d;
    }
  for (const char* d : {"forward", "backward-data", "backward-filter"}) {
    const ConvProbeRow* r = fastest(rows, d, "nchw-fp32", true);  // what the backend runs today
    ASSERT_NE(r, nullptr) << d;
    EXPECT_GT(r->ms, 0.0) << d;
    EXPECT_EQ(r->math, "fma") << d;
  }
  for (const ConvProbeRow& r : rows) {
    if (r.variant == "nhwc-pad8-bf16") EXPECT_EQ(r.C % 8, 0);
    if (r.variant == "nhwc-pad4-tf32") EXPECT_EQ(r.K % 4, 0);
  }
}

TEST(CudaConvProbe, EveryVariantAndDirectionOfASmallOddConv) {
  CGAN_SKIP_WITHOUT_GPU();
  ConvShape s;
  s.N = 3, s.C = 5, s.H = 11, s.W = 9, s.K = 7, s.R = 3, s.S = 3, s.pad_h = s.pad_w = 1;
  expect_probe(s);
}

}  // namespace
}  // namespace cgan
