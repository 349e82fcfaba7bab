// The checkpoints a run directory holds: checkpoints/step_N.safetensors, listed by step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cgan {

struct CheckpointFile {
  int64_t step = 0;
  std::string path;  // <run_dir>/checkpoints/step_N.safetensors
};

// The files named exactly step_N.safetensors (N decimal digits) in <run_dir>/checkpoints, oldest
// step first. A writer's temporaries (step_N.safetensors.tmp.<pid>) and every other name are
// skipped: the writer renames a file into place only once it is complete and fsynced, so each one
// listed was written whole. An absent folder lists nothing.
std::vector<CheckpointFile> list_checkpoints(const std::string& run_dir);

// Whether `name` is a checkpoint's file name (step_N.safetensors); *step receives N.
bool parse_checkpoint_name(const std::string& name, int64_t* step);

}  // namespace cgan
