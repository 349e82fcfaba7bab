// load_dataset: the training (or test) set a config's "data" section names.
#pragma once
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"

namespace cgan {

// Loads the dataset a config names (MNIST/Fashion IDX files, an image folder, the procedural anime
// faces, or a synthetic 2-D set); a bad or missing file is an error naming its config key.
HostDataset load_dataset(const DataSpec& d, bool train = true);

}  // namespace cgan
