// oneDNN convolution primitives for the CPU backend (see cpu_conv_dnnl.hpp).
#if CGAN_HAVE_DNNL
#include "cpu_conv_dnnl.hpp"

#include <dnnl.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <unordered_map>
#include <vector>

#include "cgan/base/error.hpp"
#include "cpu_dnnl_stage.hpp"

namespace cgan {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// Runs a oneDNN call; its failure becomes a cgan::Error naming the call and the shape.
[[noreturn]] void fail(const char* call, const ConvShape& s, const dnnl::error& e) {
  throw Error(cat(call, " failed with oneDNN status ", static_cast<int>(e.status), " (", e.what(), ") for conv N=", s.N,
                  " C=", s.C, " H=", s.H, " W=", s.W, " K=", s.K, " R=", s.R, " S=", s.S, " stride=", s.stride_h, "x",
                  s.stride_w, " pad=", s.pad_h, "x", s.pad_w));
}

template <typename F>
auto checked(const char* call, const ConvShape& s, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    fail(call, s, e);
  }
}

using Key = std::array<int, 13>;
Key key_of(const ConvShape& s, int threads) {
  return {s.N,    s.C, s.H, s.W, s.K, s.R, s.S, s.stride_h, s.stride_w, s.pad_h, s.pad_w, static_cast<int>(s.mul),
          threads};
}

}  // namespace

struct DnnlConv::Impl {
  // One primitive with its three staged tensor arguments (in the order of `ids`) and its scratchpad.
  struct Op {
    dnnl::primitive prim;
    std::array<int, 3> ids{};
    std::array<DnnlStage, 3> args;
    memory::desc sp;
  };
  struct Prims {
    bool ok = false;
    memory::desc bias;
    Op fwd, fwd_bias, bwd_data, bwd_weights;  // bwd_weights with the bias gradient
  };

  dnnl::engine eng;
  dnnl::stream strm;
  std::map<Key, Prims> cache;
  void* scratch = nullptr;  // the primitives' user scratchpad, 64-byte aligned, only grows
  size_t scratch_bytes = 0;
  DnnlStageBuffers bufs;      // the blocked copies of the arguments (slot = argument position)
  std::vector<float> gb_tmp;  // oneDNN overwrites diff_bias; the op accumulates

  Impl() {
    eng = checked("dnnl::engine(cpu)", ConvShape{}, [] { return dnnl::engine(dnnl::engine::kind::cpu, 0); });
    strm = checked("dnnl::stream", ConvShape{}, [&] { return dnnl::stream(eng); });
  }
  ~Impl() { std::free(scratch); }

  void need_scratch(size_t bytes) {
    if (bytes <= scratch_bytes) return;
    std::free(scratch);
    scratch = nullptr;
    scratch_bytes = 0;
    const size_t b = (bytes + 63) / 64 * 64;
    scratch = std::aligned_alloc(64, b);
    if (!scratch) throw Error(cat("cpu conv: out of memory allocating a ", b, "-byte oneDNN scratchpad"));
    scratch_bytes = b;
  }

  // An Op from its primitive descriptor: per argument (id in `ids`) the engine's layout, the
  // primitive's and the direction.
  template <typename P, typename PD>
  Op make_op(const PD& pd, std::array<int, 3> ids, std::array<memory::desc, 3> plain,
             std::array<memory::desc, 3> chosen, std::array<DnnlStage::Dir, 3> dirs) {
    Op op;
    op.prim = P(pd);
    op.ids = ids;
    for (size_t i = 0; i < 3; ++i) op.args[i] = DnnlStage(eng, plain[i], chosen[i], dirs[i], static_cast<int>(i));
    op.sp = pd.scratchpad_desc();
    need_scratch(op.sp.get_size());
    return op;
  }

  // make(src, dst) with `pref` layouts, or with `alt` ones where oneDNN has no kernel for `pref`.
  template <typename Make>
  static auto with_fallback(Make&& make, const memory::desc& src_pref, const memory::desc& dst_pref,
                            const memory::desc& src_alt, const memory::desc& dst_alt)
      -> decltype(make(src_pref, dst_pref)) {
    try {
      return make(src_pref, dst_pref);
    } catch (const dnnl::error& e) {
      if (e.status != dnnl_unimplemented) throw;
    }
    return make(src_alt, dst_alt);
  }

