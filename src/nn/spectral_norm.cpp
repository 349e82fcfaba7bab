// Spectral normalization of a layer's weight; see include/cgan/nn/spectral_norm.hpp.
#include "cgan/nn/spectral_norm.hpp"

#include <algorithm>
#include <cmath>

#include "cgan/base/error.hpp"
#include "cgan/base/philox.hpp"

namespace cgan {

namespace {
constexpr uint64_t kAlignFloats = 64;  // 256 bytes, as the model's slices
uint64_t aligned(uint64_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }
}  // namespace

uint64_t spectral_norm_buffer_floats(const SpectralNormShape& s) {
  const uint64_t n = static_cast<uint64_t>(s.rows) * static_cast<uint64_t>(s.cols);
  return 2 * aligned(n) + aligned(static_cast<uint64_t>(std::max(s.rows, s.cols))) + 2 * kAlignFloats;
}

SpectralNorm::SpectralNorm(Backend& be, const SpectralNormShape& s) : be_(be), shape_(s) {
  CGAN_CHECK(s.rows > 0 && s.cols > 0, "spectral norm: bad weight shape ", s.rows, "x", s.cols);
  buf_ = Buffer<float>(be_, spectral_norm_buffer_floats(s));
  float* cur = buf_;
  auto take = [&](uint64_t n) {
    float* p = cur;
    cur += aligned(n);
    return p;
  };
  w_sn_ = take(s.count());
  g_ = take(s.count());
  t_ = take(static_cast<uint64_t>(std::max(s.rows, s.cols)));
  sigma_ = take(1);
  dot_ = take(1);
}

SpectralNorm::~SpectralNorm() = default;

void SpectralNorm::init_vector(float* host, int n, uint64_t seed, uint64_t stream) {
  double ss = 0;
  for (int i = 0; i < n; ++i) {
    host[i] = philox_normal(seed, stream, static_cast<uint64_t>(i));
    ss += static_cast<double>(host[i]) * host[i];
  }
  const float denom = std::max(static_cast<float>(std::sqrt(ss)), kSpectralNormEps);
  for (int i = 0; i < n; ++i) host[i] /= denom;
}

void SpectralNorm::matvec(const float* w, bool transpose_w, const float* x, float* y) {
  // the stored matrix M [m, n]: W, or W^T when the layer keeps the transpose
  const int m = shape_.transposed ? shape_.cols : shape_.rows;
  const int n = shape_.transposed ? shape_.rows : shape_.cols;
  if (transpose_w != shape_.transposed)
    be_.gemm(false, false, 1, n, m, 1.f, x, w, 0.f, y);  // y[n] = M^T x[m]
  else
    be_.gemm(false, true, 1, m, n, 1.f, x, w, 0.f, y);  // y[m] = M x[n]
}

const float* SpectralNorm::forward(const float* w, float* u, float* v, bool train) {
  if (train) {  // PyTorch's order: v from u, then u from the new v
    matvec(w, true, u, t_);
    be_.spectral_norm_vec(shape_.cols, t_, true, kSpectralNormEps, v, nullptr);
    matvec(w, false, v, t_);
    be_.spectral_norm_vec(shape_.rows, t_, true, kSpectralNormEps, u, sigma_);
  } else {
    matvec(w, false, v, t_);
    be_.spectral_norm_vec(shape_.rows, t_, false, kSpectralNormEps, u, sigma_);
  }
  be_.spectral_norm_scale(shape_.count(), w, sigma_, w_sn_);
  return w_sn_;
}

void SpectralNorm::backward(const float* u, const float* v, float* grad_w) {
  const int count = static_cast<int>(shape_.count());
  be_.gemm(false, true, 1, 1, count, 1.f, g_, w_sn_, 0.f, dot_);  // <G, W_sn>
  // u v^T in the stored layout: rows of the stored matrix take u (W) or v (W^T)
  if (shape_.transposed)
    be_.spectral_norm_grad(shape_.cols, shape_.rows, g_, dot_, v, u, sigma_, grad_w);
  else
    be_.spectral_norm_grad(shape_.rows, shape_.cols, g_, dot_, u, v, sigma_, grad_w);
}

}  // namespace cgan
