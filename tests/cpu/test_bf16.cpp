// precision "bf16" on the CPU backend (MulPrecision::bf16, cgan/backend/bf16.hpp): the rounding
// itself, GEMMs and convolutions (oneDNN's bf16 kernels and the im2col path) against fp32 ones on
// operands rounded beforehand, at an odd shape and the real anime_small / anime_conv sizes, and the
// config reaching the generator's and discriminator's layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/bf16.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/nn/model.hpp"
#include "cgan/train/trainer.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

using testutil::bits;
using testutil::from_bits;

TEST(Bf16, RoundsToSevenMantissaBitsNearestTiesToEven) {
  EXPECT_EQ(round_to_bf16(1.f), 1.f);
  // the unit at 1 is 2^-7: 1 + 2^-8 is a tie between 1 (even) and 1 + 2^-7 (odd): down;
  // 1 + 3 2^-8 is a tie between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up
  EXPECT_EQ(round_to_bf16(1.f + 0x1p-8f), 1.f);
  EXPECT_EQ(round_to_bf16(1.f + 3 * 0x1p-8f), 1.f + 0x1p-6f);
  EXPECT_EQ(round_to_bf16(1.f + 0x1p-8f + 0x1p-23f), 1.f + 0x1p-7f);  // just above the tie
  EXPECT_EQ(round_to_bf16(1.f + 0x1p-8f - 0x1p-23f), 1.f);            // just below
  EXPECT_EQ(round_to_bf16(-(1.f + 3 * 0x1p-8f)), -(1.f + 0x1p-6f));
  EXPECT_EQ(round_to_bf16(-(1.f + 0x1p-9f)), -1.f);
  // a carry into the exponent, and past the largest finite value
  EXPECT_EQ(round_to_bf16(2.f - 0x1p-23f), 2.f);
  EXPECT_EQ(round_to_bf16(std::numeric_limits<float>::max()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(round_to_bf16(-std::numeric_limits<float>::infinity()), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  // a NaN whose payload lies only in the dropped bits stays a NaN (not an infinity)
  EXPECT_TRUE(std::isnan(round_to_bf16(from_bits(0x7f800001u))));
  EXPECT_TRUE(std::isnan(round_to_bf16(from_bits(0xff800001u))));
  EXPECT_EQ(bits(round_to_bf16(-0.f)), bits(-0.f));
  // denormals keep their 7 leading stored bits, ties to even: 0x00008000 -> 0, 0x00018000 -> 0x00020000
  EXPECT_EQ(bits(round_to_bf16(from_bits(0x00008000u))), 0u);
  EXPECT_EQ(bits(round_to_bf16(from_bits(0x00018000u))), 0x00020000u);
  // random values: the low 16 bits are zero and the error is at most half a unit of the 8th bit
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> e(-20, 20);
  for (int i = 0; i < 100000; ++i) {
    const float x = u(rng) * std::ldexp(1.f, e(rng));
    const float r = round_to_bf16(x);
    ASSERT_EQ(bits(r) & 0xffffu, 0u) << x;
    ASSERT_LE(std::fabs(r - x), std::ldexp(std::fabs(x), -8) * (1 + 1e-6)) << x;
  }
}

// n draws of N(0, 1); v with each value rounded to bf16; v's absolute values.
std::vector<float> normal(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}
std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = round_to_bf16(x);
  return v;
}
std::vector<float> absolute(std::vector<float> v) {
  for (float& x : v) x = std::fabs(x);
  return v;
}

// max |a - ref| / scale over the elements (scale: the sum of the products' magnitudes there).
double worst_ratio(const std::vector<float>& a, const std::vector<float>& ref, const std::vector<float>& scale) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(double(a[i]) - ref[i]) / (double(scale[i]) + 1e-30));
  return worst;
}

// The relative tolerance of a bf16 GEMM or convolution on oneDNN against the fp32 one on operands
// rounded beforehand: their products are the same exact values, so only the order of the fp32
// sums differs (oneDNN blocks its sums; AMX adds pairs of products), a few units of fp32's 2^-24
// times the sum of |products|.
// Measured at most 2.2e-7 (~ 4 units) on these shapes. Not rounding the operands at all moves
// results by 1.5e-5 to 1e-3 of the magnitudes (a long sum's rounding errors partly cancel).
constexpr double kSumOrderTol = 0x1p-19;

