// Class-folder image sets (ImageFolder layout); see include/cgan/data/class_folder.hpp.
#include "cgan/data/class_folder.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "cgan/base/error.hpp"
#include "cgan/data/image.hpp"

namespace cgan {
namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e == ".png" || e == ".jpg" || e == ".jpeg";
}

// A class name must be one line of classes.txt and one item of a --labels list.
std::string bad_class_name(const std::string& name) {
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return "holds a control character";
  if (name.find(',') != std::string::npos) return "holds ',' (the --labels separator)";
  if (name != name.substr(0, name.find_last_not_of(' ') + 1) || name[0] == ' ') return "starts or ends with a space";
  return "";
}

}  // namespace

std::vector<std::string> class_folder_names(const std::string& dir, int* top_files) {
  std::error_code ec;
  std::vector<std::string> classes;
  int files = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    if (it->is_directory(e2))
      classes.push_back(it->path().filename().string());
    else
      ++files;
  }
  if (ec) throw Error(cat("data.dir: ", dir, ": cannot list the folder: ", ec.message()));
  if (classes.empty())
    throw Error(cat("data.dir: ", dir,
                    ": no class folders (data.kind \"image_folder\" reads one sub-folder "
                    "of images per class)"));
  std::sort(classes.begin(), classes.end());
  for (const std::string& c : classes)
    if (const std::string why = bad_class_name(c); !why.empty())
      throw Error(cat("data.dir: ", (fs::path(dir) / c).string(), ": the class name ", why));
  if (classes.size() > 65536)
    throw Error(cat("data.dir: ", dir, ": ", classes.size(), " class folders, at most 65536"));
  if (top_files) *top_files = files;
  return classes;
}

