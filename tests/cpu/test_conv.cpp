// CPU backend conv2d / pool2d tests: forward against a direct double-precision loop, every backward
// against central finite differences of that loop (and, on shapes too big for finite differences,
// against the loop's own adjoint), max-pool ties, and the argument checks.
//
// Inputs are fresh on every run: each test seeds its std::mt19937 from std::random_device (or from
// CGAN_TEST_SEED to replay a failure); the seed is printed with every failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"
#include "ops_test_util.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

using namespace opstest;

class Conv : public RandomCpuTest {
 protected:
  // A random conv shape with small sizes (odd ones included), strides 1..3, padding, and
  // non-square kernels; the kernel always fits the padded input.
  ConvShape conv_shape(int max_hw = 9) {
    ConvShape s;
    s.N = randint(1, 3);
    s.C = randint(1, 3);
    s.K = randint(1, 3);
    s.H = randint(1, max_hw);
    s.W = randint(1, max_hw);
    s.stride_h = randint(1, 3);
    s.stride_w = randint(1, 3);
    s.pad_h = randint(0, 2);
    s.pad_w = randint(0, 2);
    s.R = randint(1, std::min(4, s.H + 2 * s.pad_h));
    s.S = randint(1, std::min(4, s.W + 2 * s.pad_w));
    return s;
  }
  PoolShape pool_shape(int max_hw = 9) {
    PoolShape s;
    s.N = randint(1, 3);
    s.C = randint(1, 3);
    s.H = randint(1, max_hw);
    s.W = randint(1, max_hw);
    s.R = randint(1, std::min(4, s.H));
    s.S = randint(1, std::min(4, s.W));
    s.pad_h = randint(0, s.R / 2);
    s.pad_w = randint(0, s.S / 2);
    s.stride_h = randint(1, 3);
    s.stride_w = randint(1, 3);
    return s;
  }
};

std::string str(const ConvShape& s) {
  return cat("N=", s.N, " C=", s.C, " H=", s.H, " W=", s.W, " K=", s.K, " R=", s.R, " S=", s.S, " stride=", s.stride_h,
             "x", s.stride_w, " pad=", s.pad_h, "x", s.pad_w, " -> ", s.P(), "x", s.Q());
}
std::string str(const PoolShape& s) {
  return cat("N=", s.N, " C=", s.C, " H=", s.H, " W=", s.W, " window=", s.R, "x", s.S, " stride=", s.stride_h, "x",
             s.stride_w, " pad=", s.pad_h, "x", s.pad_w, " -> ", s.P(), "x", s.Q());
}

size_t xsize(const ConvShape& s) { return size_t(s.N) * s.C * s.H * s.W; }
size_t wsize(const ConvShape& s) { return size_t(s.K) * s.C * s.R * s.S; }
size_t ysize(const ConvShape& s) { return size_t(s.N) * s.K * s.P() * s.Q(); }
size_t xsize(const PoolShape& s) { return size_t(s.N) * s.C * s.H * s.W; }
size_t ysize(const PoolShape& s) { return size_t(s.N) * s.C * s.P() * s.Q(); }

// ---- references: the definitions as direct loops in double

VecD conv_ref(const ConvShape& s, const VecD& x, const VecD& w, const VecD* b) {
  const int P = s.P(), Q = s.Q();
  VecD y(ysize(s));
  for (int n = 0; n < s.N; ++n)
    for (int k = 0; k < s.K; ++k)
      for (int p = 0; p < P; ++p)
        for (int q = 0; q < Q; ++q) {
          double acc = b ? (*b)[k] : 0.0;
          for (int c = 0; c < s.C; ++c)
            for (int r = 0; r < s.R; ++r)
              for (int t = 0; t < s.S; ++t) {
                const int h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
                if (h < 0 || h >= s.H || v < 0 || v >= s.W) continue;
                acc += w[((size_t(k) * s.C + c) * s.R + r) * s.S + t] * x[((size_t(n) * s.C + c) * s.H + h) * s.W + v];
              }
          y[((size_t(n) * s.K + k) * P + p) * Q + q] = acc;
        }
  return y;
}

