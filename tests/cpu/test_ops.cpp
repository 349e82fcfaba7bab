// CPU backend op tests: every op against a double-precision reference, every backward against
// central finite differences of that reference, the losses against closed forms, Adam against a
// hand computation, Philox against the Random123 known-answer vectors, and the RNG ops against their
// statistical and definitional properties.
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
#include "cgan/base/philox.hpp"
#include "cgan/backend/scalar_math.hpp"
#include "ops_test_util.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

using namespace opstest;

class Ops : public RandomCpuTest {};

// ------------------------------------------------------------------------------------------ memory

TEST_F(Ops, AllocIsZeroedAlignedAndFreeAcceptsNull) {
  for (size_t n : {size_t(1), size_t(3), size_t(1000), size_t(size(1, 129))}) {
    float* p = be_->alloc(n);
    int32_t* q = be_->alloc_int(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % 64, 0u);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(p[i], 0.f);
      ASSERT_EQ(q[i], 0);
    }
    be_->fill(p, n, 2.5f);
    VecF h(n);
    be_->download(h.data(), p, n);
    for (float v : h) ASSERT_EQ(v, 2.5f);
    VecF src = randv(n, -1, 1);
    be_->upload(p, src.data(), n);
    float* p2 = be_->alloc(n);
    be_->copy(p2, p, n);
    be_->download(h.data(), p2, n);
    EXPECT_EQ(h, src);
    VecI isrc(n);
    for (auto& v : isrc) v = randint(-100, 100);
    be_->upload_int(q, isrc.data(), n);
    VecI ih(n);
    be_->download_int(ih.data(), q, n);
    EXPECT_EQ(ih, isrc);
    be_->free(p);
    be_->free(p2);
    be_->free(q);
  }
  be_->free(nullptr);
}

// -------------------------------------------------------------------------------------------- gemm

void gemm_case(Backend& be, bool ta, bool tb, int M, int N, int K, float alpha, float beta, const VecF& A,
               const VecF& B, VecF C) {
  VecD ref(static_cast<size_t>(M) * N);
  VecD mag(ref.size());  // alpha * sum |a b| + |beta c|: the scale of the rounding error
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0, a = 0;
      for (int k = 0; k < K; ++k) {
        const double av = ta ? A[static_cast<size_t>(k) * M + i] : A[static_cast<size_t>(i) * K + k];
        const double bv = tb ? B[static_cast<size_t>(j) * K + k] : B[static_cast<size_t>(k) * N + j];
        s += av * bv;
        a += std::fabs(av * bv);
      }
      const double c = C[static_cast<size_t>(i) * N + j];
      const double cb = beta == 0.f ? 0.0 : beta * c;  // beta == 0 ignores C (NaN included)
      ref[static_cast<size_t>(i) * N + j] = alpha * s + cb;
      mag[static_cast<size_t>(i) * N + j] = std::fabs(alpha) * a + std::fabs(cb);
    }
  be.gemm(ta, tb, M, N, K, alpha, A.data(), B.data(), beta, C.data());
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(C[i] - ref[i]);
    if (!(err <= 1e-6 + 1e-5 * mag[i]) && ++bad <= 3)
      ADD_FAILURE() << "gemm ta=" << ta << " tb=" << tb << " M=" << M << " N=" << N << " K=" << K << " alpha=" << alpha
                    << " beta=" << beta << " C[" << i << "] = " << C[i] << ", ref " << ref[i];
  }
  EXPECT_EQ(bad, 0);
}

TEST_F(Ops, GemmMatchesDoubleReferenceAllTransposes) {
  for (int trial = 0; trial < 12; ++trial)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const int M = size(1, 70), N = size(1, 70), K = size(1, 130);
        const float alpha = trial == 0 ? 1.f : uni(-2, 2);
        const float beta = trial == 0 ? 0.f : trial == 1 ? 1.f : uni(-2, 2);
        VecF A = randv(static_cast<size_t>(M) * K, -1, 1), B = randv(static_cast<size_t>(K) * N, -1, 1);
        VecF C = randv(static_cast<size_t>(M) * N, -1, 1);
        if (beta == 0.f) std::fill(C.begin(), C.end(), std::numeric_limits<float>::quiet_NaN());
        gemm_case(*be_, ta, tb, M, N, K, alpha, beta, A, B, C);
      }
}

TEST_F(Ops, GemmLargeShapeUsesThreadedPathCorrectly) {
  const int M = 256 + randint(0, 9), N = 256 + randint(0, 9), K = 260 + randint(0, 9);  // >= 16M MACs
  for (int ta = 0; ta < 2; ++ta) {
    const int tb = 1 - ta;
    gemm_case(*be_, ta, tb, M, N, K, uni(0.5f, 1.5f), uni(-1, 1), randv(static_cast<size_t>(M) * K, -1, 1),
              randv(static_cast<size_t>(K) * N, -1, 1), randv(static_cast<size_t>(M) * N, -1, 1));
  }
}

TEST_F(Ops, GemmWithKZeroScalesC) {
  const int M = size(1, 9), N = size(1, 9);
  VecF C = randv(static_cast<size_t>(M) * N, -1, 1), C0 = C;
  be_->gemm(false, false, M, N, 0, 1.f, nullptr, nullptr, 0.5f, C.data());
  for (size_t i = 0; i < C.size(); ++i) EXPECT_EQ(C[i], 0.5f * C0[i]);
  std::fill(C.begin(), C.end(), std::numeric_limits<float>::quiet_NaN());
  be_->gemm(true, true, M, N, 0, 1.f, nullptr, nullptr, 0.f, C.data());
  for (float v : C) EXPECT_EQ(v, 0.f);
}

TEST_F(Ops, ArgumentChecksThrow) {
  VecF a(4), b(4), c(4);
  EXPECT_THROW(be_->gemm(false, false, -1, 2, 2, 1.f, a.data(), b.data(), 0.f, c.data()), Error);
  EXPECT_THROW(be_->gemm(false, false, 2, 2, 2, 1.f, nullptr, b.data(), 0.f, c.data()), Error);
  EXPECT_THROW(be_->gemm(false, false, 2, 2, 2, 1.f, a.data(), b.data(), 0.f, nullptr), Error);
  EXPECT_THROW(be_->bias_act_forward(Act::relu, 0.f, -2, 2, nullptr, c.data()), Error);
  EXPECT_THROW(be_->bias_act_forward(Act::relu, 0.f, 2, 2, nullptr, nullptr), Error);
  EXPECT_THROW(be_->dropout_forward(4, 1.f, 1, 1, a.data(), b.data()), Error);
  EXPECT_THROW(be_->dropout_forward(4, -0.1f, 1, 1, a.data(), b.data()), Error);
  EXPECT_THROW(be_->loss_fused(LossKind::log, 0, a.data(), 1.f, 1.f, b.data(), c.data()), Error);
  EXPECT_THROW(be_->adam(4, a.data(), b.data(), c.data(), c.data(), 1e-3f, 0.9f, 0.999f, 1e-8f, 0), Error);
  EXPECT_THROW(be_->rand_below(4, 1, 1, 0, 0, reinterpret_cast<int32_t*>(a.data())), Error);
  EXPECT_THROW(be_->permutation(-1, 1, 1, reinterpret_cast<int32_t*>(a.data())), Error);
  const int32_t lab[2] = {0, 3};
  EXPECT_THROW(be_->one_hot(2, 3, lab, a.data()), Error);
  const int32_t neg[2] = {0, -1};
  VecF out(8);
  EXPECT_THROW(be_->fuse_forward(Fusion::embed_concat, 2, 1, 1, 4, a.data(), nullptr, neg, b.data(), out.data()),
               Error);
  EXPECT_THROW(be_->fuse_forward(Fusion::embed_multiply, 2, 2, 3, 4, a.data(), nullptr, lab, b.data(), out.data()),
               Error);
  EXPECT_THROW(be_->batchnorm_forward_train(1, 2, 1, 1e-5f, 0.1f, a.data(), b.data(), b.data(), c.data(), out.data(),
                                            out.data() + 2, nullptr, nullptr),
               Error);  // one value per channel: the batch variance is undefined (PyTorch raises too)
}

