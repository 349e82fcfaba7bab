// oneDNN convolution primitives for the CPU backend (see cpu_conv_dnnl.hpp).
#if CGAN_HAVE_DNNL
#include "cpu_conv_dnnl.hpp"

#include <dnnl.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <unordered_map>

#include "cgan/base/error.hpp"

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

using Key = std::array<int, 12>;
Key key_of(const ConvShape& s, int threads) {
  return {s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride_h, s.stride_w, s.pad_h, s.pad_w, threads};
}

}  // namespace

struct DnnlConv::Impl {
  struct Prims {
    bool ok = false;
    memory::desc src, wei, bias, dst;
    dnnl::convolution_forward fwd, fwd_bias;
    dnnl::convolution_backward_data bwd_data;
    dnnl::convolution_backward_weights bwd_weights;                 // with the bias gradient
    memory::desc sp_fwd, sp_fwd_bias, sp_bwd_data, sp_bwd_weights;  // their scratchpads
  };

  dnnl::engine eng;
  dnnl::stream strm;
  std::map<Key, Prims> cache;
  void* scratch = nullptr;  // the primitives' user scratchpad, 64-byte aligned, only grows
  size_t scratch_bytes = 0;
  std::vector<float> gw_tmp;  // oneDNN overwrites diff_weights / diff_bias; the op accumulates

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

  Prims& get(const ConvShape& s, int threads) {
    const Key k = key_of(s, threads);
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
    Prims& p = cache[k];
    const memory::dim P = s.P(), Q = s.Q();
    p.src = memory::desc({s.N, s.C, s.H, s.W}, dt::f32, tag::nchw);
    p.wei = memory::desc({s.K, s.C, s.R, s.S}, dt::f32, tag::oihw);
    p.bias = memory::desc({s.K}, dt::f32, tag::x);
    p.dst = memory::desc({s.N, s.K, P, Q}, dt::f32, tag::nchw);
    const memory::dims strides = {s.stride_h, s.stride_w};
    const memory::dims pad_l = {s.pad_h, s.pad_w};
    // The right padding that makes oneDNN's output size the engine's floor((H + 2 pad - R) / stride) + 1.
    const memory::dims pad_r = {(P - 1) * s.stride_h + s.R - s.H - s.pad_h, (Q - 1) * s.stride_w + s.S - s.W - s.pad_w};
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const auto alg = dnnl::algorithm::convolution_direct;
    try {
      const auto fwd_bias_d = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, p.src, p.wei,
                                                              p.bias, p.dst, strides, pad_l, pad_r);
      const auto fwd_d = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, p.src, p.wei, p.dst,
                                                         strides, pad_l, pad_r);
      const auto fwd_bias_pd = dnnl::convolution_forward::primitive_desc(fwd_bias_d, attr, eng);
      const auto fwd_pd = dnnl::convolution_forward::primitive_desc(fwd_d, attr, eng);
      const auto bd_d = dnnl::convolution_backward_data::desc(alg, p.src, p.wei, p.dst, strides, pad_l, pad_r);
      const auto bd_pd = dnnl::convolution_backward_data::primitive_desc(bd_d, attr, eng, fwd_bias_pd);
      const auto bw_d =
          dnnl::convolution_backward_weights::desc(alg, p.src, p.wei, p.bias, p.dst, strides, pad_l, pad_r);
      const auto bw_pd = dnnl::convolution_backward_weights::primitive_desc(bw_d, attr, eng, fwd_bias_pd);
      p.fwd = dnnl::convolution_forward(fwd_pd);
      p.fwd_bias = dnnl::convolution_forward(fwd_bias_pd);
      p.bwd_data = dnnl::convolution_backward_data(bd_pd);
      p.bwd_weights = dnnl::convolution_backward_weights(bw_pd);
      p.sp_fwd = fwd_pd.scratchpad_desc();
      p.sp_fwd_bias = fwd_bias_pd.scratchpad_desc();
      p.sp_bwd_data = bd_pd.scratchpad_desc();
      p.sp_bwd_weights = bw_pd.scratchpad_desc();
      need_scratch(std::max(
          {p.sp_fwd.get_size(), p.sp_fwd_bias.get_size(), p.sp_bwd_data.get_size(), p.sp_bwd_weights.get_size()}));
    } catch (const dnnl::error& e) {
      if (e.status != dnnl_unimplemented) {
        cache.erase(k);
        fail("dnnl convolution primitive_desc / primitive creation", s, e);
      }
      return p;  // ok stays false: no oneDNN kernel for this shape, im2col serves it
    }
    p.ok = true;
    return p;
  }

  memory mem(const memory::desc& md, const float* ptr) { return memory(md, eng, const_cast<float*>(ptr)); }

  void run(const char* call, const ConvShape& s, dnnl::primitive& prim, const memory::desc& sp,
           std::unordered_map<int, memory> args) {
    checked(call, s, [&] {
      args.emplace(DNNL_ARG_SCRATCHPAD, memory(sp, eng, scratch));
      prim.execute(strm, args);
      strm.wait();
      return 0;
    });
  }
};