// The adjoints of conv_ref (for shapes too big for finite differences): gx, gw, gb of <gy, y>.
void conv_ref_backward(const ConvShape& s, const VecD& x, const VecD& w, const VecD& gy, VecD& gx, VecD& gw, VecD& gb) {
  const int P = s.P(), Q = s.Q();
  gx.assign(xsize(s), 0.0);
  gw.assign(wsize(s), 0.0);
  gb.assign(s.K, 0.0);
  for (int n = 0; n < s.N; ++n)
    for (int k = 0; k < s.K; ++k)
      for (int p = 0; p < P; ++p)
        for (int q = 0; q < Q; ++q) {
          const double g = gy[((size_t(n) * s.K + k) * P + p) * Q + q];
          gb[k] += g;
          for (int c = 0; c < s.C; ++c)
            for (int r = 0; r < s.R; ++r)
              for (int t = 0; t < s.S; ++t) {
                const int h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
                if (h < 0 || h >= s.H || v < 0 || v >= s.W) continue;
                const size_t wi = ((size_t(k) * s.C + c) * s.R + r) * s.S + t;
                const size_t xi = ((size_t(n) * s.C + c) * s.H + h) * s.W + v;
                gx[xi] += g * w[wi];
                gw[wi] += g * x[xi];
              }
        }
}

// avg: sum of the window's real cells / (R*S); max: max over the real cells.
VecD pool_ref(Pool k, const PoolShape& s, const VecD& x) {
  const int P = s.P(), Q = s.Q();
  VecD y(ysize(s));
  for (int nc = 0; nc < s.N * s.C; ++nc)
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q) {
        double acc = k == Pool::avg ? 0.0 : -std::numeric_limits<double>::infinity();
        for (int r = 0; r < s.R; ++r)
          for (int t = 0; t < s.S; ++t) {
            const int h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
            if (h < 0 || h >= s.H || v < 0 || v >= s.W) continue;
            const double xv = x[(size_t(nc) * s.H + h) * s.W + v];
            acc = k == Pool::avg ? acc + xv : std::max(acc, xv);
          }
        y[(size_t(nc) * P + p) * Q + q] = k == Pool::avg ? acc / (s.R * s.S) : acc;
      }
  return y;
}

// Max pooling's gradient: each gy to the first maximum of its window in row-major order.
VecD maxpool_ref_backward(const PoolShape& s, const VecD& x, const VecD& gy) {
  const int P = s.P(), Q = s.Q();
  VecD gx(xsize(s), 0.0);
  for (int nc = 0; nc < s.N * s.C; ++nc)
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q) {
        double best = -std::numeric_limits<double>::infinity();
        size_t at = SIZE_MAX;
        for (int r = 0; r < s.R; ++r)
          for (int t = 0; t < s.S; ++t) {
            const int h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
            if (h < 0 || h >= s.H || v < 0 || v >= s.W) continue;
            const size_t i = (size_t(nc) * s.H + h) * s.W + v;
            if (at == SIZE_MAX || x[i] > best) {
              best = x[i];
              at = i;
            }
          }
        gx[at] += gy[(size_t(nc) * P + p) * Q + q];
      }
  return gx;
}

struct ConvRun {
  VecF y, gx, gw, gb, gw0, gb0;
};

// Runs the three conv ops on the backend (host memory: the CPU backend), gw/gb starting from
// random values to check that they accumulate.
ConvRun run_conv(Backend& be, const ConvShape& s, const VecF& x, const VecF& w, const VecF& b, const VecF& gy,
                 const VecF& gw0, const VecF& gb0) {
  const size_t nws = be.conv2d_workspace(s);
  VecF ws(std::max<size_t>(nws, 1), std::numeric_limits<float>::quiet_NaN());  // must not be read before written
  ConvRun r;
  r.y.assign(ysize(s), std::numeric_limits<float>::quiet_NaN());
  be.conv2d_forward(s, x.data(), w.data(), b.data(), r.y.data(), ws.data());
  r.gx.assign(xsize(s), std::numeric_limits<float>::quiet_NaN());  // overwritten
  be.conv2d_backward_data(s, gy.data(), w.data(), r.gx.data(), ws.data());
  r.gw = gw0;
  r.gb = gb0;
  be.conv2d_backward_filter(s, x.data(), gy.data(), r.gw.data(), r.gb.data(), ws.data());
  r.gw0 = gw0;
  r.gb0 = gb0;
  return r;
}

