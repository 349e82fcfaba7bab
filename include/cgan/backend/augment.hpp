// DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training",
// NeurIPS 2020): the same random colour, translation and cutout transforms applied to every image
// the discriminator sees, real and fake, differentiably, so that G's gradient flows back through
// them. The transforms follow the authors' DiffAugment_pytorch.py:
//   color:       brightness  x + (u - 0.5)                 (u ~ U(0,1) per sample)
//                saturation  (x - mean_c x) * 2u + mean_c x   (mean over the channels of a pixel)
//                contrast    (x - mean x) * (u + 0.5) + mean x (mean over the whole sample)
//   translation: shift by (tx, ty), |tx| <= int(H/8 + 0.5), |ty| <= int(W/8 + 0.5), uniform
//                integers, filling what enters from outside with the fill value
//   cutout:      one square (int(H/2 + 0.5) x int(W/2 + 0.5)) set to the fill value, its centre
//                drawn uniformly (it may reach over the border, as the reference's)
// always in that order (colour, translation, cutout; config.cpp refuses another order). Images are
// NCHW rows of [B, C*H*W], what the data and every model here use (a dense network sees the same
// C*H*W values flattened).
//
// The data range: the reference assumes images in [-1, 1], where the fill value 0 is mid-grey and
// the brightness shift of +-0.5 is a quarter of the range. For data in [lo, hi] the transforms are
// those of [-1, 1] carried over by the affine map between the ranges: fill = (lo + hi) / 2 and
// brightness (u - 0.5) * (hi - lo) / 2 (saturation and contrast are unchanged by affine maps). So
// augmenting [0, 1] data gives exactly the [-1, 1] result mapped back (tests/cpu/test_augment.cpp).
//
// Random draws: sample b's draws come from two Philox blocks of (seed, stream, index) with
// index = 2 * (offset + b) and 2 * (offset + b) + 1, seven of their eight words used (colour:
// brightness, saturation, contrast; spatial: tx, ty, cutout row, cutout column), whatever the
// policy: a sample's draws depend only on its index, not on the batch it is in nor on which
// transforms are on. The scalar functions below are shared verbatim by the CPU backend and the
// CUDA kernels (cuda/augment.cu).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cgan/base/hd.hpp"
#include "cgan/base/philox.hpp"