// ---------------------------------------------------------------------------------------- bias_act

double act_ref(Act a, double slope, double z) {
  switch (a) {
    case Act::relu: return z > 0 ? z : 0;
    case Act::leaky_relu: return z > 0 ? z : slope * z;
    case Act::sigmoid: return 1.0 / (1.0 + std::exp(-z));
    case Act::tanh: return std::tanh(z);
    default: return z;
  }
}

TEST_F(Ops, BiasActBackwardMatchesFiniteDifferences) {
  for (Act act : {Act::none, Act::relu, Act::leaky_relu, Act::sigmoid, Act::tanh}) {
    for (int trial = 0; trial < 3; ++trial) {
      SCOPED_TRACE(cat("act=", static_cast<int>(act), " trial=", trial));
      const int R = size(1, 40), Cc = size(1, 40);
      const bool with_bias = trial != 2;
      const float slope = act == Act::leaky_relu ? uni(0.01f, 0.5f) : 0.f;
      VecF bias = with_bias ? randv(Cc, -1, 1) : VecF(Cc, 0.f);
      VecF x(static_cast<size_t>(R) * Cc);
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < Cc; ++c) {
          float v;
          do v = uni(-3, 3);
          while (std::fabs(v + bias[c]) < 1e-2f);  // keep the pre-activation away from the kink
          x[static_cast<size_t>(r) * Cc + c] = v;
        }
      const VecF w = randv(x.size(), -1, 1);

      VecF y = x;
      be_->bias_act_forward(act, slope, R, Cc, with_bias ? bias.data() : nullptr, y.data());
      VecD xd = to_d(x), bd = to_d(bias), wd = to_d(w);
      auto fwd = [&](size_t i) { return act_ref(act, slope, xd[i] + bd[i % Cc]); };
      VecD yref(x.size());
      for (size_t i = 0; i < x.size(); ++i) yref[i] = fwd(i);
      expect_close(y, yref, 1e-6, 1e-6, "y");

      auto L = [&] {
        double s = 0;
        for (size_t i = 0; i < xd.size(); ++i) s += wd[i] * fwd(i);
        return s;
      };
      VecF g = w;
      const VecF gb0 = randv(Cc, -1, 1);
      VecF gb = gb0;
      be_->bias_act_backward(act, slope, R, Cc, y.data(), g.data(), with_bias ? gb.data() : nullptr);
      expect_close(g, numeric_grad(xd, L), 1e-5, 1e-4, "gx");
      if (with_bias) expect_close(diff(gb, gb0), numeric_grad(bd, L), 2e-5, 1e-4, "gbias");
    }
  }
}

TEST_F(Ops, BiasActBackwardAtKinkUsesLeftSlope) {
  VecF y = {0.f, 0.f}, g = {1.f, 1.f};
  be_->bias_act_backward(Act::relu, 0.f, 1, 1, y.data(), g.data(), nullptr);
  EXPECT_EQ(g[0], 0.f);
  be_->bias_act_backward(Act::leaky_relu, 0.2f, 1, 1, y.data() + 1, g.data() + 1, nullptr);
  EXPECT_FLOAT_EQ(g[1], 0.2f);
}

// -------------------------------------------------------------------------------------- batchnorm

struct BnShape {
  int N, C, S;
  size_t n() const { return static_cast<size_t>(N) * C * S; }
  size_t at(int n, int c, int s) const { return (static_cast<size_t>(n) * C + c) * S + s; }
};

// Double reference of training-mode batch norm; returns y, and the batch mean / biased var.
VecD bn_ref(const BnShape& sh, const VecD& x, const VecD& gamma, const VecD& beta, double eps, VecD* mean_out = nullptr,
            VecD* var_out = nullptr) {
  VecD y(sh.n());
  const double cnt = static_cast<double>(sh.N) * sh.S;
  for (int c = 0; c < sh.C; ++c) {
    double m = 0, v = 0;
    for (int n = 0; n < sh.N; ++n)
      for (int s = 0; s < sh.S; ++s) m += x[sh.at(n, c, s)];
    m /= cnt;
    for (int n = 0; n < sh.N; ++n)
      for (int s = 0; s < sh.S; ++s) v += (x[sh.at(n, c, s)] - m) * (x[sh.at(n, c, s)] - m);
    v /= cnt;
    if (mean_out) (*mean_out)[c] = m;
    if (var_out) (*var_out)[c] = v;
    for (int n = 0; n < sh.N; ++n)
      for (int s = 0; s < sh.S; ++s)
        y[sh.at(n, c, s)] = gamma[c] * (x[sh.at(n, c, s)] - m) / std::sqrt(v + eps) + beta[c];
  }
  return y;
}

TEST_F(Ops, BatchNormTrainBackwardMatchesFiniteDifferences) {
  for (int trial = 0; trial < 8; ++trial) {
    BnShape sh{size(2, 17), size(1, 6), trial % 2 ? size(1, 9) : 1};
    SCOPED_TRACE(cat("N=", sh.N, " C=", sh.C, " S=", sh.S));
    const float eps = 1e-5f, momentum = 0.1f;
    const float offset = uni(-3, 3), scale = uni(0.5f, 2.f);
    VecF x = randv(sh.n(), -1, 1);
    for (auto& v : x) v = offset + scale * v;
    const VecF gamma = randv(sh.C, 0.5f, 1.5f), beta = randv(sh.C, -1, 1), w = randv(sh.n(), -1, 1);
    VecF y(sh.n()), mean(sh.C), invstd(sh.C), rm(sh.C, 0.f), rv(sh.C, 1.f);
    be_->batchnorm_forward_train(sh.N, sh.C, sh.S, eps, momentum, x.data(), gamma.data(), beta.data(), y.data(),
                                 mean.data(), invstd.data(), rm.data(), rv.data());
    VecD xd = to_d(x), gd = to_d(gamma), bd = to_d(beta), wd = to_d(w), mref(sh.C), vref(sh.C);
    expect_close(y, bn_ref(sh, xd, gd, bd, eps, &mref, &vref), 2e-5, 1e-5, "y");
    expect_close(mean, mref, 1e-6, 1e-6, "save_mean");
    VecD isref(sh.C);
    for (int c = 0; c < sh.C; ++c) isref[c] = 1.0 / std::sqrt(vref[c] + eps);
    expect_close(invstd, isref, 1e-6, 1e-5, "save_invstd");

    VecF gx(sh.n(), std::numeric_limits<float>::quiet_NaN());  // overwritten
    const VecF gg0 = randv(sh.C, -1, 1), gb0 = randv(sh.C, -1, 1);
    VecF gg = gg0, gb = gb0;
    be_->batchnorm_backward(sh.N, sh.C, sh.S, x.data(), gamma.data(), mean.data(), invstd.data(), w.data(), gx.data(),
                            gg.data(), gb.data());
    auto L = [&] { return dot(wd, bn_ref(sh, xd, gd, bd, eps)); };
    expect_close(gx, numeric_grad(xd, L), 5e-5, 1e-4, "gx");
    expect_close(diff(gg, gg0), numeric_grad(gd, L), 5e-5, 1e-4, "ggamma");
    expect_close(diff(gb, gb0), numeric_grad(bd, L), 5e-5, 1e-4, "gbeta");
  }
}

