// Helpers shared by the CPU backend op tests (test_ops.cpp, test_conv.cpp): the seed (fresh from
// std::random_device on every run, or CGAN_TEST_SEED to replay a failure; printed with every
// failure), RandomCpuTest, the fixture base that holds a seeded std::mt19937, random sizes and
// values, and a CPU backend, and the double-precision checks: expect_close against a reference and
// central finite differences.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"
#include "test_util.hpp"

namespace cgan {
namespace opstest {

using VecF = std::vector<float>;
using VecD = std::vector<double>;
using VecI = std::vector<int32_t>;

using testutil::test_seed;

// Fixture base: a generator seeded from test_seed() (the seed is traced into every failure) and a
// CPU backend.
class RandomCpuTest : public ::testing::Test {
 protected:
  RandomCpuTest() : seed_(test_seed()), rng_(seed_), trace_(__FILE__, __LINE__, cat("CGAN_TEST_SEED=", seed_)) {}

  // A size from a list biased towards awkward values.
  int size(int lo, int hi) {
    static const int odd[] = {1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 33, 63, 64, 65, 100, 127, 129};
    std::vector<int> ok;
    for (int v : odd)
      if (v >= lo && v <= hi) ok.push_back(v);
    if (!ok.empty() && std::uniform_int_distribution<int>(0, 1)(rng_) == 0)
      return ok[std::uniform_int_distribution<size_t>(0, ok.size() - 1)(rng_)];
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  float uni(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng_); }
  int randint(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  uint64_t rand64() { return (static_cast<uint64_t>(rng_()) << 32) | rng_(); }
  VecF randv(size_t n, float lo, float hi) {
    VecF v(n);
    for (auto& x : v) x = uni(lo, hi);
    return v;
  }
  // Uniform in [lo, hi] with |x| >= 1e-2 (away from the relu / leaky relu kink).
  float away_from_zero(float lo, float hi) {
    for (;;) {
      const float x = uni(lo, hi);
      if (std::fabs(x) >= 1e-2f) return x;
    }
  }

  uint32_t seed_;
  std::mt19937 rng_;
  ::testing::ScopedTrace trace_;
  std::unique_ptr<Backend> be_ = make_cpu_backend();
};

// |got - ref| <= atol + rtol |ref|, elementwise, with the first few failures named.
inline void expect_close(const VecF& got, const VecD& ref, double atol, double rtol, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (!(err <= atol + rtol * std::fabs(ref[i]))) {
      if (++bad <= 5)
        ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", reference " << ref[i] << " (err " << err << ")";
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << ref.size() << " elements out of tolerance";
}

// Central finite difference of L with respect to each entry of v (perturbed in place, restored).
inline VecD numeric_grad(VecD& v, const std::function<double()>& L, double h = 1e-5) {
  VecD g(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double keep = v[i];
    v[i] = keep + h;
    const double lp = L();
    v[i] = keep - h;
    const double lm = L();
    v[i] = keep;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

inline VecD to_d(const VecF& v) { return VecD(v.begin(), v.end()); }

// loss_fused of kind k on logits x (target t, weight) against ref(logit, t), the per-element loss
// in double: the value added to acc[0] and the gradient by central differences.
template <typename Ref>
void check_loss_fused(cgan::Backend& be, cgan::LossKind k, const VecF& x, float t, float weight, Ref ref) {
  const int n = static_cast<int>(x.size());
  VecF grad(x.size(), std::numeric_limits<float>::quiet_NaN());
  VecF acc = {0.25f, 1.f, 2.f};
  be.loss_fused(k, n, x.data(), t, weight, grad.data(), acc.data());
  VecD xd = to_d(x);
  auto L = [&] {
    double s = 0;
    for (double v : xd) s += ref(k, v, t);
    return weight * s / n;
  };
  const double l = L();
  EXPECT_NEAR(acc[0], 0.25 + l, 1e-6 + 1e-5 * std::fabs(l));
  expect_close(grad, numeric_grad(xd, L), 1e-6, 1e-4, "grad");
}
inline VecF diff(const VecF& after, const VecF& before) {
  VecF d(after.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = after[i] - before[i];
  return d;
}
inline double dot(const VecD& a, const VecD& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace opstest
}  // namespace cgan
