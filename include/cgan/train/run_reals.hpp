// reals.png in a fresh run's directory: the real training data, laid out as the sample grids.
#pragma once
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/report/rundir.hpp"

namespace cgan {

// Writes <run>/reals.png (atomically): one row per label with log.samples_per_label real images
// each (tagged sets: one row per hair label, as the sample grids; unconditional image sets: 10 rows
// of random reals; 2-D point sets: a scatter of the reals coloured by label). Chosen with
// train.seed. The session calls it once, at the start of a fresh run (a resume keeps the file).
void write_reals_png(const RunDir& rd, const HostDataset& data, const Config& cfg);

}  // namespace cgan
