// CUDA parity of the data-parallel additions (cgan/train/distributed.hpp): synchronized batch norm
// (Backend::batchnorm_*_sync) and dropout at a sample offset, against the CPU backend on random
// inputs, odd sizes and the real model sizes. The cross-rank sum is the single-rank one here
// (NCCL between GPUs is exercised by the 2-rank runs in tests/e2e/test_distributed.cpp on a
// machine with several GPUs); and a "mirror" reducer that multiplies by 2 (two ranks holding the
// same batch), staged through the host, so that the global count and the running variance's
// unbiased count are exercised too. Skipped without a GPU.
#include <cuda_runtime.h>

#include <cstring>

#include "cgan/train/distributed.hpp"
#include "cuda_test_util.hpp"

namespace cgan {
namespace cudatest {
namespace {

// Two ranks holding identical batches: every sum doubles (host round trip; not capturable).
class MirrorReduce final : public RankReduce {
 public:
  explicit MirrorReduce(Backend& be) : be_(be) {}
  int ranks() const override { return 2; }
  void sum(float* x, size_t n) override {
    Floats h(n);
    be_.download(h.data(), x, n);
    for (auto& v : h) v *= 2.f;
    be_.upload(x, h.data(), n);
  }
  void sum(double* x, size_t n) override {  // doubles as pairs of floats would not double: go through bytes
    std::vector<double> h(n);
    be_.synchronize();
    copy_bytes(h.data(), x, n * sizeof(double), true);
    for (auto& v : h) v *= 2.0;
    copy_bytes(x, h.data(), n * sizeof(double), false);
  }
  void mean(float*, size_t) override {}

