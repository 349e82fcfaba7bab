// One oneDNN primitive argument staged between the engine's plain layout and the layout the primitive chose.
//
// oneDNN's direct convolution kernels (jit:avx512_core, jit:avx2) want blocked layouts (nChw16c,
// OIhw16i16o, ...), chosen by the primitive when its descriptors say format_tag::any. A DnnlStage
// holds, for one argument of one primitive, the engine's plain descriptor, the primitive's chosen
// one and the reorder between them (created once, with the primitive); the blocked copy lives in a
// DnnlStageBuffers slot that every shape shares (the ops run one at a time). Where the chosen layout
// is the plain one the argument is the caller's buffer itself and nothing is copied. Reorders are
// elementwise copies (the accumulating one adds once per element), so they add no rounding beyond
// the accumulate's single fp32 add.
//
// Built only with CGAN_HAVE_DNNL (cpu_conv_dnnl.cpp is its only user).
#pragma once
#if CGAN_HAVE_DNNL
#include <dnnl.hpp>

#include <array>
#include <cstddef>

namespace cgan {

// Growable 64-byte-aligned buffers, one per argument slot, never shrunk.
class DnnlStageBuffers {
 public:
  static constexpr int kSlots = 3;
  DnnlStageBuffers() = default;
  ~DnnlStageBuffers();
  DnnlStageBuffers(const DnnlStageBuffers&) = delete;
  DnnlStageBuffers& operator=(const DnnlStageBuffers&) = delete;
  // Slot `slot`'s buffer, at least `bytes` long (its contents are not kept when it grows).
  void* get(int slot, size_t bytes);
  // Bytes held in all slots.
  size_t bytes() const { return bytes_[0] + bytes_[1] + bytes_[2]; }

 private:
  std::array<void*, kSlots> ptr_{};
  std::array<size_t, kSlots> bytes_{};
};

class DnnlStage {
 public:
  // in: the primitive reads it (plain -> chosen before the primitive); out: the primitive writes it
  // (chosen -> plain after); accumulate: the primitive writes it and the plain buffer gets it added
  // (plain += chosen, a reorder with a sum post-op; always staged, even when the layouts agree).
  enum class Dir { in, out, accumulate };

  DnnlStage() = default;
  // Creates the reorder where one is needed; throws dnnl::error as oneDNN does.
  DnnlStage(const dnnl::engine& eng, const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen, Dir dir,
            int slot);

  // Whether the argument goes through a slot buffer (a reorder runs), and the bytes it needs there.
  bool staged() const { return staged_; }
  size_t staged_bytes() const { return staged_ ? chosen_.get_size() : 0; }
  // The memory the primitive gets: `user` itself, or the slot buffer (filled from `user` for Dir::in).
  dnnl::memory before(const dnnl::engine& eng, dnnl::stream& strm, DnnlStageBuffers& bufs, const float* user) const;
  // After the primitive: copies (out) or adds (accumulate) `arg`, from before(), into `user`.
  void after(const dnnl::engine& eng, dnnl::stream& strm, const dnnl::memory& arg, float* user) const;

 private:
  dnnl::memory::desc plain_, chosen_;
  Dir dir_ = Dir::in;
  int slot_ = 0;
  bool staged_ = false;
  dnnl::reorder reorder_;
};

}  // namespace cgan
#endif  // CGAN_HAVE_DNNL