TEST_F(Ops, BatchNormRunningStatsAfterTwoCallsAndEvalMode) {
  BnShape sh{size(2, 33), size(1, 9), size(1, 7)};
  SCOPED_TRACE(cat("N=", sh.N, " C=", sh.C, " S=", sh.S));
  if (sh.N * sh.S < 2) sh.N = 2;
  const float eps = 1e-3f, momentum = uni(0.05f, 0.5f);
  const VecF gamma = randv(sh.C, 0.5f, 1.5f), beta = randv(sh.C, -1, 1);
  VecF rm = randv(sh.C, -1, 1), rv = randv(sh.C, 0.5f, 2.f);
  VecD erm = to_d(rm), erv = to_d(rv);
  VecF y(sh.n()), mean(sh.C), invstd(sh.C);
  const double cnt = static_cast<double>(sh.N) * sh.S;
  for (int call = 0; call < 2; ++call) {
    VecF x = randv(sh.n(), -2, 3);
    be_->batchnorm_forward_train(sh.N, sh.C, sh.S, eps, momentum, x.data(), gamma.data(), beta.data(), y.data(),
                                 mean.data(), invstd.data(), rm.data(), rv.data());
    VecD m(sh.C), v(sh.C);
    bn_ref(sh, to_d(x), to_d(gamma), to_d(beta), eps, &m, &v);
    for (int c = 0; c < sh.C; ++c) {
      erm[c] = (1 - momentum) * erm[c] + momentum * m[c];
      erv[c] = (1 - momentum) * erv[c] + momentum * v[c] * cnt / (cnt - 1);  // unbiased
    }
  }
  expect_close(rm, erm, 1e-6, 1e-5, "run_mean");
  expect_close(rv, erv, 1e-6, 1e-5, "run_var");

  // eval: normalises with the running statistics, not the batch's
  VecF x = randv(sh.n(), -2, 3);
  be_->batchnorm_forward_eval(sh.N, sh.C, sh.S, eps, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                              y.data());
  VecD yref(sh.n());
  for (int n = 0; n < sh.N; ++n)
    for (int c = 0; c < sh.C; ++c)
      for (int s = 0; s < sh.S; ++s) {
        const size_t i = sh.at(n, c, s);
        yref[i] =
            gamma[c] * (x[i] - static_cast<double>(rm[c])) / std::sqrt(static_cast<double>(rv[c]) + eps) + beta[c];
      }
  expect_close(y, yref, 1e-5, 1e-5, "eval y");
}

// ----------------------------------------------------------------------------------- label fusion

TEST_F(Ops, FuseForwardAndBackwardMatchFiniteDifferences) {
  for (Fusion f : {Fusion::concat, Fusion::embed_concat, Fusion::embed_multiply}) {
    for (int trial = 0; trial < 4; ++trial) {
      const int K = size(1, 5), B = K + size(1, 33);  // B > K: some label repeats in the batch
      const int in = size(1, 33), E = f == Fusion::embed_multiply ? in : size(1, 17);
      SCOPED_TRACE(cat("fusion=", static_cast<int>(f), " B=", B, " in=", in, " E=", E, " K=", K));
      const int outw = f == Fusion::embed_multiply ? in : in + E;
      VecI labels(B);
      for (auto& l : labels) l = randint(0, K - 1);
      const VecF x = randv(static_cast<size_t>(B) * in, -1, 1);
      const VecF cond = randv(static_cast<size_t>(B) * E, 0, 1);
      const VecF table = randv(static_cast<size_t>(K) * E, -1, 1);
      const VecF w = randv(static_cast<size_t>(B) * outw, -1, 1);

      VecD xd = to_d(x), td = to_d(table), cd = to_d(cond);
      auto fwd = [&] {
        VecD out(static_cast<size_t>(B) * outw);
        for (int b = 0; b < B; ++b)
          for (int j = 0; j < outw; ++j) {
            double v;
            if (f == Fusion::embed_multiply)
              v = xd[static_cast<size_t>(b) * in + j] * td[static_cast<size_t>(labels[b]) * E + j];
            else if (j < in)
              v = xd[static_cast<size_t>(b) * in + j];
            else if (f == Fusion::concat)
              v = cd[static_cast<size_t>(b) * E + j - in];
            else
              v = td[static_cast<size_t>(labels[b]) * E + j - in];
            out[static_cast<size_t>(b) * outw + j] = v;
          }
        return out;
      };
      VecF out(static_cast<size_t>(B) * outw, std::numeric_limits<float>::quiet_NaN());
      be_->fuse_forward(f, B, in, E, K, x.data(), cond.data(), labels.data(), table.data(), out.data());
      expect_close(out, fwd(), 0, 1e-7, "out");

      const VecD wd = to_d(w);
      auto L = [&] { return dot(wd, fwd()); };
      VecF gx(x.size(), std::numeric_limits<float>::quiet_NaN());  // overwritten
      const VecF gt0 = randv(table.size(), -1, 1);
      VecF gt = gt0;
      be_->fuse_backward(f, B, in, E, K, x.data(), labels.data(), table.data(), w.data(), gx.data(), gt.data());
      expect_close(gx, numeric_grad(xd, L), 1e-6, 1e-5, "gx");
      if (f == Fusion::concat)
        EXPECT_EQ(gt, gt0) << "concat has no table: gtable must be left alone";
      else
        expect_close(diff(gt, gt0), numeric_grad(td, L), 1e-5, 1e-5, "gtable");

      // gx and gtable are each optional
      VecF gx2(x.size(), 0.f), gt2 = gt0;
      be_->fuse_backward(f, B, in, E, K, x.data(), labels.data(), table.data(), w.data(), nullptr, gt2.data());
      EXPECT_EQ(gt2, gt);
      be_->fuse_backward(f, B, in, E, K, x.data(), labels.data(), table.data(), w.data(), gx2.data(), nullptr);
      EXPECT_EQ(gx2, gx);
    }
  }
}

TEST_F(Ops, OneHot) {
  const int B = size(1, 65), K = size(1, 17);
  VecI labels(B);
  for (auto& l : labels) l = randint(0, K - 1);
  VecF out(static_cast<size_t>(B) * K, 7.f);
  be_->one_hot(B, K, labels.data(), out.data());
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < K; ++k) EXPECT_EQ(out[static_cast<size_t>(b) * K + k], k == labels[b] ? 1.f : 0.f);
}

// ---------------------------------------------------------------------------------------- dropout

TEST_F(Ops, DropoutMaskValuesRateDeterminismAndBackward) {
  const size_t n = 20000 + randint(0, 999);
  const float p = uni(0.05f, 0.8f);
  const uint64_t seed = rand64(), stream = rng_();
  SCOPED_TRACE(cat("p=", p, " seed=", seed, " stream=", stream));
  const VecF x0 = randv(n, -1, 1);
  VecF x = x0, mask(n);
  be_->dropout_forward(n, p, seed, stream, x.data(), mask.data());
  const float keep = 1.f / (1.f - p);
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(mask[i] == 0.f || mask[i] == keep) << mask[i];
    ASSERT_EQ(mask[i], philox_uniform(seed, stream, i) >= p ? keep : 0.f) << i;  // the contract
    ASSERT_EQ(x[i], x0[i] * mask[i]);
    kept += mask[i] != 0.f;
  }
  const double rate = static_cast<double>(kept) / n, sd = std::sqrt(p * (1.0 - p) / n);
  EXPECT_NEAR(rate, 1.0 - p, 6 * sd);

  VecF x2 = x0, mask2(n);
  be_->dropout_forward(n, p, seed, stream, x2.data(), mask2.data());
  EXPECT_EQ(mask2, mask);
  be_->dropout_forward(n, p, seed, stream + 1, x2.data(), mask2.data());
  EXPECT_NE(mask2, mask);

  // p = 0 keeps everything
  VecF x3 = x0, mask3(n);
  be_->dropout_forward(n, 0.f, seed, stream, x3.data(), mask3.data());
  EXPECT_EQ(x3, x0);

  // backward: g *= mask, against finite differences of L = sum w (x * mask)
  const size_t m = size(1, 65);
  const VecF w = randv(m, -1, 1);
  VecF g = w;
  be_->mul(m, mask.data(), g.data());
  VecD xd = to_d(VecF(x0.begin(), x0.begin() + m)), wd = to_d(w);
  auto L = [&] {
    double s = 0;
    for (size_t i = 0; i < m; ++i) s += wd[i] * xd[i] * mask[i];
    return s;
  };
  expect_close(g, numeric_grad(xd, L), 1e-6, 1e-5, "dropout gx");
}

