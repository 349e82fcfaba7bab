// Drawn shapes (circle, square, triangle); see include/cgan/data/drawn_shapes.hpp.
#include "cgan/data/drawn_shapes.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cgan/base/error.hpp"
#include "cgan/base/philox.hpp"
#include "cgan/base/streams.hpp"

namespace cgan {

const std::vector<std::string>& shape_class_names() {
  static const std::vector<std::string> names = {"circle", "square", "triangle"};
  return names;
}

namespace {

constexpr int kDraws = 8;  // Philox indices per image

// Whether the point (x, y) (pixel units) lies inside the shape of extent s centred at (cx, cy).
bool inside(int shape, float x, float y, float cx, float cy, float s) {
  const float dx = x - cx, dy = y - cy, h = 0.5f * s;
  if (shape == 0) return dx * dx + dy * dy <= h * h;
  if (shape == 1) return std::fabs(dx) <= h && std::fabs(dy) <= h;
  // triangle: apex (cx, cy - h), base from (cx - h, cy + h) to (cx + h, cy + h)
  if (dy < -h || dy > h) return false;
  const float half_width = 0.5f * (dy + h);  // 0 at the apex, h at the base
  return std::fabs(dx) <= half_width;
}

}  // namespace

Image draw_shape(int shape, int size, uint64_t seed, uint64_t index) {
  if (shape < 0 || shape > 2)
    throw Error(cat("draw_shape: shape ", shape, " is not 0 (circle), 1 (square) or 2 (triangle)"));
  if (size < 4 || size > 1024) throw Error(cat("draw_shape: size ", size, " outside 4..1024"));
  const uint64_t base = index * kDraws;
  auto u = [&](int k) { return philox_uniform(seed, kShapeStream + static_cast<uint64_t>(shape), base + k); };
  const float s = size * (0.4f + 0.4f * u(0));
  const float cx = 0.5f * s + (size - s) * u(1), cy = 0.5f * s + (size - s) * u(2);
  float rgb[3] = {u(3), u(4), u(5)};
  const float peak = std::max({rgb[0], rgb[1], rgb[2], 1e-3f}), want = 0.6f + 0.4f * u(6);
  for (float& c : rgb) c = c / peak * want;
  Image img;
  img.width = img.height = size;
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(size) * size * 3, 0);
  constexpr int kSub = 4;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      int hits = 0;
      for (int sy = 0; sy < kSub; ++sy)
        for (int sx = 0; sx < kSub; ++sx)
          hits += inside(shape, x + (sx + 0.5f) / kSub, y + (sy + 0.5f) / kSub, cx, cy, s);
      const float cover = static_cast<float>(hits) / (kSub * kSub);
      for (int c = 0; c < 3; ++c)
        img.pixels[(static_cast<size_t>(y) * size + x) * 3 + c] =
            static_cast<uint8_t>(std::lround(std::clamp(cover * rgb[c], 0.f, 1.f) * 255.f));
    }
  return img;
}

void write_shapes_folder(const std::string& dir, int per_class, int size, uint64_t seed) {
  namespace fs = std::filesystem;
  if (per_class < 1) throw Error(cat("write_shapes_folder: ", per_class, " images per class (at least 1)"));
  const auto& names = shape_class_names();
  for (int k = 0; k < static_cast<int>(names.size()); ++k) {
    const fs::path cdir = fs::path(dir) / names[k];
    std::error_code ec;
    fs::create_directories(cdir, ec);
    if (ec || !fs::is_directory(cdir))
      throw Error(cat(cdir.string(), ": cannot create the folder", ec ? ": " + ec.message() : std::string()));
    for (int i = 0; i < per_class; ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "%s_%04d.png", names[k].c_str(), i);
      write_png((cdir / name).string(), draw_shape(k, size, seed, static_cast<uint64_t>(i)));
    }
  }
}

}  // namespace cgan
