// Data-parallel pieces that need no launcher (cgan/train/distributed.hpp): launcher detection from the
// environment, shards of the global batch, and synchronized batch norm on the CPU backend: with one
// rank it is the plain op bit for bit, its gradient matches finite differences, and two ranks
// (threads with an in-process reducer) holding the two halves of a batch reproduce batch norm over
// the whole batch. The mpirun runs themselves are tests/e2e/test_distributed.cpp.
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "cgan/config/config.hpp"
#include "cgan/train/distributed.hpp"
#include "ops_test_util.hpp"

namespace cgan {
namespace {
using namespace opstest;

LaunchInfo launch_from(const std::map<std::string, std::string>& env) {
  return detect_launch([&](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(Launch, DetectsOpenMpiPmixAndPmiLaunchers) {
  LaunchInfo a = launch_from({{"OMPI_COMM_WORLD_RANK", "1"},
                              {"OMPI_COMM_WORLD_SIZE", "4"},
                              {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                              {"PMIX_RANK", "1"}});
  EXPECT_TRUE(a.launched);
  EXPECT_EQ(a.rank, 1);
  EXPECT_EQ(a.size, 4);
  EXPECT_EQ(a.local_rank, 1);
  EXPECT_EQ(a.source, "OMPI_COMM_WORLD_*");
  LaunchInfo b = launch_from({{"PMI_RANK", "3"}, {"PMI_SIZE", "8"}, {"MPI_LOCALRANKID", "3"}});
  EXPECT_TRUE(b.launched);
  EXPECT_EQ(b.rank, 3);
  EXPECT_EQ(b.size, 8);
  EXPECT_EQ(b.local_rank, 3);
  LaunchInfo c = launch_from({{"PMIX_RANK", "2"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"}});
  EXPECT_TRUE(c.launched);
  EXPECT_EQ(c.rank, 2);
  EXPECT_EQ(c.size, 4);
}

TEST(Launch, APlainProcessOrAMalformedEnvironmentIsSingle) {
  EXPECT_FALSE(launch_from({}).launched);
  EXPECT_FALSE(launch_from({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}).launched);  // srun without PMI
  EXPECT_FALSE(launch_from({{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "2"}}).launched);
  EXPECT_FALSE(launch_from({{"OMPI_COMM_WORLD_RANK", "x"}, {"OMPI_COMM_WORLD_SIZE", "2"}}).launched);
  EXPECT_FALSE(launch_from({{"PMI_RANK", "0"}}).launched);
  const LaunchInfo one = launch_from({});
  EXPECT_EQ(one.rank, 0);
  EXPECT_EQ(one.size, 1);
}

TEST(Shard, SplitsTheGlobalBatchByRank) {
  const Shard s = make_shard(64, 3, 4);
  EXPECT_EQ(s.batch, 16);
  EXPECT_EQ(s.offset, 48);
  EXPECT_EQ(s.global_batch, 64);
  const Shard one = make_shard(7, 0, 1);
  EXPECT_EQ(one.batch, 7);
  EXPECT_EQ(one.offset, 0);
}

TEST(Shard, AnIndivisibleBatchNamesTheKeyAndTheRanks) {
  try {
    make_shard(64, 0, 3);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "train.batch_size: 64 does not divide among the 3 ranks of this job (each rank takes batch_size / "
              "ranks samples); use a multiple of 3");
  }
}

TEST(Shard, TheSingleRankReducerChangesNothing) {
  RankReduce& r = single_rank_reduce();
  EXPECT_EQ(r.ranks(), 1);
  std::vector<float> v = {1.5f, -2.f};
  r.mean(v.data(), v.size());
  r.sum(v.data(), v.size());
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.f}));
}

// R threads as ranks: sum() waits for every rank's buffer and adds them in rank order (double).
class ThreadGroup {
 public:
  explicit ThreadGroup(int ranks) : ranks_(ranks), bufs_(static_cast<size_t>(ranks)) {}
  int ranks() const { return ranks_; }
  template <class T>
  void sum(int rank, T* x, size_t n) {
    {
      std::lock_guard<std::mutex> l(m_);
      bufs_[static_cast<size_t>(rank)].assign(x, x + n);
    }
    barrier();
    std::vector<double> s(n, 0.0);
    for (const auto& b : bufs_)
      for (size_t i = 0; i < n; ++i) s[i] += b[i];
    barrier();  // nobody overwrites its buffer before every rank has read them all
    for (size_t i = 0; i < n; ++i) x[i] = static_cast<T>(s[i]);
  }

 private:
  void barrier() {
    std::unique_lock<std::mutex> l(m_);
    const long gen = gen_;
    if (++arrived_ == ranks_) {
      arrived_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(l, [&] { return gen_ != gen; });
    }
  }
  int ranks_;
  std::vector<std::vector<double>> bufs_;
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  long gen_ = 0;
};

class ThreadReduce final : public RankReduce {
 public:
  ThreadReduce(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int ranks() const override { return g_.ranks(); }
  void sum(float* x, size_t n) override { g_.sum(rank_, x, n); }
  void sum(double* x, size_t n) override { g_.sum(rank_, x, n); }
  void mean(float* x, size_t n) override {
    g_.sum(rank_, x, n);
    for (size_t i = 0; i < n; ++i) x[i] /= static_cast<float>(ranks());
  }

 private:
  ThreadGroup& g_;
  int rank_;
};

TEST(DistributedConfig, SyncBatchNormKeyIsCheckedAndRoundTrips) {
  nlohmann::json j = nlohmann::json::parse(R"({"data": {"kind": "gaussian"},
      "generator": {"condition": {"mode": "none"}, "layers": [{"linear": 2}]},
      "discriminator": {"condition": {"mode": "none"}, "layers": [{"linear": 1}]}})");
  EXPECT_FALSE(parse_config(j).distributed.sync_batchnorm);
  j["distributed"] = {{"sync_batchnorm", true}};
  const Config c = parse_config(j);
  EXPECT_TRUE(c.distributed.sync_batchnorm);
  EXPECT_TRUE(parse_config(c.to_json()).distributed.sync_batchnorm);
  j["distributed"] = {{"sync_batchnorm", 3}};
  try {
    parse_config(j);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "distributed.sync_batchnorm: expected true or false, got 3");
  }
  j["distributed"] = {{"sync_bn", true}};
  try {
    parse_config(j);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("distributed.sync_bn"), std::string::npos) << e.what();
  }
}

TEST(DistributedConfig, SyncBatchNormRefusesConditionalBatchNorm) {
  nlohmann::json j = nlohmann::json::parse(R"({"data": {"kind": "mixture"},
      "generator": {"condition": {"mode": "none"}, "layers": [{"linear": 8}, {"batchnorm": {"conditional": true}},
                                                              {"linear": 2}]},
      "discriminator": {"condition": {"mode": "projection"}, "layers": [{"linear": 8}, {"relu": {}}, {"linear": 1}]},
      "distributed": {"sync_batchnorm": true}})");
  try {
    parse_config(j);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("distributed.sync_batchnorm: synchronized statistics are not implemented "
                                          "for conditional batch norm",
                                          0),
              0u)
        << e.what();
  }
  j["distributed"]["sync_batchnorm"] = false;
  EXPECT_NO_THROW(parse_config(j));
}

class SyncBatchNorm : public RandomCpuTest {};

size_t at(int C, int S, int n, int c, int s) { return (static_cast<size_t>(n) * C + c) * S + s; }

// Double reference of training batch norm over [N, C, S].
VecD bn_ref_d(int N, int C, int S, const VecD& x, const VecD& gamma, const VecD& beta, double eps) {
  VecD y(x.size());
  const double cnt = static_cast<double>(N) * S;
  for (int c = 0; c < C; ++c) {
    double m = 0, v = 0;
    for (int n = 0; n < N; ++n)
      for (int s = 0; s < S; ++s) m += x[at(C, S, n, c, s)];
    m /= cnt;
    for (int n = 0; n < N; ++n)
      for (int s = 0; s < S; ++s) v += (x[at(C, S, n, c, s)] - m) * (x[at(C, S, n, c, s)] - m);
    v /= cnt;
    for (int n = 0; n < N; ++n)
      for (int s = 0; s < S; ++s)
        y[at(C, S, n, c, s)] = gamma[c] * (x[at(C, S, n, c, s)] - m) / std::sqrt(v + eps) + beta[c];
  }
  return y;
}

TEST_F(SyncBatchNorm, OneRankIsThePlainOpBitForBit) {
  for (int trial = 0; trial < 6; ++trial) {
    const int N = size(2, 17), C = size(1, 9), S = trial % 2 ? size(1, 9) : 1;
    SCOPED_TRACE(cat("N=", N, " C=", C, " S=", S));
    const size_t n = static_cast<size_t>(N) * C * S;
    const VecF x = randv(n, -2, 3), gamma = randv(C, 0.5f, 1.5f), beta = randv(C, -1, 1), gy = randv(n, -1, 1);
    VecF y1(n), y2(n), m1(C), m2(C), i1(C), i2(C), rm1(C, 0.f), rm2(C, 0.f), rv1(C, 1.f), rv2(C, 1.f);
    be_->batchnorm_forward_train(N, C, S, 0.8f, 0.1f, x.data(), gamma.data(), beta.data(), y1.data(), m1.data(),
                                 i1.data(), rm1.data(), rv1.data(), Act::leaky_relu, 0.2f);
    be_->batchnorm_forward_train_sync(N, C, S, 0.8f, 0.1f, x.data(), gamma.data(), beta.data(), y2.data(), m2.data(),
                                      i2.data(), rm2.data(), rv2.data(), single_rank_reduce(), Act::leaky_relu, 0.2f);
    EXPECT_EQ(y1, y2);
    EXPECT_EQ(m1, m2);
    EXPECT_EQ(i1, i2);
    EXPECT_EQ(rm1, rm2);
    EXPECT_EQ(rv1, rv2);
    VecF gx1(n), gx2(n), gg1(C, 0.5f), gg2(C, 0.5f), gb1(C, -0.5f), gb2(C, -0.5f);
    be_->batchnorm_backward(N, C, S, x.data(), gamma.data(), m1.data(), i1.data(), gy.data(), gx1.data(), gg1.data(),
                            gb1.data());
    be_->batchnorm_backward_sync(N, C, S, x.data(), gamma.data(), m1.data(), i1.data(), gy.data(), gx2.data(),
                                 gg2.data(), gb2.data(), single_rank_reduce());
    EXPECT_EQ(gx1, gx2);
    EXPECT_EQ(gg1, gg2);
    EXPECT_EQ(gb1, gb2);
  }
}

TEST_F(SyncBatchNorm, BackwardMatchesFiniteDifferences) {
  for (int trial = 0; trial < 6; ++trial) {
    const int N = size(2, 13), C = size(1, 5), S = trial % 2 ? size(1, 7) : 1;
    SCOPED_TRACE(cat("N=", N, " C=", C, " S=", S));
    const size_t n = static_cast<size_t>(N) * C * S;
    const float eps = 1e-3f;
    const VecF x = randv(n, -1, 2), gamma = randv(C, 0.5f, 1.5f), beta = randv(C, -1, 1), w = randv(n, -1, 1);
    VecF y(n), mean(C), invstd(C), gx(n), gg(C, 0.f), gb(C, 0.f);
    be_->batchnorm_forward_train_sync(N, C, S, eps, 0.1f, x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                      invstd.data(), nullptr, nullptr, single_rank_reduce());
    VecD xd = to_d(x), gd = to_d(gamma), bd = to_d(beta), wd = to_d(w);
    expect_close(y, bn_ref_d(N, C, S, xd, gd, bd, eps), 2e-5, 1e-5, "y");
    be_->batchnorm_backward_sync(N, C, S, x.data(), gamma.data(), mean.data(), invstd.data(), w.data(), gx.data(),
                                 gg.data(), gb.data(), single_rank_reduce());
    auto L = [&] { return dot(wd, bn_ref_d(N, C, S, xd, gd, bd, eps)); };
    expect_close(gx, numeric_grad(xd, L), 5e-5, 1e-4, "gx");
    expect_close(gg, numeric_grad(gd, L), 5e-5, 1e-4, "ggamma");
    expect_close(gb, numeric_grad(bd, L), 5e-5, 1e-4, "gbeta");
  }
}

// Ranks r = 0..R-1 hold samples [r N/R, (r+1) N/R): their sync batch norm must give what one
// batch norm over all N gives: the same y rows and gx rows, the same statistics on every rank, and
// parameter-gradient terms that add up to the whole batch's.
TEST_F(SyncBatchNorm, RanksHoldingPartsOfABatchReproduceTheWholeBatch) {
  for (int trial = 0; trial < 6; ++trial) {
    const int R = trial % 3 == 2 ? 3 : 2;
    const int Nr = size(1, 9), N = Nr * R, C = size(1, 9), S = trial % 2 ? size(1, 9) : 1;
    if (Nr * S < 1) continue;
    SCOPED_TRACE(cat("R=", R, " N=", N, " C=", C, " S=", S));
    const size_t n = static_cast<size_t>(N) * C * S, nr = n / R;
    VecF x = randv(n, -1, 1);
    for (auto& v : x) v = 3.f + 2.f * v;  // a large mean
    const VecF gamma = randv(C, 0.5f, 1.5f), beta = randv(C, -1, 1), gy = randv(n, -1, 1);
    VecF y(n), m(C), is(C), rm(C, 0.f), rv(C, 1.f), gx(n), gg(C, 0.f), gb(C, 0.f);
    be_->batchnorm_forward_train(N, C, S, 1e-5f, 0.1f, x.data(), gamma.data(), beta.data(), y.data(), m.data(),
                                 is.data(), rm.data(), rv.data());
    be_->batchnorm_backward(N, C, S, x.data(), gamma.data(), m.data(), is.data(), gy.data(), gx.data(), gg.data(),
                            gb.data());
    ThreadGroup group(R);
    std::vector<VecF> ry(R, VecF(nr)), rmn(R, VecF(C)), ris(R, VecF(C)), rrm(R, VecF(C, 0.f)), rrv(R, VecF(C, 1.f)),
        rgx(R, VecF(nr)), rgg(R, VecF(C, 0.f)), rgb(R, VecF(C, 0.f));
    std::vector<std::thread> threads;
    for (int r = 0; r < R; ++r)
      threads.emplace_back([&, r] {
        auto be = make_cpu_backend();
        ThreadReduce red(group, r);
        const float* xr = x.data() + r * nr;
        be->batchnorm_forward_train_sync(Nr, C, S, 1e-5f, 0.1f, xr, gamma.data(), beta.data(), ry[r].data(),
                                         rmn[r].data(), ris[r].data(), rrm[r].data(), rrv[r].data(), red);
        be->batchnorm_backward_sync(Nr, C, S, xr, gamma.data(), rmn[r].data(), ris[r].data(), gy.data() + r * nr,
                                    rgx[r].data(), rgg[r].data(), rgb[r].data(), red);
      });
    for (auto& t : threads) t.join();
    VecF gg_sum(C, 0.f), gb_sum(C, 0.f);
    for (int r = 0; r < R; ++r) {
      SCOPED_TRACE(cat("rank ", r));
      expect_close(ry[r], VecD(y.begin() + r * nr, y.begin() + (r + 1) * nr), 1e-5, 1e-5, "y");
      expect_close(rgx[r], VecD(gx.begin() + r * nr, gx.begin() + (r + 1) * nr), 1e-5, 1e-5, "gx");
      expect_close(rmn[r], to_d(m), 1e-6, 1e-6, "save_mean");
      expect_close(ris[r], to_d(is), 1e-6, 1e-6, "save_invstd");
      expect_close(rrm[r], to_d(rm), 1e-6, 1e-6, "running mean");
      expect_close(rrv[r], to_d(rv), 1e-6, 1e-6, "running variance (unbiased over the global count)");
      for (int c = 0; c < C; ++c) gg_sum[c] += rgg[r][c], gb_sum[c] += rgb[r][c];
    }
    expect_close(gg_sum, to_d(gg), 1e-5, 1e-5, "ggamma summed over ranks");
    expect_close(gb_sum, to_d(gb), 1e-5, 1e-5, "gbeta summed over ranks");
  }
}

}  // namespace
}  // namespace cgan
