// Helpers shared by the CUDA parity tests (test_cuda_ops.cpp, test_cuda_conv.cpp) and the CUDA
// training tests: the seed (CGAN_TEST_SEED=<n> replays one; it is printed with every failure), the
// skip without a usable GPU, the same array on both backends (Twin, TwinInt) or on one (buf(), a Buffer),
// comparisons of CPU results (the reference) with GPU results (within / close / identical), and
// CudaParityTest, the fixture base that holds both backends and a seeded generator of inputs.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iomanip>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/buffer.hpp"
#include "cuda_backend.hpp"
#include "test_util.hpp"

// Skips the current test, saying why, when no usable GPU is present (cuda_available()).
#define CGAN_SKIP_WITHOUT_GPU()                                                    \
  do {                                                                             \
    std::string why_;                                                              \
    if (!::cgan::cuda_available(&why_)) GTEST_SKIP() << "no usable GPU: " << why_; \
  } while (0)

namespace cgan {
namespace cudatest {

using Floats = std::vector<float>;
using Ints = std::vector<int32_t>;

// The run's seed: CGAN_TEST_SEED when set, otherwise drawn once from std::random_device.
inline uint64_t base_seed() {
  static const uint64_t seed = []() -> uint64_t {
    if (const char* e = std::getenv("CGAN_TEST_SEED")) return std::strtoull(e, nullptr, 10);
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  return seed;
}

// Backend memory of n floats (at least 1, so a zero-size workspace is still a valid pointer).
inline Buffer<float> buf(Backend& be, size_t n) { return Buffer<float>(be, std::max<size_t>(n, 1)); }

// The same array on both backends: T = float (Twin) or int32_t (TwinInt).
template <typename T>
struct TwinOf {
  Backend* cb;
  Backend* gb;
  size_t n;
  T* c;
  T* g;
  TwinOf(Backend& cpu, Backend& gpu, const std::vector<T>& h)
      : cb(&cpu), gb(&gpu), n(h.size()), c(alloc(cpu, n)), g(alloc(gpu, n)) {
    upload(cpu, c, h);
    upload(gpu, g, h);
  }
  ~TwinOf() {
    cb->free(c);
    gb->free(g);
  }
  TwinOf(const TwinOf&) = delete;
  TwinOf& operator=(const TwinOf&) = delete;
  std::vector<T> on_cpu() const { return download(*cb, c); }
  std::vector<T> on_gpu() const { return download(*gb, g); }

 private:
  static T* alloc(Backend& be, size_t n) {
    if constexpr (std::is_same_v<T, float>)
      return be.alloc(n);
    else
      return be.alloc_int(n);
  }
  void upload(Backend& be, T* p, const std::vector<T>& h) const {
    if constexpr (std::is_same_v<T, float>)
      be.upload(p, h.data(), n);
    else
      be.upload_int(p, h.data(), n);
  }
  std::vector<T> download(Backend& be, const T* p) const {
    std::vector<T> v(n);
    if constexpr (std::is_same_v<T, float>)
      be.download(v.data(), p, n);
    else
      be.download_int(v.data(), p, n);
    return v;
  }
};
using Twin = TwinOf<float>;
using TwinInt = TwinOf<int32_t>;

// |gpu - cpu| <= tol[i] everywhere (NaN and infinities must match exactly).
inline ::testing::AssertionResult within(const Floats& cpu, const Floats& gpu, const std::vector<double>& tol,
                                         const std::string& what) {
  if (cpu.size() != gpu.size())
    return ::testing::AssertionFailure() << what << ": sizes differ " << cpu.size() << " vs " << gpu.size();
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const float r = cpu[i], g = gpu[i];
    bool ok;
    if (std::isnan(r) || std::isnan(g))
      ok = std::isnan(r) && std::isnan(g);
    else if (std::isinf(r) || std::isinf(g))
      ok = r == g;
    else {
      const double err = std::fabs(static_cast<double>(r) - g);
      ok = err <= tol[i];
      if (!ok) worst = std::max(worst, err / tol[i]);
    }
    if (!ok && bad++ == 0) first = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os << std::setprecision(9) << what << ": " << bad << " of " << cpu.size() << " elements differ (worst at " << worst
     << "x the tolerance); first [" << first << "]: cpu " << cpu[first] << ", gpu " << gpu[first] << ", tolerance "
     << tol[first] << " (CGAN_TEST_SEED=" << base_seed() << ")";
  return ::testing::AssertionFailure() << os.str();
}

// within() with tolerance atol + rtol * |cpu|.
inline ::testing::AssertionResult close(const Floats& cpu, const Floats& gpu, double atol, double rtol,
                                        const std::string& what) {
  std::vector<double> tol(cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) tol[i] = atol + rtol * std::fabs(cpu[i]);
  return within(cpu, gpu, tol, what);
}

// Bit for bit (floats compared by their bytes); a failure names the first difference as
// "<a> vs <b>", in argument order.
template <typename T>
::testing::AssertionResult identical(const std::vector<T>& a, const std::vector<T>& b, const std::string& what) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0)
      return ::testing::AssertionFailure()
             << std::setprecision(9) << what << ": first difference at [" << i << "]: " << a[i] << " vs " << b[i]
             << " (CGAN_TEST_SEED=" << base_seed() << ")";
  return ::testing::AssertionSuccess();
}

// "2x3x4": dimensions for failure messages.
inline std::string shape(std::initializer_list<long long> dims) {
  std::string s;
  for (long long d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

// Fixture base: skips without a usable GPU; otherwise a CPU backend (the reference), a CUDA backend
// in fp32 precision (under test; tests of tf32 make their own) and a generator seeded from base_seed() and the test's name.
class CudaParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CGAN_SKIP_WITHOUT_GPU();
    cpu_ = make_cpu_backend();
    gpu_ = make_cuda_backend(false);  // fp32: the parity tests hold fp32 tolerances
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    rng_.seed(base_seed() ^ std::hash<std::string>{}(info->name()));
  }

  Backend& cpu() { return *cpu_; }
  Backend& gpu() { return *gpu_; }

  Floats normal(size_t n, float mean = 0.f, float stddev = 1.f) {
    return testutil::normal_values(rng_, n, mean, stddev);
  }
  Floats uniform(size_t n, float lo, float hi) { return testutil::uniform_values(rng_, n, lo, hi); }
  Ints ints(size_t n, int32_t lo, int32_t hi) { return testutil::int_values(rng_, n, lo, hi); }  // inclusive
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }          // inclusive

 public:  // normal() and uniform() for helpers outside the fixture
  Floats normal_(size_t n, float mean = 0.f, float stddev = 1.f) { return normal(n, mean, stddev); }
  Floats uniform_(size_t n, float lo, float hi) { return uniform(n, lo, hi); }

 protected:
  uint64_t u64() { return rng_(); }

  std::unique_ptr<Backend> cpu_, gpu_;
  std::mt19937_64 rng_;
};

}  // namespace cudatest
}  // namespace cgan
