// Fréchet distance and pairwise distance against closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "cgan/eval/metrics.hpp"
#include "test_util.hpp"

using cgan::GaussianStats;

namespace {

std::mt19937_64 fresh_rng() {
  const uint64_t seed = std::random_device{}();
  std::printf("metrics test seed %llu\n", static_cast<unsigned long long>(seed));
  return std::mt19937_64(seed);
}

// A random orthogonal n x n matrix (Gram-Schmidt on Gaussian columns), row-major.
std::vector<double> random_rotation(int n, std::mt19937_64& rng) {
  std::normal_distribution<double> N(0, 1);
  std::vector<double> q(static_cast<size_t>(n) * n);
  for (auto& x : q) x = N(rng);
  for (int c = 0; c < n; ++c) {
    for (int p = 0; p < c; ++p) {
      double dot = 0;
      for (int r = 0; r < n; ++r) dot += q[r * n + c] * q[r * n + p];
      for (int r = 0; r < n; ++r) q[r * n + c] -= dot * q[r * n + p];
    }
    double norm = 0;
    for (int r = 0; r < n; ++r) norm += q[r * n + c] * q[r * n + c];
    for (int r = 0; r < n; ++r) q[r * n + c] /= std::sqrt(norm);
  }
  return q;
}

// Q diag(d) Q^T
std::vector<double> rotated_diag(const std::vector<double>& q, const std::vector<double>& d) {
  const int n = static_cast<int>(d.size());
  std::vector<double> s(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) s[i * n + j] += q[i * n + k] * d[k] * q[j * n + k];
  return s;
}

GaussianStats stats_of(std::vector<double> mean, std::vector<double> cov) {
  GaussianStats g;
  g.dim = static_cast<int>(mean.size());
  g.count = 1000;
  g.mean = std::move(mean);
  g.cov = std::move(cov);
  return g;
}

// A random symmetric positive-definite matrix B B^T + eps I.
std::vector<double> random_spd(int n, std::mt19937_64& rng) {
  std::normal_distribution<double> N(0, 1);
  std::vector<double> b(static_cast<size_t>(n) * n), s(static_cast<size_t>(n) * n, 0.0);
  for (auto& x : b) x = N(rng);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      for (int k = 0; k < n; ++k) s[i * n + j] += b[i * n + k] * b[j * n + k];
      if (i == j) s[i * n + j] += 0.1;
    }
  return s;
}

}  // namespace

TEST(Metrics, FrechetOfCommutingCovariancesMatchesClosedForm) {
  auto rng = fresh_rng();
  std::uniform_real_distribution<double> U(0.05, 4.0);
  std::normal_distribution<double> N(0, 1);
  for (int n : {1, 2, 7, 33}) {
    const auto q = random_rotation(n, rng);
    std::vector<double> d1(n), d2(n), m1(n), m2(n);
    double want = 0;
    for (int i = 0; i < n; ++i) {
      d1[i] = U(rng), d2[i] = U(rng), m1[i] = N(rng), m2[i] = N(rng);
      want += (m1[i] - m2[i]) * (m1[i] - m2[i]) + std::pow(std::sqrt(d1[i]) - std::sqrt(d2[i]), 2);
    }
    const double got = cgan::frechet_distance(stats_of(m1, rotated_diag(q, d1)), stats_of(m2, rotated_diag(q, d2)));
    EXPECT_NEAR(got, want, 1e-9 * (1 + want)) << "dim " << n;
  }
}

TEST(Metrics, FrechetOfNonCommuting2x2MatchesClosedForm) {
  // For 2x2 PSD M: tr(M^1/2) = sqrt(tr M + 2 sqrt(det M)), and M = S1^1/2 S2 S1^1/2 has the
  // eigenvalues of S1 S2, so tr(M) = tr(S1 S2) and det(M) = det(S1) det(S2).
  auto rng = fresh_rng();
  for (int rep = 0; rep < 20; ++rep) {
    const auto s1 = random_spd(2, rng), s2 = random_spd(2, rng);
    const double tr12 = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
    const double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
    const double want = s1[0] + s1[3] + s2[0] + s2[3] - 2 * std::sqrt(tr12 + 2 * std::sqrt(det1 * det2));
    const double got = cgan::frechet_distance(stats_of({0, 0}, s1), stats_of({0, 0}, s2));
    EXPECT_NEAR(got, want, 1e-9 * (1 + std::fabs(want)));
  }
}

