// Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
// Assessing Generative Models") over feature vectors: each set's manifold is estimated as the union
// of balls around its points, each ball's radius the distance to that point's k-th nearest
// neighbour in the same set (the point itself excluded; k = 3 as in the paper).
//
//   precision = share of generated points inside at least one real point's ball  (fidelity)
//   recall    = share of real points inside at least one generated point's ball  (coverage)
//
// A generator that draws only half of the real modes, well, scores precision about 1 and recall
// about 0.5; one that draws everything blurred, the other way round.
//
// Squared distances come from ‖a‖² + ‖b‖² − 2 a·b with a·b through the backend's GEMM (OpenBLAS or
// cuBLAS), tile by tile (at most kPairTile x kPairTile distances exist at a time, host and
// backend), after both sets are shifted by the first set's mean (distances do not change; the
// norms get small, so the float GEMM loses little to cancellation). Norms, the k-NN selection and
// the ball tests run on the host in double.
#pragma once
#include <cstdint>
#include <vector>

#include "cgan/backend/backend.hpp"

namespace cgan {

constexpr int kPrNeighbours = 3;  // k of the k-NN radii (the paper's default)
constexpr int kPairTile = 2048;   // rows and columns of one tile of pairwise distances

// Squared k-NN radius of every row of `f` (n x dim, host, row-major): the k-th smallest squared
// distance to another row (k = min(k, n - 1); n >= 2).
std::vector<double> knn_radii_sq(Backend& be, const float* f, int64_t n, int dim, int k = kPrNeighbours);

struct PrecisionRecall {
  double precision = 0, recall = 0;
};

// Precision and recall of `gen` (n_gen x dim) against `real` (n_real x dim), given each set's
// squared k-NN radii (knn_radii_sq). A point on a ball's boundary counts as inside.
PrecisionRecall precision_recall(Backend& be, const float* real, const std::vector<double>& real_radii_sq,
                                 int64_t n_real, const float* gen, const std::vector<double>& gen_radii_sq,
                                 int64_t n_gen, int dim);
// The same, computing both sets' radii first.
PrecisionRecall precision_recall(Backend& be, const float* real, int64_t n_real, const float* gen, int64_t n_gen,
                                 int dim, int k = kPrNeighbours);

}  // namespace cgan