// ------------------------------------------------------------------------------------------ losses

double loss_ref(LossKind k, double x, double t) {
  if (k == LossKind::squared) return (x - t) * (x - t);
  const double s = 1.0 / (1.0 + std::exp(-x));
  return -(t * std::log(s) + (1 - t) * std::log(1 - s));  // fine in double for |x| <= 8
}

TEST_F(Ops, LossFusedGradMatchesFiniteDifferencesAndValue) {
  for (LossKind k : {LossKind::log, LossKind::squared}) {
    for (float t : {0.f, 1.f, 0.9f, uni(0, 1)}) {
      const int n = size(1, 129);
      const float weight = uni(0.2f, 2.f);
      SCOPED_TRACE(cat("kind=", static_cast<int>(k), " t=", t, " n=", n, " w=", weight));
      const VecF x = randv(n, -6, 6);
      check_loss_fused(*be_, k, x, t, weight, loss_ref);
    }
  }
}

TEST_F(Ops, LogLossClosedFormsIncludingExtremeLogits) {
  struct Case {
    float x, t, loss, grad_unit;  // loss per element, dL/dx per element
  };
  const Case cases[] = {
      {80.f, 0.f, 80.f, 1.f},                     // confidently wrong: loss = 80 + log1p(e^-80) = 80
      {-80.f, 1.f, 80.f, -1.f},                   // confidently wrong the other way
      {80.f, 1.f, 0.f, 0.f},                      // confidently right: loss = log1p(e^-80) ~ 1.8e-35
      {-80.f, 0.f, 0.f, 0.f},                     //
      {0.5f, 1.f, 0.474076984f, -0.377540669f},   // log(1 + e^-0.5); sigmoid(0.5) - 1
      {-1.25f, 0.f, 0.251929081f, 0.222700139f},  // log(1 + e^-1.25); sigmoid(-1.25)
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(cat("x=", c.x, " t=", c.t));
    const int n = size(1, 33);
    const float weight = uni(0.5f, 2.f);
    VecF x(n, c.x), grad(n);
    VecF acc = {0.f, 0.f, 0.f};
    be_->loss_fused(LossKind::log, n, x.data(), c.t, weight, grad.data(), acc.data());
    ASSERT_TRUE(std::isfinite(acc[0]));
    EXPECT_NEAR(acc[0], weight * c.loss, 1e-5 * weight * (1 + c.loss));
    for (float g : grad) {
      ASSERT_TRUE(std::isfinite(g));
      EXPECT_NEAR(g, c.grad_unit * weight / n, 1e-6 * weight / n);
    }
  }
  // the closed forms above, recomputed in double (guards against a typo in the table)
  EXPECT_NEAR(std::log1p(std::exp(-0.5)), 0.474076984, 1e-8);
  EXPECT_NEAR(std::log1p(std::exp(-1.25)), 0.251929081, 1e-8);
  EXPECT_NEAR(1 / (1 + std::exp(-0.5)) - 1, -0.377540669, 1e-8);
  EXPECT_NEAR(1 / (1 + std::exp(1.25)), 0.222700139, 1e-8);
}

TEST_F(Ops, LossAccumulatesProbabilityAndAccuracyStatistics) {
  // log: prob = sigmoid(x); squared: prob = x. Counted correct when (prob > 0.5) == (t > 0.5).
  const int pos = size(1, 20), neg = size(1, 20);
  for (LossKind k : {LossKind::log, LossKind::squared}) {
    for (float t : {0.f, 1.f}) {
      VecF x;
      double psum = 0;
      for (int i = 0; i < pos; ++i) {  // prob > 0.5
        x.push_back(k == LossKind::log ? uni(0.1f, 4.f) : uni(0.6f, 1.5f));
        psum += k == LossKind::log ? 1 / (1 + std::exp(-static_cast<double>(x.back()))) : x.back();
      }
      for (int i = 0; i < neg; ++i) {  // prob < 0.5
        x.push_back(k == LossKind::log ? uni(-4.f, -0.1f) : uni(-0.5f, 0.4f));
        psum += k == LossKind::log ? 1 / (1 + std::exp(-static_cast<double>(x.back()))) : x.back();
      }
      // prob exactly 0.5 is not "> 0.5": counts as a negative
      x.push_back(k == LossKind::log ? 0.f : 0.5f);
      psum += 0.5;
      const int n = static_cast<int>(x.size());
      VecF grad(n), acc = {3.f, 10.f, 5.f};
      be_->loss_fused(k, n, x.data(), t, 1.f, grad.data(), acc.data());
      EXPECT_NEAR(acc[1], 10.0 + psum, 1e-4);
      EXPECT_EQ(acc[2], 5.f + (t > 0.5f ? pos : neg + 1));
      if (k == LossKind::squared) {
        double l = 0;
        for (float v : x) l += (v - t) * (v - static_cast<double>(t));
        EXPECT_NEAR(acc[0], 3.0 + l / n, 1e-5);
        for (int i = 0; i < n; ++i) EXPECT_NEAR(grad[i], 2.0 * (x[i] - t) / n, 1e-6);
      }
    }
  }
}

// ---------------------------------------------------------------------------- softmax cross-entropy

// Mean cross-entropy of logits [B, K] (double, log-sum-exp with the row max subtracted).
double xent_ref(const VecD& x, const VecI& labels, int B, int K) {
  double s = 0;
  for (int b = 0; b < B; ++b) {
    double m = x[static_cast<size_t>(b) * K];
    for (int k = 1; k < K; ++k) m = std::max(m, x[static_cast<size_t>(b) * K + k]);
    double e = 0;
    for (int k = 0; k < K; ++k) e += std::exp(x[static_cast<size_t>(b) * K + k] - m);
    s += m + std::log(e) - x[static_cast<size_t>(b) * K + labels[b]];
  }
  return s / B;
}

TEST_F(Ops, SoftmaxXentGradMatchesFiniteDifferencesAndValue) {
  for (int rep = 0; rep < 4; ++rep) {
    const int B = size(1, 33), K = size(1, 17);
    const float weight = uni(0.2f, 2.f);
    SCOPED_TRACE(cat("B=", B, " K=", K, " w=", weight));
    const VecF x = randv(static_cast<size_t>(B) * K, -8, 8);
    VecI labels(B);
    for (auto& l : labels) l = randint(0, K - 1);
    VecF grad(x.size(), std::numeric_limits<float>::quiet_NaN());
    VecF acc = {0.5f, 2.f};
    be_->softmax_xent(B, K, x.data(), labels.data(), weight, grad.data(), acc.data());
    VecD xd = to_d(x);
    auto L = [&] { return weight * xent_ref(xd, labels, B, K); };
    const double l = L();
    EXPECT_NEAR(acc[0], 0.5 + l, 1e-6 + 1e-5 * std::fabs(l));
    int hits = 0;
    for (int b = 0; b < B; ++b) {
      const float* r = x.data() + static_cast<size_t>(b) * K;
      hits += static_cast<int>(std::max_element(r, r + K) - r) == labels[b];  // first max
    }
    EXPECT_EQ(acc[1], 2.f + hits);
    expect_close(grad, numeric_grad(xd, L), 1e-6, 1e-4, "grad");
    // each row of the gradient sums to zero (softmax sums to one)
    for (int b = 0; b < B; ++b) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += grad[static_cast<size_t>(b) * K + k];
      EXPECT_NEAR(s, 0.0, 1e-6);
    }
  }
}

