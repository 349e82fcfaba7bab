// Parity tests of the CUDA backend's image ops (conv2d through cuDNN, pool2d with our kernels)
// against the CPU backend, on random inputs: odd sizes, channel counts 3, 4, 15, 25, 50, strides
// 1 to 3, padding, non-square kernels and windows.
//
// Tolerances. Convolution: cuDNN may sum in another order, or use Winograd / FFT transforms, so
// each output is allowed 1e-5 + 2e-6 * sqrt(L) * mag, where L is the length of its reduction and
// mag is the same op on |inputs| (sum of |a| |b| over the reduction, computed by the CPU backend):
// about 30 u sqrt(L) relative to the sum of magnitudes, well above fp32 rounding in any order, far
// below what a wrong index gives. Pooling: max pooling forward and backward are exact (the same
// float chosen, the same gradients added in the same order); average pooling within a few ulps.
//
// Every test skips, saying why, when no usable GPU is present. Inputs are drawn from a seed printed
// with every failure; CGAN_TEST_SEED=<n> replays one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iomanip>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"
#include "cuda_backend.hpp"
#include "cuda_test_util.hpp"

namespace cgan {
namespace {

using namespace cudatest;

Floats abs_of(const Floats& v) {
  Floats a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  return a;
}

// Convolution tolerance (see the top): 1e-5 + rel * sqrt(L) * mag[i] (+ extra[i], an exactly
// added term such as the accumulated gradient's old value).
std::vector<double> conv_tol(const Floats& mag, double L, double rel, const Floats& extra = {}) {
  std::vector<double> tol(mag.size());
  for (size_t i = 0; i < mag.size(); ++i)
    tol[i] = 1e-5 + rel * std::sqrt(L) * (mag[i] + (extra.empty() ? 0.0 : std::fabs(extra[i])));
  return tol;
}

std::string text(const ConvShape& s) {
  std::ostringstream os;
  os << "conv N=" << s.N << " C=" << s.C << " " << s.H << "x" << s.W << " K=" << s.K << " kernel " << s.R << "x" << s.S
     << " stride " << s.stride_h << "x" << s.stride_w << " pad " << s.pad_h << "x" << s.pad_w;
  return os.str();
}

std::string text(Pool k, const PoolShape& s) {
  std::ostringstream os;
  os << (k == Pool::avg ? "avgpool" : "maxpool") << " N=" << s.N << " C=" << s.C << " " << s.H << "x" << s.W
     << " window " << s.R << "x" << s.S << " stride " << s.stride_h << "x" << s.stride_w << " pad " << s.pad_h << "x"
     << s.pad_w;
  return os.str();
}

ConvShape conv_shape(int N, int C, int H, int W, int K, int R, int S, int sh, int sw, int ph, int pw) {
  ConvShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  return s;
}

PoolShape pool_shape(int N, int C, int H, int W, int R, int S, int sh, int sw, int ph, int pw) {
  PoolShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.R = R, s.S = S;
  s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  return s;
}

class CudaConv : public CudaParityTest {
 protected:
  // Every conv op of shape s on `g` (the CUDA backend under test) against the CPU backend.
  // rel: the tolerance factor (see conv_tol), per sqrt of the reduction length L or, when
  // per_sqrt_l is false, flat (rel * mag: TF32's input rounding does not grow with L).
  void check_conv(Backend& g, const ConvShape& s, double rel, bool per_sqrt_l = true) {
    const std::string what = text(s) + (&g == gpu_.get() ? "" : " (tf32)");
    SCOPED_TRACE(what);
    const size_t P = static_cast<size_t>(s.P()), Q = static_cast<size_t>(s.Q());
    const size_t nx = static_cast<size_t>(s.N) * s.C * s.H * s.W;
    const size_t nw = static_cast<size_t>(s.K) * s.C * s.R * s.S;
    const size_t ny = static_cast<size_t>(s.N) * s.K * P * Q;
    const size_t K = static_cast<size_t>(s.K);

    const Buffer<float> wsc = buf(cpu(), cpu().conv2d_workspace(s)), wsg = buf(g, g.conv2d_workspace(s));
    const Floats xh = normal(nx), wh = normal(nw, 0.f, 0.5f), bh = normal(K), gyh = normal(ny);
    Twin x(cpu(), g, xh), w(cpu(), g, wh), b(cpu(), g, bh), gy(cpu(), g, gyh);
    Twin ax(cpu(), g, abs_of(xh)), aw(cpu(), g, abs_of(wh)), agy(cpu(), g, abs_of(gyh));

    // forward, with and without bias; y starts as NaN on the GPU (it must be overwritten)
    const auto len = [&](double L) { return per_sqrt_l ? L : 1.0; };
    const double L_fwd = len(static_cast<double>(s.C) * s.R * s.S);
    Twin y(cpu(), g, Floats(ny, 5.f)), mag(cpu(), g, Floats(ny));
    g.fill(y.g, ny, std::numeric_limits<float>::quiet_NaN());
    cpu().conv2d_forward(s, ax.c, aw.c, nullptr, mag.c, wsc.get());
    const Floats mag_fwd = mag.on_cpu();
    cpu().conv2d_forward(s, x.c, w.c, nullptr, y.c, wsc.get());
    g.conv2d_forward(s, x.g, w.g, nullptr, y.g, wsg.get());
    EXPECT_TRUE(within(y.on_cpu(), y.on_gpu(), conv_tol(mag_fwd, L_fwd, rel), what + " forward"));
    cpu().conv2d_forward(s, x.c, w.c, b.c, y.c, wsc.get());
    g.conv2d_forward(s, x.g, w.g, b.g, y.g, wsg.get());
    Floats bias_mag(ny);
    for (size_t i = 0; i < ny; ++i) bias_mag[i] = std::fabs(bh[(i / (P * Q)) % K]);
    EXPECT_TRUE(within(y.on_cpu(), y.on_gpu(), conv_tol(mag_fwd, L_fwd, rel, bias_mag), what + " forward with bias"));

    // backward data: gx overwritten (NaN before, on the GPU)
    const double L_data =
        len(static_cast<double>(s.K) * ((s.R + s.stride_h - 1) / s.stride_h) * ((s.S + s.stride_w - 1) / s.stride_w));
    Twin gx(cpu(), g, Floats(nx, 5.f)), magx(cpu(), g, Floats(nx));
    g.fill(gx.g, nx, std::numeric_limits<float>::quiet_NaN());
    cpu().conv2d_backward_data(s, agy.c, aw.c, magx.c, wsc.get());
    cpu().conv2d_backward_data(s, gy.c, w.c, gx.c, wsc.get());
    g.conv2d_backward_data(s, gy.g, w.g, gx.g, wsg.get());
    const Floats gx_g = gx.on_gpu();
    EXPECT_TRUE(within(gx.on_cpu(), gx_g, conv_tol(magx.on_cpu(), L_data, rel), what + " backward data"));
    g.conv2d_backward_data(s, gy.g, w.g, gx.g, wsg.get());
    EXPECT_TRUE(identical(gx_g, gx.on_gpu(), what + " backward data run twice"));

    // backward filter: gw and gbias accumulate onto non-zero values
    const double L_filt = static_cast<double>(s.N) * P * Q;  // for the bias too: always fp32
    const Floats gw0 = normal(nw), gb0 = normal(K);
    Twin gw(cpu(), g, gw0), gb(cpu(), g, gb0), magw(cpu(), g, Floats(nw));
    cpu().conv2d_backward_filter(s, ax.c, agy.c, magw.c, nullptr, wsc.get());
    const Floats mag_w = magw.on_cpu();
    cpu().conv2d_backward_filter(s, x.c, gy.c, gw.c, gb.c, wsc.get());
    g.conv2d_backward_filter(s, x.g, gy.g, gw.g, gb.g, wsg.get());
    const Floats gw_g = gw.on_gpu(), gb_g = gb.on_gpu();
    EXPECT_TRUE(
        within(gw.on_cpu(), gw_g, conv_tol(mag_w, len(L_filt), rel, gw0), what + " backward filter (accumulated)"));
    Floats mag_b(K, 0.f);
    for (size_t i = 0; i < ny; ++i) mag_b[(i / (P * Q)) % K] += std::fabs(gyh[i]);
    // the bias gradient is our own kernel (double sums): tighter
    EXPECT_TRUE(within(gb.on_cpu(), gb_g, conv_tol(mag_b, L_filt, 2e-7, gb0), what + " backward bias (accumulated)"));

    // run to run: the same inputs give the same bits (deterministic algorithms); null gbias
    Twin gw2(cpu(), g, gw0), gb2(cpu(), g, gb0);
    g.conv2d_backward_filter(s, x.g, gy.g, gw2.g, gb2.g, wsg.get());
    EXPECT_TRUE(identical(gw_g, gw2.on_gpu(), what + " backward filter run twice"));
    EXPECT_TRUE(identical(gb_g, gb2.on_gpu(), what + " backward bias run twice"));
    Twin gw3(cpu(), g, gw0);
    g.conv2d_backward_filter(s, x.g, gy.g, gw3.g, nullptr, wsg.get());
    EXPECT_TRUE(identical(gw_g, gw3.on_gpu(), what + " backward filter without gbias"));
  }

