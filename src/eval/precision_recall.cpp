// Improved precision and recall; see include/cgan/eval/precision_recall.hpp.
#include "cgan/eval/precision_recall.hpp"

#include <algorithm>
#include <functional>

#include "cgan/backend/buffer.hpp"
#include "cgan/base/error.hpp"

namespace cgan {
namespace {

// Rows of a feature set shifted by `shift` (dim values), and their squared norms, in double.
struct Centered {
  std::vector<float> x;
  std::vector<double> norm_sq;
};
Centered center(const float* f, int64_t n, int dim, const std::vector<double>& shift) {
  Centered c;
  c.x.resize(static_cast<size_t>(n) * dim);
  c.norm_sq.assign(static_cast<size_t>(n), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    double s = 0;
    for (int i = 0; i < dim; ++i) {
      const float v = static_cast<float>(static_cast<double>(f[r * dim + i]) - shift[static_cast<size_t>(i)]);
      c.x[static_cast<size_t>(r * dim + i)] = v;
      s += static_cast<double>(v) * v;
    }
    c.norm_sq[static_cast<size_t>(r)] = s;
  }
  return c;
}

std::vector<double> mean_of(const float* f, int64_t n, int dim) {
  std::vector<double> m(static_cast<size_t>(dim), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int i = 0; i < dim; ++i) m[static_cast<size_t>(i)] += f[r * dim + i];
  for (double& v : m) v /= static_cast<double>(std::max<int64_t>(n, 1));
  return m;
}

// One tile of squared distances between rows [i0, i0 + rows) of A and [j0, j0 + cols) of B.
struct Tile {
  int64_t i0 = 0, j0 = 0;
  int rows = 0, cols = 0;
  const float* dot = nullptr;  // rows x cols, A_i . B_j
  const double *na = nullptr, *nb = nullptr;
  double d2(int i, int j) const {  // i, j relative to the tile
    const double v = na[i0 + i] + nb[j0 + j] - 2.0 * static_cast<double>(dot[static_cast<size_t>(i) * cols + j]);
    return v > 0.0 ? v : 0.0;
  }
};

// Visits the tiles of the pairwise squared distances of A (na rows) and B (nb rows), both centred
// alike; B == A (same object) visits only the tiles on and above the diagonal.
void for_each_tile(Backend& be, const Centered& A, int64_t na, const Centered& B, int64_t nb, int dim,
                   const std::function<void(const Tile&)>& visit) {
  const bool same = &A == &B;
  struct Buffers {
    Buffer<float> a, b, c;
  } buf;
  buf.a = Buffer<float>(be, A.x.size());
  be.upload(buf.a, A.x.data(), A.x.size());
  if (!same) {
    buf.b = Buffer<float>(be, B.x.size());
    be.upload(buf.b, B.x.data(), B.x.size());
  }
  const float* dev_b = same ? buf.a.get() : buf.b.get();
  const int T = kPairTile;
  const int64_t tile_rows = std::min<int64_t>(T, na), tile_cols = std::min<int64_t>(T, nb);
  buf.c = Buffer<float>(be, static_cast<size_t>(tile_rows * tile_cols));
  std::vector<float> host(static_cast<size_t>(tile_rows * tile_cols));
  for (int64_t i0 = 0; i0 < na; i0 += T) {
    const int rows = static_cast<int>(std::min<int64_t>(T, na - i0));
    for (int64_t j0 = same ? i0 : 0; j0 < nb; j0 += T) {
      const int cols = static_cast<int>(std::min<int64_t>(T, nb - j0));
      be.gemm(false, true, rows, cols, dim, 1.f, buf.a + i0 * dim, dev_b + j0 * dim, 0.f, buf.c);
      be.download(host.data(), buf.c, static_cast<size_t>(rows) * cols);
      Tile t;
      t.i0 = i0, t.j0 = j0, t.rows = rows, t.cols = cols;
      t.dot = host.data();
      t.na = A.norm_sq.data(), t.nb = B.norm_sq.data();
      visit(t);
    }
  }
}

// Keeps the k smallest values seen (sorted ascending, k <= 8).
struct SmallestK {
  double v[8];
  int k = 0, have = 0;
  void push(double x) {
    if (have == k && x >= v[k - 1]) return;
    int p = have < k ? have++ : k - 1;
    while (p > 0 && v[p - 1] > x) {
      v[p] = v[p - 1];
      --p;
    }
    v[p] = x;
  }
};

void check_set(const float* f, int64_t n, int dim, const char* what) {
  CGAN_CHECK(f != nullptr && n >= 1 && dim >= 1, "precision/recall: empty ", what, " set (", n, " x ", dim, ")");
  CGAN_CHECK(n <= (int64_t(1) << 31) / std::max(dim, 1), "precision/recall: ", what, " set of ", n, " x ", dim,
             " is too large");
}

}  // namespace

std::vector<double> knn_radii_sq(Backend& be, const float* f, int64_t n, int dim, int k) {
  check_set(f, n, dim, "feature");
  CGAN_CHECK(n >= 2, "precision/recall: k-NN radii need at least 2 points, got ", n);
  CGAN_CHECK(k >= 1 && k <= 8, "precision/recall: k must be in 1..8, got ", k);
  k = static_cast<int>(std::min<int64_t>(k, n - 1));
  const Centered c = center(f, n, dim, mean_of(f, n, dim));
  std::vector<SmallestK> best(static_cast<size_t>(n));
  for (SmallestK& b : best) b.k = k;
  for_each_tile(be, c, n, c, n, dim, [&](const Tile& t) {
    for (int i = 0; i < t.rows; ++i) {
      const int64_t gi = t.i0 + i;
      for (int j = 0; j < t.cols; ++j) {
        const int64_t gj = t.j0 + j;
        if (gj <= gi) continue;  // each pair once (the diagonal tile's lower half mirrors the upper)
        const double d = t.d2(i, j);
        best[static_cast<size_t>(gi)].push(d);
        best[static_cast<size_t>(gj)].push(d);
      }
    }
  });
  std::vector<double> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = best[static_cast<size_t>(i)].v[k - 1];
  return r;
}

PrecisionRecall precision_recall(Backend& be, const float* real, const std::vector<double>& real_radii_sq,
                                 int64_t n_real, const float* gen, const std::vector<double>& gen_radii_sq,
                                 int64_t n_gen, int dim) {
  check_set(real, n_real, dim, "real");
  check_set(gen, n_gen, dim, "generated");
  CGAN_CHECK(real_radii_sq.size() == static_cast<size_t>(n_real) && gen_radii_sq.size() == static_cast<size_t>(n_gen),
             "precision/recall: radii for ", real_radii_sq.size(), " real and ", gen_radii_sq.size(),
             " generated points, sets of ", n_real, " and ", n_gen);
  const std::vector<double> shift = mean_of(real, n_real, dim);
  const Centered R = center(real, n_real, dim, shift), G = center(gen, n_gen, dim, shift);
  std::vector<char> gen_in(static_cast<size_t>(n_gen), 0), real_in(static_cast<size_t>(n_real), 0);
  for_each_tile(be, R, n_real, G, n_gen, dim, [&](const Tile& t) {
    for (int i = 0; i < t.rows; ++i) {
      const int64_t gi = t.i0 + i;
      const double rr = real_radii_sq[static_cast<size_t>(gi)];
      char& ri = real_in[static_cast<size_t>(gi)];
      for (int j = 0; j < t.cols; ++j) {
        const int64_t gj = t.j0 + j;
        const double d = t.d2(i, j);
        if (d <= rr) gen_in[static_cast<size_t>(gj)] = 1;
        if (d <= gen_radii_sq[static_cast<size_t>(gj)]) ri = 1;
      }
    }
  });
  PrecisionRecall pr;
  pr.precision = static_cast<double>(std::count(gen_in.begin(), gen_in.end(), 1)) / static_cast<double>(n_gen);
  pr.recall = static_cast<double>(std::count(real_in.begin(), real_in.end(), 1)) / static_cast<double>(n_real);
  return pr;
}

PrecisionRecall precision_recall(Backend& be, const float* real, int64_t n_real, const float* gen, int64_t n_gen,
                                 int dim, int k) {
  const std::vector<double> rr = knn_radii_sq(be, real, n_real, dim, k);
  const std::vector<double> rg = knn_radii_sq(be, gen, n_gen, dim, k);
  return precision_recall(be, real, rr, n_real, gen, rg, n_gen, dim);
}

}  // namespace cgan