TEST_F(Ops, SoftmaxXentIsStableForHugeLogitsAndCountsTheFirstMax) {
  // row 0: logits 1000 and 0, label 1 -> loss 1000, grad (w/B)(1, -1)
  // row 1: a tie at the max: the argmax is the first, so label 1 is a miss and label 0 a hit
  const VecF x = {1000.f, 0.f, 3.f, 3.f, -1000.f, 5.f};
  const int B = 3, K = 2;
  for (int32_t tie_label : {0, 1}) {
    const VecI labels = {1, tie_label, 1};
    VecF grad(6), acc = {0.f, 0.f};
    be_->softmax_xent(B, K, x.data(), labels.data(), 1.f, grad.data(), acc.data());
    ASSERT_TRUE(std::isfinite(acc[0]));
    EXPECT_NEAR(acc[0], (1000.0 + std::log(2.0) + 0.0) / 3, 1e-3);
    EXPECT_EQ(acc[1], tie_label == 0 ? 2.f : 1.f);
    EXPECT_NEAR(grad[0], 1.0 / 3, 1e-7);
    EXPECT_NEAR(grad[1], -1.0 / 3, 1e-7);
    EXPECT_NEAR(grad[2 + tie_label], -0.5 / 3, 1e-7);
    EXPECT_NEAR(grad[4], 0.0, 1e-7);
    EXPECT_NEAR(grad[5], 0.0, 1e-7);
  }
}

TEST_F(Ops, SoftmaxXentRejectsBadLabelsAndShapes) {
  VecF x(6, 0.f), grad(6, 7.f), acc(2, 0.f);
  for (int32_t bad : {-1, 3}) {
    const VecI labels = {0, bad};
    std::string msg;
    try {
      be_->softmax_xent(2, 3, x.data(), labels.data(), 1.f, grad.data(), acc.data());
    } catch (const Error& e) {
      msg = e.what();
    }
    EXPECT_NE(msg.find("softmax_xent: label"), std::string::npos) << msg;
    EXPECT_EQ(grad, VecF(6, 7.f)) << "nothing written before the check";
    EXPECT_EQ(acc, VecF(2, 0.f));
  }
  const VecI ok = {0, 1};
  EXPECT_THROW(be_->softmax_xent(0, 3, x.data(), ok.data(), 1.f, grad.data(), acc.data()), Error);
  EXPECT_THROW(be_->softmax_xent(2, 0, x.data(), ok.data(), 1.f, grad.data(), acc.data()), Error);
  EXPECT_THROW(be_->softmax_xent(2, 3, x.data(), nullptr, 1.f, grad.data(), acc.data()), Error);
}

// y += alpha x: the product rounded to float, then the sum (no fused multiply-add, so every backend
// gives these bits; tests/op_table.hpp compares the CUDA backend's exactly).
TEST_F(Ops, AxpyRoundsTheProductThenTheSum) {
  const size_t n = size(1, 1000);
  const float alpha = uni(-2, 2);
  const VecF x = randv(n, -3, 3), y0 = randv(n, -3, 3);
  VecF y = y0;
  be_->axpy(n, alpha, x.data(), y.data());
  for (size_t i = 0; i < n; ++i) {
    volatile float prod = alpha * x[i];  // rounded on its own
    const float want = y0[i] + prod;
    ASSERT_EQ(y[i], want) << "i=" << i;
  }
  EXPECT_THROW(be_->axpy(1, 1.f, nullptr, y.data()), Error);
}

// -------------------------------------------------------------------------------------------- adam

TEST_F(Ops, AdamTwoStepsMatchHandComputation) {
  // lr 0.01, beta1 0.5, beta2 0.9, eps 1e-3 (large on purpose: it is added to sqrt(v_hat)).
  const double lr = 0.01, b1 = 0.5, b2 = 0.9, eps = 1e-3;
  VecF p = {1.0f, -0.5f, 0.25f}, m(3, 0.f), v(3, 0.f);
  const VecF g1 = {0.1f, -0.002f, 0.0f}, g2 = {-0.3f, 0.004f, 0.5f};

  be_->adam(3, p.data(), g1.data(), m.data(), v.data(), lr, b1, b2, eps, 1);
  // step 1: m = 0.5 g, v = 0.1 g^2, m_hat = g, v_hat = g^2 -> p -= lr g / (|g| + eps)
  //   p0: 1 - 0.01 * 0.1 / 0.101 = 0.990099009901; p1: -0.5 + 0.01 * 0.002/0.003 = -0.493333333333
  expect_close(p, {0.990099009901, -0.493333333333, 0.25}, 1e-7, 1e-6, "p after step 1");
  expect_close(m, {0.05, -0.001, 0.0}, 1e-9, 1e-6, "m after step 1");
  expect_close(v, {0.001, 4e-7, 0.0}, 1e-12, 1e-6, "v after step 1");

  be_->adam(3, p.data(), g2.data(), m.data(), v.data(), lr, b1, b2, eps, 2);
  // step 2, from the formula in double
  double pd[3] = {0.990099009901, -0.493333333333, 0.25}, md[3] = {0.05, -0.001, 0}, vd[3] = {0.001, 4e-7, 0};
  VecD pe(3), me(3), ve(3);
  for (int i = 0; i < 3; ++i) {
    me[i] = b1 * md[i] + (1 - b1) * g2[i];
    ve[i] = b2 * vd[i] + (1 - b2) * static_cast<double>(g2[i]) * g2[i];
    const double mh = me[i] / (1 - b1 * b1), vh = ve[i] / (1 - b2 * b2);
    pe[i] = pd[i] - lr * mh / (std::sqrt(vh) + eps);
  }
  // the same numbers written out: p = {0.997368593338, -0.498081874035, 0.240835897851}
  EXPECT_NEAR(pe[0], 0.997368593338, 1e-9);
  EXPECT_NEAR(pe[1], -0.498081874035, 1e-9);
  EXPECT_NEAR(pe[2], 0.240835897851, 1e-9);
  expect_close(p, pe, 1e-7, 1e-6, "p after step 2");
  expect_close(m, me, 1e-9, 1e-6, "m after step 2");
  expect_close(v, ve, 1e-12, 1e-6, "v after step 2");
}

TEST_F(Ops, AdamRandomVectorMatchesDoubleFormula) {
  const size_t n = size(1, 129);
  const float lr = uni(1e-4f, 1e-2f), b1 = uni(0.5f, 0.95f), b2 = uni(0.9f, 0.9999f), eps = 1e-8f;
  VecF p = randv(n, -1, 1), m(n, 0.f), v(n, 0.f);
  VecD pd = to_d(p), md(n, 0), vd(n, 0);
  for (int t = 1; t <= 5; ++t) {
    const VecF g = randv(n, -1, 1);
    be_->adam(n, p.data(), g.data(), m.data(), v.data(), lr, b1, b2, eps, t);
    for (size_t i = 0; i < n; ++i) {
      md[i] = b1 * md[i] + (1.0 - b1) * g[i];
      vd[i] = b2 * vd[i] + (1.0 - b2) * g[i] * g[i];
      const double mh = md[i] / (1 - std::pow(static_cast<double>(b1), t));
      const double vh = vd[i] / (1 - std::pow(static_cast<double>(b2), t));
      pd[i] -= lr * mh / (std::sqrt(vh) + eps);
    }
  }
  expect_close(p, pd, 1e-6, 1e-5, "p after 5 steps");
}

// ----------------------------------------------------------------------------------------- threads

