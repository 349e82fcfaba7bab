// Sample-quality statistics over feature vectors (issue 4's evaluator builds on these): the
// Fréchet distance between two Gaussians fitted to feature sets, and the mean pairwise distance
// that the diversity figure divides.
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

// Mean Euclidean distance over all pairs i < j of n feature vectors (exact; O(n^2 dim)).
// 0 when n < 2.
double mean_pairwise_distance(const float* features, int64_t n, int dim);

}  // namespace cgan
