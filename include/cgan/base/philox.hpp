// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11). The same functions run on the host and in CUDA kernels, so both backends draw
// identical numbers for the same (seed, stream, index).
#pragma once
#include <cmath>
#include <cstdint>

#include "cgan/base/hd.hpp"
#include "cgan/base/streams.hpp"  // the stream ids every draw uses

namespace cgan {

struct U32x4 {
  uint32_t v[4];
};

CGAN_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Philox4x32 with 10 rounds: counter ctr, key (k0, k1).
CGAN_HD U32x4 philox4x32_10(U32x4 ctr, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, ctr.v[0], hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, ctr.v[2], hi1, lo1);
    U32x4 next;
    next.v[0] = hi1 ^ ctr.v[1] ^ k0;
    next.v[1] = lo1;
    next.v[2] = hi0 ^ ctr.v[3] ^ k1;
    next.v[3] = lo0;
    ctr = next;
  }
  return ctr;
}

// The four raw words for element `index` of stream `stream` under `seed`.
CGAN_HD U32x4 philox_words(uint64_t seed, uint64_t stream, uint64_t index) {
  U32x4 c;
  c.v[0] = static_cast<uint32_t>(index);
  c.v[1] = static_cast<uint32_t>(index >> 32);
  c.v[2] = static_cast<uint32_t>(stream);
  c.v[3] = static_cast<uint32_t>(stream >> 32);
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Uniform in the open interval (0, 1) from one 32-bit word: the top 23 bits k give (k + 0.5) / 2^23,
// which is exact in float (24 significant bits), so the result is never 0 or 1. (Using 24 bits,
// (k + 0.5) / 2^24 needs 25 bits and rounds to exactly 1.0 for k = 2^24 - 1.)
CGAN_HD float philox_u01(uint32_t w) { return (static_cast<float>(w >> 9) + 0.5f) * (1.0f / 8388608.0f); }

CGAN_HD float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return philox_u01(philox_words(seed, stream, index).v[0]);
}

// Standard normal by Box-Muller from the first two words.
CGAN_HD float philox_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  const U32x4 w = philox_words(seed, stream, index);
  const float u1 = philox_u01(w.v[0]);
  const float u2 = philox_u01(w.v[1]);
  const double r = sqrt(-2.0 * log(static_cast<double>(u1)));
  return static_cast<float>(r * cos(6.283185307179586 * static_cast<double>(u2)));
}

// Uniform integer in [0, n) (n > 0) from a 32-bit word, by 64-bit multiply (Lemire, no modulo bias
// beyond 2^-32).
CGAN_HD uint32_t philox_below(uint64_t seed, uint64_t stream, uint64_t index, uint32_t n) {
  const uint32_t w = philox_words(seed, stream, index).v[0];
  return static_cast<uint32_t>((static_cast<uint64_t>(w) * n) >> 32);
}

}  // namespace cgan
