// NCCL all-reduce on the CUDA backend's stream; see nccl_reduce.hpp.
#ifdef CGAN_HAVE_NCCL
#include "nccl_reduce.hpp"

#include <nccl.h>

#include <cstring>

#include "common.cuh"
#include "cuda_backend.hpp"

namespace cgan {
namespace {

void check_nccl(ncclResult_t r, const char* call, const char* file, int line) {
  if (r != ncclSuccess)
    throw Error(cat("NCCL error: ", call, " failed at ", file, ":", line, ": ", ncclGetErrorString(r)));
}
#define NCCL_CHECK(call) check_nccl((call), #call, __FILE__, __LINE__)

class NcclReduce final : public RankReduce {
 public:
  NcclReduce(Backend& be, int rank, int ranks, const char id[kNcclIdBytes]) : ranks_(ranks) {
    stream_ = static_cast<cudaStream_t>(cuda_stream_of(be));
    static_assert(sizeof(ncclUniqueId) == kNcclIdBytes, "NCCL_UNIQUE_ID_BYTES changed");
    ncclUniqueId uid;
    std::memcpy(&uid, id, kNcclIdBytes);
    NCCL_CHECK(ncclCommInitRank(&comm_, ranks, uid, rank));
  }
  ~NcclReduce() override {
    if (stream_) cudaStreamSynchronize(stream_);
    if (comm_) ncclCommDestroy(comm_);
  }
  int ranks() const override { return ranks_; }
  void sum(float* x, size_t n) override { all_reduce(x, n, ncclFloat32, ncclSum); }
  void sum(double* x, size_t n) override { all_reduce(x, n, ncclFloat64, ncclSum); }
  void mean(float* x, size_t n) override { all_reduce(x, n, ncclFloat32, ncclAvg); }

 private:
  void all_reduce(void* x, size_t n, ncclDataType_t t, ncclRedOp_t op) {
    if (n) NCCL_CHECK(ncclAllReduce(x, x, n, t, op, comm_, stream_));
  }
  int ranks_;
  cudaStream_t stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

void nccl_unique_id(char out[kNcclIdBytes]) {
  ncclUniqueId uid;
  NCCL_CHECK(ncclGetUniqueId(&uid));
  std::memcpy(out, &uid, kNcclIdBytes);
}

std::unique_ptr<RankReduce> make_nccl_reduce(Backend& be, int rank, int ranks, const char id[kNcclIdBytes]) {
  CGAN_CHECK(be.name() == "cuda", "make_nccl_reduce: needs the cuda backend, got ", be.name());
  return std::make_unique<NcclReduce>(be, rank, ranks, id);
}

}  // namespace cgan
#endif  // CGAN_HAVE_NCCL
