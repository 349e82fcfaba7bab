// oneDNN primitive arguments staged between plain and chosen layouts (see cpu_dnnl_stage.hpp).
#if CGAN_HAVE_DNNL
#include "cpu_dnnl_stage.hpp"

#include <cstdlib>

#include "cgan/base/error.hpp"

namespace cgan {

DnnlStageBuffers::~DnnlStageBuffers() {
  for (void* p : ptr_) std::free(p);
}

void* DnnlStageBuffers::get(int slot, size_t bytes) {
  CGAN_CHECK(slot >= 0 && slot < kSlots, "DnnlStageBuffers: slot ", slot, " outside 0..", kSlots - 1);
  const size_t i = static_cast<size_t>(slot);
  if (bytes <= bytes_[i]) return ptr_[i];
  std::free(ptr_[i]);
  ptr_[i] = nullptr;
  bytes_[i] = 0;
  const size_t b = (bytes + 63) / 64 * 64;
  ptr_[i] = std::aligned_alloc(64, b);
  if (!ptr_[i]) throw Error(cat("cpu conv: out of memory allocating a ", b, "-byte oneDNN layout buffer"));
  bytes_[i] = b;
  return ptr_[i];
}

DnnlStage::DnnlStage(const dnnl::engine& eng, const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen,
                     Dir dir, int slot)
    : plain_(plain), chosen_(chosen), dir_(dir), slot_(slot) {
  staged_ = dir == Dir::accumulate || plain != chosen;
  if (!staged_) return;
  if (dir == Dir::in) {
    reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng, plain, eng, chosen));
  } else {
    dnnl::primitive_attr attr;
    if (dir == Dir::accumulate) {
      dnnl::post_ops po;
      po.append_sum(1.f);
      attr.set_post_ops(po);
    }
    reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng, chosen, eng, plain, attr));
  }
}

dnnl::memory DnnlStage::before(const dnnl::engine& eng, dnnl::stream& strm, DnnlStageBuffers& bufs,
                               const float* user) const {
  dnnl::memory u(plain_, eng, const_cast<float*>(user));
  if (!staged_) return u;
  dnnl::memory m(chosen_, eng, bufs.get(slot_, chosen_.get_size()));
  if (dir_ == Dir::in) reorder_.execute(strm, u, m);
  return m;
}

void DnnlStage::after(const dnnl::engine& eng, dnnl::stream& strm, const dnnl::memory& arg, float* user) const {
  if (!staged_ || dir_ == Dir::in) return;
  dnnl::memory u(plain_, eng, user);
  dnnl::memory a = arg;  // a handle copy: reorder::execute takes non-const references
  reorder_.execute(strm, a, u);
}

}  // namespace cgan
#endif  // CGAN_HAVE_DNNL