DnnlConv::DnnlConv() : impl_(std::make_unique<Impl>()) {}
DnnlConv::~DnnlConv() = default;

bool DnnlConv::supports(const ConvShape& s, int threads) { return impl_->get(s, threads).ok; }

void DnnlConv::forward(const ConvShape& s, int threads, const float* x, const float* w, const float* bias, float* y) {
  Impl& m = *impl_;
  auto& p = m.get(s, threads);
  CGAN_CHECK(p.ok, "conv2d_forward: oneDNN has no convolution for this shape");
  if (bias)
    m.run("dnnl convolution_forward (bias)", s, p.fwd_bias, p.sp_fwd_bias,
          {{DNNL_ARG_SRC, m.mem(p.src, x)},
           {DNNL_ARG_WEIGHTS, m.mem(p.wei, w)},
           {DNNL_ARG_BIAS, m.mem(p.bias, bias)},
           {DNNL_ARG_DST, m.mem(p.dst, y)}});
  else
    m.run("dnnl convolution_forward", s, p.fwd, p.sp_fwd,
          {{DNNL_ARG_SRC, m.mem(p.src, x)}, {DNNL_ARG_WEIGHTS, m.mem(p.wei, w)}, {DNNL_ARG_DST, m.mem(p.dst, y)}});
}

void DnnlConv::backward_data(const ConvShape& s, int threads, const float* gy, const float* w, float* gx) {
  Impl& m = *impl_;
  auto& p = m.get(s, threads);
  CGAN_CHECK(p.ok, "conv2d_backward_data: oneDNN has no convolution for this shape");
  m.run("dnnl convolution_backward_data", s, p.bwd_data, p.sp_bwd_data,
        {{DNNL_ARG_DIFF_DST, m.mem(p.dst, gy)},
         {DNNL_ARG_WEIGHTS, m.mem(p.wei, w)},
         {DNNL_ARG_DIFF_SRC, m.mem(p.src, gx)}});
}

void DnnlConv::backward_filter(const ConvShape& s, int threads, const float* x, const float* gy, float* gw,
                               float* gbias) {
  Impl& m = *impl_;
  auto& p = m.get(s, threads);
  CGAN_CHECK(p.ok, "conv2d_backward_filter: oneDNN has no convolution for this shape");
  const size_t nw = static_cast<size_t>(s.K) * s.C * s.R * s.S;
  if (m.gw_tmp.size() < nw + s.K) m.gw_tmp.resize(nw + s.K);
  float* tw = m.gw_tmp.data();
  float* tb = tw + nw;
  m.run("dnnl convolution_backward_weights", s, p.bwd_weights, p.sp_bwd_weights,
        {{DNNL_ARG_SRC, m.mem(p.src, x)},
         {DNNL_ARG_DIFF_DST, m.mem(p.dst, gy)},
         {DNNL_ARG_DIFF_WEIGHTS, m.mem(p.wei, tw)},
         {DNNL_ARG_DIFF_BIAS, m.mem(p.bias, tb)}});
  for (size_t i = 0; i < nw; ++i) gw[i] += tw[i];
  if (gbias)
    for (int k = 0; k < s.K; ++k) gbias[k] += tb[k];
}

}  // namespace cgan
#endif  // CGAN_HAVE_DNNL
