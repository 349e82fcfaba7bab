// The training session's set-up: config or resume, backend, data, trainer, MPI agreement, run-directory claim.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/report/rundir.hpp"
#include "cgan/train/distributed.hpp"
#include "cgan/train/run_reals.hpp"
#include "cgan/train/trainer.hpp"

namespace cgan {

// A mistake on the command line (a bad option value, options that contradict each other): the
// command line tool exits 2 for it.
struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(m) {}
};

// "auto" | "cpu" | "cuda", else a UsageError naming --device.
std::string check_device(const std::string& device);

// Where a run writes when no out_dir is given: a resumed run continues in the run directory its
// checkpoint came from (<dir>/checkpoints/step_N.safetensors -> <dir>), so the CSVs of that run
// are the ones continued; a fresh run (or a checkpoint kept elsewhere) uses out/<config name>.
std::string default_run_dir(const Config& cfg, const std::string& resume);

struct SessionOptions {
  std::string config_path;        // --config (empty: the config stored in the checkpoint)
  std::vector<std::string> sets;  // --set KEY=VALUE overrides
  std::string out_dir;            // --out (empty: default_run_dir)
  std::string resume;             // --resume CKPT (empty: a fresh run)
  std::string device;             // --device (empty: the config's)
  bool overwrite = false;         // --overwrite: replace the run already in out_dir
};

// Everything a training run holds, set up and ready for run().
struct TrainingSession {
  SafeTensors checkpoint;  // the one resumed from (empty for a fresh run)
  Config cfg;
  std::unique_ptr<Backend> backend;
  HostDataset data;
  std::unique_ptr<Trainer> trainer;
  std::unique_ptr<RunDir> run_dir;  // claimed by rank 0 (or the single process); null on other ranks
  std::string out_dir;              // the run directory's path (on every rank)

  // Trains to train.steps: Trainer::run's exit code (0 done, 130 stopped).
  // A fresh run first writes reals.png (cgan/train/run_reals.hpp); a resume keeps the one it has.
  int run() {
    if (run_dir && trainer->steps_done() == 0) write_reals_png(*run_dir, data, cfg);
    return trainer->run(run_dir.get());
  }
};

// Sets a session up: reads the checkpoint (with resume) and the config, makes the backend, loads
// the data, checks the whole run's memory plan against the backend (cgan/train/run_memory.hpp),
// builds the trainer, prepares the evaluator, restores or initialises the weights, and only when
// every check has passed claims the run directory (locked; a fresh run refuses one
// holding a run unless overwrite; a resume continues its own). Under mpirun (comm) every rank runs
// this and the ranks agree on its outcome: an error on any rank ends every rank with one message
// (JobError, cgan/train/distributed.hpp); only rank 0 claims the run directory.
std::unique_ptr<TrainingSession> open_training_session(const SessionOptions& o, Communicator* comm = nullptr);

}  // namespace cgan