// Runs the three conv ops on the backend from zero gradients and checks them against the reference
// (y) and its adjoint (gx, gw, gbias): y and gx within atol_x, gw and gbias (sums over N*P*Q terms)
// within atol_w, all with rtol 1e-4.
void expect_matches_reference(Backend& be, const ConvShape& s, const VecF& x, const VecF& w, const VecF& bias,
                              const VecF& gy, double atol_x, double atol_w) {
  const VecF gw0(wsize(s), 0.f), gb0(s.K, 0.f);
  const ConvRun r = run_conv(be, s, x, w, bias, gy, gw0, gb0);
  const VecD xd = to_d(x), wd = to_d(w), bd = to_d(bias);
  expect_close(r.y, conv_ref(s, xd, wd, &bd), atol_x, 1e-4, "y");
  VecD gx, gw, gb;
  conv_ref_backward(s, xd, wd, to_d(gy), gx, gw, gb);
  expect_close(r.gx, gx, atol_x, 1e-4, "gx");
  expect_close(r.gw, gw, atol_w, 1e-4, "gw");
  expect_close(r.gb, gb, atol_w, 1e-4, "gbias");
}

// A CPU backend with CGAN_CPU_CONV=mode: "im2col" (the oracle for oneDNN's),
// "mixed" (forward and data gradient on oneDNN's primitives) or "dnnl" (all three on them, the default). Where
// the build has no oneDNN every mode is im2col and these tests compare it with itself.
std::unique_ptr<Backend> conv_backend(const char* mode) {
  const testutil::ScopedEnv env("CGAN_CPU_CONV", mode);
  return make_cpu_backend();
}
std::unique_ptr<Backend> im2col_backend() { return conv_backend("im2col"); }

// The CPU backend's environment knobs: a value it does not know is a one-line error naming the
// variable and the values it takes; every documented value is accepted.
TEST(CpuBackendEnv, UnknownValuesAreOneLineErrors) {
  for (const char* mode : {"auto", "dnnl", "mixed", "im2col"}) EXPECT_NO_THROW(conv_backend(mode)) << mode;
  EXPECT_EQ(testutil::error_of([] { conv_backend("fast"); }),
            "CGAN_CPU_CONV: expected 'auto', 'mixed', 'dnnl' or 'im2col', got 'fast'");
  EXPECT_EQ(testutil::error_of([] { conv_backend(""); }),
            "CGAN_CPU_CONV: expected 'auto', 'mixed', 'dnnl' or 'im2col', got ''");
  for (const char* threads : {"0", "two", "3x", "2000"}) {
    const testutil::ScopedEnv env("CGAN_CPU_THREADS", threads);
    EXPECT_EQ(testutil::error_of([] { make_cpu_backend(); }),
              cat("CGAN_CPU_THREADS: expected a positive integer, got '", threads, "'"));
  }
}

// Every CPU backend of a process runs on the same threads: one made after another's small op (which
// leaves the library's thread count at 1) does not take that 1 for the machine's count. (It did:
// in the test binaries, which make many backends, whether a test's training ran on one thread or
// all of them, and so its bits, depended on the tests before it.) CGAN_CPU_THREADS still wins.
TEST(CpuBackendEnv, ALaterBackendKeepsTheThreadCount) {
  auto first = make_cpu_backend();
  const int threads = first->threads();
  ASSERT_GE(threads, 1);
  float* c = first->alloc(1);
  const float one = 1.f;
  first->gemm(false, false, 1, 1, 1, 1.f, &one, &one, 0.f, c);  // tiny: runs on one thread
  first->free(c);
  first.reset();
  EXPECT_EQ(make_cpu_backend()->threads(), threads);
  const testutil::ScopedEnv env("CGAN_CPU_THREADS", "3");
  EXPECT_EQ(make_cpu_backend()->threads(), 3);
}

// ------------------------------------------------------------------------------------------- conv

