// CGAN_HD marks scalar math shared verbatim by the CPU backend and CUDA kernels.
#pragma once
#if defined(__CUDACC__)
#define CGAN_HD __host__ __device__ __forceinline__
#else
#define CGAN_HD inline
#endif