  Prims& get(const ConvShape& s, int threads) {
    const Key k = key_of(s, threads);
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
    Prims& p = cache[k];
    const memory::dim P = s.P(), Q = s.Q();
    // The engine's layouts (what the caller's buffers hold), and the primitives': with plain NCHW /
    // OIHW descriptors oneDNN 2.6 runs only gemm:jit (its im2col + sgemm, no faster than ours);
    // with `any` / NHWC it runs its direct jit kernels, and DnnlStage reorders between the two.
    const memory::desc src({s.N, s.C, s.H, s.W}, dt::f32, tag::nchw);
    const memory::desc wei({s.K, s.C, s.R, s.S}, dt::f32, tag::oihw);
    const memory::desc dst({s.N, s.K, P, Q}, dt::f32, tag::nchw);
    // The multiplied operands' type: bf16 (MulPrecision::bf16: the reorders round them to nearest
    // even, the kernels sum the products in fp32 and write fp32 outputs and gradients) or f32.
    const dt op = s.mul == MulPrecision::bf16 ? dt::bf16 : dt::f32;
    const memory::desc src_any({s.N, s.C, s.H, s.W}, op, tag::any);
    const memory::desc wei_any({s.K, s.C, s.R, s.S}, op, tag::any);
    const memory::desc dst_any({s.N, s.K, P, Q}, dt::f32, tag::any);
    const memory::desc gsrc_any({s.N, s.C, s.H, s.W}, dt::f32, tag::any);
    const memory::desc gwei_any({s.K, s.C, s.R, s.S}, dt::f32, tag::any);
    const memory::desc gdst_any({s.N, s.K, P, Q}, op, tag::any);
    p.bias = memory::desc({s.K}, dt::f32, tag::x);
    const memory::dims strides = {s.stride_h, s.stride_w};
    const memory::dims pad_l = {s.pad_h, s.pad_w};
    // The right padding that makes oneDNN's output size the engine's floor((H + 2 pad - R) / stride) + 1.
    const memory::dims pad_r = {(P - 1) * s.stride_h + s.R - s.H - s.pad_h, (Q - 1) * s.stride_w + s.S - s.W - s.pad_w};
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const auto alg = dnnl::algorithm::convolution_direct;
    using D = DnnlStage::Dir;
    try {
      // Forward: oneDNN's own layouts (blocked nChw16c / nChw8c for its direct kernels; NCHW kept for
      // a small-channel input). The gradients: NHWC activations, where 2.6's jit:avx512_core kernels
      // have no channel padding (12 or 4 channels padded to 16 made them slower than im2col),
      // else oneDNN's own choice. Measured per layout on the anime_small shapes (docs/PERFORMANCE.md,
      // issue 23); weights always in oneDNN's layout.
      const memory::desc src_nhwc({s.N, s.C, s.H, s.W}, op, tag::nhwc);
      const memory::desc gsrc_nhwc({s.N, s.C, s.H, s.W}, dt::f32, tag::nhwc);
      const memory::desc gdst_nhwc({s.N, s.K, P, Q}, op, tag::nhwc);
      const auto fwd_bias_d = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_any, wei_any,
                                                              p.bias, dst_any, strides, pad_l, pad_r);
      const auto fwd_d = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_any, wei_any,
                                                         dst_any, strides, pad_l, pad_r);
      const auto fwd_bias_pd = dnnl::convolution_forward::primitive_desc(fwd_bias_d, attr, eng);
      const auto fwd_pd = dnnl::convolution_forward::primitive_desc(fwd_d, attr, eng);
      const auto bd_pd = with_fallback(
          [&](const memory::desc& sd, const memory::desc& dd) {
            const auto d = dnnl::convolution_backward_data::desc(alg, sd, wei_any, dd, strides, pad_l, pad_r);
            return dnnl::convolution_backward_data::primitive_desc(d, attr, eng, fwd_bias_pd);
          },
          gsrc_nhwc, gdst_nhwc, gsrc_any, gdst_any);
      const auto bw_pd = with_fallback(
          [&](const memory::desc& sd, const memory::desc& dd) {
            const auto d =
                dnnl::convolution_backward_weights::desc(alg, sd, gwei_any, p.bias, dd, strides, pad_l, pad_r);
            return dnnl::convolution_backward_weights::primitive_desc(d, attr, eng, fwd_bias_pd);
          },
          src_nhwc, gdst_nhwc, src_any, gdst_any);
      const std::array<int, 3> fwd_ids = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
      p.fwd = make_op<dnnl::convolution_forward>(fwd_pd, fwd_ids, {src, wei, dst},
                                                 {fwd_pd.src_desc(), fwd_pd.weights_desc(), fwd_pd.dst_desc()},
                                                 {D::in, D::in, D::out});
      p.fwd_bias = make_op<dnnl::convolution_forward>(
          fwd_bias_pd, fwd_ids, {src, wei, dst},
          {fwd_bias_pd.src_desc(), fwd_bias_pd.weights_desc(), fwd_bias_pd.dst_desc()}, {D::in, D::in, D::out});
      p.bwd_data = make_op<dnnl::convolution_backward_data>(
          bd_pd, {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC}, {dst, wei, src},
          {bd_pd.diff_dst_desc(), bd_pd.weights_desc(), bd_pd.diff_src_desc()}, {D::in, D::in, D::out});
      p.bwd_weights = make_op<dnnl::convolution_backward_weights>(
          bw_pd, {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS}, {src, dst, wei},
          {bw_pd.src_desc(), bw_pd.diff_dst_desc(), bw_pd.diff_weights_desc()}, {D::in, D::in, D::accumulate});
    } catch (const dnnl::error& e) {
      if (e.status != dnnl_unimplemented) {
        cache.erase(k);
        fail("dnnl convolution primitive_desc / primitive / reorder creation", s, e);
      }
      return p;  // ok stays false: no oneDNN kernel for this shape, im2col serves it
    }
    p.ok = true;
    return p;
  }

  // Stages op's three arguments (user buffers in `user`, in op.ids order), runs it with `extra`
  // (the plain bias arguments) and the scratchpad, and copies / adds its outputs back.
  void run(const char* call, const ConvShape& s, Op& op, std::array<const float*, 3> user,
           std::unordered_map<int, memory> extra) {
    checked(call, s, [&] {
      std::array<memory, 3> staged;
      for (size_t i = 0; i < 3; ++i) {
        staged[i] = op.args[i].before(eng, strm, bufs, user[i]);
        extra.emplace(op.ids[i], staged[i]);
      }
      extra.emplace(DNNL_ARG_SCRATCHPAD, memory(op.sp, eng, scratch));
      op.prim.execute(strm, extra);
      for (size_t i = 0; i < 3; ++i) op.args[i].after(eng, strm, staged[i], const_cast<float*>(user[i]));
      strm.wait();
      return 0;
    });
  }
};

