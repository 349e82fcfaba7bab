// Where line_chart (src/report/plot.cpp, draw_panel) draws the curves, for tests that look for them: each
// panel's plot area is the frame from x = 84 to width - 212 and from y = top + 36 to
// top + panel_height - 44; the title is above it, the tick labels left of and below it, the legend
// (a swatch of each curve's colour) in the column right of it. Counting the curves' pixels inside
// the frame leaves the legend out: its swatches alone are enough coloured pixels to pass a count
// over the whole picture.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <vector>

#include "cgan/data/image.hpp"

namespace plottest {

// Pixels (RGB) that are neither white nor grey: the curves' colours (grid, axes and text are grey).
inline bool is_coloured(const cgan::Image& img, size_t p) {
  const int r = img.pixels[p * 3], g = img.pixels[p * 3 + 1], b = img.pixels[p * 3 + 2];
  return std::max({std::abs(r - g), std::abs(g - b), std::abs(r - b)}) > 40;
}

// Coloured pixels strictly inside each panel's frame, top panel first (panels of panel_height rows
// stacked down the picture).
inline std::vector<size_t> coloured_in_plot_areas(const cgan::Image& img, int panel_height = 250) {
  std::vector<size_t> out;
  if (img.channels != 3 || panel_height <= 0) return out;
  for (int top = 0; top + panel_height <= img.height; top += panel_height) {
    size_t n = 0;
    for (int y = top + 37; y <= top + panel_height - 45; ++y)
      for (int x = 85; x <= img.width - 213; ++x) n += is_coloured(img, static_cast<size_t>(y) * img.width + x);
    out.push_back(n);
  }
  return out;
}

}  // namespace plottest
