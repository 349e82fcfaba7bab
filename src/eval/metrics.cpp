#include "cgan/eval/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "cgan/base/error.hpp"

extern "C" void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
                       const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
                       const int* ldc);
extern "C" void dsyev_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                       double* work, const int* lwork, int* info);

namespace cgan {
namespace {

// Eigen-decomposition of a symmetric matrix (row-major = column-major for symmetric input):
// on return `a` holds the eigenvectors (as columns in LAPACK's column-major view) and w the
// eigenvalues in ascending order.
void sym_eig(std::vector<double>& a, int n, std::vector<double>& w) {
  w.assign(static_cast<size_t>(n), 0.0);
  const char jobz = 'V', uplo = 'U';
  int info = 0, lwork = -1;
  double query = 0;
  dsyev_(&jobz, &uplo, &n, a.data(), &n, w.data(), &query, &lwork, &info);
  if (info != 0) throw Error(cat("dsyev workspace query failed (info ", info, ")"));
  lwork = std::max(1, static_cast<int>(query));
  std::vector<double> work(static_cast<size_t>(lwork));
  dsyev_(&jobz, &uplo, &n, a.data(), &n, w.data(), work.data(), &lwork, &info);
  if (info != 0) throw Error(cat("dsyev did not converge (info ", info, ")"));
}

// Symmetric square root V diag(sqrt(max(w,0))) V^T of a symmetric PSD matrix (row-major).
std::vector<double> sym_sqrt(std::vector<double> a, int n) {
  std::vector<double> w;
  sym_eig(a, n, w);  // column k of V (column-major) = a[k*n + i], i = row
  std::vector<double> out(static_cast<size_t>(n) * n, 0.0);
  for (int k = 0; k < n; ++k) {
    const double s = std::sqrt(std::max(w[k], 0.0));
    if (s == 0.0) continue;
    const double* v = &a[static_cast<size_t>(k) * n];
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) out[static_cast<size_t>(i) * n + j] += s * v[i] * v[j];
  }
  return out;
}

}  // namespace

GaussianStats gaussian_stats(const float* f, int64_t n, int dim) {
  CGAN_CHECK(n >= 2 && dim >= 1, "gaussian_stats: need at least 2 vectors of width >= 1, got ", n, " x ", dim);
  GaussianStats g;
  g.dim = dim;
  g.count = n;
  g.mean.assign(static_cast<size_t>(dim), 0.0);
  g.cov.assign(static_cast<size_t>(dim) * dim, 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int i = 0; i < dim; ++i) g.mean[i] += f[r * dim + i];
  for (double& m : g.mean) m /= static_cast<double>(n);
  std::vector<double> c(static_cast<size_t>(dim));
  for (int64_t r = 0; r < n; ++r) {
    for (int i = 0; i < dim; ++i) c[i] = f[r * dim + i] - g.mean[i];
    for (int i = 0; i < dim; ++i)
      for (int j = i; j < dim; ++j) g.cov[static_cast<size_t>(i) * dim + j] += c[i] * c[j];
  }
  for (int i = 0; i < dim; ++i)
    for (int j = i; j < dim; ++j) {
      const double v = g.cov[static_cast<size_t>(i) * dim + j] / static_cast<double>(n - 1);
      g.cov[static_cast<size_t>(i) * dim + j] = g.cov[static_cast<size_t>(j) * dim + i] = v;
    }
  return g;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  if (a.dim != b.dim || a.dim <= 0)
    throw Error(cat("frechet_distance: feature widths differ (", a.dim, " vs ", b.dim, ")"));
  const int n = a.dim;
  double d2 = 0;
  for (int i = 0; i < n; ++i) d2 += (a.mean[i] - b.mean[i]) * (a.mean[i] - b.mean[i]);
  double tr = 0;
  for (int i = 0; i < n; ++i) tr += a.cov[static_cast<size_t>(i) * n + i] + b.cov[static_cast<size_t>(i) * n + i];
  // M = S1^1/2 S2 S1^1/2 is symmetric PSD; tr(M^1/2) = sum of sqrt of its eigenvalues
  const std::vector<double> r = sym_sqrt(a.cov, n);
  std::vector<double> t(static_cast<size_t>(n) * n, 0.0), m(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      const double rik = r[static_cast<size_t>(i) * n + k];
      if (rik == 0.0) continue;
      for (int j = 0; j < n; ++j) t[static_cast<size_t>(i) * n + j] += rik * b.cov[static_cast<size_t>(k) * n + j];
    }
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      const double tik = t[static_cast<size_t>(i) * n + k];
      for (int j = 0; j < n; ++j) m[static_cast<size_t>(i) * n + j] += tik * r[static_cast<size_t>(k) * n + j];
    }
  for (int i = 0; i < n; ++i)  // symmetrise away rounding before the eigensolver
    for (int j = i + 1; j < n; ++j) {
      const double s = 0.5 * (m[static_cast<size_t>(i) * n + j] + m[static_cast<size_t>(j) * n + i]);
      m[static_cast<size_t>(i) * n + j] = m[static_cast<size_t>(j) * n + i] = s;
    }
  std::vector<double> w;
  sym_eig(m, n, w);
  double tr_sqrt = 0;
  for (double x : w) tr_sqrt += std::sqrt(std::max(x, 0.0));
  return std::max(0.0, d2 + tr - 2.0 * tr_sqrt);
}

