// Data-parallel training: launcher detection, shards, the MPI process group and its reducers. See
// include/cgan/train/distributed.hpp and docs/DISTRIBUTED.md.
#include "cgan/train/distributed.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"

#ifdef CGAN_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only (Open MPI's and MPICH's headers add C++ bindings otherwise)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif
#if defined(CGAN_HAVE_MPI) && defined(CGAN_HAVE_NCCL)
#include "nccl_reduce.hpp"  // cuda/: NCCL for the CUDA backend's buffers
#endif

namespace cgan {

namespace {

// A non-negative integer from the environment, or -1 (unset or not a number).
int env_int(const std::function<const char*(const char*)>& get, const char* name) {
  const char* v = get(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end || x < 0 || x > INT_MAX) return -1;
  return static_cast<int>(x);
}

}  // namespace

LaunchInfo detect_launch(const std::function<const char*(const char*)>& get_in) {
  const std::function<const char*(const char*)> get =
      get_in ? get_in : [](const char* n) -> const char* { return std::getenv(n); };
  LaunchInfo li;
  auto set = [&](int rank, int size, int local, const char* source) {
    if (rank < 0 || size < 1 || rank >= size) return false;
    li.launched = true;
    li.rank = rank;
    li.size = size;
    li.local_rank = local >= 0 ? local : 0;
    li.source = source;
    return true;
  };
  // Open MPI (mpirun / orterun / prterun)
  if (set(env_int(get, "OMPI_COMM_WORLD_RANK"), env_int(get, "OMPI_COMM_WORLD_SIZE"),
          env_int(get, "OMPI_COMM_WORLD_LOCAL_RANK"), "OMPI_COMM_WORLD_*"))
    return li;
  // PMIx (Open MPI 5's prterun, srun --mpi=pmix)
  if (env_int(get, "PMIX_RANK") >= 0) {
    const int size = std::max(env_int(get, "PMIX_SIZE"), env_int(get, "SLURM_NTASKS"));
    if (set(env_int(get, "PMIX_RANK"), size, env_int(get, "SLURM_LOCALID"), "PMIX_RANK")) return li;
  }
  // MPICH / Hydra, Intel MPI (srun --mpi=pmi2 sets PMI_RANK/PMI_SIZE too)
  if (set(env_int(get, "PMI_RANK"), env_int(get, "PMI_SIZE"),
          std::max(env_int(get, "MPI_LOCALRANKID"), env_int(get, "SLURM_LOCALID")), "PMI_RANK/PMI_SIZE"))
    return li;
  return li;  // not launched: a single process
}

Shard make_shard(int global_batch, int rank, int ranks) {
  CGAN_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "make_shard: rank ", rank, " of ", ranks);
  if (global_batch % ranks != 0)
    throw Error(cat("train.batch_size: ", global_batch, " does not divide among the ", ranks,
                    " ranks of this job (each rank takes batch_size / ranks samples); use a multiple of ", ranks));
  Shard s;
  s.rank = rank;
  s.ranks = ranks;
  s.global_batch = global_batch;
  s.batch = global_batch / ranks;
  s.offset = static_cast<int64_t>(rank) * s.batch;
  return s;
}

bool mpi_compiled() {
#ifdef CGAN_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool nccl_compiled() {
#if defined(CGAN_HAVE_MPI) && defined(CGAN_HAVE_NCCL)
  return true;
#else
  return false;
#endif
}

#ifdef CGAN_HAVE_MPI
namespace {

void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(cat("MPI error: ", call, ": ", std::string(text, static_cast<size_t>(len))));
}
#define MPI_CHECK(call) mpi_check((call), #call)

// MPI counts are int: large buffers go in pieces.
constexpr size_t kMpiChunk = size_t{1} << 30;

// The CPU backend's buffers are host memory: MPI_Allreduce in place.
class MpiHostReduce final : public RankReduce {
 public:
  explicit MpiHostReduce(int ranks) : ranks_(ranks) {}
  int ranks() const override { return ranks_; }
  void sum(float* x, size_t n) override { reduce(x, n, MPI_FLOAT); }
  void sum(double* x, size_t n) override { reduce(x, n, MPI_DOUBLE); }
  void mean(float* x, size_t n) override {
    reduce(x, n, MPI_FLOAT);
    const float r = static_cast<float>(ranks_);
    for (size_t i = 0; i < n; ++i) x[i] /= r;
  }

