// GEMM on row-major matrices through cuBLAS (column-major): a row-major [M, N] C is the
// column-major [N, M] matrix C^T, and C^T = op(B)^T op(A)^T, so cuBLAS is called with the operands
// swapped and m = N, n = M; each operand keeps its own transpose flag and its row-major leading
// dimension.
#include "common.cuh"
#include "kernels.hpp"

namespace cgan::cuda {

void gemm_row_major(const Context& ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                    const float* B, float beta, float* C) {
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int lda = trans_a ? M : K;  // A stored [K, M] when transposed, else [M, K]
  const int ldb = trans_b ? K : N;  // B stored [N, K] when transposed, else [K, N]
  CUBLAS_CHECK(cublasSgemm(ctx.cublas, op_b, op_a, N, M, K, &alpha, B, ldb, A, lda, &beta, C, N));
}

}  // namespace cgan::cuda