TEST_F(Conv, ForwardMatchesDirectLoopAndBackwardMatchesFiniteDifferences) {
  for (int trial = 0; trial < 25; ++trial) {
    const ConvShape s = conv_shape();
    SCOPED_TRACE(str(s));
    const VecF x = randv(xsize(s), -1, 1), w = randv(wsize(s), -1, 1), b = randv(s.K, -1, 1);
    const VecF gy = randv(ysize(s), -1, 1), gw0 = randv(wsize(s), -1, 1), gb0 = randv(s.K, -1, 1);
    const ConvRun r = run_conv(*be_, s, x, w, b, gy, gw0, gb0);
    VecD xd = to_d(x), wd = to_d(w), bd = to_d(b), gyd = to_d(gy);
    expect_close(r.y, conv_ref(s, xd, wd, &bd), 1e-5, 1e-5, "y");
    auto L = [&] { return dot(gyd, conv_ref(s, xd, wd, &bd)); };
    expect_close(r.gx, numeric_grad(xd, L), 5e-5, 1e-4, "gx");
    expect_close(diff(r.gw, r.gw0), numeric_grad(wd, L), 1e-4, 1e-4, "gw");
    expect_close(diff(r.gb, r.gb0), numeric_grad(bd, L), 1e-4, 1e-4, "gbias");
  }
}

TEST_F(Conv, NullBiasAndNullGbias) {
  const ConvShape s = conv_shape();
  SCOPED_TRACE(str(s));
  const VecF x = randv(xsize(s), -1, 1), w = randv(wsize(s), -1, 1), gy = randv(ysize(s), -1, 1);
  VecF ws(std::max<size_t>(be_->conv2d_workspace(s), 1)), y(ysize(s)), gw(wsize(s), 0.f);
  be_->conv2d_forward(s, x.data(), w.data(), nullptr, y.data(), ws.data());
  const VecD xd = to_d(x), wd = to_d(w);
  expect_close(y, conv_ref(s, xd, wd, nullptr), 1e-5, 1e-5, "y");
  be_->conv2d_backward_filter(s, x.data(), gy.data(), gw.data(), nullptr, ws.data());
  VecD gx, gwr, gb;
  conv_ref_backward(s, xd, wd, to_d(gy), gx, gwr, gb);
  expect_close(gw, gwr, 1e-4, 1e-4, "gw");
}

// Shapes whose im2col buffer is large enough that the backend splits the batch into chunks (a
// multi-sample chunk followed by a single-sample one), and one where every chunk is one sample.
// Checked against the reference's adjoint (validated by finite differences above).
TEST_F(Conv, LargeShapesSplitIntoChunksMatchReference) {
  ConvShape a;  // C*R*S * P*Q = 100 * 10000: two samples per chunk, N = 3
  a.N = 3, a.C = 4, a.H = 100, a.W = 100, a.K = 3, a.R = 5, a.S = 5, a.pad_h = 2, a.pad_w = 2;
  ConvShape b;  // 8*5*5 * 101*100 > 2M floats: one sample per chunk, stride 2 on H
  b.N = 2, b.C = 8, b.H = 203, b.W = 100, b.K = 2, b.R = 5, b.S = 5, b.stride_h = 2, b.pad_h = 1, b.pad_w = 2;
  for (const ConvShape& s : {a, b}) {
    SCOPED_TRACE(str(s));
    const VecF x = randv(xsize(s), -1, 1), w = randv(wsize(s), -1, 1), bias = randv(s.K, -1, 1);
    const VecF gy = randv(ysize(s), -1, 1);
    expect_matches_reference(*be_, s, x, w, bias, gy, 1e-4, 2e-3);  // gw: sums of N*P*Q ~ 30000 terms
  }
}

TEST_F(Conv, MnistShapesMatchReference) {
  ConvShape s;  // the second conv of a small MNIST CNN, batch 4
  s.N = 4, s.C = 32, s.H = 14, s.W = 14, s.K = 64, s.R = 5, s.S = 5, s.pad_h = 2, s.pad_w = 2;
  SCOPED_TRACE(str(s));
  const VecF x = randv(xsize(s), -1, 1), w = randv(wsize(s), -0.05f, 0.05f), bias = randv(s.K, -1, 1);
  const VecF gy = randv(ysize(s), -1, 1);
  expect_matches_reference(*be_, s, x, w, bias, gy, 1e-5, 5e-4);
}