// The element-wise and per-channel loops that go multi-threaded from 256Ki values (batch norm and
// conditional batch norm on images, bias + activation and its backward with the bias gradient,
// pooling, Adam) give the bits
// of one thread (whose arithmetic the tests above check against double references), at anime_small's
// G sizes and at odd ones; batch norm with its activation fused gives the bits of the two ops in turn.
TEST_F(Ops, ThreadedLoopsGiveTheBitsOfOneThread) {
  std::unique_ptr<Backend> one, four;
  {
    const testutil::ScopedEnv env("CGAN_CPU_THREADS", "1");
    one = make_cpu_backend();
  }
  {
    const testutil::ScopedEnv env("CGAN_CPU_THREADS", "4");
    four = make_cpu_backend();
  }
  auto same = [](const VecF& a, const VecF& b, const char* what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << what << ": bits differ";
  };
  struct Nchw {
    int N, C, S;
  };
  for (const Nchw sh : {Nchw{32, 12, 64 * 64}, Nchw{5, 7, 8191}}) {
    SCOPED_TRACE(cat("N=", sh.N, " C=", sh.C, " S=", sh.S));
    const size_t n = static_cast<size_t>(sh.N) * sh.C * sh.S;
    VecF x = randv(n, -1, 1);
    for (auto& v : x) v = 3.f + 0.01f * v;  // a mean far larger than the spread
    const VecF gamma = randv(sh.C, 0.5f, 1.5f), beta = randv(sh.C, -1, 1), gy = randv(n, -1, 1);
    VecF y[2], mean[2], invstd[2], rm[2], rv[2], gx[2], gg[2], gb[2], ye[2], ya[2];
    Backend* be[2] = {one.get(), four.get()};
    for (int i = 0; i < 2; ++i) {
      y[i].assign(n, 0.f), mean[i].assign(sh.C, 0.f), invstd[i].assign(sh.C, 0.f);
      rm[i].assign(sh.C, 0.5f), rv[i].assign(sh.C, 2.f), gx[i].assign(n, 0.f);
      gg[i].assign(sh.C, 0.25f), gb[i].assign(sh.C, -0.25f), ye[i].assign(n, 0.f), ya[i].assign(n, 0.f);
      be[i]->batchnorm_forward_train(sh.N, sh.C, sh.S, 1e-5f, 0.1f, x.data(), gamma.data(), beta.data(), y[i].data(),
                                     mean[i].data(), invstd[i].data(), rm[i].data(), rv[i].data(), Act::relu);
      be[i]->batchnorm_backward(sh.N, sh.C, sh.S, x.data(), gamma.data(), mean[i].data(), invstd[i].data(), gy.data(),
                                gx[i].data(), gg[i].data(), gb[i].data());
      be[i]->batchnorm_forward_eval(sh.N, sh.C, sh.S, 1e-5f, x.data(), gamma.data(), beta.data(), rm[i].data(),
                                    rv[i].data(), ye[i].data(), Act::leaky_relu, 0.2f);
      // the activation as a separate op after batch norm without one
      VecF m2(sh.C), is2(sh.C), rm2(sh.C, 0.5f), rv2(sh.C, 2.f);
      be[i]->batchnorm_forward_train(sh.N, sh.C, sh.S, 1e-5f, 0.1f, x.data(), gamma.data(), beta.data(), ya[i].data(),
                                     m2.data(), is2.data(), rm2.data(), rv2.data());
      be[i]->bias_act_forward(Act::relu, 0.f, sh.N, sh.C * sh.S, nullptr, ya[i].data());
    }
    same(y[0], y[1], "batch norm + relu y");
    same(mean[0], mean[1], "save_mean");
    same(invstd[0], invstd[1], "save_invstd");
    same(rm[0], rm[1], "running mean");
    same(rv[0], rv[1], "running var");
    same(gx[0], gx[1], "batch norm gx");
    same(gg[0], gg[1], "ggamma");
    same(gb[0], gb[1], "gbeta");
    same(ye[0], ye[1], "batch norm (eval) + leaky y");
    same(y[0], ya[0], "fused relu vs batch norm then bias_act_forward (one thread)");
    same(y[1], ya[1], "fused relu vs batch norm then bias_act_forward (four threads)");

    // conditional batch norm (per-sample gains and biases), training forward with ReLU and backward
    const size_t nc = static_cast<size_t>(sh.N) * sh.C;
    const VecF dgain = randv(nc, -0.5f, 0.5f), dbias = randv(nc, -1, 1);
    VecF cy[2], cm[2], cis[2], crm[2], crv[2], cgx[2], cgg[2], cgb[2];
    for (int i = 0; i < 2; ++i) {
      cy[i].assign(n, 0.f), cm[i].assign(sh.C, 0.f), cis[i].assign(sh.C, 0.f), crm[i].assign(sh.C, 0.5f);
      crv[i].assign(sh.C, 2.f), cgx[i].assign(n, 0.f), cgg[i].assign(nc, 0.f), cgb[i].assign(nc, 0.f);
      be[i]->cbn_forward_train(sh.N, sh.C, sh.S, 1e-5f, 0.1f, x.data(), dgain.data(), dbias.data(), cy[i].data(),
                               cm[i].data(), cis[i].data(), crm[i].data(), crv[i].data(), Act::relu);
      be[i]->cbn_backward(sh.N, sh.C, sh.S, x.data(), dgain.data(), cm[i].data(), cis[i].data(), gy.data(),
                          cgx[i].data(), cgg[i].data(), cgb[i].data());
    }
    same(cy[0], cy[1], "conditional batch norm + relu y");
    same(cm[0], cm[1], "conditional save_mean");
    same(cis[0], cis[1], "conditional save_invstd");
    same(crm[0], crm[1], "conditional running mean");
    same(crv[0], crv[1], "conditional running var");
    same(cgx[0], cgx[1], "conditional batch norm gx");
    same(cgg[0], cgg[1], "gdgain");
    same(cgb[0], cgb[1], "gdbias");

    // bias + activation and its backward with the bias gradient, as [N, C*S] rows
    const int rows = sh.N, cols = sh.C * sh.S;
    const VecF bias = randv(cols, -1, 1), pre = randv(n, -1, 1);
    VecF a[2], g[2], gbias[2];
    for (int i = 0; i < 2; ++i) {
      a[i] = pre, g[i] = gy, gbias[i].assign(cols, 0.5f);
      be[i]->bias_act_forward(Act::leaky_relu, 0.2f, rows, cols, bias.data(), a[i].data());
      be[i]->bias_act_backward(Act::leaky_relu, 0.2f, rows, cols, a[i].data(), g[i].data(), gbias[i].data());
    }
    same(a[0], a[1], "bias_act_forward");
    same(g[0], g[1], "bias_act_backward g");
    same(gbias[0], gbias[1], "bias_act_backward gbias");

    // pooling, average (overlapping windows, padding) and max, forward and backward
    PoolShape ps;
    ps.N = sh.N, ps.C = sh.C, ps.H = sh.S == 64 * 64 ? 64 : 1, ps.W = sh.S / ps.H;
    ps.R = ps.H > 1 ? 3 : 1, ps.S = 3, ps.stride_h = ps.H > 1 ? 2 : 1, ps.stride_w = 2, ps.pad_w = 1;
    ps.pad_h = ps.H > 1 ? 1 : 0;
    const size_t np = static_cast<size_t>(ps.N) * ps.C * ps.P() * ps.Q();
    const VecF gp = randv(np, -1, 1);
    for (Pool k : {Pool::avg, Pool::max}) {
      VecF py[2], pg[2];
      for (int i = 0; i < 2; ++i) {
        py[i].assign(np, 0.f), pg[i].assign(n, 1.f);
        be[i]->pool2d_forward(k, ps, pre.data(), py[i].data());
        be[i]->pool2d_backward(k, ps, pre.data(), py[i].data(), gp.data(), pg[i].data());
      }
      same(py[0], py[1], k == Pool::avg ? "avgpool y" : "maxpool y");
      same(pg[0], pg[1], k == Pool::avg ? "avgpool gx" : "maxpool gx");
    }

    // Adam, n not a multiple of the chunk alignment
    VecF pa[2], ma[2], va[2];
    for (int i = 0; i < 2; ++i) {
      pa[i] = pre, ma[i].assign(n, 0.f), va[i].assign(n, 0.f);
      for (int t = 1; t <= 2; ++t)
        be[i]->adam(n, pa[i].data(), gy.data(), ma[i].data(), va[i].data(), 1e-3f, 0.5f, 0.999f, 1e-8f, t);
    }
    same(pa[0], pa[1], "adam p");
    same(ma[0], ma[1], "adam m");
    same(va[0], va[1], "adam v");
  }
}