 private:
  template <class T>
  void reduce(T* x, size_t n, MPI_Datatype t) {
    for (size_t o = 0; o < n; o += kMpiChunk) {
      const int k = static_cast<int>(std::min(kMpiChunk, n - o));
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x + o, k, t, MPI_SUM, MPI_COMM_WORLD));
    }
  }
  int ranks_;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const LaunchInfo& info) : local_rank_(info.local_rank) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw Error(cat("MPI_Init failed (launched by ", info.source, " as rank ", info.rank, " of ", info.size, ")"));
      owns_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // errors become cgan::Error
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
    if (rank_ != info.rank || size_ != info.size)
      throw Error(cat("MPI reports rank ", rank_, " of ", size_, " but the launcher's environment (", info.source,
                      ") says rank ", info.rank, " of ", info.size));
  }
  ~MpiCommunicator() override {
    reducers_.clear();  // NCCL communicators before MPI goes
    if (owns_) {
      int fin = 0;
      MPI_Finalized(&fin);
      if (!fin) MPI_Finalize();
    }
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  void sum_host(double* x, size_t n) override {
    if (n) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  }
  int max_host(int v) override {
    int out = v;
    MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    return out;
  }
  bool all_equal(uint64_t v) override {
    unsigned long long in[2] = {v, ~v}, out[2] = {0, 0};
    MPI_CHECK(MPI_Allreduce(in, out, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD));
    return out[0] == v && out[1] == ~v;  // max == v and min == v
  }
  void agree(const std::string& error, int code) override {
    const int mine = error.empty() ? INT_MAX : rank_;
    int first = INT_MAX;
    MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (first == INT_MAX) return;
    int head[2] = {rank_ == first ? static_cast<int>(error.size()) : 0, code};
    MPI_CHECK(MPI_Bcast(head, 2, MPI_INT, first, MPI_COMM_WORLD));
    const int len = head[0];
    std::string msg = rank_ == first ? error : std::string(static_cast<size_t>(len), ' ');
    if (len) MPI_CHECK(MPI_Bcast(msg.data(), len, MPI_CHAR, first, MPI_COMM_WORLD));
    // the same error on every rank (a config error) is said once; otherwise the failing rank is named
    const int same = error == msg ? 1 : 0;
    int all_same = 0;
    MPI_CHECK(MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    throw JobError(all_same ? msg : cat("rank ", first, " of ", size_, ": ", msg), head[1] ? head[1] : 1);
  }
  RankReduce& reducer(Backend& be) override {
    auto it = reducers_.find(&be);
    if (it != reducers_.end()) return *it->second;
    std::unique_ptr<RankReduce> r;
    if (be.name() == "cpu") {
      r = std::make_unique<MpiHostReduce>(size_);
    } else {
#ifdef CGAN_HAVE_NCCL
      char id[kNcclIdBytes] = {};
      if (rank_ == 0) nccl_unique_id(id);
      MPI_CHECK(MPI_Bcast(id, static_cast<int>(kNcclIdBytes), MPI_BYTE, 0, MPI_COMM_WORLD));
      r = make_nccl_reduce(be, rank_, size_, id);
#else
      throw Error(cat("the ", be.name(),
                      " backend under mpirun needs NCCL, and this build has none (found no nccl.h "
                      "and libnccl with the CUDA toolkit); use --device cpu or rebuild with NCCL"));
#endif
    }
    return *reducers_.emplace(&be, std::move(r)).first->second;
  }
  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "cgan_gpu: rank %d of %d: %s\n", rank_, size_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool owns_ = false;
  std::map<const Backend*, std::unique_ptr<RankReduce>> reducers_;
};

}  // namespace

std::unique_ptr<Communicator> make_communicator(const LaunchInfo& info) {
  CGAN_CHECK(info.launched, "make_communicator: not started by a launcher");
  return std::make_unique<MpiCommunicator>(info);
}
#else
std::unique_ptr<Communicator> make_communicator(const LaunchInfo& info) {
  throw Error(cat("started by an MPI launcher (", info.source, ": rank ", info.rank, " of ", info.size,
                  ") but this build of cgan_gpu has no MPI; install Open MPI (tools/setup.sh) and rebuild"));
}
#endif

}  // namespace cgan