DnnlConv::DnnlConv() : impl_(std::make_unique<Impl>()) {}
DnnlConv::~DnnlConv() = default;

bool DnnlConv::supports(const ConvShape& s, int threads) { return impl_->get(s, threads).ok; }

size_t DnnlConv::shape_bytes(const ConvShape& s, int threads) {
  auto& p = impl_->get(s, threads);
  if (!p.ok) return 0;
  auto r64 = [](size_t b) { return (b + 63) / 64 * 64; };
  size_t sp = 0;
  std::array<size_t, DnnlStageBuffers::kSlots> slot{};
  for (const Impl::Op* op : {&p.fwd, &p.fwd_bias, &p.bwd_data, &p.bwd_weights}) {
    sp = std::max(sp, op->sp.get_size());
    for (size_t i = 0; i < 3; ++i) slot[i] = std::max(slot[i], op->args[i].staged_bytes());
  }
  size_t total = r64(sp) + r64(static_cast<size_t>(s.K) * sizeof(float));
  for (size_t b : slot) total += r64(b);
  return total;
}

size_t DnnlConv::bytes_held() const {
  return impl_->scratch_bytes + impl_->bufs.bytes() + impl_->gb_tmp.capacity() * sizeof(float);
}

void DnnlConv::forward(const ConvShape& s, int threads, const float* x, const float* w, const float* bias, float* y) {
  Impl& m = *impl_;
  auto& p = m.get(s, threads);
  CGAN_CHECK(p.ok, "conv2d_forward: oneDNN has no convolution for this shape");
  if (bias)
    m.run("dnnl convolution_forward (bias)", s, p.fwd_bias, {x, w, y},
          {{DNNL_ARG_BIAS, memory(p.bias, m.eng, const_cast<float*>(bias))}});
  else
    m.run("dnnl convolution_forward", s, p.fwd, {x, w, y}, {});
}

void DnnlConv::backward_data(const ConvShape& s, int threads, const float* gy, const float* w, float* gx) {
  Impl& m = *impl_;
  auto& p = m.get(s, threads);
  CGAN_CHECK(p.ok, "conv2d_backward_data: oneDNN has no convolution for this shape");
  m.run("dnnl convolution_backward_data", s, p.bwd_data, {gy, w, gx}, {});
}

void DnnlConv::backward_filter(const ConvShape& s, int threads, const float* x, const float* gy, float* gw,
                               float* gbias) {
  Impl& m = *impl_;
  auto& p = m.get(s, threads);
  CGAN_CHECK(p.ok, "conv2d_backward_filter: oneDNN has no convolution for this shape");
  if (m.gb_tmp.size() < static_cast<size_t>(s.K)) m.gb_tmp.resize(s.K);
  float* tb = m.gb_tmp.data();
  // gw += dL/dw through the accumulating reorder; the bias gradient lands in tb, added below
  m.run("dnnl convolution_backward_weights", s, p.bwd_weights, {x, gy, gw},
        {{DNNL_ARG_DIFF_BIAS, memory(p.bias, m.eng, tb)}});
  if (gbias)
    for (int k = 0; k < s.K; ++k) gbias[k] += tb[k];
}

}  // namespace cgan
#endif  // CGAN_HAVE_DNNL
