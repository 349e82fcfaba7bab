// A scatter plot of 2-D samples (the toy GANs' "sample grid"): one colour per label.
#pragma once
#include <cstdint>
#include <vector>

#include "cgan/image.hpp"

namespace cgan {

// xy: n points (x0, y0, x1, y1, ...); labels: n labels or empty (all one colour). The view fits
// the points with a margin; axes through 0 are drawn when in view.
Image scatter_plot(const std::vector<float>& xy, const std::vector<int32_t>& labels, int size);

}  // namespace cgan
