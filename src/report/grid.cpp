// Sample pictures: generated samples as an image grid or a 2-D scatter plot, and label lists.
#include "cgan/report/grid.hpp"

#include <cerrno>
#include <cstdlib>

#include "cgan/base/error.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/report/plot.hpp"

namespace cgan {

Image render_samples(const std::vector<float>& samples, const std::vector<int32_t>& labels, const DataShape& shape,
                     int rows, int cols) {
  if (shape.is_points()) return scatter_plot(samples, shape.num_classes > 0 ? labels : std::vector<int32_t>{}, 512);
  const int n = static_cast<int>(samples.size() / static_cast<size_t>(shape.dim()));
  return make_grid(samples.data(), n, shape.channels, shape.height, shape.width, rows, cols, shape.lo, shape.hi);
}

std::vector<int32_t> parse_label_list(const std::string& text, int num_classes,
                                      const std::vector<std::string>& class_names) {
  std::vector<int32_t> out;
  if (text.empty()) throw Error("--labels: the list is empty (expected e.g. 3,1,4,1,5)");
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    const std::string item = text.substr(i, j - i);
    if (!class_names.empty()) {
      out.push_back(label_from_text(item, num_classes, class_names, "--labels"));
      i = j + 1;
      continue;
    }
    char* end = nullptr;
    errno = 0;
    const long v = item.empty() ? 0 : std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0)
      throw Error(cat("--labels: '", item, "' is not a label number (expected e.g. 3,1,4,1,5)"));
    if (v < 0 || v >= num_classes)
      throw Error(cat("--labels: label ", v, " is outside this model's classes 0..", num_classes - 1));
    out.push_back(static_cast<int32_t>(v));
    i = j + 1;
  }
  return out;
}

}  // namespace cgan
