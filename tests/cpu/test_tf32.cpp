// The CPU backend's TF32 emulation (cgan/backend/tf32.hpp, make_cpu_backend(true)): the rounding itself,
// GEMMs and convolutions with rounded operands. (How far a whole iteration moves under it is the
// scale of the CUDA tf32 whole-iteration check: tests/grad_compare.hpp, pass_scaled.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/tf32.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

using testutil::bits;
using testutil::from_bits;

TEST(Tf32, RoundsToTenMantissaBitsNearestTiesAway) {
  EXPECT_EQ(round_to_tf32(1.f), 1.f);
  // 1 + 2^-10 is representable; 1 + 2^-11 is a tie (away from zero: up), below it rounds down
  EXPECT_EQ(round_to_tf32(1.f + 0x1p-10f), 1.f + 0x1p-10f);
  EXPECT_EQ(round_to_tf32(1.f + 0x1p-11f), 1.f + 0x1p-10f);
  EXPECT_EQ(round_to_tf32(1.f + 0x1p-11f - 0x1p-23f), 1.f);
  EXPECT_EQ(round_to_tf32(-(1.f + 0x1p-11f)), -(1.f + 0x1p-10f));
  EXPECT_EQ(round_to_tf32(-(1.f + 0x1p-12f)), -1.f);
  // a carry into the exponent, and past the largest finite value
  EXPECT_EQ(round_to_tf32(2.f - 0x1p-23f), 2.f);
  EXPECT_EQ(round_to_tf32(std::numeric_limits<float>::max()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(round_to_tf32(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(round_to_tf32(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(bits(round_to_tf32(-0.f)), bits(-0.f));
  // denormals keep their 10 leading stored bits: 0x00001fff -> 0x00002000
  EXPECT_EQ(bits(round_to_tf32(from_bits(0x00001fffu))), 0x00002000u);
  // random values: the low 13 bits are zero and the error is at most half a unit of the 11th bit
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> e(-20, 20);
  for (int i = 0; i < 100000; ++i) {
    const float x = u(rng) * std::ldexp(1.f, e(rng));
    const float r = round_to_tf32(x);
    ASSERT_EQ(bits(r) & 0x1fffu, 0u) << x;
    ASSERT_LE(std::fabs(r - x), std::ldexp(std::fabs(x), -11) * (1 + 1e-6)) << x;
  }
}

// C = A B on backend `be` (A [M,K], B [K,N] row-major).
std::vector<float> gemm_on(Backend& be, const std::vector<float>& A, const std::vector<float>& B, int M, int N, int K) {
  std::vector<float> C(size_t(M) * N);
  float *a = be.alloc(A.size()), *b = be.alloc(B.size()), *c = be.alloc(C.size());
  be.upload(a, A.data(), A.size());
  be.upload(b, B.data(), B.size());
  be.gemm(false, false, M, N, K, 1.f, a, b, 0.f, c);
  be.download(C.data(), c, C.size());
  for (float* p : {a, b, c}) be.free(p);
  return C;
}

TEST(Tf32, EmulatedGemmRoundsBothOperands) {
  const int M = 3, N = 5, K = 7;
  const std::vector<float> A(M * K, 1.f + 0x1p-12f), B(K * N, 1.f + 0x1p-12f);
  // 1 + 2^-12 in both operands rounds to 1: the product's sum is K exactly
  for (float v : gemm_on(*make_cpu_backend(true), A, B, M, N, K)) EXPECT_EQ(v, static_cast<float>(K));
  // the plain backend keeps the operands: (1 + 2^-12)^2 * 7 > 7
  for (float v : gemm_on(*make_cpu_backend(), A, B, M, N, K)) EXPECT_GT(v, static_cast<float>(K));
  // one operand alone rounded is not enough: 7 (1 + 2^-12) > 7
  std::vector<float> A1(M * K, 1.f);
  for (float v : gemm_on(*make_cpu_backend(), A1, B, M, N, K)) EXPECT_GT(v, static_cast<float>(K));
}

// Every convolution op with emulation equals the plain op on operands rounded beforehand, bit for
// bit (im2col copies values, so rounding x first is rounding its columns), on an odd shape. Emulation
// runs the im2col path, so the plain backend runs it too (CGAN_CPU_CONV=im2col; its default is
// oneDNN's convolution primitives, whose arithmetic differs).
TEST(Tf32, EmulatedConvolutionsEqualPlainOnesOnRoundedOperands) {
  ConvShape s;
  s.N = 3, s.C = 5, s.H = 9, s.W = 7, s.K = 4, s.R = 3, s.S = 2;
  s.stride_h = 2, s.stride_w = 1, s.pad_h = 1, s.pad_w = 0;
  const size_t nx = size_t(s.N) * s.C * s.H * s.W, nw = size_t(s.K) * s.C * s.R * s.S;
  const size_t ny = size_t(s.N) * s.K * s.P() * s.Q();
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  const auto normal = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    return v;
  };
  const auto rounded = [](std::vector<float> v) {
    for (float& x : v) x = round_to_tf32(x);
    return v;
  };
  const std::vector<float> x = normal(nx), w = normal(nw), gy = normal(ny), gw0 = normal(nw);
  struct Run {
    std::unique_ptr<Backend> be;
    std::vector<float> y, gx, gw;
  };
  // emu: the emulating backend on the raw operands; plain: the plain one on rounded operands
  std::unique_ptr<Backend> im2col;
  {
    const testutil::ScopedEnv env("CGAN_CPU_CONV", "im2col");
    im2col = make_cpu_backend();
  }
  Run runs[2] = {{make_cpu_backend(true), {}, {}, {}}, {std::move(im2col), {}, {}, {}}};
  for (int k = 0; k < 2; ++k) {
    Backend& be = *runs[k].be;
    const auto put = [&](const std::vector<float>& h) {
      float* p = be.alloc(h.size());
      be.upload(p, h.data(), h.size());
      return p;
    };
    float *dx = put(k ? rounded(x) : x), *dw = put(k ? rounded(w) : w), *dgy = put(k ? rounded(gy) : gy);
    float *dy = be.alloc(ny), *dgx = be.alloc(nx), *dgw = put(gw0);
    const size_t nws = be.conv2d_workspace(s);
    float* ws = nws ? be.alloc(nws) : nullptr;
    be.conv2d_forward(s, dx, dw, nullptr, dy, ws);
    be.conv2d_backward_data(s, dgy, dw, dgx, ws);
    be.conv2d_backward_filter(s, dx, dgy, dgw, nullptr, ws);
    runs[k].y.resize(ny), runs[k].gx.resize(nx), runs[k].gw.resize(nw);
    be.download(runs[k].y.data(), dy, ny);
    be.download(runs[k].gx.data(), dgx, nx);
    be.download(runs[k].gw.data(), dgw, nw);
    for (float* p : {dx, dw, dgy, dy, dgx, dgw}) be.free(p);
    if (ws) be.free(ws);
  }
  EXPECT_EQ(runs[0].y, runs[1].y) << "forward";
  EXPECT_EQ(runs[0].gx, runs[1].gx) << "backward data";
  EXPECT_EQ(runs[0].gw, runs[1].gw) << "backward filter";
  // and the rounding matters at all on these values
  auto plain = make_cpu_backend();
  float *dx = plain->alloc(nx), *dw = plain->alloc(nw), *dy = plain->alloc(ny);
  plain->upload(dx, x.data(), nx);
  plain->upload(dw, w.data(), nw);
  const size_t nws = plain->conv2d_workspace(s);
  float* ws = nws ? plain->alloc(nws) : nullptr;
  plain->conv2d_forward(s, dx, dw, nullptr, dy, ws);
  std::vector<float> y(ny);
  plain->download(y.data(), dy, ny);
  EXPECT_NE(y, runs[0].y) << "rounding the operands changed no output";
  for (float* p : {dx, dw, dy}) plain->free(p);
  if (ws) plain->free(ws);
}

}  // namespace
}  // namespace cgan