TEST(Metrics, FrechetIsSymmetricAndZeroForIdenticalGaussians) {
  auto rng = fresh_rng();
  std::normal_distribution<double> N(0, 1);
  const int n = 9;
  std::vector<double> m1(n), m2(n);
  for (int i = 0; i < n; ++i) m1[i] = N(rng), m2[i] = N(rng);
  const auto a = stats_of(m1, random_spd(n, rng)), b = stats_of(m2, random_spd(n, rng));
  const double ab = cgan::frechet_distance(a, b), ba = cgan::frechet_distance(b, a);
  EXPECT_GT(ab, 0.0);
  EXPECT_NEAR(ab, ba, 1e-9 * (1 + ab));
  EXPECT_NEAR(cgan::frechet_distance(a, a), 0.0, 1e-8);
  GaussianStats c = a;
  c.dim = 3;
  EXPECT_NE(testutil::error_of([&] { cgan::frechet_distance(a, c); }).find("feature widths differ (9 vs 3)"),
            std::string::npos);
}

TEST(Metrics, GaussianStatsRecoverMeanAndCovariance) {
  auto rng = fresh_rng();
  std::normal_distribution<float> N(0, 1);
  // x = L z + mu with L lower-triangular: cov = L L^T
  const double L[3][3] = {{1.0, 0, 0}, {0.5, 2.0, 0}, {-0.3, 0.2, 0.5}};
  const double mu[3] = {1.0, -2.0, 0.5};
  const int64_t n = 200000;
  std::vector<float> f(static_cast<size_t>(n) * 3);
  for (int64_t r = 0; r < n; ++r) {
    const double z[3] = {N(rng), N(rng), N(rng)};
    for (int i = 0; i < 3; ++i) {
      double v = mu[i];
      for (int k = 0; k < 3; ++k) v += L[i][k] * z[k];
      f[r * 3 + i] = static_cast<float>(v);
    }
  }
  const GaussianStats g = cgan::gaussian_stats(f.data(), n, 3);
  ASSERT_EQ(g.dim, 3);
  for (int i = 0; i < 3; ++i) {
    double var_i = 0;
    for (int k = 0; k < 3; ++k) var_i += L[i][k] * L[i][k];
    EXPECT_NEAR(g.mean[i], mu[i], 5 * std::sqrt(var_i / n)) << i;
    for (int j = 0; j < 3; ++j) {
      double c = 0;
      for (int k = 0; k < 3; ++k) c += L[i][k] * L[j][k];
      EXPECT_NEAR(g.cov[i * 3 + j], c, 0.03 * (1 + std::fabs(c))) << i << "," << j;
      EXPECT_EQ(g.cov[i * 3 + j], g.cov[j * 3 + i]);
    }
  }
  // the Fréchet distance between two halves of the same sample is close to 0
  const GaussianStats h1 = cgan::gaussian_stats(f.data(), n / 2, 3);
  const GaussianStats h2 = cgan::gaussian_stats(f.data() + (n / 2) * 3, n / 2, 3);
  EXPECT_LT(cgan::frechet_distance(h1, h2), 1e-3);
}

TEST(Metrics, MeanPairwiseDistance) {
  const float pts[] = {0, 0, 3, 4, 0, 8};  // distances 5, 8, 5
  EXPECT_NEAR(cgan::mean_pairwise_distance(pts, 3, 2), 6.0, 1e-12);
  const float same[] = {1, 2, 1, 2, 1, 2, 1, 2};
  EXPECT_EQ(cgan::mean_pairwise_distance(same, 4, 2), 0.0);
  EXPECT_EQ(cgan::mean_pairwise_distance(pts, 1, 2), 0.0);
}
