// The CPU backend's convolution and pooling (backend.hpp holds the contracts): im2col + GEMM for
// conv2d, plain loops for pooling. Free functions so cpu_backend.cpp only forwards to them; the
// arguments have already been checked by the public Backend methods.
#pragma once
#include <cstddef>
#include <functional>

#include "cgan/backend/backend.hpp"

namespace cgan {

// C[M,N] = alpha * op(A) * op(B) + beta * C, row-major and contiguous (CpuBackend's gemm_impl,
// which picks the OpenBLAS thread count by size).
using CpuGemm = std::function<void(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                                   const float* B, float beta, float* C)>;

// Floats of workspace the three conv ops need for shape s: an im2col buffer for a chunk of samples
// (plus, when a chunk holds more than one sample, a [K, chunk*P*Q] staging buffer for y or gy).
size_t cpu_conv2d_workspace(const ConvShape& s);
// Floats the largest GEMM of the three ops takes as operands, A's plus B's: what a gemm that
// rounds its operands into copies (bf16, TF32 emulation) needs for them.
size_t cpu_conv2d_gemm_operands(const ConvShape& s);
void cpu_conv2d_forward(const CpuGemm& gemm, const ConvShape& s, const float* x, const float* w, const float* bias,
                        float* y, float* ws);
void cpu_conv2d_backward_data(const CpuGemm& gemm, const ConvShape& s, const float* gy, const float* w, float* gx,
                              float* ws);
void cpu_conv2d_backward_filter(const CpuGemm& gemm, const ConvShape& s, const float* x, const float* gy, float* gw,
                                float* gbias, float* ws);

void cpu_pool2d_forward(Pool k, const PoolShape& s, const float* x, float* y);
void cpu_pool2d_backward(Pool k, const PoolShape& s, const float* x, const float* y, const float* gy, float* gx);

}  // namespace cgan
