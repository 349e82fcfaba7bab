// The CPU backend's conv2d on oneDNN's convolution primitives (built only with CGAN_HAVE_DNNL; the
// im2col + GEMM path of cpu_conv.hpp serves the other builds and is the tests' oracle).
//
// The caller's buffers stay in the engine's layouts: x / y NCHW, w OIHW, all f32 (a bf16 shape,
// MulPrecision::bf16, has its multiplied operands reordered to bf16 and its outputs in f32). The primitives
// run in the layouts that get oneDNN's direct jit kernels (blocked nChw16c-style for the forward,
// NHWC for the gradients; cpu_dnnl_stage.hpp reorders to and from them), not the plain NCHW for
// which oneDNN 2.6 has only its im2col + sgemm. Primitives and reorders are created once per
// (shape, thread count) and cached; they run with a user scratchpad and layout buffers that this
// object owns (grown, never shrunk), so repeated shapes allocate nothing. oneDNN picks its kernels
// from the CPU's ISA, capped by ONEDNN_MAX_CPU_ISA. For a fixed machine, ISA cap and thread count
// the results are run-to-run bit-identical (the weight-gradient reductions run in a fixed order;
// oneDNN 2.6 has no nondeterministic CPU conv).
#pragma once
#include <cstddef>
#include <memory>

#include "cgan/backend/backend.hpp"

namespace cgan {

class DnnlConv {
 public:
  DnnlConv();
  ~DnnlConv();
  DnnlConv(const DnnlConv&) = delete;
  DnnlConv& operator=(const DnnlConv&) = delete;

  // Creates (once) the primitives for s with `threads` OpenMP threads; false when oneDNN has no
  // implementation for the shape (then the caller uses im2col). Other oneDNN failures throw.
  // The caller sets the OpenMP thread count to `threads` before this and every op below.
  bool supports(const ConvShape& s, int threads);
  // What the primitives of s (created as supports() does) need of this object's buffers: the
  // largest scratchpad of its ops plus, per argument slot, the largest staged copy, plus the bias
  // gradient's scratch, each rounded up to 64 bytes; 0 when oneDNN has no kernel for s. The buffers
  // are shared by every shape and grow to the largest, so a sum over shapes bounds them.
  size_t shape_bytes(const ConvShape& s, int threads);
  // Bytes this object holds now (scratchpad, staged copies, bias-gradient scratch).
  size_t bytes_held() const;
  // y = conv(x, w) + bias (bias may be null).
  void forward(const ConvShape& s, int threads, const float* x, const float* w, const float* bias, float* y);
  // gx = dL/dx (overwritten).
  void backward_data(const ConvShape& s, int threads, const float* gy, const float* w, float* gx);
  // gw += dL/dw, gbias += sum of gy over n, p, q (gbias may be null).
  void backward_filter(const ConvShape& s, int threads, const float* x, const float* gy, float* gw, float* gbias);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cgan
