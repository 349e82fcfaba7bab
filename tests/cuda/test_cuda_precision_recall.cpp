// Precision/recall through cuBLAS against the CPU backend (OpenBLAS): the k-NN radii and both
// figures on random features whose sizes cross the distance tile (kPairTile) and the real
// evaluator's width (256 features). Skips without a usable GPU.
#include <gtest/gtest.h>

#include <cmath>

#include "cgan/eval/precision_recall.hpp"
#include "cuda_test_util.hpp"

namespace cgan {
namespace cudatest {

class CudaPrecisionRecall : public CudaParityTest {};

TEST_F(CudaPrecisionRecall, RadiiAndFiguresMatchTheCpu) {
  struct Case {
    int64_t nr, ng;
    int dim;
  };
  for (const Case c : {Case{301, 257, 37}, Case{kPairTile + 97, kPairTile + 300, 256}}) {
    SCOPED_TRACE(shape({c.nr, c.ng, c.dim}));
    const Floats real = normal(static_cast<size_t>(c.nr) * c.dim, 2.f, 1.f);
    Floats gen = normal(static_cast<size_t>(c.ng) * c.dim, 2.f, 1.f);
    for (size_t i = 0; i < gen.size(); i += c.dim) gen[i] += 1.f;
    const std::vector<double> rc = knn_radii_sq(cpu(), real.data(), c.nr, c.dim);
    const std::vector<double> rg = knn_radii_sq(gpu(), real.data(), c.nr, c.dim);
    ASSERT_EQ(rc.size(), rg.size());
    double worst = 0;
    for (size_t i = 0; i < rc.size(); ++i) worst = std::max(worst, std::fabs(rc[i] - rg[i]) / rc[i]);
    EXPECT_LT(worst, 1e-4) << "largest relative difference of a squared k-NN radius";
    const PrecisionRecall a = precision_recall(cpu(), real.data(), c.nr, gen.data(), c.ng, c.dim);
    const PrecisionRecall b = precision_recall(gpu(), real.data(), c.nr, gen.data(), c.ng, c.dim);
    // a point within rounding of a ball's boundary may fall either way: one point at most
    EXPECT_LE(std::fabs(a.precision - b.precision), 1.0 / c.ng + 1e-12) << a.precision << " vs " << b.precision;
    EXPECT_LE(std::fabs(a.recall - b.recall), 1.0 / c.nr + 1e-12) << a.recall << " vs " << b.recall;
  }
}

}  // namespace cudatest
}  // namespace cgan
