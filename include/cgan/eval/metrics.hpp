// Sample-quality statistics over feature vectors (issue 4's evaluator builds on these): the
// Fréchet distance between two Gaussians fitted to feature sets, the kernel (KID) distance, and the
// mean pairwise distance that the diversity figure divides.
#pragma once
#include <cstdint>
#include <vector>

namespace cgan {

// Mean and (unbiased) covariance of n feature vectors of width dim (row-major float features),
// accumulated in double.
struct GaussianStats {
  int dim = 0;
  int64_t count = 0;
  std::vector<double> mean;  // dim
  std::vector<double> cov;   // dim x dim, row-major, symmetric
};
GaussianStats gaussian_stats(const float* features, int64_t n, int dim);

// Fréchet distance between N(m1, S1) and N(m2, S2):
//   |m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2),
// the square roots through LAPACK's symmetric eigensolver (dsyev); eigenvalues that rounding
// makes slightly negative are clamped to 0. Throws cgan::Error if the dimensions differ.
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

// Kernel Inception Distance (Bińkowski et al. 2018) on these features: the unbiased estimate of the
// squared MMD between the two sets under the polynomial kernel k(x, y) = (x·y / dim + 1)^3, on
// `subsets` pairs of random subsets of m = min(subset_size, nx, ny) vectors of each set (drawn
// without replacement from a generator seeded with `seed`, so a figure is reproducible), then the
// mean and (population) standard deviation over the subsets, as torch-fidelity reports them.
// With m = nx = ny and one subset it is the exact unbiased MMD² of the whole sets. Needs m >= 2.
struct KidResult {
  double mean = 0, std = 0;
  int64_t subset_size = 0;
  int subsets = 0;
};
constexpr uint64_t kKidSeed = 0x4b4944;  // "KID"
KidResult kernel_inception_distance(const float* x, int64_t nx, const float* y, int64_t ny, int dim, int subsets = 100,
                                    int64_t subset_size = 1000, uint64_t seed = kKidSeed);

// Mean Euclidean distance over all pairs i < j of n feature vectors (exact; O(n^2 dim)).
// 0 when n < 2.
double mean_pairwise_distance(const float* features, int64_t n, int dim);

}  // namespace cgan