HostDataset load_class_folder(const ClassFolderSpec& spec, std::ostream& log) {
  check_image_folder_args(spec.dir, spec.height, spec.width, spec.lo, spec.hi, "class folder");
  std::error_code ec;
  int top_files = 0;
  const std::vector<std::string> classes = class_folder_names(spec.dir, &top_files);
  if (top_files > 0)
    log << "warning: data.dir: " << spec.dir << ": " << top_files
        << " file(s) at the top level ignored (images belong in a class folder)\n";

  const int H = spec.height, W = spec.width;
  const size_t dim = 3 * static_cast<size_t>(H) * W;
  HostDataset d;
  d.name = spec.dir;
  d.channels = 3;
  d.height = H;
  d.width = W;
  d.num_classes = static_cast<int>(classes.size());
  d.class_names = classes;
  int unreadable = 0;
  for (size_t k = 0; k < classes.size(); ++k) {
    const fs::path cdir = fs::path(spec.dir) / classes[k];
    std::vector<fs::path> files;
    const auto opts = fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied;
    for (fs::recursive_directory_iterator it(cdir, opts, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code e2;
      if (!it->is_directory(e2) && is_image_file(it->path())) files.push_back(it->path());
    }
    if (ec) throw Error(cat("data.dir: ", cdir.string(), ": cannot list the class folder: ", ec.message()));
    if (files.empty())
      throw Error(cat("data.dir: ", cdir.string(), ": class folder \"", classes[k], "\" holds no PNG or JPEG image"));
    std::sort(files.begin(), files.end());
    int loaded = 0;
    for (const fs::path& f : files) {
      Image img;
      try {
        img = read_image(f.string());
      } catch (const Error& e) {
        if (spec.strict) throw Error(cat("data.dir: ", e.what(), " (data.strict is set)"));
        log << "warning: data.dir: " << e.what() << " (skipped)\n";
        ++unreadable;
        continue;
      }
      const size_t base = d.x.size();
      d.x.resize(base + dim);
      image_to_rgb_planes(img, W, H, spec.lo, spec.hi, d.x.data() + base);
      d.y.push_back(static_cast<int32_t>(k));
      ++d.count;
      ++loaded;
    }
    if (loaded == 0)
      throw Error(cat("data.dir: ", cdir.string(), ": class folder \"", classes[k], "\" has no readable image (",
                      files.size(), " unreadable)"));
  }
  d.skipped = unreadable;
  log << "data: " << spec.dir << ": " << d.count << " images in " << classes.size() << " classes loaded (" << W << "x"
      << H << " RGB); skipped " << unreadable << " unreadable\n";
  return d;
}

HostDataset class_folder_split(const HostDataset& all, double test_fraction, bool test) {
  CGAN_CHECK(test_fraction > 0 && test_fraction < 1, "class_folder_split: test_fraction ", test_fraction,
             " outside (0, 1)");
  const int K = all.num_classes;
  std::vector<int64_t> n(static_cast<size_t>(K), 0), seen(static_cast<size_t>(K), 0);
  for (int32_t y : all.y) ++n[static_cast<size_t>(y)];
  for (int k = 0; k < K; ++k)
    if (n[static_cast<size_t>(k)] < 2)
      throw Error(cat("data.dir: ", all.name, ": class \"",
                      k < static_cast<int>(all.class_names.size()) ? all.class_names[k] : cat(k), "\" has ",
                      n[static_cast<size_t>(k)],
                      " usable image(s); a classifier needs at least 2 per class (one to train on, one held out)"));
  HostDataset d = all;
  d.x.clear();
  d.y.clear();
  d.count = 0;
  const size_t dim = static_cast<size_t>(all.dim());
  for (int i = 0; i < all.count; ++i) {
    const size_t k = static_cast<size_t>(all.y[static_cast<size_t>(i)]);
    const int64_t j = seen[k]++;  // the image's index within its class
    // image j is held out when floor((j + 1) f) > floor(j f): evenly spread, floor(n f) of them;
    // a class with n f < 1 holds out its last image
    const bool held = std::floor((j + 1) * test_fraction) > std::floor(j * test_fraction) ||
                      (n[k] * test_fraction < 1 && j == n[k] - 1);
    if (held != test) continue;
    d.x.insert(d.x.end(), all.x.begin() + static_cast<std::ptrdiff_t>(i * dim),
               all.x.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
    d.y.push_back(all.y[static_cast<size_t>(i)]);
    ++d.count;
  }
  return d;
}

std::string class_names_text(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += n + "\n";
  return s;
}

std::vector<std::string> class_names_from_text(const std::string& text, const std::string& path) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  size_t i = 0;
  int line = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    std::string n = text.substr(i, j - i);
    ++line;
    if (n.empty()) throw Error(cat(path, ":", line, ": empty class name"));
    if (!seen.insert(n).second) throw Error(cat(path, ":", line, ": class name \"", n, "\" appears twice"));
    names.push_back(std::move(n));
    i = j + 1;
  }
  if (names.empty()) throw Error(cat(path, ": no class name"));
  return names;
}

int32_t label_from_text(const std::string& text, int num_classes, const std::vector<std::string>& names,
                        const std::string& who) {
  for (size_t k = 0; k < names.size(); ++k)
    if (names[k] == text) return static_cast<int32_t>(k);
  char* end = nullptr;
  errno = 0;
  const long v = text.empty() ? 0 : std::strtol(text.c_str(), &end, 10);
  const bool number = !text.empty() && *end == '\0' && errno == 0 && std::isdigit(static_cast<unsigned char>(text[0]));
  std::string listing;
  if (!names.empty()) {
    listing = " (classes:";
    for (size_t k = 0; k < names.size(); ++k) listing += cat(k ? ", " : " ", k, " ", names[k]);
    listing += ")";
  }
  if (!number) throw Error(cat(who, ": '", text, "' is neither a class name nor a label number", listing));
  if (v >= num_classes)
    throw Error(cat(who, ": label ", v, " is outside this model's classes 0..", num_classes - 1, listing));
  return static_cast<int32_t>(v);
}

std::string label_text(int label, const std::vector<std::string>& names) {
  if (label >= 0 && static_cast<size_t>(label) < names.size()) return cat(label, " (", names[label], ")");
  return cat(label);
}

}  // namespace cgan
