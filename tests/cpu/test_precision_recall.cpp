// Improved precision and recall (precision_recall.hpp): the GEMM-tiled computation against a
// brute-force double-precision reference on random features (sizes across the tile boundary), and
// the cases whose answer is known: identical sets, far-apart sets, a generator covering half the
// modes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"
#include "cgan/eval/precision_recall.hpp"

using namespace cgan;

namespace {

std::vector<float> gaussian(std::mt19937& rng, int64_t n, int dim, float mean = 0.f, float sd = 1.f) {
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(static_cast<size_t>(n) * dim);
  for (float& x : v) x = d(rng);
  return v;
}

double dist_sq(const float* a, const float* b, int dim) {
  double s = 0;
  for (int i = 0; i < dim; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return s;
}

// k-th smallest squared distance to another row, all in double.
std::vector<double> ref_radii(const std::vector<float>& f, int64_t n, int dim, int k) {
  std::vector<double> r(static_cast<size_t>(n)), d;
  for (int64_t i = 0; i < n; ++i) {
    d.clear();
    for (int64_t j = 0; j < n; ++j)
      if (j != i) d.push_back(dist_sq(&f[i * dim], &f[j * dim], dim));
    std::nth_element(d.begin(), d.begin() + (k - 1), d.end());
    r[static_cast<size_t>(i)] = d[static_cast<size_t>(k - 1)];
  }
  return r;
}

PrecisionRecall ref_pr(const std::vector<float>& real, int64_t nr, const std::vector<float>& gen, int64_t ng, int dim,
                       int k) {
  const std::vector<double> rr = ref_radii(real, nr, dim, k), rg = ref_radii(gen, ng, dim, k);
  int64_t p = 0, q = 0;
  for (int64_t j = 0; j < ng; ++j)
    for (int64_t i = 0; i < nr; ++i)
      if (dist_sq(&gen[j * dim], &real[i * dim], dim) <= rr[static_cast<size_t>(i)]) {
        ++p;
        break;
      }
  for (int64_t i = 0; i < nr; ++i)
    for (int64_t j = 0; j < ng; ++j)
      if (dist_sq(&real[i * dim], &gen[j * dim], dim) <= rg[static_cast<size_t>(j)]) {
        ++q;
        break;
      }
  return {static_cast<double>(p) / ng, static_cast<double>(q) / nr};
}

}  // namespace

// Random features of sizes that cross the GEMM tile (kPairTile rows and columns) and an odd width;
// the generated set a shifted Gaussian so both figures are strictly between 0 and 1. The
// float GEMM may move a point that lies within rounding of a ball's boundary: one point at most.
TEST(PrecisionRecall, MatchesABruteForceDoubleReference) {
  auto be = make_cpu_backend();
  std::mt19937 rng(12345);
  struct Case {
    int64_t nr, ng;
    int dim, k;
  };
  for (const Case c : {Case{300, 257, 37, 3}, Case{kPairTile + 150, kPairTile + 31, 13, 3}, Case{40, 61, 5, 1}}) {
    SCOPED_TRACE(testing::Message() << c.nr << " real, " << c.ng << " generated, dim " << c.dim << ", k " << c.k);
    const std::vector<float> real = gaussian(rng, c.nr, c.dim, 3.f, 1.f);
    std::vector<float> gen = gaussian(rng, c.ng, c.dim, 3.f, 1.f);
    for (size_t i = 0; i < gen.size(); i += c.dim) gen[i] += 1.f;
    const std::vector<double> want_r = ref_radii(real, c.nr, c.dim, c.k);
    const std::vector<double> got_r = knn_radii_sq(*be, real.data(), c.nr, c.dim, c.k);
    ASSERT_EQ(got_r.size(), want_r.size());
    double worst = 0;
    for (size_t i = 0; i < got_r.size(); ++i) worst = std::max(worst, std::fabs(got_r[i] - want_r[i]) / want_r[i]);
    EXPECT_LT(worst, 1e-4) << "largest relative error of a squared k-NN radius";
    const PrecisionRecall want = ref_pr(real, c.nr, gen, c.ng, c.dim, c.k);
    const PrecisionRecall got = precision_recall(*be, real.data(), c.nr, gen.data(), c.ng, c.dim, c.k);
    EXPECT_GT(want.precision, 0.05);
    EXPECT_LT(want.precision, 0.99);
    EXPECT_GT(want.recall, 0.05);
    EXPECT_LT(want.recall, 0.99);
    EXPECT_LE(std::fabs(got.precision - want.precision), 1.0 / c.ng + 1e-12)
        << got.precision << " vs " << want.precision;
    EXPECT_LE(std::fabs(got.recall - want.recall), 1.0 / c.nr + 1e-12) << got.recall << " vs " << want.recall;
  }
}

TEST(PrecisionRecall, IdenticalSetsScoreOneAndFarApartSetsZero) {
  auto be = make_cpu_backend();
  std::mt19937 rng(7);
  const int dim = 24;
  const std::vector<float> a = gaussian(rng, 500, dim, 10.f, 2.f);
  const PrecisionRecall same = precision_recall(*be, a.data(), 500, a.data(), 500, dim);
  EXPECT_EQ(same.precision, 1.0);
  EXPECT_EQ(same.recall, 1.0);
  const std::vector<float> far = gaussian(rng, 400, dim, 60.f, 2.f);
  const PrecisionRecall apart = precision_recall(*be, a.data(), 500, far.data(), 400, dim);
  EXPECT_EQ(apart.precision, 0.0);
  EXPECT_EQ(apart.recall, 0.0);
}

// Ten well-separated modes in the real set (16-wide features, each mode a 2-D Gaussian blob: k-NN
// balls estimate a low-dimensional manifold well from a few hundred points); the generator draws
// five of them, as densely: every generated point is on the real manifold, half of the real one is
// covered.
TEST(PrecisionRecall, AGeneratorCoveringHalfTheModesHasRecallOneHalf) {
  auto be = make_cpu_backend();
  std::mt19937 rng(99);
  const int dim = 16, modes = 10, per = 200;
  auto draw = [&](int mode, int n, std::vector<float>& out) {
    std::vector<float> v = gaussian(rng, n, dim, 0.f, 0.01f);
    std::normal_distribution<float> blob(0.f, 1.f);
    for (int i = 0; i < n; ++i) {
      float* p = &v[static_cast<size_t>(i) * dim];
      p[mode] += 12.f;
      p[10] += blob(rng), p[11] += blob(rng);
    }
    out.insert(out.end(), v.begin(), v.end());
  };
  std::vector<float> real, gen;
  for (int m = 0; m < modes; ++m) draw(m, per, real);
  for (int m = 0; m < modes / 2; ++m) draw(m, per, gen);
  const int64_t nr = modes * per, ng = modes / 2 * per;
  const PrecisionRecall pr = precision_recall(*be, real.data(), nr, gen.data(), ng, dim);
  EXPECT_GT(pr.precision, 0.95);
  EXPECT_GT(pr.recall, 0.45);
  EXPECT_LE(pr.recall, 0.5);  // the five missing modes are farther than any generated ball reaches
  // and the other way round: the full set scored against the half one
  const PrecisionRecall rev = precision_recall(*be, gen.data(), ng, real.data(), nr, dim);
  EXPECT_GT(rev.recall, 0.95);
  EXPECT_GT(rev.precision, 0.45);
  EXPECT_LE(rev.precision, 0.5);
}

TEST(PrecisionRecall, BadInputsAreOneLineErrors) {
  auto be = make_cpu_backend();
  const std::vector<float> one(8, 0.f);
  try {
    knn_radii_sq(*be, one.data(), 1, 8);
    FAIL() << "one point has no neighbour";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at least 2 points"), std::string::npos) << e.what();
  }
  const std::vector<float> two(16, 1.f);
  // k larger than n - 1 falls back to n - 1: two equal points are each other's neighbour at 0
  const std::vector<double> r = knn_radii_sq(*be, two.data(), 2, 8, 3);
  EXPECT_EQ(r, std::vector<double>({0.0, 0.0}));
  try {
    precision_recall(*be, two.data(), {0.0, 0.0}, 2, two.data(), {0.0}, 2, 8);
    FAIL() << "radii of the wrong length";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("radii for 2 real and 1 generated"), std::string::npos) << e.what();
  }
}