// C = alpha op(A) op(B) + beta C0 on backend `be`, with `mul` (A stored [M,K] or [K,M] when ta, B
// [K,N] or [N,K] when tb).
std::vector<float> gemm_on(Backend& be, bool ta, bool tb, const std::vector<float>& A, const std::vector<float>& B,
                           int M, int N, int K, float alpha, float beta, const std::vector<float>& C0,
                           MulPrecision mul) {
  std::vector<float> C = C0;
  float *a = be.alloc(A.size()), *b = be.alloc(B.size()), *c = be.alloc(C.size());
  be.upload(a, A.data(), A.size());
  be.upload(b, B.data(), B.size());
  be.upload(c, C.data(), C.size());
  be.gemm(ta, tb, M, N, K, alpha, a, b, beta, c, mul);
  be.download(C.data(), c, C.size());
  for (float* p : {a, b, c}) be.free(p);
  return C;
}

TEST(Bf16, GemmRoundsBothOperandsAndOnlyWhenAsked) {
  auto be = make_cpu_backend();
  {
    const int M = 3, N = 5, K = 7;
    const std::vector<float> A(M * K, 1.f + 0x1p-9f), B(K * N, 1.f + 0x1p-9f), C0(M * N, 0.f);
    // 1 + 2^-9 rounds to 1 in both operands: each sum is K exactly
    for (float v : gemm_on(*be, false, false, A, B, M, N, K, 1.f, 0.f, C0, MulPrecision::bf16))
      EXPECT_EQ(v, static_cast<float>(K));
    // the same backend keeps fp32 operands when the call does not ask
    for (float v : gemm_on(*be, false, false, A, B, M, N, K, 1.f, 0.f, C0, MulPrecision::fp32))
      EXPECT_GT(v, static_cast<float>(K));
  }
  // random operands, every transpose, alpha and beta, odd sizes and mnist_mlp's (batch 64, 784 ->
  // 256): oneDNN's bf16 matmul against the fp32 GEMM of operands rounded beforehand, to the sums'
  // order (scale: the same GEMM on |operands|); fp32 operands are far outside that
  std::mt19937 rng(3);
  struct Case {
    int M, N, K;
  };
  for (const Case c : {Case{37, 29, 53}, Case{1, 1, 1}, Case{64, 256, 784}, Case{784, 256, 64}}) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const float alpha = t == 3 ? 0.5f : 1.f, beta = t >= 2 ? 1.f : 0.f;
      SCOPED_TRACE(testing::Message() << c.M << "x" << c.N << "x" << c.K << " ta " << ta << " tb " << tb);
      const std::vector<float> a = normal(rng, size_t(c.M) * c.K), b = normal(rng, size_t(c.K) * c.N),
                               c0 = normal(rng, size_t(c.M) * c.N);
      const auto run = [&](const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>& z,
                           MulPrecision mul) { return gemm_on(*be, ta, tb, x, y, c.M, c.N, c.K, alpha, beta, z, mul); };
      const std::vector<float> got = run(a, b, c0, MulPrecision::bf16);
      const std::vector<float> ref = run(rounded(a), rounded(b), c0, MulPrecision::fp32);
      const std::vector<float> mag = run(absolute(rounded(a)), absolute(rounded(b)), absolute(c0), MulPrecision::fp32);
      EXPECT_LE(worst_ratio(got, ref, mag), kSumOrderTol);
      if (c.K > 1) EXPECT_GT(worst_ratio(run(a, b, c0, MulPrecision::fp32), ref, mag), 4 * kSumOrderTol);
    }
  }
  // the bf16 copies and oneDNN's scratchpad are the backend's own memory (the run's memory plan
  // counts them: gemm_workspace_cap covers them for any transposes)
  const size_t copies = (size_t(784) * 64 + size_t(64) * 256) * 2;  // A [784, 64] and B [64, 256] in bf16
  EXPECT_GE(be->alloc_stats().own, copies);
  EXPECT_GE(be->gemm_workspace_cap(784, 256, 64, MulPrecision::bf16) * sizeof(float), copies);
  EXPECT_EQ(be->gemm_workspace_cap(784, 256, 64, MulPrecision::fp32), 0u);
}