 private:
  void copy_bytes(void* dst, const void* src, size_t bytes, bool to_host) {
    if (be_.name() == "cpu") {
      std::memcpy(dst, src, bytes);
      return;
    }
    ASSERT_EQ(cudaMemcpy(dst, src, bytes, to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice), cudaSuccess);
  }
  Backend& be_;
};

class CudaDistributed : public CudaParityTest {};

TEST_F(CudaDistributed, SyncBatchNormMatchesTheCpu) {
  // odd sizes, conv maps, and the real models' batch norms: mnist_lsgan_embed's G (dense 256, 512,
  // 1024 at a rank's batch of 8 or 32), anime_conv's (maps of 512..64 channels)
  const int shapes[][3] = {{2, 1, 1},  {3, 3, 1},    {8, 256, 1},  {32, 1024, 1}, {257, 7, 1},
                           {3, 33, 7}, {16, 3, 257}, {4, 512, 36}, {8, 64, 2304}, {1, 5, 3}};
  for (const auto& s : shapes)
    for (int mirror = 0; mirror < 2; ++mirror) {
      const int N = s[0], C = s[1], S = s[2];
      const size_t n = static_cast<size_t>(N) * C * S, c = static_cast<size_t>(C);
      const std::string what = "batchnorm_sync " + shape({N, C, S}) + (mirror ? " mirror" : " single");
      MirrorReduce mc(cpu()), mg(gpu());
      RankReduce& rc = mirror ? static_cast<RankReduce&>(mc) : single_rank_reduce();
      RankReduce& rg = mirror ? static_cast<RankReduce&>(mg) : single_rank_reduce();
      Twin x(cpu(), gpu(), normal(n, 5.f, 2.f)), gamma(cpu(), gpu(), uniform(c, 0.5f, 1.5f)),
          beta(cpu(), gpu(), normal(c, 0.f, 0.5f)), y(cpu(), gpu(), Floats(n)), mean(cpu(), gpu(), Floats(c)),
          invstd(cpu(), gpu(), Floats(c)), rm(cpu(), gpu(), normal(c)), rv(cpu(), gpu(), uniform(c, 0.5f, 2.f));
      cpu().batchnorm_forward_train_sync(N, C, S, 0.8f, 0.1f, x.c, gamma.c, beta.c, y.c, mean.c, invstd.c, rm.c, rv.c,
                                         rc, Act::leaky_relu, 0.2f);
      gpu().batchnorm_forward_train_sync(N, C, S, 0.8f, 0.1f, x.g, gamma.g, beta.g, y.g, mean.g, invstd.g, rm.g, rv.g,
                                         rg, Act::leaky_relu, 0.2f);
      EXPECT_TRUE(close(y.on_cpu(), y.on_gpu(), 2e-6, 2e-6, what + " y"));
      EXPECT_TRUE(close(mean.on_cpu(), mean.on_gpu(), 1e-6, 1e-6, what + " save_mean"));
      EXPECT_TRUE(close(invstd.on_cpu(), invstd.on_gpu(), 1e-6, 1e-6, what + " save_invstd"));
      EXPECT_TRUE(close(rm.on_cpu(), rm.on_gpu(), 1e-6, 1e-6, what + " run_mean"));
      EXPECT_TRUE(close(rv.on_cpu(), rv.on_gpu(), 1e-6, 1e-6, what + " run_var"));
      const Floats sm = mean.on_cpu(), si = invstd.on_cpu(), gg0 = normal(c), gb0 = normal(c);
      Twin sm2(cpu(), gpu(), sm), si2(cpu(), gpu(), si), gy(cpu(), gpu(), normal(n)), gx(cpu(), gpu(), Floats(n)),
          gg(cpu(), gpu(), gg0), gb(cpu(), gpu(), gb0);
      cpu().batchnorm_backward_sync(N, C, S, x.c, gamma.c, sm2.c, si2.c, gy.c, gx.c, gg.c, gb.c, rc);
      gpu().batchnorm_backward_sync(N, C, S, x.g, gamma.g, sm2.g, si2.g, gy.g, gx.g, gg.g, gb.g, rg);
      EXPECT_TRUE(close(gx.on_cpu(), gx.on_gpu(), 1e-5, 1e-5, what + " gx"));
      const double sum_tol = 1e-5 * std::sqrt(static_cast<double>(N) * S);
      EXPECT_TRUE(close(gg.on_cpu(), gg.on_gpu(), sum_tol, 1e-6, what + " ggamma"));
      EXPECT_TRUE(close(gb.on_cpu(), gb.on_gpu(), sum_tol, 1e-6, what + " gbeta"));
    }
}

// One rank: the sync ops are the plain ops, bit for bit, on the GPU too.
TEST_F(CudaDistributed, SyncBatchNormWithOneRankIsThePlainOp) {
  const int N = 33, C = 19, S = 5;
  const size_t n = static_cast<size_t>(N) * C * S, c = C;
  Floats xh = normal(n, 3.f, 1.f), gh = uniform(c, 0.5f, 1.5f), bh = normal(c), gyh = normal(n);
  Twin x(gpu(), gpu(), xh), gamma(gpu(), gpu(), gh), beta(gpu(), gpu(), bh), y(gpu(), gpu(), Floats(n)),
      m(gpu(), gpu(), Floats(c)), is(gpu(), gpu(), Floats(c)), gy(gpu(), gpu(), gyh), gx(gpu(), gpu(), Floats(n)),
      gg(gpu(), gpu(), Floats(c)), gb(gpu(), gpu(), Floats(c));
  gpu().batchnorm_forward_train(N, C, S, 1e-5f, 0.1f, x.c, gamma.c, beta.c, y.c, m.c, is.c, nullptr, nullptr);
  gpu().batchnorm_forward_train_sync(N, C, S, 1e-5f, 0.1f, x.g, gamma.g, beta.g, y.g, m.g, is.g, nullptr, nullptr,
                                     single_rank_reduce());
  EXPECT_TRUE(identical(y.on_cpu(), y.on_gpu(), "y"));
  gpu().batchnorm_backward(N, C, S, x.c, gamma.c, m.c, is.c, gy.c, gx.c, gg.c, gb.c);
  gpu().batchnorm_backward_sync(N, C, S, x.g, gamma.g, m.g, is.g, gy.g, gx.g, gg.g, gb.g, single_rank_reduce());
  EXPECT_TRUE(identical(gx.on_cpu(), gx.on_gpu(), "gx"));
  EXPECT_TRUE(identical(gg.on_cpu(), gg.on_gpu(), "ggamma"));
}

TEST_F(CudaDistributed, DropoutAtAnOffsetMatchesTheCpu) {
  for (size_t n : {size_t{1}, size_t{1001}, (size_t{1} << 20) + 3})
    for (uint64_t offset : {uint64_t{0}, uint64_t{8 * 512}, (uint64_t{1} << 33) + 7}) {
      const uint64_t seed = 17, stream = 12345;
      Twin x(cpu(), gpu(), normal(n)), mask(cpu(), gpu(), Floats(n, 5.f));
      cpu().dropout_forward(n, 0.4f, seed, stream, x.c, mask.c, offset);
      gpu().dropout_forward(n, 0.4f, seed, stream, x.g, mask.g, offset);
      const std::string what = "dropout n=" + std::to_string(n) + " offset=" + std::to_string(offset);
      EXPECT_TRUE(identical(mask.on_cpu(), mask.on_gpu(), what + " mask"));
      EXPECT_TRUE(identical(x.on_cpu(), x.on_gpu(), what + " x"));
    }
}

}  // namespace
}  // namespace cudatest
}  // namespace cgan
