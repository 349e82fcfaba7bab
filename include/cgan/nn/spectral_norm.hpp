// Spectral normalization of a layer's weight (Miyato et al. 2018), exactly as PyTorch's
// torch.nn.utils.spectral_norm with one power iteration and eps = 1e-12:
//
//   W: the weight as a matrix [rows, cols] (linear: [out, in]; conv2d: [K, C*R*S]);
//   u [rows], v [cols]: unit vectors kept as state (checkpoints: <net>.<i>.weight_u, .weight_v),
//   initialised to normalize(N(0, 1) draws) from Philox;
//   training forward:   v = normalize(W^T u), u = normalize(W v)   (u, v updated in place)
//   every forward:      sigma = u^T W v,  W_sn = W / sigma          (evaluation: the stored u, v)
//   backward (u, v constants, as PyTorch's autograd sees them), G = dL/dW_sn:
//                       dL/dW = (G - <G, W_sn> u v^T) / sigma
// with normalize(x) = x / max(||x||, eps). The layer's trained parameter is W itself
// (<net>.<i>.weight_orig); W_sn is recomputed in each forward into a buffer the layer then uses
// instead of W. Everything stays in backend memory (sigma too): no host round trip, so the ops can
// be captured in a CUDA graph. The matrix-vector products and <G, W_sn> go through Backend::gemm;
// the normalisation, the scaling and the gradient's rank-one correction are the Backend's
// spectral_norm_* ops (CPU: src/cpu/cpu_spectral_norm.cpp, CUDA: cuda/spectral_norm.cu).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/buffer.hpp"

namespace cgan {

constexpr float kSpectralNormEps = 1e-12f;

// W as PyTorch normalises it, and how the engine stores it.
struct SpectralNormShape {
  int rows = 0, cols = 0;   // W [rows, cols]: u has rows entries, v cols
  bool transposed = false;  // stored as W^T ([cols, rows] row-major: a linear layer's [in, out])
  size_t count() const { return static_cast<size_t>(rows) * static_cast<size_t>(cols); }
};

// Backend memory one spectrally normalised layer allocates (floats): W_sn, the gradient buffer G,
// one vector of max(rows, cols), sigma and <G, W_sn>, each slice on a 256-byte boundary.
// plan_model_memory counts it with this function.
uint64_t spectral_norm_buffer_floats(const SpectralNormShape& s);

class SpectralNorm {
 public:
  SpectralNorm(Backend& be, const SpectralNormShape& s);
  ~SpectralNorm();
  SpectralNorm(const SpectralNorm&) = delete;
  SpectralNorm& operator=(const SpectralNorm&) = delete;

  const SpectralNormShape& shape() const { return shape_; }

  // u and v initialised as PyTorch does (normalised N(0, 1) draws; Philox here: element i of u is
  // philox_normal(seed, stream_u, i), of v philox_normal(seed, stream_v, i)), on the host.
  static void init_vector(float* host, int n, uint64_t seed, uint64_t stream);

  // W_sn of weight w (the engine's layout) into weight_sn(); train: one power iteration first,
  // updating u and v. Returns weight_sn().
  const float* forward(const float* w, float* u, float* v, bool train);
  // The normalised weight of the last forward (the engine's layout), and its sigma (one float).
  const float* weight_sn() const { return w_sn_; }
  const float* sigma() const { return sigma_; }
  // A buffer of count() floats for G = dL/dW_sn (the engine's layout): the layer's backward writes
  // (or, zeroed first, accumulates) its weight gradient here, then calls backward().
  float* grad_sn() const { return g_; }
  // grad_w += (G - <G, W_sn> u v^T) / sigma with the u, v and sigma of the last forward.
  void backward(const float* u, const float* v, float* grad_w);

 private:
  // y = W x (x [cols] -> y [rows]) or W^T x (x [rows] -> y [cols]), for either storage
  void matvec(const float* w, bool transpose_w, const float* x, float* y);
  Backend& be_;
  SpectralNormShape shape_;
  Buffer<float> buf_;
  float *w_sn_ = nullptr, *g_ = nullptr, *t_ = nullptr, *sigma_ = nullptr, *dot_ = nullptr;
};

}  // namespace cgan
