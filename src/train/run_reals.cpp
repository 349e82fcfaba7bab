// reals.png in a fresh run's directory: the real training data, laid out as the sample grids.
#include "cgan/train/run_reals.hpp"

#include <algorithm>

#include "cgan/data/tags.hpp"
#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/report/reals.hpp"

namespace cgan {

void write_reals_png(const RunDir& rd, const HostDataset& data, const Config& cfg) {
  const DataShape shape = data_shape_of(data, cfg.data);
  int rows = 10;              // unconditional image sets
  if (shape.num_classes > 0)  // as Trainer::sample_rows: tagged sets show one row per hair label
    rows = shape.tag_dim > 0 ? std::min(shape.num_classes, hair_phrase_count(shape.vocab)) : shape.num_classes;
  write_png(rd.file("reals.png"), render_reals(data, shape, rows, cfg.log.samples_per_label, cfg.train.seed));
}

}  // namespace cgan
