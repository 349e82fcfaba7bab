#include "cgan/plot.hpp"

#include <algorithm>
#include <cmath>

namespace cgan {

Image scatter_plot(const std::vector<float>& xy, const std::vector<int32_t>& labels, int size) {
  static const uint8_t palette[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                         {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                         {188, 189, 34},  {23, 190, 207}};
  Image img;
  img.width = img.height = size;
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(size) * size * 3, 255);
  const size_t n = xy.size() / 2;
  float x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  bool any = false;
  for (size_t i = 0; i < n; ++i) {
    const float x = xy[2 * i], y = xy[2 * i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    if (!any) {
      x0 = x1 = x;
      y0 = y1 = y;
      any = true;
    }
    x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  const float span = std::max({x1 - x0, y1 - y0, 1e-3f}) * 1.15f;
  const float cx = 0.5f * (x0 + x1), cy = 0.5f * (y0 + y1);
  auto px = [&](float x) { return static_cast<int>((x - (cx - span / 2)) / span * (size - 1) + 0.5f); };
  auto py = [&](float y) { return static_cast<int>(((cy + span / 2) - y) / span * (size - 1) + 0.5f); };
  auto put = [&](int x, int y, const uint8_t* c) {
    if (x < 0 || y < 0 || x >= size || y >= size) return;
    uint8_t* p = &img.pixels[(static_cast<size_t>(y) * size + x) * 3];
    p[0] = c[0], p[1] = c[1], p[2] = c[2];
  };
  const uint8_t axis[3] = {200, 200, 200};
  if (const int ax = px(0.f); ax >= 0 && ax < size)
    for (int y = 0; y < size; ++y) put(ax, y, axis);
  if (const int ay = py(0.f); ay >= 0 && ay < size)
    for (int x = 0; x < size; ++x) put(x, ay, axis);
  for (size_t i = 0; i < n; ++i) {
    const float x = xy[2 * i], y = xy[2 * i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    const uint8_t* c = palette[labels.empty() ? 0 : static_cast<size_t>(labels[i]) % 10];
    const int X = px(x), Y = py(y);
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) put(X + dx, Y + dy, c);
  }
  return img;
}

}  // namespace cgan
