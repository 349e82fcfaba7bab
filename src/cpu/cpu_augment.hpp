// The CPU backend's DiffAugment ops (backend.hpp augment_forward / augment_backward; the transforms
// and their draws are cgan/backend/augment.hpp's scalar functions, which the CUDA kernels share). Free
// functions so cpu_backend.cpp only forwards to them; the arguments have already been checked by
// the public Backend methods. `stream` is the resolved Philox stream id.
#pragma once
#include <cstdint>

#include "cgan/backend/augment.hpp"

namespace cgan {

void cpu_augment_forward(const AugmentSpec& a, int B, uint64_t seed, uint64_t stream, uint64_t offset, const float* x,
                         float* y, float* params);
void cpu_augment_backward(const AugmentSpec& a, int B, const float* params, const float* gy, float* gx);

}  // namespace cgan
