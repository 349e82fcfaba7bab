// NCCL all-reduce for the CUDA backend's buffers (data-parallel training, cgan/train/distributed.hpp).
// Built when the CUDA toolkit has NCCL (cuda.cmake defines CGAN_HAVE_NCCL); the NCCL id is passed
// in by the caller (src/train/distributed.cpp broadcasts rank 0's over MPI), so this file needs no MPI.
#pragma once
#include <cstddef>
#include <memory>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/rank_reduce.hpp"

namespace cgan {

constexpr size_t kNcclIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES
// A fresh ncclUniqueId (rank 0 makes it, every rank passes it to make_nccl_reduce).
void nccl_unique_id(char out[kNcclIdBytes]);
// A RankReduce whose calls enqueue ncclAllReduce on `be`'s stream (`be` must be the CUDA backend;
// a CUDA graph capture of that stream records them). Float sums, double sums (batch-norm
// statistics) and the gradient mean (ncclAvg).
std::unique_ptr<RankReduce> make_nccl_reduce(Backend& be, int rank, int ranks, const char id[kNcclIdBytes]);

}  // namespace cgan