// The three conv ops of one shape: y = conv(x, w) + bias, gx, gw (accumulated onto gw0), gbias.
struct ConvOut {
  std::vector<float> y, gx, gw, gb;
};
ConvOut conv_on(Backend& be, const ConvShape& s, const std::vector<float>& x, const std::vector<float>& w,
                const std::vector<float>& bias, const std::vector<float>& gy, const std::vector<float>& gw0) {
  const size_t nx = x.size(), nw = w.size(), ny = gy.size();
  const auto put = [&](const std::vector<float>& h) {
    float* p = be.alloc(h.size());
    be.upload(p, h.data(), h.size());
    return p;
  };
  float *dx = put(x), *dw = put(w), *db = put(bias), *dgy = put(gy), *dgw = put(gw0);
  float *dy = be.alloc(ny), *dgx = be.alloc(nx), *dgb = be.alloc(size_t(s.K));
  const size_t nws = be.conv2d_workspace(s);
  float* ws = nws ? be.alloc(nws) : nullptr;
  be.conv2d_forward(s, dx, dw, db, dy, ws);
  be.conv2d_backward_data(s, dgy, dw, dgx, ws);
  be.conv2d_backward_filter(s, dx, dgy, dgw, dgb, ws);
  ConvOut o{std::vector<float>(ny), std::vector<float>(nx), std::vector<float>(nw), std::vector<float>(s.K)};
  be.download(o.y.data(), dy, ny);
  be.download(o.gx.data(), dgx, nx);
  be.download(o.gw.data(), dgw, nw);
  be.download(o.gb.data(), dgb, s.K);
  for (float* p : {dx, dw, db, dgy, dgw, dy, dgx, dgb}) be.free(p);
  if (ws) be.free(ws);
  return o;
}

std::unique_ptr<Backend> backend_with_conv(const char* mode) {
  const testutil::ScopedEnv env("CGAN_CPU_CONV", mode);
  return make_cpu_backend();
}

// Every conv op of a bf16 shape, on oneDNN (the default) and on the im2col path, against the fp32
// im2col ops on operands rounded beforehand: im2col exactly (it rounds its GEMM operands, the same
// sums in the same order), oneDNN to kSumOrderTol of the products' magnitudes (the same ops on
// |operands|). And the rounding is not a no-op: fp32 operands move outputs far beyond it.
void check_bf16_conv(ConvShape s, uint32_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << s.N << " C=" << s.C << " H=" << s.H << " W=" << s.W << " K=" << s.K
                                  << " R=" << s.R << " S=" << s.S << " stride " << s.stride_h << "x" << s.stride_w
                                  << " pad " << s.pad_h << "x" << s.pad_w);
  s.mul = MulPrecision::fp32;
  const size_t nx = size_t(s.N) * s.C * s.H * s.W, nw = size_t(s.K) * s.C * s.R * s.S;
  const size_t ny = size_t(s.N) * s.K * s.P() * s.Q();
  std::mt19937 rng(seed);
  const std::vector<float> x = normal(rng, nx), w = normal(rng, nw), b = normal(rng, s.K), gy = normal(rng, ny),
                           gw0 = normal(rng, nw);
  auto im2col = backend_with_conv("im2col");
  const ConvOut ref = conv_on(*im2col, s, rounded(x), rounded(w), b, rounded(gy), gw0);
  const ConvOut mag = conv_on(*im2col, s, absolute(rounded(x)), absolute(rounded(w)), absolute(b),
                              absolute(rounded(gy)), absolute(gw0));
  const ConvOut fp32 = conv_on(*im2col, s, x, w, b, gy, gw0);
  s.mul = MulPrecision::bf16;
  const ConvOut emu = conv_on(*im2col, s, x, w, b, gy, gw0);
  EXPECT_EQ(emu.y, ref.y) << "im2col forward";
  EXPECT_EQ(emu.gx, ref.gx) << "im2col backward data";
  EXPECT_EQ(emu.gw, ref.gw) << "im2col backward filter";
  EXPECT_EQ(emu.gb, ref.gb) << "im2col bias gradient";
  auto dnnl = make_cpu_backend();
  const ConvOut got = conv_on(*dnnl, s, x, w, b, gy, gw0);
  const double ry = worst_ratio(got.y, ref.y, mag.y), rx = worst_ratio(got.gx, ref.gx, mag.gx),
               rw = worst_ratio(got.gw, ref.gw, mag.gw), rb = worst_ratio(got.gb, ref.gb, mag.gb);
  EXPECT_LE(ry, kSumOrderTol) << "forward";
  EXPECT_LE(rx, kSumOrderTol) << "backward data";
  EXPECT_LE(rw, kSumOrderTol) << "backward filter";
  EXPECT_LE(rb, kSumOrderTol) << "bias gradient (the sum of the rounded output gradient)";
  std::printf("bf16 conv vs rounded-operand reference (units of the products' magnitudes): y %.2e gx %.2e gw %.2e\n",
              ry, rx, rw);
  // fp32 operands: far outside the tolerance, in each direction
  EXPECT_GT(worst_ratio(fp32.y, ref.y, mag.y), 4 * kSumOrderTol) << "forward";
  EXPECT_GT(worst_ratio(fp32.gx, ref.gx, mag.gx), 4 * kSumOrderTol) << "backward data";
  EXPECT_GT(worst_ratio(fp32.gw, ref.gw, mag.gw), 4 * kSumOrderTol) << "backward filter";
  EXPECT_GT(worst_ratio(fp32.gb, ref.gb, mag.gb), 4 * kSumOrderTol) << "bias gradient";
}

