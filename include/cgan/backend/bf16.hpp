// bfloat16 rounding of an fp32 value (the CPU backend's precision "bf16": operands of every multiply rounded to it).
#pragma once
#include <cstdint>
#include <cstring>

namespace cgan {

// x rounded to bfloat16 and widened back: 7 explicit mantissa bits (fp32's 23 less 16), the
// exponent kept; round to nearest, ties to even, as oneDNN's and CUDA's float -> bf16 conversions
// (__float2bfloat16_rn). Infinities pass unchanged; a NaN stays a NaN (quieted, since its payload
// may lie in the dropped bits); a value whose rounding carries past the largest finite exponent
// becomes an infinity, as in fp32.
// The bfloat16 encoding of that value (the top 16 bits of its fp32 bits): what bf16 storage holds.
inline uint16_t to_bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) != 0x7f800000u) {
    u += 0x7fffu + ((u >> 16) & 1u);  // below half of the dropped unit down, above up, a tie to even
  } else if (u & 0x007fffffu) {
    u |= 0x00400000u;  // a NaN: the quiet bit, which survives the truncation below
  }
  return static_cast<uint16_t>(u >> 16);
}

inline float round_to_bf16(float x) {
  const uint32_t u = static_cast<uint32_t>(to_bf16_bits(x)) << 16;
  float y;
  std::memcpy(&y, &u, sizeof y);
  return y;
}

}  // namespace cgan
