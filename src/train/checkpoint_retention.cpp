// log.keep_checkpoints: deleting a run's older checkpoints once a newer one is safely on disk.
#include "cgan/train/checkpoint_retention.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace cgan {

void CheckpointRetention::written(int64_t step, const std::string& path) {
  if (keep_ <= 0 || step == final_step_) return;  // keep all; the final checkpoint is always kept
  if (std::find(mine_.begin(), mine_.end(), path) == mine_.end()) mine_.push_back(path);  // (a stop rewrites one)
  while (static_cast<int64_t>(mine_.size()) > keep_) {
    std::error_code ec;
    std::filesystem::remove(mine_.front(), ec);
    if (ec)
      std::fprintf(stderr, "cgan_gpu: warning: log.keep_checkpoints: cannot delete %s: %s\n", mine_.front().c_str(),
                   ec.message().c_str());
    mine_.erase(mine_.begin());
  }
}

}  // namespace cgan