// The default backend (oneDNN's primitives where built) against the im2col + GEMM oracle and the
// double-precision reference on random odd shapes: both within fp32 tolerance of the reference and
// of each other.
TEST_F(Conv, OneDnnPathMatchesIm2colOracleOnRandomShapes) {
  auto oracle = im2col_backend();
  auto mixed = conv_backend("mixed");
  auto all_dnnl = conv_backend("dnnl");
  for (int trial = 0; trial < 40; ++trial) {
    ConvShape s = conv_shape(17);
    s.N = randint(1, 4), s.C = randint(1, 9), s.K = randint(1, 9);
    SCOPED_TRACE(str(s));
    const VecF x = randv(xsize(s), -1, 1), w = randv(wsize(s), -1, 1), b = randv(s.K, -1, 1);
    const VecF gy = randv(ysize(s), -1, 1), gw0 = randv(wsize(s), -1, 1), gb0 = randv(s.K, -1, 1);
    const ConvRun r = run_conv(*mixed, s, x, w, b, gy, gw0, gb0);
    const ConvRun o = run_conv(*oracle, s, x, w, b, gy, gw0, gb0);
    expect_close(r.y, to_d(o.y), 1e-5, 1e-5, "y vs im2col");
    expect_close(r.gx, to_d(o.gx), 1e-5, 1e-5, "gx vs im2col");
    expect_close(r.gw, to_d(o.gw), 1e-4, 1e-5, "gw vs im2col");
    expect_close(r.gb, to_d(o.gb), 1e-4, 1e-5, "gbias vs im2col");
    expect_matches_reference(*mixed, s, x, w, b, gy, 1e-5, 1e-4);
    const ConvRun d = run_conv(*all_dnnl, s, x, w, b, gy, gw0, gb0);
    expect_close(d.gw, to_d(o.gw), 1e-4, 1e-5, "gw (CGAN_CPU_CONV=dnnl) vs im2col");
    expect_close(d.gb, to_d(o.gb), 1e-4, 1e-5, "gbias (CGAN_CPU_CONV=dnnl) vs im2col");
  }
}

// The real conv shapes of anime_small (G at 64x64: 4->12 and 12->8 3x3, 8->3 2x2 stride 2; D at
// 32x32 and 16x16: 4->16 and 16->32 5x5) at batch 2 and anime_conv's G (15->50 and 50->25 3x3 at
// 192x192, one image): against the reference's adjoint, and against the im2col oracle.
TEST_F(Conv, AnimeShapesMatchReferenceAndIm2colOracle) {
  auto oracle = im2col_backend();
  auto mixed = conv_backend("mixed");
  auto shape = [](int N, int C, int HW, int K, int R, int stride, int pad) {
    ConvShape s;
    s.N = N, s.C = C, s.H = s.W = HW, s.K = K, s.R = s.S = R, s.stride_h = s.stride_w = stride;
    s.pad_h = s.pad_w = pad;
    return s;
  };
  const ConvShape shapes[] = {shape(2, 4, 64, 12, 3, 1, 1),  shape(2, 12, 64, 8, 3, 1, 1),
                              shape(2, 8, 64, 3, 2, 2, 0),   shape(2, 4, 32, 16, 5, 1, 2),
                              shape(2, 16, 16, 32, 5, 1, 2), shape(1, 15, 192, 50, 3, 1, 1),
                              shape(1, 50, 192, 25, 3, 1, 1)};
  for (const ConvShape& s : shapes) {
    SCOPED_TRACE(str(s));
    const float wr = 1.f / std::sqrt(static_cast<float>(s.C * s.R * s.S));
    const VecF x = randv(xsize(s), -1, 1), w = randv(wsize(s), -wr, wr), bias = randv(s.K, -1, 1);
    const VecF gy = randv(ysize(s), -1, 1);
    const double atol_w = 1e-6 * s.N * s.P() * s.Q();  // gw: sums of N*P*Q terms
    expect_matches_reference(*mixed, s, x, w, bias, gy, 1e-5, atol_w);
    const VecF gw0(wsize(s), 0.f), gb0(s.K, 0.f);
    const ConvRun r = run_conv(*mixed, s, x, w, bias, gy, gw0, gb0);
    const ConvRun o = run_conv(*oracle, s, x, w, bias, gy, gw0, gb0);
    expect_close(r.y, to_d(o.y), 1e-5, 1e-5, "y vs im2col");
    expect_close(r.gx, to_d(o.gx), 1e-5, 1e-5, "gx vs im2col");
    expect_close(r.gw, to_d(o.gw), atol_w, 1e-5, "gw vs im2col");
    expect_close(r.gb, to_d(o.gb), atol_w, 1e-5, "gbias vs im2col");
  }
}

