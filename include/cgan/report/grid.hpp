// Sample pictures: generated samples as an image grid (one row per label) or a 2-D scatter plot,
// and the label lists `sample --labels` takes (src/report/grid.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cgan/data/data.hpp"
#include "cgan/data/image.hpp"

namespace cgan {

// Turns generated samples (n x dim, host) into a picture: a rows x cols grid of images, or a
// scatter plot coloured by label for 2-D point data.
Image render_samples(const std::vector<float>& samples, const std::vector<int32_t>& labels, const DataShape& shape,
                     int rows, int cols);

// Parses "3,1,4,1,5" into labels in [0, num_classes); errors name the bad entry. With class names
// (class-folder models) an item may be a name too ("cat,dog,3"; an exact name wins over a number,
// see label_from_text in cgan/data/class_folder.hpp).
std::vector<int32_t> parse_label_list(const std::string& text, int num_classes,
                                      const std::vector<std::string>& class_names = {});

}  // namespace cgan
