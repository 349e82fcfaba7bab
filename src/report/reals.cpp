// reals.png: the real training data as a picture beside the sample grids (one row per label).
#include "cgan/report/reals.hpp"

#include <algorithm>
#include <numeric>
#include <random>

#include "cgan/base/error.hpp"
#include "cgan/report/plot.hpp"

namespace cgan {

std::vector<int> reals_grid_indices(const std::vector<int32_t>& labels, int count, int num_classes, int rows, int cols,
                                    uint64_t seed) {
  std::vector<int> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int> cells(static_cast<size_t>(rows) * cols, -1);
  if (num_classes <= 0) {
    for (size_t c = 0; c < cells.size() && c < order.size(); ++c) cells[c] = order[c];
    return cells;
  }
  std::vector<int> filled(rows, 0);
  for (int i : order) {
    const int k = labels[static_cast<size_t>(i)];
    if (k < 0 || k >= rows || filled[k] == cols) continue;
    cells[static_cast<size_t>(k) * cols + filled[k]++] = i;
  }
  return cells;
}

Image render_reals(const HostDataset& data, const DataShape& shape, int rows, int cols, uint64_t seed) {
  if (shape.is_points()) return scatter_plot(data.x, shape.num_classes > 0 ? data.y : std::vector<int32_t>{}, 512);
  const std::vector<int> cells = reals_grid_indices(data.y, data.count, shape.num_classes, rows, cols, seed);
  const size_t dim = static_cast<size_t>(shape.dim());
  std::vector<float> x(cells.size() * dim, shape.lo);  // an empty cell renders black
  for (size_t c = 0; c < cells.size(); ++c)
    if (cells[c] >= 0)
      std::copy_n(data.x.begin() + static_cast<std::ptrdiff_t>(cells[c] * dim), dim, x.begin() + c * dim);
  return make_grid(x.data(), static_cast<int>(cells.size()), shape.channels, shape.height, shape.width, rows, cols,
                   shape.lo, shape.hi);
}

}  // namespace cgan