// Run to run at a fixed thread count the three oneDNN ops give the same bits: twice on one backend and
// once on a fresh one, single-threaded and (large shapes go multi-threaded) with two threads.
TEST_F(Conv, RunToRunBitIdentical) {
  ConvShape a;  // anime_small's G 4->12 at batch 32: multi-threaded under CGAN_CPU_THREADS=2
  a.N = 32, a.C = 4, a.H = a.W = 64, a.K = 12, a.R = a.S = 3, a.pad_h = a.pad_w = 1;
  ConvShape b;  // a small odd one, single-threaded
  b.N = 3, b.C = 5, b.H = 13, b.W = 11, b.K = 7, b.R = 3, b.S = 2, b.stride_h = 2, b.pad_h = 1, b.pad_w = 1;
  for (const char* threads : {"1", "2"}) {
    std::unique_ptr<Backend> be1, be2;
    {
      const testutil::ScopedEnv env("CGAN_CPU_THREADS", threads);
      be1 = conv_backend("dnnl");
      be2 = conv_backend("dnnl");
    }
    for (const ConvShape& s : {a, b}) {
      SCOPED_TRACE(cat(str(s), " threads=", threads));
      const VecF x = randv(xsize(s), -1, 1), w = randv(wsize(s), -1, 1), bias = randv(s.K, -1, 1);
      const VecF gy = randv(ysize(s), -1, 1), gw0 = randv(wsize(s), -1, 1), gb0 = randv(s.K, -1, 1);
      const ConvRun r1 = run_conv(*be1, s, x, w, bias, gy, gw0, gb0);
      const ConvRun r2 = run_conv(*be1, s, x, w, bias, gy, gw0, gb0);
      const ConvRun r3 = run_conv(*be2, s, x, w, bias, gy, gw0, gb0);
      for (const ConvRun* r : {&r2, &r3}) {
        EXPECT_EQ(0, std::memcmp(r1.y.data(), r->y.data(), r1.y.size() * sizeof(float))) << "y";
        EXPECT_EQ(0, std::memcmp(r1.gx.data(), r->gx.data(), r1.gx.size() * sizeof(float))) << "gx";
        EXPECT_EQ(0, std::memcmp(r1.gw.data(), r->gw.data(), r1.gw.size() * sizeof(float))) << "gw";
        EXPECT_EQ(0, std::memcmp(r1.gb.data(), r->gb.data(), r1.gb.size() * sizeof(float))) << "gbias";
      }
    }
  }
}

TEST_F(Conv, ArgumentErrorsThrow) {
  VecF buf(4096, 0.f);
  float* p = buf.data();
  auto fwd = [&](const ConvShape& s) { be_->conv2d_forward(s, p, p, nullptr, p, p); };
  ConvShape ok;
  ok.N = 1, ok.C = 1, ok.H = 4, ok.W = 4, ok.K = 1, ok.R = 3, ok.S = 3;
  EXPECT_NO_THROW(fwd(ok));
  for (int field = 0; field < 7; ++field) {
    ConvShape s = ok;
    int* f[] = {&s.N, &s.C, &s.H, &s.W, &s.K, &s.R, &s.S};
    *f[field] = field % 2 ? 0 : -1;
    EXPECT_THROW(fwd(s), Error) << "field " << field;
  }
  ConvShape s = ok;
  s.stride_w = 0;
  EXPECT_THROW(fwd(s), Error);
  s = ok;
  s.pad_h = -1;
  EXPECT_THROW(fwd(s), Error);
  s = ok;
  s.R = 5;  // larger than 4 + 2*0
  try {
    fwd(s);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("larger than the padded input"), std::string::npos) << e.what();
  }
  s.pad_h = 1;  // 4 + 2 >= 5: fits now
  EXPECT_NO_THROW(fwd(s));
  s = ok;
  s.S = 7, s.pad_w = 1;
  EXPECT_THROW(be_->conv2d_backward_data(s, p, p, p, p), Error);
  EXPECT_THROW(be_->conv2d_backward_filter(s, p, p, p, nullptr, p), Error);
  EXPECT_THROW(be_->conv2d_forward(ok, nullptr, p, nullptr, p, p), Error);
  EXPECT_THROW(be_->conv2d_backward_data(ok, p, nullptr, p, p), Error);
  EXPECT_THROW(be_->conv2d_backward_filter(ok, p, p, nullptr, nullptr, p), Error);
  // The im2col path needs a workspace; oneDNN's primitives (when built) keep their scratchpad in the
  // backend, so the default backend asks for none and takes a null one.
  auto im2col = im2col_backend();
  EXPECT_THROW(im2col->conv2d_forward(ok, p, p, nullptr, p, nullptr), Error);
  EXPECT_GT(im2col->conv2d_workspace(ok), 0u);
  if (be_->conv2d_workspace(ok) == 0)
    EXPECT_NO_THROW(be_->conv2d_forward(ok, p, p, nullptr, p, nullptr));
  else
    EXPECT_THROW(be_->conv2d_forward(ok, p, p, nullptr, p, nullptr), Error);
  s = ok;
  s.S = 7, s.pad_w = 1;  // the workspace query checks the shape as the ops do
  EXPECT_NE(testutil::error_of([&] { be_->conv2d_workspace(s); }).find("conv2d_workspace: kernel"), std::string::npos);
}

