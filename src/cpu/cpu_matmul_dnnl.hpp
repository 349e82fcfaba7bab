// The CPU backend's bf16 GEMMs on oneDNN's matmul primitive (built only with CGAN_HAVE_DNNL).
//
// C[M,N] = alpha op(A) op(B) + beta C with A and B row-major f32 in the engine's layouts (A [M,K],
// or [K,M] when transposed; B [K,N] or [N,K]): both operands are rounded to bfloat16 (to nearest
// even, as cgan/backend/bf16.hpp) into copies this object owns, then multiplied by oneDNN's bf16
// kernels (AMX / AVX512-BF16 where the CPU has them; the products are exact in fp32) with fp32
// sums into the f32 C (alpha an output scale, beta a sum post-op). A transposed operand is
// described by its strides, never copied. One primitive per (shape, transposes, alpha, beta,
// thread count), created on first use and cached, with a user scratchpad this object owns. For a
// fixed machine, ISA cap and thread count the results are run-to-run bit-identical.
#pragma once
#if CGAN_HAVE_DNNL
#include <cstddef>
#include <memory>

namespace cgan {

class DnnlMatmul {
 public:
  DnnlMatmul();
  ~DnnlMatmul();
  DnnlMatmul(const DnnlMatmul&) = delete;
  DnnlMatmul& operator=(const DnnlMatmul&) = delete;

  // The caller sets the OpenMP thread count to `threads` first. M, N, K > 0.
  void gemm_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
                 float* C, int threads);
  // What a gemm_bf16 of this shape needs of this object's buffers (its bf16 operand copies and the
  // primitive's scratchpad, each rounded up to 64 bytes); creates the primitive. The buffers are
  // shared by every shape and grow to the largest.
  size_t shape_bytes(bool ta, bool tb, int M, int N, int K, float alpha, float beta, int threads);
  // Bytes held now.
  size_t bytes_held() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cgan
#endif  // CGAN_HAVE_DNNL
