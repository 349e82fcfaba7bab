// log.keep_checkpoints: deleting a run's older checkpoints once a newer one is safely on disk.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cgan {

// Keeps the newest `keep` checkpoints this process wrote, plus the final one (step == final_step),
// which is never deleted nor counted; keep == 0 keeps everything. Only files this object was told
// of are ever deleted: checkpoints of an earlier part of a resumed run, and anything else in the
// folder, are left alone.
class CheckpointRetention {
 public:
  CheckpointRetention(int64_t keep, int64_t final_step) : keep_(keep), final_step_(final_step) {}
  // Call after write_safetensors(path) returned (the file is renamed into place and fsynced):
  // deletes the oldest of this process's checkpoints beyond the newest `keep`. A file that cannot
  // be deleted is a one-line warning, not the end of the run.
  void written(int64_t step, const std::string& path);

 private:
  int64_t keep_, final_step_;
  std::vector<std::string> mine_;  // oldest first
};

}  // namespace cgan
