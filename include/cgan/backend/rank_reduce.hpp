// RankReduce: sums backend buffers across the ranks of a data-parallel job (the seam between the
// Backend's synchronized ops and the process group of cgan/train/distributed.hpp).
#pragma once
#include <cstddef>

namespace cgan {

// Sums backend buffers (memory of the backend it was made for) across the ranks, in place: every
// rank calls it with the same n, in the same order. Enqueued on the backend like its ops (the CPU
// backend: MPI_Allreduce, done when the call returns; CUDA: NCCL on the backend's stream).
class RankReduce {
 public:
  virtual ~RankReduce() = default;
  virtual int ranks() const = 0;
  virtual void sum(float* x, size_t n) = 0;
  virtual void sum(double* x, size_t n) = 0;  // batch-norm statistics (Backend::*_sync)
  // x = (sum over ranks) / ranks: the gradient average before each Adam step.
  virtual void mean(float* x, size_t n) = 0;
};

// The contiguous-buffer reducer of a single process (ranks() == 1, every call a no-op); also what
// the tests use to check that a _sync op with one rank equals the plain op.
RankReduce& single_rank_reduce();

}  // namespace cgan
