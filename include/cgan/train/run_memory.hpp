// The whole run's memory plan: both models, optimiser state, EMA, workspaces, data, evaluation, checked before set-up.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"

namespace cgan {

// What a training run allocates on its backend, by consumer, computed from the config and the data
// set's shape before anything is allocated. Each model's part comes from the nn plan
// (cgan/nn/memory_plan.hpp); the rest mirrors what the trainer, the EMA, the sample grid and the
// evaluator allocate. Every item is an upper bound of what it stands for (allocation rounding and
// slot alignment included), so total() >= the backend's peak after set-up, a step and an evaluation.
struct RunMemoryPlan {
  struct Item {
    std::string what;  // "generator activations", "data set on the device", ...
    uint64_t bytes = 0;
  };
  std::vector<Item> items;
  uint64_t total() const;
  // "generator activations 1.9 GB, data set on the device 0.9 GB, ..." (the n biggest, largest first).
  std::string biggest(size_t n = 3) const;
};

// The plan of cfg's run on be with a data set of `count` samples of `shape`. batch: this process's
// share of train.batch_size; evaluates: whether this process runs the evaluator (rank 0 with eval.every > 0).
RunMemoryPlan plan_run_memory(const Config& cfg, const DataShape& shape, int64_t count, int batch, bool evaluates,
                              Backend& be);

// Throws cgan::Error when plan.total() exceeds be.memory_available(), in one line: `config X does not
// fit: the run needs 3.2 GB (generator activations 1.9 GB, ...) but the cpu backend has 1.0 GB
// available (CGAN_CPU_MEMORY_LIMIT)`.
void check_run_memory(const RunMemoryPlan& plan, const std::string& config_name, Backend& be);

}  // namespace cgan
