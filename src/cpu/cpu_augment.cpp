// The CPU backend's DiffAugment ops: per sample, the draws (augment_draw), the sample mean the
// contrast needs (a double sum), then one pass over the output pixels (augment_pixel_forward); backward the same in
// reverse (the sum of the live output gradients, then one pass over the input pixels, augment_pixel_backward). The CUDA
// kernels (cuda/augment.cu) do the same per block with the same scalar functions.
#include "cpu_augment.hpp"

#include <cstddef>

namespace cgan {

void cpu_augment_forward(const AugmentSpec& a, int B, uint64_t seed, uint64_t stream, uint64_t offset, const float* x,
                         float* y, float* params) {
  const size_t HW = static_cast<size_t>(a.H) * a.W, n = HW * a.C;
  for (int b = 0; b < B; ++b) {
    const AugmentDraw d = augment_draw(a, seed, stream, offset + static_cast<uint64_t>(b));
    const float* xb = x + n * b;
    float* yb = y + n * b;
    float M = 0.f;
    if (a.color) {
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += xb[i];
      M = static_cast<float>(s / static_cast<double>(n));
    }
    augment_store(d, M, params + static_cast<size_t>(b) * kAugmentParams);
    for (int i = 0; i < a.H; ++i)
      for (int j = 0; j < a.W; ++j) augment_pixel_forward(a, d, M, xb, yb, i, j);
  }
}

void cpu_augment_backward(const AugmentSpec& a, int B, const float* params, const float* gy, float* gx) {
  const size_t HW = static_cast<size_t>(a.H) * a.W, n = HW * a.C;
  for (int b = 0; b < B; ++b) {
    const AugmentDraw d = augment_load(params + static_cast<size_t>(b) * kAugmentParams);
    const float* gyb = gy + n * b;
    float* gxb = gx + n * b;
    float gall = 0.f;  // the sum of dL/d(colour output) over the sample: the live output gradients
    if (a.color) {
      double s = 0;
      for (int i = 0; i < a.H; ++i)
        for (int j = 0; j < a.W; ++j)
          if (augment_live(a, d, i, j))
            for (int c = 0; c < a.C; ++c) s += gyb[c * HW + static_cast<size_t>(i) * a.W + j];
      gall = static_cast<float>(s);
    }
    for (int r = 0; r < a.H; ++r)
      for (int t = 0; t < a.W; ++t) augment_pixel_backward(a, d, gall, gyb, gxb, r, t);
  }
}

}  // namespace cgan
