// TF32 rounding of an fp32 value (the CPU backend's emulation of the CUDA backend's tf32 mode).
#pragma once
#include <cstdint>
#include <cstring>

namespace cgan {

// x rounded to TF32: 10 explicit mantissa bits (fp32's 23 less 13), the exponent kept; round to
// nearest, ties away from zero, as PTX's cvt.rna.tf32.f32. Infinities and NaNs pass unchanged; a
// value whose rounding carries past the largest finite exponent becomes an infinity, as in fp32.
inline float round_to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) != 0x7f800000u) {
    u += 0x1000u;  // half of the 13 dropped bits' unit: ties go away from zero (sign-magnitude)
    u &= 0xffffe000u;
  }
  float y;
  std::memcpy(&y, &u, sizeof y);
  return y;
}

}  // namespace cgan
