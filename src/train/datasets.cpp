// Data-set loading for training: the set a config's "data" section names.
#include "cgan/train/datasets.hpp"

#include <iostream>

#include "cgan/base/error.hpp"
#include "cgan/data/anime_faces.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/data/image.hpp"
#include "cgan/data/tags.hpp"

namespace cgan {

HostDataset load_dataset(const DataSpec& d, bool train) {
  if (d.idx()) {
    try {
      return load_mnist_dir(d.dir, train, d.lo, d.hi);
    } catch (const Error& e) {
      throw Error(cat("data.dir: ", e.what()));  // the config key the bad or missing file came from
    }
  }
  if (d.kind == DataKind::Kind::anime)
    return make_anime_faces(d.count, d.height, d.width, d.seed + (train ? 0 : 1), d.lo, d.hi);
  if (d.kind == DataKind::Kind::images) {  // one folder: the same set for train and test
    ImageFolderSpec s;
    s.dir = d.dir;
    s.tags = d.tags;
    s.height = d.height;
    s.width = d.width;
    s.lo = d.lo;
    s.hi = d.hi;
    s.strict = d.strict;
    s.vocab = d.vocabulary;
    if (!d.vocabulary_file.empty()) {
      try {
        s.vocab = read_vocabulary(d.vocabulary_file);
      } catch (const Error& e) {
        throw Error(cat("data.vocabulary: ", e.what()));
      }
    }
    return load_image_folder(s, std::cerr);
  }
  if (d.kind == DataKind::Kind::image_folder) {  // one folder: the same set for train and test
    ClassFolderSpec s;
    s.dir = d.dir;
    s.height = d.height;
    s.width = d.width;
    s.lo = d.lo;
    s.hi = d.hi;
    s.strict = d.strict;
    return load_class_folder(s, std::cerr);
  }
  if (d.kind == DataKind::Kind::gaussian)
    return make_gaussian(d.count, d.mean_x, d.mean_y, d.std_x, d.std_y, d.seed + (train ? 0 : 1));
  return make_mixture(d.count, d.modes, d.radius, d.stddev, d.seed + (train ? 0 : 1));
}

}  // namespace cgan