KidResult kernel_inception_distance(const float* x, int64_t nx, const float* y, int64_t ny, int dim, int subsets,
                                    int64_t subset_size, uint64_t seed) {
  const int64_t m64 = std::min({subset_size, nx, ny});
  CGAN_CHECK(m64 >= 2 && dim >= 1 && subsets >= 1,
             "kernel_inception_distance: need subsets of at least 2 vectors "
             "of width >= 1, got ",
             nx, " and ", ny, " x ", dim, " (subset size ", subset_size, ")");
  CGAN_CHECK(m64 <= (int64_t(1) << 20), "kernel_inception_distance: subset size ", m64, " too large");
  const int m = static_cast<int>(m64);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> ix(static_cast<size_t>(nx)), iy(static_cast<size_t>(ny));
  std::vector<double> a(static_cast<size_t>(m) * dim), b(static_cast<size_t>(m) * dim), k(static_cast<size_t>(m) * m);
  // the first m of a fresh random permutation (partial Fisher-Yates), copied out as double rows
  auto draw = [&](std::vector<int64_t>& idx, const float* f, std::vector<double>& out) {
    std::iota(idx.begin(), idx.end(), int64_t(0));
    for (int i = 0; i < m; ++i) {
      std::uniform_int_distribution<int64_t> u(i, static_cast<int64_t>(idx.size()) - 1);
      std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(u(rng))]);
      const float* row = f + idx[static_cast<size_t>(i)] * dim;
      std::copy(row, row + dim, out.begin() + static_cast<ptrdiff_t>(i) * dim);
    }
  };
  // sum of (u·v / dim + 1)^3 over the m x m dot products of rows of p and q (without the
  // diagonal when `off_diagonal`), the dot products through BLAS: K = P Q^T
  auto kernel_sum = [&](const std::vector<double>& p, const std::vector<double>& q, bool off_diagonal) {
    const char tn = 'T', nn = 'N';
    const double one = 1.0, zero = 0.0;
    dgemm_(&tn, &nn, &m, &m, &dim, &one, q.data(), &dim, p.data(), &dim, &zero, k.data(), &m);
    double s = 0;
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < m; ++j) {
        if (off_diagonal && i == j) continue;
        const double t = k[static_cast<size_t>(i) * m + j] / dim + 1.0;
        s += t * t * t;
      }
    return s;
  };
  std::vector<double> mmd;
  const double mm = static_cast<double>(m);
  for (int s = 0; s < subsets; ++s) {
    draw(ix, x, a);
    draw(iy, y, b);
    const double kxx = kernel_sum(a, a, true), kyy = kernel_sum(b, b, true), kxy = kernel_sum(a, b, false);
    mmd.push_back((kxx + kyy) / (mm * (mm - 1)) - 2.0 * kxy / (mm * mm));
  }
  KidResult r;
  r.subsets = subsets;
  r.subset_size = m;
  for (double v : mmd) r.mean += v / subsets;
  double var = 0;
  for (double v : mmd) var += (v - r.mean) * (v - r.mean) / subsets;
  r.std = std::sqrt(var);
  return r;
}

double mean_pairwise_distance(const float* f, int64_t n, int dim) {
  if (n < 2) return 0.0;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double s = 0;
      for (int k = 0; k < dim; ++k) {
        const double d = static_cast<double>(f[i * dim + k]) - f[j * dim + k];
        s += d * d;
      }
      sum += std::sqrt(s);
    }
  return sum / (static_cast<double>(n) * static_cast<double>(n - 1) / 2.0);
}

}  // namespace cgan
