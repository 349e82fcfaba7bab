// The CPU backend's conditional family (backend.hpp holds the contracts): the projection
// discriminator's inner product and conditional batch norm. Free functions so cpu_backend.cpp only
// forwards to them; the arguments have already been checked by the public Backend methods. The
// CUDA twins (cuda/conditional.cu) follow the same steps, in the same precision.
#pragma once
#include <vector>

#include "cgan/backend/backend.hpp"

namespace cgan {

void cpu_projection_forward(int B, int F, const float* phi, const float* e, float* out);
void cpu_projection_backward(int B, int F, const float* phi, const float* e, const float* g, float* gphi, float* ge);

// Training-mode forward and the backward take one double sum per (sample, channel) block on
// `threads` threads and add them in sample order (cpu_lanes.hpp): the same bits on any thread count.
// scratch: grown as needed (3 C + N C doubles), so repeated shapes allocate nothing after the first call.
void cpu_cbn_forward_train(int N, int C, int S, float eps, float momentum, const float* x, const float* dgain,
                           const float* dbias, float* y, float* save_mean, float* save_invstd, float* run_mean,
                           float* run_var, Act act, float slope, int threads, std::vector<double>& scratch);
void cpu_cbn_forward_eval(int N, int C, int S, float eps, const float* x, const float* dgain, const float* dbias,
                          const float* run_mean, const float* run_var, float* y, Act act, float slope);
void cpu_cbn_backward(int N, int C, int S, const float* x, const float* dgain, const float* save_mean,
                      const float* save_invstd, const float* gy, float* gx, float* gdgain, float* gdbias, int threads,
                      std::vector<double>& scratch);

}  // namespace cgan
