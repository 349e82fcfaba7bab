// Kernel Inception Distance (metrics.hpp) against a brute-force double reference, on itself and on
// shifted features; the metrics.csv columns it adds.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>

#include "cgan/base/error.hpp"
#include "cgan/eval/evaluate.hpp"
#include "cgan/eval/metrics.hpp"

using namespace cgan;

namespace {

std::vector<float> gaussian(int64_t n, int dim, double shift, std::mt19937_64& rng) {
  std::normal_distribution<double> N(0, 1);
  std::vector<float> f(static_cast<size_t>(n) * dim);
  for (float& v : f) v = static_cast<float>(N(rng) + shift);
  return f;
}

// unbiased MMD² with k(x, y) = (x·y / d + 1)^3, every point, plain loops in double
double mmd2_reference(const std::vector<float>& x, const std::vector<float>& y, int64_t n, int d) {
  auto k = [&](const float* a, const float* b) {
    double s = 0;
    for (int i = 0; i < d; ++i) s += static_cast<double>(a[i]) * b[i];
    return std::pow(s / d + 1.0, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (i != j) {
        xx += k(&x[i * d], &x[j * d]);
        yy += k(&y[i * d], &y[j * d]);
      }
      xy += k(&x[i * d], &y[j * d]);
    }
  const double m = static_cast<double>(n);
  return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m);
}

}  // namespace

TEST(Kid, OneSubsetOfEveryPointIsTheExactUnbiasedMmd) {
  std::mt19937_64 rng(7);
  for (int d : {1, 5, 16}) {
    const int64_t n = 37;
    const auto x = gaussian(n, d, 0.0, rng), y = gaussian(n, d, 0.3, rng);
    const KidResult r = kernel_inception_distance(x.data(), n, y.data(), n, d, 1, 1000);
    const double ref = mmd2_reference(x, y, n, d);
    EXPECT_NEAR(r.mean, ref, 1e-10 * std::max(1.0, std::fabs(ref))) << d;
    EXPECT_EQ(r.std, 0.0);
    EXPECT_EQ(r.subset_size, n);
    EXPECT_EQ(r.subsets, 1);
  }
}

TEST(Kid, SubsetsAreReproducibleAndSizedAsTorchFidelity) {
  std::mt19937_64 rng(8);
  const int d = 8;
  const auto x = gaussian(300, d, 0.0, rng), y = gaussian(200, d, 0.5, rng);
  const KidResult a = kernel_inception_distance(x.data(), 300, y.data(), 200, d, 100, 150);
  const KidResult b = kernel_inception_distance(x.data(), 300, y.data(), 200, d, 100, 150);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.std, b.std);
  EXPECT_EQ(a.subset_size, 150);
  EXPECT_GT(a.std, 0.0);
  EXPECT_EQ(kernel_inception_distance(x.data(), 300, y.data(), 200, d).subset_size, 200);           // min(1000, n)
  EXPECT_NE(kernel_inception_distance(x.data(), 300, y.data(), 200, d, 100, 150, 1).mean, a.mean);  // other seed
}

TEST(Kid, ASetAgainstItselfIsAboutZeroAndShiftedIsNot) {
  std::mt19937_64 rng(9);
  const int d = 16;
  const int64_t n = 2000;
  const auto f = gaussian(n, d, 0.0, rng);
  // two halves of one sample: the unbiased estimate centres on 0 (within the subsets' spread; the
  // subsets overlap, so their mean is no tighter than about one subset's figure)
  const KidResult same = kernel_inception_distance(f.data(), n / 2, f.data() + (n / 2) * d, n / 2, d, 100, 500);
  EXPECT_LT(std::fabs(same.mean), 2 * same.std) << same.mean << " +- " << same.std;
  EXPECT_LT(std::fabs(same.mean), 0.01) << same.mean;
  auto shifted = f;
  for (float& v : shifted) v += 0.5f;
  const KidResult far = kernel_inception_distance(f.data(), n / 2, shifted.data() + (n / 2) * d, n / 2, d, 100, 500);
  EXPECT_GT(far.mean, 0.1);
  EXPECT_GT(far.mean, 20 * std::fabs(same.mean));
  EXPECT_GT(far.mean - 5 * far.std, 0.0);
}

TEST(Kid, TooFewPointsIsAnError) {
  const float x[2] = {1, 2};
  EXPECT_THROW(kernel_inception_distance(x, 1, x, 2, 1), Error);
}

TEST(Kid, MetricsCsvColumnsMatchTheHeader) {
  EvalResult r;
  r.kid_mean = 0.00123456789;
  r.kid_std = 2e-5;
  std::string names = "step";
  for (const auto& c : r.csv_columns()) names += "," + c.first;
  EXPECT_EQ(names + "\n", MetricsLog::header());
  const auto cols = r.csv_columns();
  EXPECT_EQ(cols[cols.size() - 2].second, "0.00123457");
  EXPECT_EQ(cols.back().second, "2e-05");
  EXPECT_NE(r.table().find("KID 0.00123457 +- 2e-05"), std::string::npos) << r.table();
  EXPECT_TRUE(r.to_json().contains("kid_mean"));
  EXPECT_TRUE(r.to_json().contains("kid_std"));
}
