// Data-parallel training across processes (docs/DISTRIBUTED.md): `mpirun -np R cgan_gpu --config X`.
// Each rank trains on its share of every global batch and the gradients are averaged before each
// Adam step. Three pieces:
//  - LaunchInfo: what the launcher (mpirun / mpiexec / srun) put in this process's environment;
//  - Shard: which samples of a global batch this rank takes (the one place the rank's sample offset
//    comes from: every Philox draw of the step is keyed by the global sample index);
//  - Communicator: the process group (MPI) with the few host collectives the trainer needs, and a
//    RankReduce that sums backend buffers across ranks (MPI_Allreduce on the CPU backend's host
//    memory, NCCL on the CUDA backend's stream, so a captured CUDA graph holds it).
// A process not started by a launcher has no Communicator: the single-process run is unchanged.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "cgan/backend/rank_reduce.hpp"

namespace cgan {

class Backend;

// The launcher's environment: Open MPI (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK), PMIx (PMIX_RANK
// with OMPI_COMM_WORLD_SIZE or PMIX_SIZE), MPICH/Hydra and Intel MPI (PMI_RANK/PMI_SIZE,
// MPI_LOCALRANKID), or Slurm's srun (SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID, only together with
// PMI/PMIx variables, so that a plain `srun cgan_gpu` allocation step stays single-process).
struct LaunchInfo {
  bool launched = false;  // started by an MPI launcher
  int rank = 0, size = 1, local_rank = 0;
  std::string source;  // the variables that said so, e.g. "OMPI_COMM_WORLD_*"
};
// `get` reads one environment variable (nullptr when unset); the default reads this process's.
LaunchInfo detect_launch(const std::function<const char*(const char*)>& get = {});

// The samples of each global batch this rank takes: [offset, offset + batch) of the global batch
// (train.batch_size). Throws cgan::Error naming train.batch_size when it does not divide by ranks.
struct Shard {
  int rank = 0, ranks = 1;
  int global_batch = 0, batch = 0;  // batch = global_batch / ranks
  int64_t offset = 0;               // rank * batch: the global index of this rank's first sample
};
Shard make_shard(int global_batch, int rank, int ranks);

// The process group of a launched job. Collective calls must be made by every rank in the same
// order; a rank that fails outside them ends the job through abort() (the launcher then stops the
// others), so no rank waits forever.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  // Host collectives.
  virtual void sum_host(double* x, size_t n) = 0;
  virtual int max_host(int v) = 0;
  virtual bool all_equal(uint64_t v) = 0;  // whether every rank passed the same value
  // Every rank passes its error ("" when it has none) and the exit code it would give. When any
  // has one, every rank throws JobError with the lowest failing rank's message and code ("rank R
  // of N: " in front unless every rank failed with that message, e.g. a config error), so a setup
  // error ends every rank with one message (printed by rank 0) and no rank waits for another.
  virtual void agree(const std::string& error, int code) = 0;
  // The reducer for buffers of `be` (built once per backend: NCCL needs the CUDA backend's stream).
  virtual RankReduce& reducer(Backend& be) = 0;
  // Prints "cgan_gpu: rank R of N: <message>" and ends the whole job with `code` (MPI_Abort).
  [[noreturn]] virtual void abort(const std::string& message, int code) = 0;
};

// An error every rank of a job agreed on (Communicator::agree): rank 0 prints it, every rank exits
// with `code`.
struct JobError : std::runtime_error {
  JobError(const std::string& m, int c) : std::runtime_error(m), code(c) {}
  int code;
};

// Whether this build can run under a launcher (MPI found at build time), and NCCL for CUDA.
bool mpi_compiled();
bool nccl_compiled();

// Starts the process group of a launched job (MPI_Init; a CUDA job's NCCL communicator is made by
// reducer()). `info.launched` must be true; throws cgan::Error when this build has no MPI or the
// launcher's rank/size disagree with MPI's. MPI_Finalize runs when the object is destroyed.
std::unique_ptr<Communicator> make_communicator(const LaunchInfo& info);

}  // namespace cgan
