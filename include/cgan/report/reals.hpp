// reals.png: the real training data as a picture beside the sample grids (one row per label).
#pragma once
#include <cstdint>
#include <vector>

#include "cgan/data/data.hpp"
#include "cgan/data/image.hpp"

namespace cgan {

// Which samples fill a rows x cols grid of reals: row k holds `cols` samples of label k (k < rows)
// drawn in a seeded random order, or -1 where the set has fewer of that label; an unconditional set
// (num_classes 0) fills every row with random samples.
std::vector<int> reals_grid_indices(const std::vector<int32_t>& labels, int count, int num_classes, int rows, int cols,
                                    uint64_t seed);

// The picture: for image sets the grid of reals_grid_indices (empty cells black; rows: one per label,
// 10 for an unconditional set), for 2-D point sets a scatter of every real point coloured by label.
Image render_reals(const HostDataset& data, const DataShape& shape, int rows, int cols, uint64_t seed);

}  // namespace cgan