// ------------------------------------------------------------------------------------------- pool

TEST_F(Conv, AvgPoolForwardAndBackwardMatchFiniteDifferences) {
  for (int trial = 0; trial < 25; ++trial) {
    const PoolShape s = pool_shape();
    SCOPED_TRACE(str(s));
    const VecF x = randv(xsize(s), -1, 1), gy = randv(ysize(s), -1, 1);
    VecF y(ysize(s)), gx(xsize(s), std::numeric_limits<float>::quiet_NaN());
    be_->pool2d_forward(Pool::avg, s, x.data(), y.data());
    VecD xd = to_d(x), gyd = to_d(gy);
    expect_close(y, pool_ref(Pool::avg, s, xd), 1e-6, 1e-5, "y");
    be_->pool2d_backward(Pool::avg, s, x.data(), y.data(), gy.data(), gx.data());
    auto L = [&] { return dot(gyd, pool_ref(Pool::avg, s, xd)); };
    expect_close(gx, numeric_grad(xd, L), 1e-5, 1e-4, "gx");
  }
}

// Distinct values spaced 1e-2 apart (so finite differences never cross a tie), all negative so a
// padded cell counted as 0 would win.
TEST_F(Conv, MaxPoolForwardAndBackwardMatchFiniteDifferences) {
  for (int trial = 0; trial < 25; ++trial) {
    const PoolShape s = pool_shape();
    SCOPED_TRACE(str(s));
    VecF x(xsize(s));
    std::vector<int> order(x.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng_);
    for (size_t i = 0; i < x.size(); ++i) x[i] = -1.f - 1e-2f * order[i];
    const VecF gy = randv(ysize(s), -1, 1);
    VecF y(ysize(s)), gx(xsize(s), std::numeric_limits<float>::quiet_NaN());
    be_->pool2d_forward(Pool::max, s, x.data(), y.data());
    VecD xd = to_d(x), gyd = to_d(gy);
    expect_close(y, pool_ref(Pool::max, s, xd), 0, 0, "y");
    be_->pool2d_backward(Pool::max, s, x.data(), y.data(), gy.data(), gx.data());
    auto L = [&] { return dot(gyd, pool_ref(Pool::max, s, xd)); };
    expect_close(gx, numeric_grad(xd, L, 1e-4), 1e-6, 1e-5, "gx");
  }
}

TEST_F(Conv, MaxPoolTiesSendTheGradientToTheFirstMaximum) {
  for (int trial = 0; trial < 25; ++trial) {
    const PoolShape s = pool_shape();
    SCOPED_TRACE(str(s));
    VecF x(xsize(s));
    for (auto& v : x) v = static_cast<float>(randint(-2, 0));  // many ties, padding would be 0
    const VecF gy = randv(ysize(s), -1, 1);
    VecF y(ysize(s)), gx(xsize(s), std::numeric_limits<float>::quiet_NaN());
    be_->pool2d_forward(Pool::max, s, x.data(), y.data());
    const VecD xd = to_d(x);
    expect_close(y, pool_ref(Pool::max, s, xd), 0, 0, "y");
    be_->pool2d_backward(Pool::max, s, x.data(), y.data(), gy.data(), gx.data());
    expect_close(gx, maxpool_ref_backward(s, xd, to_d(gy)), 1e-6, 1e-6, "gx");
  }
  // a hand-checked case: one 2x2 window of equal values, the gradient goes to the top-left one
  PoolShape s;
  s.H = 2, s.W = 2;
  const VecF x = {3.f, 3.f, 3.f, 3.f}, gy = {1.5f};
  VecF y(1), gx(4);
  be_->pool2d_forward(Pool::max, s, x.data(), y.data());
  be_->pool2d_backward(Pool::max, s, x.data(), y.data(), gy.data(), gx.data());
  EXPECT_EQ(y[0], 3.f);
  EXPECT_EQ(gx, (VecF{1.5f, 0.f, 0.f, 0.f}));
}