TEST(Bf16, ConvolutionsMultiplyRoundedOperandsAtAnOddShape) {
  ConvShape s;
  s.N = 3, s.C = 5, s.H = 9, s.W = 7, s.K = 4, s.R = 3, s.S = 2;
  s.stride_h = 2, s.stride_w = 1, s.pad_h = 1, s.pad_w = 0;
  check_bf16_conv(s, 11);
}

// The real models' convolutions (batch 2: the same per-sample work, a tenth of the time).
TEST(Bf16, ConvolutionsMultiplyRoundedOperandsAtTheAnimeModelsSizes) {
  auto be = make_cpu_backend();
  uint32_t seed = 100;
  for (const char* config : {"configs/anime_small.json", "configs/anime_conv.json"}) {
    const Config cfg = load_config(std::string(CGAN_SOURCE_DIR) + "/" + config,
                                   {"precision=bf16", "train.batch_size=2", "data.count=4"});
    const HostDataset data = load_dataset(cfg.data);
    Trainer t(cfg, *be, data);
    for (Model* m : {&t.generator(), &t.discriminator()})
      for (const auto& [layer, shape] : m->conv_shapes()) {
        SCOPED_TRACE(testing::Message() << config << " " << m->name() << " layer " << layer);
        EXPECT_EQ(shape.mul, MulPrecision::bf16);
        check_bf16_conv(shape, seed++);
      }
  }
}

// precision "bf16" marks the generator's and discriminator's layers, and nothing else: the default
// config's layers multiply fp32 operands, and so does a network parsed on its own (the evaluator's
// classifier is one).
TEST(Bf16, ThePrecisionReachesBothNetworksLayers) {
  auto be = make_cpu_backend();
  for (const char* precision : {"bf16", "tf32", "fp32"}) {
    const Config cfg = load_config(std::string(CGAN_SOURCE_DIR) + "/configs/anime_small.json",
                                   {std::string("precision=") + precision, "train.batch_size=2", "data.count=4"});
    const bool bf16 = std::string(precision) == "bf16";
    EXPECT_EQ(cfg.generator.bf16, bf16);
    EXPECT_EQ(cfg.discriminator.bf16, bf16);
    const HostDataset data = load_dataset(cfg.data);
    Trainer t(cfg, *be, data);
    for (Model* m : {&t.generator(), &t.discriminator()}) {
      ASSERT_FALSE(m->conv_shapes().empty());
      for (const auto& [layer, shape] : m->conv_shapes())
        EXPECT_EQ(shape.mul, bf16 ? MulPrecision::bf16 : MulPrecision::fp32) << precision << " layer " << layer;
    }
  }
  EXPECT_FALSE(parse_net_spec(nlohmann::json::parse(R"({"layers": [{"linear": 4}]})"), "classifier").bf16);
  // the backend factory takes the three precisions and names them when given another
  for (const char* precision : {"bf16", "tf32", "fp32"}) EXPECT_NO_THROW(make_backend("cpu", {precision}));
  EXPECT_EQ(testutil::error_of([] { make_backend("cpu", {"fp16"}); }),
            "precision: expected fp32, tf32 or bf16, got 'fp16'");
}

}  // namespace
}  // namespace cgan
