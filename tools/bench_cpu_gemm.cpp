// Times cblas_sgemm on the MNIST-MLP shapes for 1 and 2 OpenBLAS threads (used to choose the CPU
// backend's thread setting). Not part of the default build:
//   g++ -O2 -std=c++17 -I/usr/include/x86_64-linux-gnu tools/bench_cpu_gemm.cpp -lopenblas -o bench
#include <cblas.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

struct Shape {
  bool ta, tb;
  int M, N, K;
  const char* what;
};

int main() {
  const Shape shapes[] = {
      {false, false, 64, 128, 794, "D fwd   X[64,794] W[794,128]"},
      {true, false, 794, 128, 64, "D gW    X^T G"},
      {false, true, 64, 794, 128, "D gX    G W^T"},
      {false, false, 64, 784, 128, "G fwd   H[64,128] W[128,784]"},
      {true, false, 128, 784, 64, "G gW    H^T G"},
      {false, true, 64, 128, 784, "G gH    G W^T"},
  };
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int threads : {1, 2}) {
    openblas_set_num_threads(threads);
    for (const Shape& s : shapes) {
      std::vector<float> A(size_t(s.M) * s.K), B(size_t(s.K) * s.N), C(size_t(s.M) * s.N);
      for (auto& x : A) x = u(rng);
      for (auto& x : B) x = u(rng);
      auto run = [&] {
        cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.M, s.N, s.K,
                    1.f, A.data(), s.ta ? s.M : s.K, B.data(), s.tb ? s.K : s.N, 0.f, C.data(), s.N);
      };
      for (int i = 0; i < 20; ++i) run();
      const int reps = 400;
      double best = 1e9, total = 0;
      for (int i = 0; i < reps; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        run();
        double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, us);
        total += us;
      }
      std::printf("threads=%d %-32s best %7.1f us  mean %7.1f us\n", threads, s.what, best, total / reps);
    }
  }
}