// ------------------------------------------------------------------------------------------ philox

TEST(Philox, Random123KnownAnswers) {
  struct Kat {
    U32x4 ctr;
    uint32_t k0, k1;
    U32x4 out;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       0xffffffffu,
       0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       0xa4093822u,
       0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Kat& k : kats) {
    const U32x4 r = philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.out.v[i]) << "word " << i << std::hex << " got 0x" << r.v[i];
  }
  // philox_words packs (index, stream) into the counter and seed into the key, low word first
  const U32x4 a = philox_words(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
  EXPECT_EQ(a.v[0], 0xd16cfe09u);
  EXPECT_EQ(a.v[3], 0x24126ea1u);
}

TEST(Philox, UniformIsInsideTheOpenUnitInterval) {
  for (uint32_t w : {0u, 1u, 0xffu, 0x100u, 0x7fffffffu, 0x80000000u, 0xfffffeffu, 0xffffff00u, 0xffffffffu}) {
    const float u = philox_u01(w);
    EXPECT_GT(u, 0.f) << std::hex << w;
    EXPECT_LT(u, 1.f) << std::hex << w;
  }
  EXPECT_LT(philox_u01(0u), philox_u01(0xffffu));
  EXPECT_LT(philox_u01(0x80000000u), philox_u01(0xffffffffu));
}

// ---------------------------------------------------------------------------------------- sampling

TEST_F(Ops, RandNormalMomentsAndOffsets) {
  const size_t n = 100000;
  const uint64_t seed = rand64(), stream = rng_();
  const float mean = uni(-2, 2), sd = uni(0.5f, 3.f);
  SCOPED_TRACE(cat("seed=", seed, " stream=", stream));
  VecF out(n);
  be_->rand_normal(n, seed, stream, 0, mean, sd, out.data());
  double s = 0, s2 = 0, s3 = 0, s4 = 0;
  for (float v : out) {
    ASSERT_TRUE(std::isfinite(v));
    const double z = (v - mean) / sd;
    s += z;
    s2 += z * z;
    s3 += z * z * z;
    s4 += z * z * z * z;
  }
  EXPECT_NEAR(s / n, 0.0, 6 / std::sqrt(double(n)));            // standard error 1/sqrt(n)
  EXPECT_NEAR(std::sqrt(s2 / n), 1.0, 6 / std::sqrt(2.0 * n));  // about 1/sqrt(2n)
  EXPECT_NEAR(s3 / n, 0.0, 6 * std::sqrt(15.0 / n));            // skewness
  EXPECT_NEAR(s4 / n, 3.0, 6 * std::sqrt(96.0 / n));            // kurtosis
  // element i uses index offset + i
  const uint64_t off = randint(1, 1000);
  VecF tail(50);
  be_->rand_normal(tail.size(), seed, stream, off, mean, sd, tail.data());
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_EQ(tail[i], out[off + i]);
  be_->rand_normal(tail.size(), seed, stream + 1, off, mean, sd, tail.data());
  EXPECT_NE(tail[0], out[off]);
}

TEST_F(Ops, RandUniformBoundsAndMean) {
  const size_t n = 100000;
  const uint64_t seed = rand64(), stream = rng_();
  const float lo = uni(-3, 1), hi = lo + uni(0.1f, 4.f);
  VecF out(n);
  be_->rand_uniform(n, seed, stream, 7, lo, hi, out.data());
  double s = 0;
  for (float v : out) {
    ASSERT_GE(v, lo);
    ASSERT_LE(v, hi);
    s += v;
  }
  EXPECT_NEAR(s / n, 0.5 * (lo + hi), 6 * (hi - lo) / std::sqrt(12.0 * n));
  EXPECT_EQ(out[0], lo + (hi - lo) * philox_uniform(seed, stream, 7));
}

TEST_F(Ops, RandBelowInRangeAndUniform) {
  const int K = size(1, 17);
  const size_t n = 20000 * static_cast<size_t>(K);
  const uint64_t seed = rand64(), stream = rng_();
  VecI out(n);
  be_->rand_below(n, seed, stream, 3, K, out.data());
  std::vector<size_t> count(K, 0);
  for (int32_t v : out) {
    ASSERT_GE(v, 0);
    ASSERT_LT(v, K);
    ++count[v];
  }
  const double e = static_cast<double>(n) / K, sd = std::sqrt(e * (1.0 - 1.0 / K));
  for (int k = 0; k < K; ++k) EXPECT_NEAR(static_cast<double>(count[k]), e, 6 * sd + 1e-9) << "value " << k;
  EXPECT_EQ(out[0], static_cast<int32_t>(philox_below(seed, stream, 3, K)));
}

TEST_F(Ops, PermutationIsDeterministicStableSortOfPhiloxWords) {
  for (int n : {1, 2, 7, size(3, 129), 5000}) {
    const uint64_t seed = rand64(), stream = rng_();
    VecI p(n, -1), q(n, -1);
    be_->permutation(n, seed, stream, p.data());
    be_->permutation(n, seed, stream, q.data());
    EXPECT_EQ(p, q) << "same (seed, stream) must give the same permutation";
    VecI sorted = p;
    std::sort(sorted.begin(), sorted.end());
    VecI iota(n);
    std::iota(iota.begin(), iota.end(), 0);
    EXPECT_EQ(sorted, iota) << "not a permutation of 0.." << n - 1;
    // the definition, written out (what CUDA's thrust::stable_sort_by_key reproduces)
    VecI ref(n);
    std::iota(ref.begin(), ref.end(), 0);
    std::stable_sort(ref.begin(), ref.end(), [&](int32_t a, int32_t b) {
      return philox_words(seed, stream, a).v[0] < philox_words(seed, stream, b).v[0];
    });
    EXPECT_EQ(p, ref);
    if (n >= 7) {
      be_->permutation(n, seed + 1, stream, q.data());
      EXPECT_NE(p, q) << "a different seed should give a different permutation";
    }
  }
}

TEST_F(Ops, GatherRowsAndInts) {
  const int rows = size(1, 33), cols = size(1, 65), B = size(1, 70);
  const VecF src = randv(static_cast<size_t>(rows) * cols, -1, 1);
  VecI isrc(rows), idx(B);
  for (auto& v : isrc) v = randint(-1000, 1000);
  for (auto& v : idx) v = randint(0, rows - 1);  // repeats when B > rows
  VecF dst(static_cast<size_t>(B) * cols);
  VecI idst(B);
  be_->gather_rows(B, cols, rows, src.data(), idx.data(), dst.data());
  be_->gather_int(B, rows, isrc.data(), idx.data(), idst.data());
  for (int b = 0; b < B; ++b) {
    for (int c = 0; c < cols; ++c)
      ASSERT_EQ(dst[static_cast<size_t>(b) * cols + c], src[static_cast<size_t>(idx[b]) * cols + c]);
    ASSERT_EQ(idst[b], isrc[idx[b]]);
  }
}

