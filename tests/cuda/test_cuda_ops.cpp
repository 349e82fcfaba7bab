// Parity tests beyond the op table (tests/op_table.hpp, run by test_op_table.cpp): CudaBackend ops
// against the CPU backend (the reference) on fresh random inputs of random and odd sizes, with
// tolerances scaled to each sum, special values and device-side error reports. Tolerances are
// atol + rtol * |cpu| (fp32), or exact where both backends run the same float operations.
//
// Every test skips, saying why, when no usable GPU is present (cuda_available()). Inputs are drawn
// from a seed printed with every failure; CGAN_TEST_SEED=<n> replays one.
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
#include <numeric>
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

class CudaOps : public CudaParityTest {
 protected:
  // Each result is within (K+2) u sum|a||b| of the exact product (u = 2^-24 for fp32), so they are
  // within twice that of each other: rel_per_k = 2u = 1.2e-7. TF32 adds its input rounding (rel).
  void check_gemm(Backend& gpu, bool ta, bool tb, int M, int N, int K, float alpha, float beta, double rel,
                  double rel_per_k, const Floats& A, const Floats& B, const Floats& C0) {
    Twin a(cpu(), gpu, A), b(cpu(), gpu, B), c(cpu(), gpu, C0);
    cpu().gemm(ta, tb, M, N, K, alpha, a.c, b.c, beta, c.c);
    gpu.gemm(ta, tb, M, N, K, alpha, a.g, b.g, beta, c.g);
    std::vector<double> tol(static_cast<size_t>(M) * N);
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double mag = 0;
        for (int k = 0; k < K; ++k) {
          const double av = ta ? A[static_cast<size_t>(k) * M + i] : A[static_cast<size_t>(i) * K + k];
          const double bv = tb ? B[static_cast<size_t>(j) * K + k] : B[static_cast<size_t>(k) * N + j];
          mag += std::fabs(av * bv);
        }
        const size_t o = static_cast<size_t>(i) * N + j;
        const double cm = beta == 0.f ? 0.0 : std::fabs(beta * C0[o]);
        tol[o] = 1e-6 + (rel + rel_per_k * (K + 2)) * (std::fabs(alpha) * mag + cm);
      }
    EXPECT_TRUE(within(c.on_cpu(), c.on_gpu(), tol,
                       "gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " " + shape({M, N, K}) +
                           " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta)));
  }
};

// ---------------------------------------------------------------- availability (always runs)

TEST(CudaAvailability, NoGpuGivesAClearError) {
  std::string why;
  if (cuda_available(&why)) {
    EXPECT_EQ(make_backend("cuda")->name(), "cuda");
    EXPECT_EQ(make_backend("auto")->name(), "cuda");
    return;
  }
  EXPECT_FALSE(why.empty());
  EXPECT_THROW(make_cuda_backend(true), Error);
  EXPECT_THROW(make_cuda_backend(false), Error);
  EXPECT_THROW(make_backend("cuda"), Error);
  EXPECT_EQ(make_backend("auto")->name(), "cpu");
}

// ---------------------------------------------------------------- memory and elementwise

TEST_F(CudaOps, MemoryFillCopyMul) {
  EXPECT_EQ(gpu().name(), "cuda");
  gpu().free(nullptr);
  for (size_t n : {size_t{1}, size_t{3}, size_t{257}, size_t{100003}}) {
    float* a = gpu().alloc(n);
    int32_t* ai = gpu().alloc_int(n);
    Floats h(n, 1.f);
    Ints hi(n, 1);
    gpu().download(h.data(), a, n);
    gpu().download_int(hi.data(), ai, n);
    EXPECT_TRUE(identical(Floats(n, 0.f), h, "alloc is zeroed"));
    EXPECT_TRUE(identical(Ints(n, 0), hi, "alloc_int is zeroed"));
    const Ints r = ints(n, -1000000, 1000000);
    gpu().upload_int(ai, r.data(), n);
    gpu().download_int(hi.data(), ai, n);
    EXPECT_TRUE(identical(r, hi, "upload_int/download_int round trip"));
    gpu().free(a);
    gpu().free(ai);

    Twin x(cpu(), gpu(), normal(n)), y(cpu(), gpu(), normal(n));
    EXPECT_TRUE(identical(x.on_cpu(), x.on_gpu(), "upload/download round trip"));
    for (float v : {0.f, -0.f, 3.5f}) {
      cpu().fill(y.c, n, v);
      gpu().fill(y.g, n, v);
      EXPECT_TRUE(identical(y.on_cpu(), y.on_gpu(), "fill " + std::to_string(v)));
    }
    cpu().copy(y.c, x.c, n);
    gpu().copy(y.g, x.g, n);
    EXPECT_TRUE(identical(y.on_cpu(), y.on_gpu(), "copy"));
    Twin z(cpu(), gpu(), normal(n));
    cpu().mul(n, x.c, z.c);
    gpu().mul(n, x.g, z.g);
    EXPECT_TRUE(identical(z.on_cpu(), z.on_gpu(), "mul n=" + std::to_string(n)));
  }
}

// ---------------------------------------------------------------- GEMM

TEST_F(CudaOps, GemmAllTransposes) {
  const int shapes[][3] = {{1, 1, 1},       {3, 7, 33},    {33, 3, 7},     {7, 257, 33},
                           {257, 33, 1000}, {64, 1000, 3}, {1, 1025, 300}, {100, 1, 784}};
  for (const auto& s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const int M = s[0], N = s[1], K = s[2];
        const Floats A = normal(static_cast<size_t>(M) * K), B = normal(static_cast<size_t>(K) * N);
        const Floats C = normal(static_cast<size_t>(M) * N);
        check_gemm(gpu(), ta, tb, M, N, K, 1.f, 0.f, 0.0, 1.2e-7, A, B, C);
        check_gemm(gpu(), ta, tb, M, N, K, -0.7f, 0.5f, 0.0, 1.2e-7, A, B, C);
      }
}

TEST_F(CudaOps, GemmDegenerate) {
  const int M = 7, N = 33;
  Floats C = normal(static_cast<size_t>(M) * N);
  // K == 0: C = beta C
  for (float beta : {0.f, 0.5f, 1.f}) {
    Twin a(cpu(), gpu(), Floats(1)), b(cpu(), gpu(), Floats(1)), c(cpu(), gpu(), C);
    cpu().gemm(false, false, M, N, 0, 1.f, a.c, b.c, beta, c.c);
    gpu().gemm(false, false, M, N, 0, 1.f, a.g, b.g, beta, c.g);
    EXPECT_TRUE(identical(c.on_cpu(), c.on_gpu(), "gemm K=0 beta=" + std::to_string(beta)));
  }
  // alpha == 0 and beta == 0 overwrite C, NaN included
  Floats nan_c(C.size(), std::numeric_limits<float>::quiet_NaN());
  Twin a(cpu(), gpu(), normal(static_cast<size_t>(M) * 5)), b(cpu(), gpu(), normal(static_cast<size_t>(5) * N)),
      c(cpu(), gpu(), nan_c);
  cpu().gemm(false, false, M, N, 5, 0.f, a.c, b.c, 0.f, c.c);
  gpu().gemm(false, false, M, N, 5, 0.f, a.g, b.g, 0.f, c.g);
  EXPECT_TRUE(identical(c.on_cpu(), c.on_gpu(), "gemm alpha=0 beta=0 over NaN"));
  EXPECT_TRUE(identical(Floats(C.size(), 0.f), c.on_gpu(), "gemm alpha=0 beta=0 gives zeros"));
}

TEST_F(CudaOps, GemmTf32IsClose) {
  CudaOptions o;
  o.tf32 = true;
  auto tf32 = make_cuda_backend(o);
  const int M = 64, N = 257, K = 300;
  const Floats A = normal(static_cast<size_t>(M) * K), B = normal(static_cast<size_t>(K) * N);
  const Floats C = normal(static_cast<size_t>(M) * N);
  // TF32 rounds both inputs to a 10-bit mantissa: up to 2 * 2^-10 relative per product (plus
  // margin).
  check_gemm(*tf32, false, false, M, N, K, 1.f, 0.f, 4e-3, 1.2e-7, A, B, C);
  check_gemm(*tf32, true, true, M, N, K, 1.f, 0.5f, 4e-3, 1.2e-7, A, B, C);
}

// ---------------------------------------------------------------- bias + activation

const Act kActs[] = {Act::none, Act::relu, Act::leaky_relu, Act::sigmoid, Act::tanh};

std::string act_name(Act a) {
  switch (a) {
    case Act::none: return "none";
    case Act::relu: return "relu";
    case Act::leaky_relu: return "leaky_relu";
    case Act::sigmoid: return "sigmoid";
    case Act::tanh: return "tanh";
  }
  return "?";
}

TEST_F(CudaOps, BiasActForward) {
  const int shapes[][2] = {{1, 1}, {3, 7}, {33, 257}, {1000, 3}, {7, 1025}, {257, 1}};
  for (Act act : kActs)
    for (const auto& s : shapes)
      for (bool with_bias : {false, true}) {
        const int rows = s[0], cols = s[1];
        Floats bias = normal(static_cast<size_t>(cols), 0.f, 0.5f);
        Floats y = normal(static_cast<size_t>(rows) * cols, 0.f, 3.f);
        for (size_t i = 0; i < y.size(); i += 5)  // exact kinks: x + b == 0
          y[i] = with_bias ? -bias[i % static_cast<size_t>(cols)] : 0.f;
        y[0] = 90.f;  // saturation
        if (y.size() > 1) y[1] = -90.f;
        Twin b(cpu(), gpu(), bias), out(cpu(), gpu(), y);
        cpu().bias_act_forward(act, 0.2f, rows, cols, with_bias ? b.c : nullptr, out.c);
        gpu().bias_act_forward(act, 0.2f, rows, cols, with_bias ? b.g : nullptr, out.g);
        EXPECT_TRUE(
            close(out.on_cpu(), out.on_gpu(), 1e-7, 1e-6,
                  "bias_act_forward " + act_name(act) + " " + shape({rows, cols}) + (with_bias ? " bias" : "")));
      }
}

TEST_F(CudaOps, BiasActBackward) {
  const int shapes[][2] = {{1, 1}, {3, 7}, {33, 257}, {1000, 3}, {1, 1000}, {5000, 33}, {100003, 1}, {257, 1025}};
  for (Act act : kActs)
    for (const auto& s : shapes)
      for (bool with_gbias : {false, true}) {
        const int rows = s[0], cols = s[1];
        const size_t n = static_cast<size_t>(rows) * cols;
        // y is a genuine activation output (computed once, on the CPU), zeros included.
        Floats y = normal(n, 0.f, 2.f);
        for (size_t i = 0; i < n; i += 7) y[i] = 0.f;
        cpu().bias_act_forward(act, 0.2f, rows, cols, nullptr, y.data());
        const Floats g0 = normal(n), gb0 = normal(static_cast<size_t>(cols));
        Twin yy(cpu(), gpu(), y), g(cpu(), gpu(), g0), gb(cpu(), gpu(), gb0);
        cpu().bias_act_backward(act, 0.2f, rows, cols, yy.c, g.c, with_gbias ? gb.c : nullptr);
        gpu().bias_act_backward(act, 0.2f, rows, cols, yy.g, g.g, with_gbias ? gb.g : nullptr);
        const std::string what = "bias_act_backward " + act_name(act) + " " + shape({rows, cols});
        const Floats gc = g.on_cpu();
        EXPECT_TRUE(close(gc, g.on_gpu(), 1e-6, 1e-6, what + " g"));
        if (with_gbias) {
          std::vector<double> tol(static_cast<size_t>(cols));
          for (int c = 0; c < cols; ++c) {
            double mag = std::fabs(gb0[c]);
            for (int r = 0; r < rows; ++r) mag += std::fabs(gc[static_cast<size_t>(r) * cols + c]);
            tol[c] = 1e-6 + 2 * 6e-8 * (rows + 2) * mag;
          }
          EXPECT_TRUE(within(gb.on_cpu(), gb.on_gpu(), tol, what + " gbias"));
        } else {
          EXPECT_TRUE(identical(gb0, gb.on_gpu(), what + " gbias untouched"));
        }
      }
}

// ---------------------------------------------------------------- label fusion

const char* fusion_name(Fusion f) {
  switch (f) {
    case Fusion::concat: return "concat";
    case Fusion::embed_concat: return "embed_concat";
    case Fusion::embed_multiply: return "embed_multiply";
  }
  return "?";
}

TEST_F(CudaOps, FuseForwardBackward) {
  // B, in, E, K (labels drawn from K values, so they repeat); batch 8192 with table rows of 36 and
  // 300 floats (64- and 256-thread blocks, many row tiles), and one label for all rows
  const int cases[][4] = {{1, 1, 1, 1},    {7, 3, 5, 3},       {64, 33, 10, 10},   {257, 100, 7, 3}, {3, 0, 4, 2},
                          {1000, 2, 1, 7}, {8192, 20, 16, 10}, {8192, 300, 5, 10}, {600, 7, 40, 1}};
  for (Fusion f : {Fusion::concat, Fusion::embed_concat, Fusion::embed_multiply})
    for (const auto& cs : cases) {
      const int B = cs[0], in = cs[1], K = cs[3];
      const int E = f == Fusion::embed_multiply ? in : cs[2];
      if (f == Fusion::embed_multiply && in == 0) continue;
      const int W = f == Fusion::embed_multiply ? in : in + E;
      const std::string what = std::string(fusion_name(f)) + " " + shape({B, in, E, K});
      const Ints lab = ints(static_cast<size_t>(B), 0, K - 1);
      Floats cond(static_cast<size_t>(B) * E, 0.f);  // multi-hot
      for (auto& v : cond) v = (rng_() % 3 == 0) ? 1.f : 0.f;
      Twin x(cpu(), gpu(), normal(static_cast<size_t>(B) * in)), cd(cpu(), gpu(), cond),
          table(cpu(), gpu(), normal(static_cast<size_t>(K) * E)),
          out(cpu(), gpu(), normal(static_cast<size_t>(B) * W));
      TwinInt labels(cpu(), gpu(), lab);
      cpu().fuse_forward(f, B, in, E, K, x.c, cd.c, labels.c, table.c, out.c);
      gpu().fuse_forward(f, B, in, E, K, x.g, cd.g, labels.g, table.g, out.g);
      EXPECT_TRUE(identical(out.on_cpu(), out.on_gpu(), "fuse_forward " + what));

      for (int variant = 0; variant < 3; ++variant) {  // gx and gtable, gx only, gtable only
        const bool want_gx = variant != 2, want_gt = variant != 1;
        const Floats gt0 = normal(static_cast<size_t>(K) * E);
        Twin gout(cpu(), gpu(), normal(static_cast<size_t>(B) * W)),
            gx(cpu(), gpu(), normal(static_cast<size_t>(B) * in)), gt(cpu(), gpu(), gt0);
        cpu().fuse_backward(f, B, in, E, K, x.c, labels.c, table.c, gout.c, want_gx ? gx.c : nullptr,
                            want_gt ? gt.c : nullptr);
        gpu().fuse_backward(f, B, in, E, K, x.g, labels.g, table.g, gout.g, want_gx ? gx.g : nullptr,
                            want_gt ? gt.g : nullptr);
        const std::string v = " variant " + std::to_string(variant);
        EXPECT_TRUE(identical(gx.on_cpu(), gx.on_gpu(), "fuse_backward gx " + what + v));
        // Same additions in the same order as the CPU: expected bit for bit; allow rounding.
        EXPECT_TRUE(close(gt.on_cpu(), gt.on_gpu(), 1e-6, 1e-6, "fuse_backward gtable " + what + v));
        if (!want_gt || f == Fusion::concat) {
          EXPECT_TRUE(identical(gt0, gt.on_gpu(), "gtable untouched " + what + v));
        }
      }
    }
}

// ---------------------------------------------------------------- fused loss

TEST_F(CudaOps, LossFused) {
  for (LossKind k : {LossKind::log, LossKind::squared})
    for (int n : {1, 3, 257, 1000, 100003, 1 << 20})
      for (float target : {0.f, 1.f, 0.9f})
        for (float weight : {1.f, 0.5f}) {
          Floats x = k == LossKind::log ? normal(static_cast<size_t>(n), 0.f, 3.f)
                                        : normal(static_cast<size_t>(n), 0.5f, 0.5f);
          const float extremes[] = {80.f, -80.f, 0.f, 1e-3f, -1e-3f, 30.f, -30.f};
          for (size_t i = 0; i < std::min<size_t>(x.size(), 7); ++i) x[i] = extremes[i];
          const Floats acc0 = {0.25f, 3.f, 7.f};
          Twin xx(cpu(), gpu(), x), grad(cpu(), gpu(), Floats(static_cast<size_t>(n), 9.f)), acc(cpu(), gpu(), acc0);
          for (int rep = 0; rep < 2; ++rep) {  // accumulates; the GPU's ticket resets
            cpu().loss_fused(k, n, xx.c, target, weight, grad.c, acc.c);
            gpu().loss_fused(k, n, xx.g, target, weight, grad.g, acc.g);
          }
          const std::string what = std::string(k == LossKind::log ? "log" : "squared") + " n=" + std::to_string(n) +
                                   " t=" + std::to_string(target) + " w=" + std::to_string(weight);
          const double scale = weight / static_cast<double>(n);
          EXPECT_TRUE(close(grad.on_cpu(), grad.on_gpu(), 1e-6 * scale, 1e-6, "grad " + what));
          const Floats ac = acc.on_cpu(), ag = acc.on_gpu();
          EXPECT_NEAR(ac[0], ag[0], 1e-6 + 1e-5 * std::fabs(ac[0])) << "mean loss " << what;
          EXPECT_NEAR(ac[1], ag[1], 1e-4 + 1e-5 * std::fabs(ac[1])) << "sum of D(x) " << what;
          EXPECT_NEAR(ac[2], ag[2], 0.5f) << "correct count " << what;
        }
}

// ---------------------------------------------------------------- softmax cross-entropy

TEST_F(CudaOps, SoftmaxXent) {
  for (int B : {1, 7, 8, 9, 300, 5000})
    for (int K : {1, 2, 10, 33, 100})
      for (float weight : {1.f, 0.5f}) {
        Floats x = normal(static_cast<size_t>(B) * K, 0.f, 4.f);
        if (x.size() > 4) x[0] = 80.f, x[1] = -80.f, x[2] = 1e3f;
        if (B > 1 && K > 1) x[static_cast<size_t>(K)] = x[static_cast<size_t>(K) + 1] = 50.f;  // a tie in row 1
        const Ints y = ints(static_cast<size_t>(B), 0, K - 1);
        const Floats acc0 = {0.25f, 3.f};
        Twin xx(cpu(), gpu(), x), grad(cpu(), gpu(), Floats(x.size(), 9.f)), acc(cpu(), gpu(), acc0);
        TwinInt labels(cpu(), gpu(), y);
        for (int rep = 0; rep < 2; ++rep) {  // accumulates; the GPU's ticket resets
          cpu().softmax_xent(B, K, xx.c, labels.c, weight, grad.c, acc.c);
          gpu().softmax_xent(B, K, xx.g, labels.g, weight, grad.g, acc.g);
        }
        const std::string what = "softmax_xent " + shape({B, K}) + " w=" + std::to_string(weight);
        const double scale = weight / static_cast<double>(B);
        EXPECT_TRUE(close(grad.on_cpu(), grad.on_gpu(), 1e-6 * scale, 1e-5, "grad " + what));
        const Floats ac = acc.on_cpu(), ag = acc.on_gpu();
        EXPECT_NEAR(ac[0], ag[0], 1e-6 + 1e-5 * std::fabs(ac[0])) << "mean loss " << what;
        EXPECT_EQ(ac[1], ag[1]) << "correct count " << what;
        // deterministic: the same call gives the same bits
        Twin acc2(cpu(), gpu(), acc0), grad2(cpu(), gpu(), Floats(x.size(), 9.f));
        gpu().softmax_xent(B, K, xx.g, labels.g, weight, grad2.g, acc2.g);
        Twin acc3(cpu(), gpu(), acc0);
        gpu().softmax_xent(B, K, xx.g, labels.g, weight, grad2.g, acc3.g);
        EXPECT_TRUE(identical(acc2.on_gpu(), acc3.on_gpu(), "repeatable acc " + what));
      }
}

TEST_F(CudaOps, SoftmaxXentBadLabelIsReportedAtTheNextSync) {
  TwinInt labels(cpu(), gpu(), Ints{0, 3, 1});
  Twin x(cpu(), gpu(), Floats{1, 2, 3, 4, 5, 6, 7, 8, 9}), grad(cpu(), gpu(), Floats(9, 7.f)),
      acc(cpu(), gpu(), Floats{0, 0});
  EXPECT_THROW(cpu().softmax_xent(3, 3, x.c, labels.c, 1.f, grad.c, acc.c), Error);
  gpu().softmax_xent(3, 3, x.g, labels.g, 1.f, grad.g, acc.g);
  try {
    gpu().synchronize();
    ADD_FAILURE() << "a label outside 0..K-1 was not reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("softmax_xent"), std::string::npos) << e.what();
  }
  const Floats g = grad.on_gpu();
  for (int k = 3; k < 6; ++k) EXPECT_EQ(g[k], 0.f) << "the bad row's gradient is zeroed";
}

// ---------------------------------------------------------------- Adam

TEST_F(CudaOps, Adam) {
  for (size_t n : {size_t{1}, size_t{7}, size_t{1000}, size_t{100003}})
    for (int t0 : {1, 100}) {
      Twin p(cpu(), gpu(), normal(n)), m(cpu(), gpu(), normal(n, 0.f, 0.1f)), v(cpu(), gpu(), uniform(n, 0.f, 0.01f));
      for (int t = t0; t < t0 + 3; ++t) {
        Floats gh = normal(n);
        gh[0] = 0.f;
        Twin g(cpu(), gpu(), gh);
        cpu().adam(n, p.c, g.c, m.c, v.c, 2e-4f, 0.5f, 0.999f, 1e-8f, t);
        gpu().adam(n, p.g, g.g, m.g, v.g, 2e-4f, 0.5f, 0.999f, 1e-8f, t);
      }
      const std::string what = "adam n=" + std::to_string(n) + " t=" + std::to_string(t0);
      EXPECT_TRUE(close(p.on_cpu(), p.on_gpu(), 1e-6, 1e-6, what + " p"));
      EXPECT_TRUE(close(m.on_cpu(), m.on_gpu(), 1e-7, 1e-6, what + " m"));
      EXPECT_TRUE(close(v.on_cpu(), v.on_gpu(), 1e-9, 1e-6, what + " v"));
    }
}

// ---------------------------------------------------------------- batch norm

TEST_F(CudaOps, BatchNorm) {
  const int shapes[][3] = {{2, 1, 1},  {3, 3, 1},    {64, 33, 1},  {257, 7, 1}, {1, 3, 7},
                           {3, 33, 7}, {16, 3, 257}, {4, 2, 4096}, {8, 50, 33}, {1000, 40, 1}};
  for (const auto& s : shapes)
    for (float eps : {1e-5f, 0.8f}) {
      const int N = s[0], C = s[1], S = s[2];
      const size_t n = static_cast<size_t>(N) * C * S;
      const std::string what = "batchnorm " + shape({N, C, S}) + " eps=" + std::to_string(eps);
      Floats xh = normal(n, 5.f, 2.f);  // a large mean: the two-pass variance matters
      Twin x(cpu(), gpu(), xh), gamma(cpu(), gpu(), uniform(static_cast<size_t>(C), 0.5f, 1.5f)),
          beta(cpu(), gpu(), normal(static_cast<size_t>(C), 0.f, 0.5f)), y(cpu(), gpu(), Floats(n, 7.f)),
          mean(cpu(), gpu(), Floats(static_cast<size_t>(C))), invstd(cpu(), gpu(), Floats(static_cast<size_t>(C))),
          rmean(cpu(), gpu(), normal(static_cast<size_t>(C))),
          rvar(cpu(), gpu(), uniform(static_cast<size_t>(C), 0.5f, 2.f));
      cpu().batchnorm_forward_train(N, C, S, eps, 0.1f, x.c, gamma.c, beta.c, y.c, mean.c, invstd.c, rmean.c, rvar.c);
      gpu().batchnorm_forward_train(N, C, S, eps, 0.1f, x.g, gamma.g, beta.g, y.g, mean.g, invstd.g, rmean.g, rvar.g);
      EXPECT_TRUE(close(y.on_cpu(), y.on_gpu(), 2e-6, 2e-6, what + " train y"));
      EXPECT_TRUE(close(mean.on_cpu(), mean.on_gpu(), 1e-6, 1e-6, what + " save_mean"));
      EXPECT_TRUE(close(invstd.on_cpu(), invstd.on_gpu(), 1e-6, 1e-6, what + " save_invstd"));
      EXPECT_TRUE(close(rmean.on_cpu(), rmean.on_gpu(), 1e-6, 1e-6, what + " run_mean"));
      EXPECT_TRUE(close(rvar.on_cpu(), rvar.on_gpu(), 1e-6, 1e-6, what + " run_var"));

      // Without running statistics, and in place (y == x).
      Twin xi(cpu(), gpu(), xh);
      cpu().batchnorm_forward_train(N, C, S, eps, 0.1f, xi.c, gamma.c, beta.c, xi.c, mean.c, invstd.c, nullptr,
                                    nullptr);
      gpu().batchnorm_forward_train(N, C, S, eps, 0.1f, xi.g, gamma.g, beta.g, xi.g, mean.g, invstd.g, nullptr,
                                    nullptr);
      EXPECT_TRUE(close(xi.on_cpu(), xi.on_gpu(), 2e-6, 2e-6, what + " train in place"));

      // Eval with the same running statistics on both sides.
      const Floats rm = rmean.on_cpu(), rv = rvar.on_cpu();
      Twin rm2(cpu(), gpu(), rm), rv2(cpu(), gpu(), rv);
      cpu().batchnorm_forward_eval(N, C, S, eps, x.c, gamma.c, beta.c, rm2.c, rv2.c, y.c);
      gpu().batchnorm_forward_eval(N, C, S, eps, x.g, gamma.g, beta.g, rm2.g, rv2.g, y.g);
      EXPECT_TRUE(close(y.on_cpu(), y.on_gpu(), 2e-6, 2e-6, what + " eval y"));

      // Backward from the same saved statistics (the CPU's) on both sides.
      const Floats sm = mean.on_cpu(), si = invstd.on_cpu();
      const Floats gg0 = normal(static_cast<size_t>(C)), gb0 = normal(static_cast<size_t>(C));
      Twin sm2(cpu(), gpu(), sm), si2(cpu(), gpu(), si), gy(cpu(), gpu(), normal(n)), gx(cpu(), gpu(), Floats(n, 3.f)),
          gg(cpu(), gpu(), gg0), gb(cpu(), gpu(), gb0);
      cpu().batchnorm_backward(N, C, S, x.c, gamma.c, sm2.c, si2.c, gy.c, gx.c, gg.c, gb.c);
      gpu().batchnorm_backward(N, C, S, x.g, gamma.g, sm2.g, si2.g, gy.g, gx.g, gg.g, gb.g);
      EXPECT_TRUE(close(gx.on_cpu(), gx.on_gpu(), 1e-5, 1e-5, what + " gx"));
      const double sum_tol = 1e-5 * std::sqrt(static_cast<double>(N) * S);
      EXPECT_TRUE(close(gg.on_cpu(), gg.on_gpu(), sum_tol, 1e-6, what + " ggamma"));
      EXPECT_TRUE(close(gb.on_cpu(), gb.on_gpu(), sum_tol, 1e-6, what + " gbeta"));
      // Null ggamma / gbeta are allowed.
      gpu().batchnorm_backward(N, C, S, x.g, gamma.g, sm2.g, si2.g, gy.g, gx.g, nullptr, nullptr);
      EXPECT_TRUE(close(gx.on_cpu(), gx.on_gpu(), 1e-5, 1e-5, what + " gx (no param grads)"));
    }
}

// Batch norm at one shape: forward (train), backward from the CPU's saved statistics, against the
// CPU at tolerances scaled by each output's largest magnitude (atol = tol * max|cpu|), and the GPU
// run twice gives the same bits. `offset` shifts every tensor by that many floats in its buffer
// (1: not 16-byte aligned, the scalar path of S % 4 == 0 shapes).
void check_bn_at(Backend& cpu, Backend& gpu, CudaParityTest& t, int N, int C, int S, float eps, const Floats& xh,
                 double tol, size_t offset = 0) {
  const size_t n = static_cast<size_t>(N) * C * S, c = static_cast<size_t>(C);
  const std::string what = "batchnorm " + shape({N, C, S}) + " offset " + std::to_string(offset);
  SCOPED_TRACE(what);
  Floats xo(offset, 0.f);
  xo.insert(xo.end(), xh.begin(), xh.end());
  Floats gyo(offset, 0.f);
  const Floats gyh = t.normal_(n);
  gyo.insert(gyo.end(), gyh.begin(), gyh.end());
  Twin x(cpu, gpu, xo), gamma(cpu, gpu, t.uniform_(c, 0.5f, 1.5f)), beta(cpu, gpu, t.normal_(c)),
      y(cpu, gpu, Floats(n + offset)), mean(cpu, gpu, Floats(c)), invstd(cpu, gpu, Floats(c)),
      rmean(cpu, gpu, Floats(c, 0.f)), rvar(cpu, gpu, Floats(c, 1.f)), gy(cpu, gpu, gyo),
      gx(cpu, gpu, Floats(n + offset)), gg(cpu, gpu, Floats(c)), gb(cpu, gpu, Floats(c));
  const auto scaled = [&](const Floats& ref, const Floats& got, const std::string& name) {
    double m = 0;
    for (float v : ref) m = std::max(m, static_cast<double>(std::fabs(v)));
    return close(ref, got, tol * m, tol, what + " " + name);
  };
  cpu.batchnorm_forward_train(N, C, S, eps, 0.1f, x.c + offset, gamma.c, beta.c, y.c + offset, mean.c, invstd.c,
                              rmean.c, rvar.c);
  gpu.batchnorm_forward_train(N, C, S, eps, 0.1f, x.g + offset, gamma.g, beta.g, y.g + offset, mean.g, invstd.g,
                              rmean.g, rvar.g);
  const Floats yg = y.on_gpu();
  EXPECT_TRUE(scaled(y.on_cpu(), yg, "train y"));
  EXPECT_TRUE(close(mean.on_cpu(), mean.on_gpu(), 1e-6, 1e-6, what + " save_mean"));
  EXPECT_TRUE(close(invstd.on_cpu(), invstd.on_gpu(), 1e-6, 1e-6, what + " save_invstd"));
  EXPECT_TRUE(close(rmean.on_cpu(), rmean.on_gpu(), 1e-6, 1e-6, what + " run_mean"));
  EXPECT_TRUE(close(rvar.on_cpu(), rvar.on_gpu(), 1e-6, 1e-6, what + " run_var"));
  gpu.batchnorm_forward_train(N, C, S, eps, 0.1f, x.g + offset, gamma.g, beta.g, y.g + offset, mean.g, invstd.g,
                              nullptr, nullptr);
  EXPECT_TRUE(identical(yg, y.on_gpu(), what + " train y run twice"));

  const Floats sm = mean.on_cpu(), si = invstd.on_cpu();
  Twin sm2(cpu, gpu, sm), si2(cpu, gpu, si);
  cpu.batchnorm_backward(N, C, S, x.c + offset, gamma.c, sm2.c, si2.c, gy.c + offset, gx.c + offset, gg.c, gb.c);
  gpu.batchnorm_backward(N, C, S, x.g + offset, gamma.g, sm2.g, si2.g, gy.g + offset, gx.g + offset, gg.g, gb.g);
  const Floats gxg = gx.on_gpu(), ggg = gg.on_gpu();
  EXPECT_TRUE(scaled(gx.on_cpu(), gxg, "gx"));
  EXPECT_TRUE(scaled(gg.on_cpu(), ggg, "ggamma"));
  EXPECT_TRUE(scaled(gb.on_cpu(), gb.on_gpu(), "gbeta"));
  Twin gg3(cpu, gpu, Floats(c));
  gpu.batchnorm_backward(N, C, S, x.g + offset, gamma.g, sm2.g, si2.g, gy.g + offset, gx.g + offset, gg3.g, nullptr);
  EXPECT_TRUE(identical(gxg, gx.on_gpu(), what + " gx run twice"));
  EXPECT_TRUE(identical(ggg, gg3.on_gpu(), what + " ggamma run twice"));
}

// The activation that follows a batch norm, applied in its output pass (train and eval, float4 and
// scalar paths, dense), against the CPU's batch norm then activation.
TEST_F(CudaOps, BatchNormFusedActivation) {
  const int shapes[][3] = {{4, 3, 64}, {5, 7, 33}, {64, 40, 1}};
  for (const auto& sh : shapes)
    for (Act act : {Act::relu, Act::leaky_relu, Act::tanh, Act::sigmoid}) {
      const int N = sh[0], C = sh[1], S = sh[2];
      const size_t n = static_cast<size_t>(N) * C * S, c = static_cast<size_t>(C);
      const std::string what = "batchnorm " + shape({N, C, S}) + " act " + std::to_string(static_cast<int>(act));
      Twin x(cpu(), gpu(), normal(n, 1.f, 2.f)), gamma(cpu(), gpu(), uniform(c, 0.5f, 1.5f)),
          beta(cpu(), gpu(), normal(c)), y(cpu(), gpu(), Floats(n)), mean(cpu(), gpu(), Floats(c)),
          invstd(cpu(), gpu(), Floats(c)), rm(cpu(), gpu(), normal(c)), rv(cpu(), gpu(), uniform(c, 0.5f, 2.f));
      cpu().batchnorm_forward_train(N, C, S, 1e-5f, 0.1f, x.c, gamma.c, beta.c, y.c, mean.c, invstd.c, nullptr, nullptr,
                                    act, 0.2f);
      gpu().batchnorm_forward_train(N, C, S, 1e-5f, 0.1f, x.g, gamma.g, beta.g, y.g, mean.g, invstd.g, nullptr, nullptr,
                                    act, 0.2f);
      EXPECT_TRUE(close(y.on_cpu(), y.on_gpu(), 2e-6, 2e-6, what + " train"));
      cpu().batchnorm_forward_eval(N, C, S, 1e-5f, x.c, gamma.c, beta.c, rm.c, rv.c, y.c, act, 0.2f);
      gpu().batchnorm_forward_eval(N, C, S, 1e-5f, x.g, gamma.g, beta.g, rm.g, rv.g, y.g, act, 0.2f);
      EXPECT_TRUE(close(y.on_cpu(), y.on_gpu(), 2e-6, 2e-6, what + " eval"));
    }
}

// A large mean (1000, float spacing 6e-5) and a tiny spread (0.006): the float save_mean is off the
// true mean by up to 3e-5, which at invstd ~ 150 is visible, so the CPU's compensated mean (lo
// terms, forward and backward) decides the result. Without them the outputs move by ~3e-3 of
// their scale; the tolerance is 1e-4.
TEST_F(CudaOps, BatchNormCompensatedMean) {
  const int shapes[][3] = {{64, 3, 4099}, {64, 5, 4096}, {4096, 7, 1}, {33, 2, 257}};
  for (const auto& sh : shapes) {
    const size_t n = static_cast<size_t>(sh[0]) * sh[1] * sh[2];
    Floats x = uniform(n, -0.01f, 0.01f);
    for (auto& v : x) v += 1000.f;
    check_bn_at(cpu(), gpu(), *this, sh[0], sh[1], sh[2], 1e-5f, x, 1e-4);
  }
}

// The real anime_conv batch norms (batch 64, 15, 50 and 25 channels of 192x192), the same unaligned
// (scalar path), and the dense path at batch 8192 (mnist_mlp's large-batch run).
TEST_F(CudaOps, BatchNormRealSizes) {
  const int S = 192 * 192;
  for (int C : {15, 50, 25})
    check_bn_at(cpu(), gpu(), *this, 64, C, S, 1e-5f, normal(static_cast<size_t>(64) * C * S, 0.5f, 2.f), 1e-5);
  check_bn_at(cpu(), gpu(), *this, 64, 15, S, 1e-5f, normal(static_cast<size_t>(64) * 15 * S, 0.5f, 2.f), 1e-5, 1);
  check_bn_at(cpu(), gpu(), *this, 8192, 1024, 1, 0.8f, normal(static_cast<size_t>(8192) * 1024, -1.f, 3.f), 1e-5);
  check_bn_at(cpu(), gpu(), *this, 8191, 257, 1, 1e-5f, normal(static_cast<size_t>(8191) * 257), 1e-5);
}

// ---------------------------------------------------------------- randomness

TEST_F(CudaOps, DropoutMasksIdentical) {
  for (size_t n : {size_t{1}, size_t{1000}, (size_t{1} << 20) + 3})
    for (float p : {0.f, 0.1f, 0.5f, 0.9f}) {
      const uint64_t seed = u64(), stream = u64();
      Twin x(cpu(), gpu(), normal(n)), mask(cpu(), gpu(), Floats(n, 5.f));
      cpu().dropout_forward(n, p, seed, stream, x.c, mask.c);
      gpu().dropout_forward(n, p, seed, stream, x.g, mask.g);
      const std::string what = "dropout n=" + std::to_string(n) + " p=" + std::to_string(p);
      EXPECT_TRUE(identical(mask.on_cpu(), mask.on_gpu(), what + " mask"));
      EXPECT_TRUE(identical(x.on_cpu(), x.on_gpu(), what + " x"));
    }
}

TEST_F(CudaOps, RandomDrawsIdentical) {
  for (size_t n : {size_t{1}, size_t{1000}, (size_t{1} << 20) + 3})
    for (uint64_t offset : {uint64_t{0}, uint64_t{12345}, (uint64_t{1} << 33) + 7}) {
      const uint64_t seed = u64(), stream = u64();
      const std::string what = "n=" + std::to_string(n) + " offset=" + std::to_string(offset);
      Twin a(cpu(), gpu(), Floats(n)), b(cpu(), gpu(), Floats(n));
      cpu().rand_normal(n, seed, stream, offset, 0.5f, 2.f, a.c);
      gpu().rand_normal(n, seed, stream, offset, 0.5f, 2.f, a.g);
      // Box-Muller runs through double log/cos, which may differ in the last bit between libm and
      // CUDA: allow 1e-6.
      EXPECT_TRUE(close(a.on_cpu(), a.on_gpu(), 1e-6, 1e-6, "rand_normal " + what));
      cpu().rand_uniform(n, seed, stream, offset, -1.5f, 3.f, b.c);
      gpu().rand_uniform(n, seed, stream, offset, -1.5f, 3.f, b.g);
      EXPECT_TRUE(identical(b.on_cpu(), b.on_gpu(), "rand_uniform " + what));
      for (int32_t K : {1, 3, 10, 60000, std::numeric_limits<int32_t>::max()}) {
        TwinInt r(cpu(), gpu(), Ints(n, -1));
        cpu().rand_below(n, seed, stream, offset, K, r.c);
        gpu().rand_below(n, seed, stream, offset, K, r.g);
        EXPECT_TRUE(identical(r.on_cpu(), r.on_gpu(), "rand_below K=" + std::to_string(K) + " " + what));
      }
    }
}

TEST_F(CudaOps, PermutationIdentical) {
  // 100003 and 1e6 indices almost surely hold equal 32-bit words: stability is exercised.
  for (int n : {1, 2, 3, 7, 1000, 100003, 1000000, 60000}) {
    const uint64_t seed = u64(), stream = u64();
    TwinInt out(cpu(), gpu(), Ints(static_cast<size_t>(n), -1));
    cpu().permutation(n, seed, stream, out.c);
    gpu().permutation(n, seed, stream, out.g);
    const Ints pg = out.on_gpu();
    EXPECT_TRUE(identical(out.on_cpu(), pg, "permutation n=" + std::to_string(n)));
    Ints sorted = pg;
    std::sort(sorted.begin(), sorted.end());
    Ints iota(static_cast<size_t>(n));
    std::iota(iota.begin(), iota.end(), 0);
    EXPECT_TRUE(identical(iota, sorted, "permutation is a permutation n=" + std::to_string(n)));
  }
}

// ---------------------------------------------------------------- data

// ---------------------------------------------------------------- device counters
// The forms a captured CUDA graph replays: counters in device memory, read when the kernel runs.

TEST_F(CudaOps, CounterFormsMatchTheCpu) {
  for (int B : {1, 7, 257}) {
    const int cols = 33, rows = 500, off = B == 7 ? 0 : 123;
    TwinInt idx(cpu(), gpu(), ints(static_cast<size_t>(off + B), 0, rows - 1)), o(cpu(), gpu(), Ints{off});
    Twin src(cpu(), gpu(), normal(static_cast<size_t>(rows) * cols)),
        dst(cpu(), gpu(), Floats(static_cast<size_t>(B) * cols, 2.f));
    cpu().gather_rows(B, cols, rows, src.c, idx.c, dst.c, o.c);
    gpu().gather_rows(B, cols, rows, src.g, idx.g, dst.g, o.g);
    EXPECT_TRUE(identical(dst.on_cpu(), dst.on_gpu(), "gather_rows with offset B=" + std::to_string(B)));
    TwinInt isrc(cpu(), gpu(), ints(static_cast<size_t>(rows), -50, 50)), idst(cpu(), gpu(), Ints(B));
    cpu().gather_int(B, rows, isrc.c, idx.c, idst.c, o.c);
    gpu().gather_int(B, rows, isrc.g, idx.g, idst.g, o.g);
    EXPECT_TRUE(identical(idst.on_cpu(), idst.on_gpu(), "gather_int with offset B=" + std::to_string(B)));
  }
  for (size_t n : {size_t{1}, size_t{1001}}) {
    TwinInt step(cpu(), gpu(), Ints{static_cast<int32_t>(u64() % 1000000)});
    const uint64_t seed = u64(), base = u64() % 4096;
    Twin a(cpu(), gpu(), Floats(n)), x(cpu(), gpu(), normal(n)), mask(cpu(), gpu(), Floats(n));
    cpu().rand_uniform(n, seed, RngStream(base, step.c, 256), 5, -1.f, 1.f, a.c);
    gpu().rand_uniform(n, seed, RngStream(base, step.g, 256), 5, -1.f, 1.f, a.g);
    EXPECT_TRUE(identical(a.on_cpu(), a.on_gpu(), "rand_uniform with a step counter"));
    cpu().dropout_forward(n, 0.4f, seed, RngStream(base, step.c, 256 * 64), x.c, mask.c);
    gpu().dropout_forward(n, 0.4f, seed, RngStream(base, step.g, 256 * 64), x.g, mask.g);
    EXPECT_TRUE(identical(mask.on_cpu(), mask.on_gpu(), "dropout mask with a step counter"));
    TwinInt r(cpu(), gpu(), Ints(n));
    cpu().rand_below(n, seed, RngStream(base, step.c, 256), 0, 10, r.c);
    gpu().rand_below(n, seed, RngStream(base, step.g, 256), 0, 10, r.g);
    EXPECT_TRUE(identical(r.on_cpu(), r.on_gpu(), "rand_below with a step counter"));
  }
  {
    const size_t n = 100003;
    TwinInt t(cpu(), gpu(), Ints{37});
    Twin p(cpu(), gpu(), normal(n)), g(cpu(), gpu(), normal(n)), m(cpu(), gpu(), normal(n, 0.f, 0.1f)),
        v(cpu(), gpu(), uniform(n, 0.f, 0.01f));
    cpu().adam(n, p.c, g.c, m.c, v.c, 2e-4f, 0.5f, 0.999f, 1e-8f, 0, t.c);
    gpu().adam(n, p.g, g.g, m.g, v.g, 2e-4f, 0.5f, 0.999f, 1e-8f, 0, t.g);
    EXPECT_TRUE(close(p.on_cpu(), p.on_gpu(), 1e-6, 1e-6, "adam with a step counter"));
  }
  {
    TwinInt c(cpu(), gpu(), Ints{3, 0, 9, 1, 1});
    const Ints d = {1, 64, 1, 1, 2};
    cpu().add_ints(5, c.c, d.data());
    gpu().add_ints(5, c.g, d.data());
    EXPECT_TRUE(identical(c.on_cpu(), c.on_gpu(), "add_ints"));
    EXPECT_TRUE(identical(Ints{4, 64, 10, 2, 3}, c.on_gpu(), "add_ints values"));
    TwinInt slot(cpu(), gpu(), Ints{2});
    Twin src(cpu(), gpu(), normal(9)), dst(cpu(), gpu(), Floats(9 * 4, 5.f));
    cpu().copy_to_slot(9, src.c, dst.c, slot.c, 4);
    gpu().copy_to_slot(9, src.g, dst.g, slot.g, 4);
    EXPECT_TRUE(identical(dst.on_cpu(), dst.on_gpu(), "copy_to_slot"));
    TwinInt bad(cpu(), gpu(), Ints{4});
    gpu().copy_to_slot(9, src.g, dst.g, bad.g, 4);  // outside [0, 4): flagged, nothing written
    EXPECT_THROW(gpu().synchronize(), Error);
    EXPECT_TRUE(identical(dst.on_cpu(), dst.on_gpu(), "copy_to_slot with a bad slot writes nothing"));
  }
}

// A captured graph replays the same kernels; the counters make each replay differ.
TEST_F(CudaOps, GraphReplayReadsTheCountersAtEachLaunch) {
  ASSERT_TRUE(gpu().graphs_supported());
  const size_t n = 1000;
  TwinInt step(cpu(), gpu(), Ints{0});
  Twin out(cpu(), gpu(), Floats(n)), slots(cpu(), gpu(), Floats(n * 3));
  const uint64_t seed = u64();
  gpu().graph_begin();
  gpu().rand_normal(n, seed, RngStream(7, step.g, 256), 0, 0.f, 1.f, out.g);
  gpu().copy_to_slot(n, out.g, slots.g, step.g, 3);
  const Ints one = {1};
  gpu().add_ints(1, step.g, one.data());
  const int id = gpu().graph_end();
  for (int i = 0; i < 3; ++i) gpu().graph_launch(id);
  gpu().synchronize();
  EXPECT_TRUE(identical(Ints{3}, step.on_gpu(), "step counter after 3 replays"));
  const Floats got = slots.on_gpu();
  for (int i = 0; i < 3; ++i) {
    Floats want(n);
    cpu().rand_normal(n, seed, 7 + 256 * static_cast<uint64_t>(i), 0, 0.f, 1.f, want.data());
    EXPECT_TRUE(
        close(want, Floats(got.begin() + i * n, got.begin() + (i + 1) * n), 1e-6, 1e-6, "replay " + std::to_string(i)));
  }
  gpu().graph_drop(id);
  EXPECT_THROW(gpu().graph_launch(id), Error);
}

// ---------------------------------------------------------------- errors

TEST_F(CudaOps, BadArgumentsThrowLikeTheCpu) {
  Twin a(cpu(), gpu(), Floats(8, 1.f));
  for (Backend* be : {&cpu(), &gpu()}) {
    float* p = be == &cpu() ? a.c : a.g;
    EXPECT_THROW(be->adam(8, p, p, p, p, 1e-3f, 0.5f, 0.999f, 1e-8f, 0), Error) << be->name();
    EXPECT_THROW(be->dropout_forward(8, 1.f, 1, 2, p, p), Error) << be->name();
    EXPECT_THROW(be->batchnorm_forward_train(1, 8, 1, 1e-5f, 0.1f, p, p, p, p, p, p, p, p), Error) << be->name();
    EXPECT_THROW(be->loss_fused(LossKind::log, 0, p, 1.f, 1.f, p, p), Error) << be->name();
    EXPECT_THROW(be->gemm(false, false, -1, 2, 2, 1.f, p, p, 0.f, p), Error) << be->name();
  }
}

TEST_F(CudaOps, BadLabelsAreReportedAtTheNextSync) {
  TwinInt labels(cpu(), gpu(), Ints{0, 5, 1});
  Twin out(cpu(), gpu(), Floats(9));
  gpu().one_hot(3, 3, labels.g, out.g);  // label 5 with K = 3
  EXPECT_THROW(gpu().synchronize(), Error);
  gpu().synchronize();  // reported once
  const Floats o = out.on_gpu();
  EXPECT_TRUE(identical(Floats{1, 0, 0, 0, 0, 0, 0, 1, 0}, o, "one_hot with a bad label"));

  TwinInt idx(cpu(), gpu(), Ints{1, -1});
  Twin src(cpu(), gpu(), Floats{1, 2, 3, 4}), dst(cpu(), gpu(), Floats(4, 9.f));
  gpu().gather_rows(2, 2, 2, src.g, idx.g, dst.g);
  Floats h(4);
  EXPECT_THROW(gpu().download(h.data(), dst.g, 4), Error);
  EXPECT_TRUE(identical(Floats{3, 4, 0, 0}, dst.on_gpu(), "gather_rows with a negative index"));

  // Row bounds: an index past the source's rows, a label past the table's rows.
  TwinInt past(cpu(), gpu(), Ints{2, 0});
  gpu().gather_rows(2, 2, 2, src.g, past.g, dst.g);
  try {
    gpu().synchronize();
    ADD_FAILURE() << "gather_rows past the last row was not reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gather_rows/gather_int: index outside the source rows"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(identical(Floats{0, 0, 1, 2}, dst.on_gpu(), "gather_rows past the last row"));
  TwinInt isrc(cpu(), gpu(), Ints{5, 6}), idst(cpu(), gpu(), Ints{9, 9});
  gpu().gather_int(2, 2, isrc.g, past.g, idst.g);
  EXPECT_THROW(gpu().synchronize(), Error);
  TwinInt lab(cpu(), gpu(), Ints{1, 3});  // K = 3 rows: label 3 is one past
  Twin x(cpu(), gpu(), Floats{1, 1, 1, 1}), table(cpu(), gpu(), Floats{1, 2, 3, 4, 5, 6}),
      fused(cpu(), gpu(), Floats(8, 9.f)), gtable(cpu(), gpu(), Floats(6, 0.f)), gout(cpu(), gpu(), Floats(8, 1.f));
  for (Fusion f : {Fusion::embed_concat, Fusion::embed_multiply}) {
    gpu().fuse_forward(f, 2, 2, 2, 3, x.g, nullptr, lab.g, table.g, fused.g);
    try {
      gpu().synchronize();
      ADD_FAILURE() << fusion_name(f) << ": a label past the table was not reported";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("label outside the table's rows"), std::string::npos) << e.what();
    }
    gpu().fuse_backward(f, 2, 2, 2, 3, x.g, lab.g, table.g, gout.g, nullptr, gtable.g);
    EXPECT_THROW(gpu().synchronize(), Error) << fusion_name(f);
  }
  const Floats gt = gtable.on_gpu();
  EXPECT_EQ(gt[0] + gt[1] + gt[4] + gt[5], 0.f) << "only row 1 (the valid label) is accumulated";
}

}  // namespace
}  // namespace cgan