// Window 2, stride 3 on 48x48: 16x16 outputs; every third row and column is in no window.
TEST_F(Conv, AvgPoolKernelTwoStrideThreeOn48) {
  PoolShape s;
  s.N = 2, s.C = 3, s.H = 48, s.W = 48, s.R = 2, s.S = 2, s.stride_h = 3, s.stride_w = 3;
  ASSERT_EQ(s.P(), 16);
  ASSERT_EQ(s.Q(), 16);
  for (Pool k : {Pool::avg, Pool::max}) {
    SCOPED_TRACE(k == Pool::avg ? "avg" : "max");
    const VecF x = randv(xsize(s), -1, 1), gy = randv(ysize(s), -1, 1);
    VecF y(ysize(s)), gx(xsize(s));
    be_->pool2d_forward(k, s, x.data(), y.data());
    const VecD xd = to_d(x);
    expect_close(y, pool_ref(k, s, xd), 1e-6, 1e-6, "y");
    be_->pool2d_backward(k, s, x.data(), y.data(), gy.data(), gx.data());
    VecD ref(xsize(s), 0.0);
    if (k == Pool::max) {
      ref = maxpool_ref_backward(s, xd, to_d(gy));
    } else {
      for (int nc = 0; nc < s.N * s.C; ++nc)
        for (int h = 0; h < 48; ++h)
          for (int w = 0; w < 48; ++w)
            if (h % 3 != 2 && w % 3 != 2)
              ref[(size_t(nc) * 48 + h) * 48 + w] = gy[(size_t(nc) * 16 + h / 3) * 16 + w / 3] / 4.0;
    }
    expect_close(gx, ref, 1e-7, 1e-6, "gx");
    for (int nc = 0; nc < s.N * s.C; ++nc)
      for (int i = 0; i < 48; ++i) {
        ASSERT_EQ(gx[(size_t(nc) * 48 + 2) * 48 + i], 0.f);   // row 2 is in no window
        ASSERT_EQ(gx[(size_t(nc) * 48 + i) * 48 + 47], 0.f);  // nor is column 47
      }
  }
}

TEST_F(Conv, PoolArgumentErrorsThrow) {
  VecF buf(256, 0.f);
  float* p = buf.data();
  PoolShape ok;
  ok.H = 4, ok.W = 4;
  EXPECT_NO_THROW(be_->pool2d_forward(Pool::max, ok, p, p + 64));
  PoolShape s = ok;
  s.C = 0;
  EXPECT_THROW(be_->pool2d_forward(Pool::avg, s, p, p + 64), Error);
  s = ok;
  s.R = 5;
  EXPECT_THROW(be_->pool2d_forward(Pool::avg, s, p, p + 64), Error);
  s.pad_h = 1;  // padded input 6 >= 5, but padding must be at most half the window: 2 <= 5, fine
  EXPECT_NO_THROW(be_->pool2d_forward(Pool::avg, s, p, p + 64));
  s = ok;
  s.pad_w = 2;  // more than half of a 2-wide window
  EXPECT_THROW(be_->pool2d_forward(Pool::max, s, p, p + 64), Error);
  s = ok;
  s.stride_h = 0;
  EXPECT_THROW(be_->pool2d_backward(Pool::max, s, p, p, p, p), Error);
  EXPECT_THROW(be_->pool2d_forward(static_cast<Pool>(7), ok, p, p + 64), Error);
  EXPECT_THROW(be_->pool2d_backward(Pool::avg, ok, p, nullptr, p, p), Error);
  EXPECT_THROW(be_->pool2d_forward(Pool::avg, ok, nullptr, p), Error);
}

}  // namespace
}  // namespace cgan