// Row bounds: an index past the source's rows, or a label past the table's, is a checked error
// naming the op, never a read out of bounds.
TEST_F(Ops, GatherAndEmbeddingFusionsRefuseRowsOutsideTheSource) {
  const int rows = size(2, 20), cols = size(1, 9), B = size(1, 8);
  const VecF src = randv(static_cast<size_t>(rows) * cols, -1, 1);
  VecI isrc(rows, 7), idx(B, 0);
  idx[randint(0, B - 1)] = rows;  // one past the end
  VecF dst(static_cast<size_t>(B) * cols);
  VecI idst(B);
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message([&] {
              be_->gather_rows(B, cols, rows, src.data(), idx.data(), dst.data());
            }).find(cat("gather_rows: index ", rows, " outside the source rows 0..", rows - 1)),
            std::string::npos);
  EXPECT_NE(message([&] {
              be_->gather_int(B, rows, isrc.data(), idx.data(), idst.data());
            }).find(cat("gather_int: index ", rows, " outside the source 0..", rows - 1)),
            std::string::npos);
  const int K = size(1, 6), in = size(1, 5);
  VecI labels(B, 0);
  labels[randint(0, B - 1)] = K;
  const VecF x = randv(static_cast<size_t>(B) * in, -1, 1), table = randv(static_cast<size_t>(K) * in, -1, 1);
  VecF out(static_cast<size_t>(B) * 2 * in), gt(table.size(), 0.f), g(out.size(), 1.f);
  for (Fusion f : {Fusion::embed_concat, Fusion::embed_multiply}) {
    SCOPED_TRACE(static_cast<int>(f));
    EXPECT_NE(message([&] {
                be_->fuse_forward(f, B, in, in, K, x.data(), nullptr, labels.data(), table.data(), out.data());
              }).find(cat("fuse_forward: label ", K, " outside the table's rows 0..", K - 1)),
              std::string::npos);
    EXPECT_NE(message([&] {
                be_->fuse_backward(f, B, in, in, K, x.data(), labels.data(), table.data(), g.data(), nullptr,
                                   gt.data());
              }).find(cat("fuse_backward: label ", K, " outside the table's rows 0..", K - 1)),
              std::string::npos);
  }
  EXPECT_EQ(gt, VecF(table.size(), 0.f)) << "nothing accumulated into the table";
}

// ---- the device-counter forms of the ops a captured CUDA graph replays: each must equal the
// plain op with the counter's value substituted.

TEST_F(Ops, GatherWithIndexOffsetReadsTheWindowAtTheCounter) {
  const int rows = size(1, 33), cols = size(1, 65), B = size(1, 40), off = randint(0, 50);
  const VecF src = randv(static_cast<size_t>(rows) * cols, -1, 1);
  VecI isrc(rows), idx(off + B);
  for (auto& v : isrc) v = randint(-1000, 1000);
  for (auto& v : idx) v = randint(0, rows - 1);
  const VecI offset = {off};
  VecF dst(static_cast<size_t>(B) * cols), want(dst.size());
  VecI idst(B), iwant(B);
  be_->gather_rows(B, cols, rows, src.data(), idx.data(), dst.data(), offset.data());
  be_->gather_rows(B, cols, rows, src.data(), idx.data() + off, want.data());
  be_->gather_int(B, rows, isrc.data(), idx.data(), idst.data(), offset.data());
  be_->gather_int(B, rows, isrc.data(), idx.data() + off, iwant.data());
  EXPECT_EQ(dst, want);
  EXPECT_EQ(idst, iwant);
  const VecI negative = {-1};
  EXPECT_THROW(be_->gather_int(B, rows, isrc.data(), idx.data(), idst.data(), negative.data()), Error);
}

TEST_F(Ops, RngStreamWithCounterEqualsTheFixedStream) {
  const size_t n = static_cast<size_t>(size(1, 300));
  const uint64_t seed = rand64(), base = rng_() % 1000, stride = 1 + rng_() % 300;
  const VecI counter = {randint(0, 100000)};
  const uint64_t fixed = base + stride * static_cast<uint64_t>(counter[0]);
  const RngStream dyn(base, counter.data(), stride);
  VecF a(n), b(n);
  be_->rand_normal(n, seed, dyn, 7, 0.f, 1.f, a.data());
  be_->rand_normal(n, seed, fixed, 7, 0.f, 1.f, b.data());
  EXPECT_EQ(a, b);
  be_->rand_uniform(n, seed, dyn, 0, -2.f, 3.f, a.data());
  be_->rand_uniform(n, seed, fixed, 0, -2.f, 3.f, b.data());
  EXPECT_EQ(a, b);
  VecI ia(n), ib(n);
  be_->rand_below(n, seed, dyn, 3, 10, ia.data());
  be_->rand_below(n, seed, fixed, 3, 10, ib.data());
  EXPECT_EQ(ia, ib);
  VecF xa = randv(n, -1, 1), xb = xa, ma(n), mb(n);
  be_->dropout_forward(n, 0.3f, seed, dyn, xa.data(), ma.data());
  be_->dropout_forward(n, 0.3f, seed, fixed, xb.data(), mb.data());
  EXPECT_EQ(xa, xb);
  EXPECT_EQ(ma, mb);
  // sub-streams (a model's per-layer dropout): base * k + i, stride * k
  const RngStream s = dyn.sub(64, 5);
  EXPECT_EQ(s.base, base * 64 + 5);
  EXPECT_EQ(s.stride, stride * 64);
  EXPECT_EQ(s.counter, counter.data());
  const VecI negative = {-3};
  EXPECT_THROW(be_->rand_normal(n, seed, RngStream(base, negative.data(), stride), 0, 0.f, 1.f, a.data()), Error);
}

TEST_F(Ops, AdamWithStepCounterEqualsTheFixedStep) {
  const size_t n = static_cast<size_t>(size(1, 200));
  const VecF g = randv(n, -1, 1);
  VecF p1 = randv(n, -1, 1), m1 = randv(n, -0.1f, 0.1f), v1 = randv(n, 0.f, 0.1f);
  VecF p2 = p1, m2 = m1, v2 = v1;
  const int base = randint(0, 3);
  const VecI counter = {randint(1, 50)};
  be_->adam(n, p1.data(), g.data(), m1.data(), v1.data(), 1e-3f, 0.5f, 0.999f, 1e-8f, base, counter.data());
  be_->adam(n, p2.data(), g.data(), m2.data(), v2.data(), 1e-3f, 0.5f, 0.999f, 1e-8f, base + counter[0]);
  EXPECT_EQ(p1, p2);
  EXPECT_EQ(m1, m2);
  EXPECT_EQ(v1, v2);
  const VecI zero = {0};
  EXPECT_THROW(be_->adam(n, p1.data(), g.data(), m1.data(), v1.data(), 1e-3f, 0.5f, 0.999f, 1e-8f, 0, zero.data()),
               Error);
}

TEST_F(Ops, CopyColsTakesAColumnRange) {
  const int B = size(1, 40), cols = size(1, 70), col0 = randint(0, cols - 1), n = randint(0, cols - col0);
  const VecF src = randv(static_cast<size_t>(B) * cols, -1, 1);
  VecF dst(static_cast<size_t>(B) * n, 9.f);
  be_->copy_cols(B, cols, col0, n, src.data(), dst.data());
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < n; ++c)
      ASSERT_EQ(dst[static_cast<size_t>(b) * n + c], src[static_cast<size_t>(b) * cols + col0 + c]);
  EXPECT_THROW(be_->copy_cols(B, cols, col0, cols - col0 + 1, src.data(), dst.data()), Error);
}

TEST_F(Ops, AddIntsAndCopyToSlot) {
  VecI x = {5, -2, 7, 0, 9};
  const VecI d = {1, 64, 0, -1, 2};
  be_->add_ints(5, x.data(), d.data());
  EXPECT_EQ(x, (VecI{6, 62, 7, -1, 11}));
  EXPECT_THROW(be_->add_ints(9, x.data(), d.data()), Error);
  const size_t n = static_cast<size_t>(size(1, 20));
  const int slots = size(1, 9);
  const VecF src = randv(n, -1, 1);
  VecF dst(n * slots, 42.f);
  const VecI slot = {randint(0, slots - 1)};
  be_->copy_to_slot(n, src.data(), dst.data(), slot.data(), slots);
  for (int s = 0; s < slots; ++s)
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(dst[s * n + i], s == slot[0] ? src[i] : 42.f);
  const VecI outside = {slots};
  EXPECT_THROW(be_->copy_to_slot(n, src.data(), dst.data(), outside.data(), slots), Error);
}

}  // namespace
}  // namespace cgan