  void check_pool(Pool k, const PoolShape& s, const Floats& xh) {
    const std::string what = text(k, s);
    SCOPED_TRACE(what);
    const size_t nx = static_cast<size_t>(s.N) * s.C * s.H * s.W;
    const size_t ny = static_cast<size_t>(s.N) * s.C * s.P() * s.Q();
    ASSERT_EQ(xh.size(), nx);
    Twin x(cpu(), gpu(), xh), y(cpu(), gpu(), Floats(ny, 5.f)), gy(cpu(), gpu(), normal(ny)),
        gx(cpu(), gpu(), Floats(nx, 5.f));
    gpu().fill(y.g, ny, std::numeric_limits<float>::quiet_NaN());
    gpu().fill(gx.g, nx, std::numeric_limits<float>::quiet_NaN());
    cpu().pool2d_forward(k, s, x.c, y.c);
    gpu().pool2d_forward(k, s, x.g, y.g);
    const Floats yc = y.on_cpu(), yg = y.on_gpu();
    if (k == Pool::max) {
      EXPECT_TRUE(identical(yc, yg, what + " forward"));
    } else {
      EXPECT_TRUE(close(yc, yg, 1e-6, 4e-6, what + " forward"));
    }
    // Backward from the CPU's y on both sides (max pooling locates the maximum through y).
    Twin yref(cpu(), gpu(), yc);
    cpu().pool2d_backward(k, s, x.c, yref.c, gy.c, gx.c);
    gpu().pool2d_backward(k, s, x.g, yref.g, gy.g, gx.g);
    if (k == Pool::max) {
      EXPECT_TRUE(identical(gx.on_cpu(), gx.on_gpu(), what + " backward"));
    } else {
      EXPECT_TRUE(close(gx.on_cpu(), gx.on_gpu(), 1e-6, 4e-6, what + " backward"));
    }
  }
};

// ---------------------------------------------------------------- convolution

TEST_F(CudaConv, Conv2dFixedShapes) {
  const ConvShape shapes[] = {
      conv_shape(2, 3, 28, 28, 4, 3, 3, 1, 1, 1, 1),    // MNIST-like, same padding
      conv_shape(3, 4, 17, 13, 15, 5, 3, 2, 2, 2, 1),   // odd sizes, non-square kernel, stride 2
      conv_shape(2, 15, 11, 23, 25, 3, 5, 3, 3, 0, 2),  // stride 3
      conv_shape(4, 25, 14, 14, 50, 4, 4, 2, 2, 1, 1),  // DCGAN-style 4x4 / 2
      conv_shape(1, 50, 7, 7, 3, 7, 7, 1, 1, 0, 0),     // kernel = image: 1x1 output
      conv_shape(5, 1, 9, 9, 1, 1, 1, 1, 1, 0, 0),      // 1x1 convolution, one channel
      conv_shape(2, 3, 48, 48, 50, 3, 3, 1, 2, 1, 1),   // different strides along h and w
      conv_shape(1, 4, 5, 6, 4, 2, 2, 3, 2, 1, 1),      // tiny, stride larger than kernel
      conv_shape(2, 50, 16, 16, 25, 3, 3, 1, 1, 1, 1),  // many channels
  };
  for (const auto& s : shapes) check_conv(gpu(), s, 2e-6);
}

TEST_F(CudaConv, Conv2dRandomShapes) {
  const int channels[] = {3, 4, 15, 25, 50};
  for (int t = 0; t < 12; ++t) {
    ConvShape s;
    s.N = pick(1, 4);
    s.C = channels[pick(0, 4)];
    s.K = channels[pick(0, 4)];
    s.R = pick(1, 5);
    s.S = pick(1, 5);
    s.stride_h = pick(1, 3);
    s.stride_w = pick(1, 3);
    s.pad_h = pick(0, s.R / 2);
    s.pad_w = pick(0, s.S / 2);
    s.H = pick(std::max(1, s.R - 2 * s.pad_h), 30);
    s.W = pick(std::max(1, s.S - 2 * s.pad_w), 30);
    check_conv(gpu(), s, 2e-6);
  }
}

// Shapes not given to conv2d_workspace first are planned by the op itself, and choose the same
// algorithms (the heuristics depend on the shape only), so another backend gives the same bits.
TEST_F(CudaConv, Conv2dWithoutWorkspaceQueryMatchesAndIsDeterministic) {
  const ConvShape s = conv_shape(3, 15, 19, 21, 25, 3, 3, 2, 1, 1, 1);
  const size_t nx = static_cast<size_t>(s.N) * s.C * s.H * s.W;
  const size_t nw = static_cast<size_t>(s.K) * s.C * s.R * s.S;
  const size_t ny = static_cast<size_t>(s.N) * s.K * s.P() * s.Q();
  const Floats xh = normal(nx), wh = normal(nw), gyh = normal(ny);
  Floats y[2], gx[2], gw[2];
  const size_t ws_floats = gpu().conv2d_workspace(s);
  for (int run = 0; run < 2; ++run) {
    auto g = make_cuda_backend(false);  // a fresh fp32 backend: nothing cached
    const Buffer<float> x = buf(*g, nx), w = buf(*g, nw), gy = buf(*g, ny), yb = buf(*g, ny), gxb = buf(*g, nx),
                        gwb = buf(*g, nw), ws = buf(*g, ws_floats);
    g->upload(x.get(), xh.data(), nx);
    g->upload(w.get(), wh.data(), nw);
    g->upload(gy.get(), gyh.data(), ny);
    g->conv2d_forward(s, x.get(), w.get(), nullptr, yb.get(), ws.get());
    g->conv2d_backward_data(s, gy.get(), w.get(), gxb.get(), ws.get());
    g->conv2d_backward_filter(s, x.get(), gy.get(), gwb.get(), nullptr, ws.get());
    EXPECT_EQ(g->conv2d_workspace(s), ws_floats);
    y[run].resize(ny);
    gx[run].resize(nx);
    gw[run].resize(nw);
    g->download(y[run].data(), yb.get(), ny);
    g->download(gx[run].data(), gxb.get(), nx);
    g->download(gw[run].data(), gwb.get(), nw);
  }
  EXPECT_TRUE(identical(y[0], y[1], "forward on two backends"));
  EXPECT_TRUE(identical(gx[0], gx[1], "backward data on two backends"));
  EXPECT_TRUE(identical(gw[0], gw[1], "backward filter on two backends"));
}

// With tf32 the convolutions may run on TF32 tensor cores: inputs rounded to a 10-bit mantissa,
// so each product is within about 2 * 2^-11 of the fp32 one (5e-3 per unit of mag, with margin).
TEST_F(CudaConv, Conv2dTf32IsClose) {
  CudaOptions o;
  o.tf32 = true;
  auto tf32 = make_cuda_backend(o);
  for (const auto& s :
       {conv_shape(2, 25, 14, 14, 50, 4, 4, 2, 2, 1, 1), conv_shape(3, 4, 17, 13, 15, 5, 3, 2, 2, 2, 1)}) {
    check_conv(*tf32, s, 5e-3, /*per_sqrt_l=*/false);
  }
}

// The real anime_conv shapes (configs/anime_conv.json, batch 64): the generator's 15 -> 50 -> 25
// channels at 192x192 and its 2x2 / 2 output conv, the discriminator's 5x5 convs at 96x96 and
// 48x48. cuDNN chooses its algorithms for these sizes (the heuristics and the workspace limit
// differ from the small shapes above), so these are what training runs. fp32 at the fp32
// tolerance; tf32 (the default precision) at its own, flat tolerance (see Conv2dTf32IsClose).
const ConvShape kAnimeConvShapes[] = {
    conv_shape(64, 15, 192, 192, 50, 3, 3, 1, 1, 1, 1),  // G conv 1
    conv_shape(64, 50, 192, 192, 25, 3, 3, 1, 1, 1, 1),  // G conv 2
    conv_shape(64, 25, 192, 192, 3, 2, 2, 2, 2, 0, 0),   // G output conv
    conv_shape(64, 4, 96, 96, 32, 5, 5, 1, 1, 2, 2),     // D conv 1 (image + label plane)
    conv_shape(64, 32, 48, 48, 64, 5, 5, 1, 1, 2, 2),    // D conv 2
};

TEST_F(CudaConv, Conv2dRealAnimeShapesFp32) {
  for (const auto& s : kAnimeConvShapes) check_conv(gpu(), s, 2e-6);
}

TEST_F(CudaConv, Conv2dRealAnimeShapesTf32) {
  auto tf32 = make_cuda_backend(true);
  for (const auto& s : kAnimeConvShapes) check_conv(*tf32, s, 5e-3, /*per_sqrt_l=*/false);
}

// The conv epilogue: bias and the following activation in one pass (float4 when P*Q % 4 == 0,
// scalar otherwise; with and without bias), against the CPU's conv then activation.
TEST_F(CudaConv, Conv2dFusedBiasActivation) {
  for (const auto& s :
       {conv_shape(2, 15, 16, 16, 25, 3, 3, 1, 1, 1, 1), conv_shape(3, 4, 19, 21, 12, 5, 3, 1, 2, 2, 1)}) {
    const size_t nx = static_cast<size_t>(s.N) * s.C * s.H * s.W;
    const size_t nw = static_cast<size_t>(s.K) * s.C * s.R * s.S;
    const size_t ny = static_cast<size_t>(s.N) * s.K * s.P() * s.Q();
    const Buffer<float> wsc = buf(cpu(), cpu().conv2d_workspace(s)), wsg = buf(gpu(), gpu().conv2d_workspace(s));
    Twin x(cpu(), gpu(), normal(nx)), w(cpu(), gpu(), normal(nw, 0.f, 0.3f)),
        b(cpu(), gpu(), normal(static_cast<size_t>(s.K))), y(cpu(), gpu(), Floats(ny));
    for (Act act : {Act::relu, Act::leaky_relu, Act::tanh, Act::sigmoid})
      for (bool bias : {true, false}) {
        const std::string what = text(s) + " act " + std::to_string(static_cast<int>(act)) + (bias ? " with bias" : "");
        cpu().conv2d_forward(s, x.c, w.c, bias ? b.c : nullptr, y.c, wsc.get(), act, 0.2f);
        gpu().conv2d_forward(s, x.g, w.g, bias ? b.g : nullptr, y.g, wsg.get(), act, 0.2f);
        EXPECT_TRUE(close(y.on_cpu(), y.on_gpu(), 1e-4, 1e-5, what));
      }
  }
}

// ---------------------------------------------------------------- pooling

// The discriminator's pooling at batch 64 (after each conv), and a max pool of the same sizes.
TEST_F(CudaConv, Pool2dRealAnimeShapes) {
  const PoolShape shapes[] = {
      pool_shape(64, 32, 96, 96, 2, 2, 2, 2, 0, 0),  // avgpool 2 / 2: 96 -> 48
      pool_shape(64, 64, 48, 48, 2, 2, 3, 3, 0, 0),  // avgpool 2 / 3: 48 -> 16
  };
  for (const auto& s : shapes)
    for (Pool k : {Pool::avg, Pool::max}) check_pool(k, s, normal(static_cast<size_t>(s.N) * s.C * s.H * s.W));
}

// NaN in max pooling follows the CPU's rule (m = first cell, then m = v > m ? v : m): a window
// whose first cell is NaN gives NaN and passes no gradient; a NaN elsewhere in a window never
// wins. Checked against the CPU on random inputs sprinkled with NaN, and on a known image.
TEST_F(CudaConv, MaxPoolNanFollowsTheCpu) {
  for (const auto& s : {pool_shape(2, 3, 17, 13, 3, 3, 2, 2, 1, 1), pool_shape(1, 4, 8, 8, 2, 2, 2, 2, 0, 0),
                        pool_shape(2, 2, 9, 11, 3, 2, 1, 2, 1, 1)}) {
    const size_t nx = static_cast<size_t>(s.N) * s.C * s.H * s.W;
    Floats x = normal(nx);
    for (size_t i = 0; i < nx; ++i)
      if (pick(0, 6) == 0) x[i] = std::numeric_limits<float>::quiet_NaN();
    check_pool(Pool::max, s, x);
  }
  const PoolShape s = pool_shape(1, 1, 2, 4, 2, 2, 2, 2, 0, 0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Floats xh = {nan, 1, 2, nan,  //
                     3,   0, 1, 0};
  const Buffer<float> x = buf(gpu(), 8), y = buf(gpu(), 2), gy = buf(gpu(), 2), gx = buf(gpu(), 8);
  gpu().upload(x.get(), xh.data(), 8);
  const Floats gyh = {10, 20};
  gpu().upload(gy.get(), gyh.data(), 2);
  gpu().pool2d_forward(Pool::max, s, x.get(), y.get());
  Floats yh(2), gxh(8);
  gpu().download(yh.data(), y.get(), 2);
  EXPECT_TRUE(std::isnan(yh[0])) << "a NaN first cell gives NaN";
  EXPECT_EQ(yh[1], 2.f) << "a later NaN never wins";
  gpu().pool2d_backward(Pool::max, s, x.get(), y.get(), gy.get(), gx.get());
  gpu().download(gxh.data(), gx.get(), 8);
  EXPECT_TRUE(identical(gxh, Floats{0, 0, 20, 0, 0, 0, 0, 0}, "maxpool NaN backward"));
}

TEST_F(CudaConv, Pool2dShapes) {
  const PoolShape shapes[] = {
      pool_shape(2, 3, 48, 48, 2, 2, 3, 3, 0, 0),   // avgpool(2, stride 3): 48x48 -> 16x16
      pool_shape(3, 4, 28, 28, 2, 2, 2, 2, 0, 0),   // the usual 2x2 / 2
      pool_shape(2, 15, 17, 13, 3, 3, 2, 2, 1, 1),  // odd sizes, overlapping windows, padding
      pool_shape(1, 25, 9, 11, 3, 2, 1, 2, 1, 1),   // non-square window, stride 1 along h
      pool_shape(2, 50, 7, 5, 4, 5, 3, 1, 2, 2),    // padding = half the window
      pool_shape(1, 3, 5, 5, 5, 5, 1, 1, 0, 0),     // window = image
      pool_shape(4, 4, 31, 1, 3, 1, 2, 1, 1, 0),    // one column
  };
  ASSERT_EQ(shapes[0].P(), 16);
  ASSERT_EQ(shapes[0].Q(), 16);
  for (const auto& s : shapes)
    for (Pool k : {Pool::avg, Pool::max}) {
      const size_t nx = static_cast<size_t>(s.N) * s.C * s.H * s.W;
      check_pool(k, s, normal(nx));
      // Ties everywhere (values in {-2, ..., 2}): max pooling must pick the first maximum in
      // row-major order, as the CPU does.
      Floats q(nx);
      for (auto& v : q) v = static_cast<float>(pick(-2, 2));
      check_pool(k, s, q);
      // All negative: padding (never a candidate for max) must not win as a zero.
      Floats neg = normal(nx);
      for (auto& v : neg) v = -1.f - std::fabs(v);
      check_pool(k, s, neg);
    }
}

TEST_F(CudaConv, Pool2dRandomShapes) {
  const int channels[] = {3, 4, 15, 25, 50};
  for (int t = 0; t < 16; ++t) {
    PoolShape s;
    s.N = pick(1, 3);
    s.C = channels[pick(0, 4)];
    s.R = pick(1, 4);
    s.S = pick(1, 4);
    s.stride_h = pick(1, 3);
    s.stride_w = pick(1, 3);
    s.pad_h = pick(0, s.R / 2);
    s.pad_w = pick(0, s.S / 2);
    s.H = pick(std::max(1, s.R - 2 * s.pad_h), 25);
    s.W = pick(std::max(1, s.S - 2 * s.pad_w), 25);
    const size_t nx = static_cast<size_t>(s.N) * s.C * s.H * s.W;
    for (Pool k : {Pool::avg, Pool::max}) check_pool(k, s, normal(nx));
  }
}

TEST_F(CudaConv, MaxPoolWindowMaximumAndGradientRouting) {
  // One 4x4 image, 2x2 windows, stride 2: known maxima, the first of two ties takes the gradient.
  const PoolShape s = pool_shape(1, 1, 4, 4, 2, 2, 2, 2, 0, 0);
  const Floats xh = {1,  3,  0, 0,   //
                     2,  3,  0, -1,  //
                     -5, -6, 7, 7,   //
                     -7, -5, 7, 1};
  const Buffer<float> x = buf(gpu(), 16), y = buf(gpu(), 4), gy = buf(gpu(), 4), gx = buf(gpu(), 16);
  gpu().upload(x.get(), xh.data(), 16);
  const Floats gyh = {10, 20, 30, 40};
  gpu().upload(gy.get(), gyh.data(), 4);
  gpu().pool2d_forward(Pool::max, s, x.get(), y.get());
  gpu().pool2d_backward(Pool::max, s, x.get(), y.get(), gy.get(), gx.get());
  Floats yh(4), gxh(16);
  gpu().download(yh.data(), y.get(), 4);
  gpu().download(gxh.data(), gx.get(), 16);
  EXPECT_TRUE(identical(yh, Floats{3, 0, -5, 7}, "maxpool forward"));
  EXPECT_TRUE(identical(gxh,
                        Floats{0, 10, 20, 0,  //
                               0, 0, 0, 0,    //
                               30, 0, 40, 0,  //
                               0, 0, 0, 0},
                        "maxpool backward"));
}

}  // namespace
}  // namespace cgan
