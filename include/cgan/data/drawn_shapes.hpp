// Drawn shapes: a procedural class-folder set (filled circle, square, triangle) for tests and examples.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cgan/data/image.hpp"

namespace cgan {

// The classes, in the order (sorted by name) a class-folder loader gives them labels.
const std::vector<std::string>& shape_class_names();  // "circle", "square", "triangle"

// Image `index` of class `shape` (0 circle, 1 square, 2 triangle): size x size RGB, black
// background, one filled shape (anti-aliased, 4x4 samples per pixel) with its extent uniform in
// 40..80% of the side, a position keeping it inside the image, and a random colour whose brightest
// channel is at least 60%. The triangle points up. Deterministic: Philox(seed, kShapeStream).
Image draw_shape(int shape, int size, uint64_t seed, uint64_t index);

// Writes <dir>/<class>/<class>_NNNN.png, `per_class` images of each class (PNG, atomically), and
// creates the folders. Errors name the file or folder.
void write_shapes_folder(const std::string& dir, int per_class, int size, uint64_t seed);

}  // namespace cgan
