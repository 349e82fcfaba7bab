// A run's TensorBoard log (config log.tensorboard): tb/ beside the CSVs, holding the losses.csv
// columns as scalars, the sample grids as images, config.json as text (and, from the layers above,
// the metrics.csv columns and the training speed), one event file per start of the run.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cgan/report/rundir.hpp"
#include "cgan/report/tensorboard.hpp"

namespace cgan {

class TbLog {
 public:
  // Opens tb/events.out.tfevents.<time>.<host> in the run directory and writes config.json (as the
  // run directory holds it now) as the text "config" at `start_step`. Started at s > 0 (a resume),
  // the records of the earlier files after step s are dropped first (and a config text an earlier
  // resume from s wrote), so no step is logged twice.
  TbLog(const RunDir& rd, int64_t start_step);
  // d_loss, g_loss, d_real, d_fake, d_acc of each row as "losses/<column>", with the values as
  // losses.csv prints them; flushed.
  void losses(const std::vector<LossRow>& rows);
  // Scalars at one step, each given as the text a CSV holds (the value logged is that text read
  // back, so the log and the CSV agree); flushed.
  void scalars(int64_t step, const std::vector<std::pair<std::string, std::string>>& tag_text);
  void scalar(int64_t step, const std::string& tag, float value);  // flushed
  // The PNG file at `png_path` as the image `tag` (its bytes as they are; size and channels from its header).
  void image(int64_t step, const std::string& tag, const std::string& png_path);

 private:
  std::unique_ptr<EventFile> file_;
};

// Drops the records after `step` (and "config" texts at `step`) from the event files in `dir`,
// each rewritten atomically when something goes; a damaged tail (a crash mid-write) goes too.
void trim_event_files(const std::string& dir, int64_t step);

}  // namespace cgan
