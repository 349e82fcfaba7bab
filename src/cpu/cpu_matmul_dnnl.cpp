// oneDNN bf16 matmul primitives for the CPU backend's bf16 GEMMs (see cpu_matmul_dnnl.hpp).
#if CGAN_HAVE_DNNL
#include "cpu_matmul_dnnl.hpp"

#include <dnnl.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>

#include "cgan/backend/bf16.hpp"
#include "cgan/base/error.hpp"

namespace cgan {
namespace {

using dnnl::memory;
using dt = memory::data_type;

// The bit pattern of x (alpha and beta in the cache key).
uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// dst[i] = x[i] as bfloat16, on `threads` threads.
void to_bf16(const float* x, size_t n, uint16_t* dst, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && n >= (size_t(1) << 18))
  for (size_t i = 0; i < n; ++i) dst[i] = to_bf16_bits(x[i]);
}

using Key = std::array<int64_t, 8>;

}  // namespace

struct DnnlMatmul::Impl {
  struct Prim {
    dnnl::matmul prim;
    memory::desc a, b, c, sp;
  };
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::map<Key, Prim> cache;
  void* buf[2] = {nullptr, nullptr};  // A's and B's bf16 copies
  size_t bytes[2] = {0, 0};
  void* scratch = nullptr;
  size_t scratch_bytes = 0;

  ~Impl() {
    std::free(buf[0]);
    std::free(buf[1]);
    std::free(scratch);
  }
  static void* grow(void*& p, size_t& have, size_t want, const char* what) {
    if (want <= have) return p;
    std::free(p);
    p = nullptr;
    have = 0;
    const size_t b = (want + 63) / 64 * 64;
    p = std::aligned_alloc(64, b);
    if (!p) throw Error(cat("cpu gemm: out of memory allocating a ", b, "-byte ", what));
    have = b;
    return p;
  }

  Prim& get(bool ta, bool tb, int M, int N, int K, float alpha, float beta, int threads) {
    const Key k = {ta, tb, M, N, K, bits_of(alpha), bits_of(beta), threads};
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
    try {
      Prim p;
      p.a = memory::desc({M, K}, dt::bf16, ta ? memory::dims{1, M} : memory::dims{K, 1});
      p.b = memory::desc({K, N}, dt::bf16, tb ? memory::dims{1, K} : memory::dims{N, 1});
      p.c = memory::desc({M, N}, dt::f32, memory::dims{N, 1});
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (alpha != 1.f) attr.set_output_scales(0, {alpha});
      if (beta != 0.f) {
        dnnl::post_ops po;
        po.append_sum(beta);
        attr.set_post_ops(po);
      }
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(p.a, p.b, p.c), attr, eng);
      p.prim = dnnl::matmul(pd);
      p.sp = pd.scratchpad_desc();
      return cache.emplace(k, std::move(p)).first->second;
    } catch (const dnnl::error& e) {
      throw Error(cat("dnnl bf16 matmul creation failed with oneDNN status ", static_cast<int>(e.status), " (",
                      e.what(), ") for ", M, "x", N, "x", K, ta ? " A^T" : "", tb ? " B^T" : ""));
    }
  }
};

DnnlMatmul::DnnlMatmul() : impl_(std::make_unique<Impl>()) {}
DnnlMatmul::~DnnlMatmul() = default;

size_t DnnlMatmul::shape_bytes(bool ta, bool tb, int M, int N, int K, float alpha, float beta, int threads) {
  const auto& p = impl_->get(ta, tb, M, N, K, alpha, beta, threads);
  auto r64 = [](size_t b) { return (b + 63) / 64 * 64; };
  return r64(size_t(M) * K * 2) + r64(size_t(K) * N * 2) + r64(p.sp.get_size());
}

size_t DnnlMatmul::bytes_held() const { return impl_->bytes[0] + impl_->bytes[1] + impl_->scratch_bytes; }

void DnnlMatmul::gemm_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, const float* B,
                           float beta, float* C, int threads) {
  Impl& m = *impl_;
  auto& p = m.get(ta, tb, M, N, K, alpha, beta, threads);
  const size_t na = size_t(M) * K, nb = size_t(K) * N;
  auto* a16 = static_cast<uint16_t*>(Impl::grow(m.buf[0], m.bytes[0], na * 2, "bf16 operand copy"));
  auto* b16 = static_cast<uint16_t*>(Impl::grow(m.buf[1], m.bytes[1], nb * 2, "bf16 operand copy"));
  void* sp = Impl::grow(m.scratch, m.scratch_bytes, p.sp.get_size(), "oneDNN matmul scratchpad");
  to_bf16(A, na, a16, threads);
  to_bf16(B, nb, b16, threads);
  try {
    p.prim.execute(m.strm, {{DNNL_ARG_SRC, memory(p.a, m.eng, a16)},
                            {DNNL_ARG_WEIGHTS, memory(p.b, m.eng, b16)},
                            {DNNL_ARG_DST, memory(p.c, m.eng, C)},
                            {DNNL_ARG_SCRATCHPAD, memory(p.sp, m.eng, sp)}});
    m.strm.wait();
  } catch (const dnnl::error& e) {
    throw Error(cat("dnnl bf16 matmul failed with oneDNN status ", static_cast<int>(e.status), " (", e.what(), ") for ",
                    M, "x", N, "x", K));
  }
}

}  // namespace cgan
#endif  // CGAN_HAVE_DNNL
