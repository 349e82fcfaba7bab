// DiffAugment's host side: the op's spec from the config's policy and the data's shape and range
// (include/cgan/backend/augment.hpp says why the range sets the fill value and the brightness scale).
#include "cgan/backend/augment.hpp"

#include "cgan/config/config.hpp"
#include "cgan/base/error.hpp"

namespace cgan {

AugmentSpec make_augment_spec(const AugmentPolicy& p, int C, int H, int W, float lo, float hi) {
  CGAN_CHECK(C > 0 && H > 0 && W > 0, "augment: bad image shape ", C, "x", H, "x", W);
  CGAN_CHECK(lo < hi, "augment: bad data range [", lo, ", ", hi, "]");
  AugmentSpec a;
  a.C = C;
  a.H = H;
  a.W = W;
  a.color = p.color;
  a.translation = p.translation;
  a.cutout = p.cutout;
  a.translation_ratio = p.translation_ratio;
  a.cutout_ratio = p.cutout_ratio;
  a.center = 0.5f * (lo + hi);
  a.half = 0.5f * (hi - lo);
  return a;
}

}  // namespace cgan