namespace cgan {

struct AugmentPolicy;  // cgan/config/config.hpp: train.augment

// One augmentation: the image shape, the transforms that are on and the data range.
struct AugmentSpec {
  int C = 1, H = 1, W = 1;
  bool color = false, translation = false, cutout = false;
  float translation_ratio = 0.125f;  // largest shift, as a fraction of the image size
  float cutout_ratio = 0.5f;         // cutout side, as a fraction of the image size
  float center = 0.f;                // fill value: (lo + hi) / 2 of the data range
  float half = 1.f;                  // (hi - lo) / 2: the brightness shift's scale
  bool any() const { return color || translation || cutout; }
  // the reference's int(size * ratio + 0.5), in double as Python computes it
  CGAN_HD int shift_h() const { return static_cast<int>(H * static_cast<double>(translation_ratio) + 0.5); }
  CGAN_HD int shift_w() const { return static_cast<int>(W * static_cast<double>(translation_ratio) + 0.5); }
  CGAN_HD int cut_h() const { return static_cast<int>(H * static_cast<double>(cutout_ratio) + 0.5); }
  CGAN_HD int cut_w() const { return static_cast<int>(W * static_cast<double>(cutout_ratio) + 0.5); }
};

// The spec of train.augment's policy for C x H x W images with values in [lo, hi] (src/backend/augment.cpp):
// center (lo + hi) / 2, half (hi - lo) / 2.
AugmentSpec make_augment_spec(const AugmentPolicy& p, int C, int H, int W, float lo, float hi);

// The per-sample record augment_forward writes (floats [B, kAugmentParams]) and augment_backward
// reads: brightness (already scaled by half), saturation, contrast, tx, ty, cutout first row and
// first column (integers, exact in float), and the sample's mean before the colour transform.
constexpr int kAugmentParams = 8;

// One sample's draws. An off transform has its identity values (0, 1, 1; shift 0; no cutout).
struct AugmentDraw {
  float brightness = 0.f, saturation = 1.f, contrast = 1.f;
  int tx = 0, ty = 0;          // out(i, j) = in(i + tx, j + ty) (rows, columns)
  int cut_r0 = 0, cut_c0 = 0;  // cutout rows [cut_r0, cut_r0 + cut_h), columns [cut_c0, cut_c0 + cut_w)
};

// Uniform integer in [0, n) from one word (as philox_below).
CGAN_HD int augment_below(uint32_t w, uint32_t n) { return static_cast<int>((static_cast<uint64_t>(w) * n) >> 32); }

// The draws of the sample with global index `sample` in stream `stream` (the resolved stream id).
CGAN_HD AugmentDraw augment_draw(const AugmentSpec& a, uint64_t seed, uint64_t stream, uint64_t sample) {
  const U32x4 c = philox_words(seed, stream, 2 * sample);
  const U32x4 s = philox_words(seed, stream, 2 * sample + 1);
  AugmentDraw d;
  if (a.color) {
    d.brightness = (philox_u01(c.v[0]) - 0.5f) * a.half;
    d.saturation = philox_u01(c.v[1]) * 2.f;
    d.contrast = philox_u01(c.v[2]) + 0.5f;
  }
  if (a.translation) {
    const int sh = a.shift_h(), sw = a.shift_w();
    d.tx = augment_below(s.v[0], static_cast<uint32_t>(2 * sh + 1)) - sh;
    d.ty = augment_below(s.v[1], static_cast<uint32_t>(2 * sw + 1)) - sw;
  }
  if (a.cutout) {  // the reference: offset in [0, H + (1 - ch % 2)), first row offset - ch / 2
    const int ch = a.cut_h(), cw = a.cut_w();
    d.cut_r0 = augment_below(s.v[2], static_cast<uint32_t>(a.H + 1 - ch % 2)) - ch / 2;
    d.cut_c0 = augment_below(s.v[3], static_cast<uint32_t>(a.W + 1 - cw % 2)) - cw / 2;
  }
  return d;
}

CGAN_HD void augment_store(const AugmentDraw& d, float mean, float* p) {
  p[0] = d.brightness;
  p[1] = d.saturation;
  p[2] = d.contrast;
  p[3] = static_cast<float>(d.tx);
  p[4] = static_cast<float>(d.ty);
  p[5] = static_cast<float>(d.cut_r0);
  p[6] = static_cast<float>(d.cut_c0);
  p[7] = mean;
}

CGAN_HD AugmentDraw augment_load(const float* p) {
  AugmentDraw d;
  d.brightness = p[0];
  d.saturation = p[1];
  d.contrast = p[2];
  d.tx = static_cast<int>(p[3]);
  d.ty = static_cast<int>(p[4]);
  d.cut_r0 = static_cast<int>(p[5]);
  d.cut_c0 = static_cast<int>(p[6]);
  return d;
}

// Whether output pixel (i, j) shows its source: inside the cutout it shows the fill, and so it does
// where the translation brings it from outside the image.
CGAN_HD bool augment_live(const AugmentSpec& a, const AugmentDraw& d, int i, int j) {
  if (a.cutout && i >= d.cut_r0 && i < d.cut_r0 + a.cut_h() && j >= d.cut_c0 && j < d.cut_c0 + a.cut_w()) return false;
  const int si = i + d.tx, sj = j + d.ty;
  return si >= 0 && si < a.H && sj >= 0 && sj < a.W;
}

// The colour transform of value v at a pixel whose channel mean is m, in a sample whose mean is M
// (both of the input): brightness, saturation, contrast in the reference's order. The mean over
// the sample after brightness and saturation is M + brightness (saturation keeps each pixel's
// channel mean).
CGAN_HD float augment_color(const AugmentDraw& d, float v, float m, float M) {
  const float v1 = v + d.brightness, m1 = m + d.brightness, M1 = M + d.brightness;
  const float v2 = (v1 - m1) * d.saturation + m1;
  return (v2 - M1) * d.contrast + M1;
}

// dL/dv of augment_color given g = dL/d(out) at (channel, pixel), gp = the sum of g over that
// pixel's channels, gall = the sum of g over the sample, C channels and n = C*H*W values.
CGAN_HD float augment_color_grad(const AugmentDraw& d, float g, float gp, float gall, int C, int n) {
  const float k = d.contrast, s = d.saturation;
  return k * s * g + k * (1.f - s) * (gp / static_cast<float>(C)) + (1.f - k) * (gall / static_cast<float>(n));
}

// One output pixel (i, j) of a sample, every channel: y at (c, i, j) from the sample's input xb,
// its draws d and its mean M (the contrast's, 0 without colour). The fill where the pixel is not
// live, else the translated source pixel, colour-transformed. The per-pixel body of both backends'
// augment_forward (src/cpu/cpu_augment.cpp, cuda/augment.cu): one copy of the arithmetic order.
CGAN_HD void augment_pixel_forward(const AugmentSpec& a, const AugmentDraw& d, float M, const float* xb, float* yb,
                                   int i, int j) {
  const size_t HW = static_cast<size_t>(a.H) * a.W, q = static_cast<size_t>(i) * a.W + j;
  if (!augment_live(a, d, i, j)) {
    for (int c = 0; c < a.C; ++c) yb[c * HW + q] = a.center;
    return;
  }
  const size_t p = static_cast<size_t>(i + d.tx) * a.W + (j + d.ty);
  if (!a.color) {
    for (int c = 0; c < a.C; ++c) yb[c * HW + q] = xb[c * HW + p];
    return;
  }
  float s = 0.f;
  for (int c = 0; c < a.C; ++c) s += xb[c * HW + p];
  const float m = s / static_cast<float>(a.C);
  for (int c = 0; c < a.C; ++c) yb[c * HW + q] = augment_color(d, xb[c * HW + p], m, M);
}

// One input pixel (r, t) of a sample, every channel: gx at (c, r, t) from gyb = dL/dy of the sample,
// gathered from the output pixel that shows it (zero when none does), through the colour
// transform (gall: the sum of the live output gradients over the sample, 0 without colour). The
// per-pixel body of both backends' augment_backward.
CGAN_HD void augment_pixel_backward(const AugmentSpec& a, const AugmentDraw& d, float gall, const float* gyb,
                                    float* gxb, int r, int t) {
  const size_t HW = static_cast<size_t>(a.H) * a.W, n = HW * a.C, p = static_cast<size_t>(r) * a.W + t;
  const int i = r - d.tx, j = t - d.ty;  // the output pixel that shows this input pixel
  const bool live = i >= 0 && i < a.H && j >= 0 && j < a.W && augment_live(a, d, i, j);
  const size_t q = live ? static_cast<size_t>(i) * a.W + j : 0;
  if (!a.color) {
    for (int c = 0; c < a.C; ++c) gxb[c * HW + p] = live ? gyb[c * HW + q] : 0.f;
    return;
  }
  float gp = 0.f;
  if (live)
    for (int c = 0; c < a.C; ++c) gp += gyb[c * HW + q];
  for (int c = 0; c < a.C; ++c)
    gxb[c * HW + p] = augment_color_grad(d, live ? gyb[c * HW + q] : 0.f, gp, gall, a.C, static_cast<int>(n));
}

}  // namespace cgan
