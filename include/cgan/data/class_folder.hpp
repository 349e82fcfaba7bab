// Class-folder image sets (torchvision's ImageFolder): one sub-folder per class, label = class index.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "cgan/data/data.hpp"

namespace cgan {

struct ClassFolderSpec {
  std::string dir;              // data.dir: <dir>/<class>/**/*.{png,jpg,jpeg} (extension in any case)
  int height = 96, width = 96;  // every image is resized to this (area / bilinear, as data.kind "images")
  float lo = -1.f, hi = 1.f;    // pixel p in 0..255 -> lo + (hi - lo) * p / 255
  bool strict = false;          // an unreadable or corrupt image is an error, not a warning
};

// As torchvision.datasets.ImageFolder: the classes are the sub-folders of spec.dir (symbolic links
// followed, hidden ones included) sorted by name, byte by byte (case-sensitive: "B" < "a"); class k
// has label k. A class's images are found recursively and taken in path order; other files are
// ignored. RGB (grey replicated), NCHW. Files at the top of spec.dir are ignored with one warning
// line on `log`. Unreadable or corrupt images are skipped with one warning line each (errors when
// spec.strict). One-line errors name data.dir: a missing folder, no class folder, a class name that
// cannot be one line of classes.txt, a class folder without a (usable) image.
HostDataset load_class_folder(const ClassFolderSpec& spec, std::ostream& log);
// The class names of a class-folder set: the sub-folders of `dir`, sorted as above, checked as
// above (without reading an image); *top_files (may be null) receives the count of other entries.
std::vector<std::string> class_folder_names(const std::string& dir, int* top_files = nullptr);

// A classifier's held-out split of a class-folder set (`all` as load_class_folder returns it):
// within each class, in load (path) order, image j of n is held out when
// floor((j + 1) f) > floor(j f) -- floor(n f) images spread evenly through the class -- and a
// class with n f < 1 holds out its last image. Returns the held-out images (test) or the others.
// A class with fewer than 2 images is a one-line error naming it. f lies in (0, 1).
HostDataset class_folder_split(const HostDataset& all, double test_fraction, bool test);

// classes.txt: the class names one per line, in label order. class_names_text writes it;
// class_names_from_text reads it back (a trailing newline is optional; `path` names the source in
// errors: empty text, an empty name, a duplicate name).
std::string class_names_text(const std::vector<std::string>& names);
std::vector<std::string> class_names_from_text(const std::string& text, const std::string& path);

// A label given as a class name or a number (`sample --label cat`, `--labels cat,dog,3`): an exact
// class name wins, else a non-negative integer below num_classes. `who` (e.g. "--labels") prefixes
// the one-line error, which lists the class names when there are any.
int32_t label_from_text(const std::string& text, int num_classes, const std::vector<std::string>& names,
                        const std::string& who);
// "3 (cat)" when the label has a name, else "3".
std::string label_text(int label, const std::vector<std::string>& names);

}  // namespace cgan
