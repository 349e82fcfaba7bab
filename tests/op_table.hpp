// The op table (as ggml's tests/test-backend-ops.cpp): one entry per public checked Backend op, each case running it on seeded random inputs (odd and real model shapes) on any backend.
//
// An entry names the ops it exercises (Backend's public non-virtual methods, spelt as there) and the
// OpKind they are timed under; each case runs them on one backend from a seed and returns the
// outputs, so the same case run on two backends can be compared: tests/cuda/test_op_table.cpp runs
// every case on the CPU backend (the reference) and the CUDA backend and compares within
// atol + rtol * |cpu| (NaN and infinity positions first); tests/cpu/test_op_table.cpp checks that
// every op of backend.hpp and every OpKind has an entry, and runs the small cases on the CPU twice.
// Integer outputs are returned as floats (exact below 2^24) and compared exactly (atol = rtol = 0
// for those outputs: Out::exact).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iomanip>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cgan/backend/augment.hpp"
#include "cgan/backend/backend.hpp"
#include "cgan/backend/profile.hpp"
#include "cgan/backend/rank_reduce.hpp"
#include "test_util.hpp"

namespace cgan {
namespace optable {

using Floats = std::vector<float>;
using Ints = std::vector<int32_t>;

struct Out {
  std::string name;
  Floats v;
  bool exact = false;  // bit for bit on every backend (copies, RNG, integer results)
  double atol = -1;    // >= 0: this output's own atol (a sum's magnitude), else the case's
};

struct Case {
  std::string shape;  // for failure messages
  double atol = 1e-6, rtol = 1e-5;
  bool big = false;  // a real model size: too slow for the CPU-only sanity run
  std::function<std::vector<Out>(Backend&, uint64_t seed)> run;
};

struct Entry {
  std::vector<std::string> ops;  // the Backend methods it exercises
  std::vector<OpKind> kinds;     // the kinds they are timed under
  std::vector<Case> cases;
};

// Backend memory for one case: host inputs drawn from the seed, uploaded; freed at the end.
class Arena {
 public:
  Arena(Backend& be, uint64_t seed) : be_(be), rng_(seed) {}
  ~Arena() {
    for (void* p : ptrs_) be_.free(p);
  }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  Backend& be() { return be_; }
  float* put(const Floats& h) {
    float* p = be_.alloc(std::max<size_t>(h.size(), 1));
    ptrs_.push_back(p);
    be_.upload(p, h.data(), h.size());
    return p;
  }
  int32_t* put(const Ints& h) {
    int32_t* p = be_.alloc_int(std::max<size_t>(h.size(), 1));
    ptrs_.push_back(p);
    be_.upload_int(p, h.data(), h.size());
    return p;
  }
  float* zeros(size_t n) { return put(Floats(n, 0.f)); }
  Floats normal(size_t n, float mean = 0.f, float stddev = 1.f) {
    return testutil::normal_values(rng_, n, mean, stddev);
  }
  Floats uniform(size_t n, float lo, float hi) { return testutil::uniform_values(rng_, n, lo, hi); }
  Ints ints(size_t n, int32_t lo, int32_t hi) { return testutil::int_values(rng_, n, lo, hi); }  // inclusive
  Out get(const std::string& name, const float* p, size_t n) {
    Out o{name, Floats(n), false};
    be_.download(o.v.data(), p, n);
    return o;
  }
  Out get_int(const std::string& name, const int32_t* p, size_t n) {
    Ints h(n);
    be_.download_int(h.data(), p, n);
    Out o{name, Floats(h.begin(), h.end()), true};
    return o;
  }
  static Out exact(Out o) {
    o.exact = true;
    return o;
  }

 private:
  Backend& be_;
  std::mt19937_64 rng_;
  std::vector<void*> ptrs_;
};

inline std::string dims(std::initializer_list<long long> d) {
  std::string s;
  for (long long v : d) s += (s.empty() ? "" : "x") + std::to_string(v);
  return s;
}

inline ConvShape conv_shape(int N, int C, int H, int W, int K, int R, int S, int sh, int sw, int ph, int pw) {
  ConvShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  return s;
}
inline PoolShape pool_shape(int N, int C, int H, int W, int R, int S, int sh, int sw, int ph, int pw) {
  PoolShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.R = R, s.S = S;
  s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  return s;
}

// ref (the reference backend's output) against out: NaN and infinity positions first (they must
// match exactly), then |out - ref| <= atol + rtol * |ref| everywhere (exact outputs: bit for bit).
inline std::string mismatch(const Out& ref, const Out& out, double atol, double rtol) {
  if (ref.v.size() != out.v.size())
    return ref.name + ": sizes differ " + std::to_string(ref.v.size()) + " vs " + std::to_string(out.v.size());
  for (size_t i = 0; i < ref.v.size(); ++i) {
    const float r = ref.v[i], o = out.v[i];
    if (std::isnan(r) != std::isnan(o) || (std::isinf(r) || std::isinf(o)) && r != o)
      return ref.name + ": NaN/Inf differ at [" + std::to_string(i) + "]: " + std::to_string(r) + " vs " +
             std::to_string(o);
  }
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < ref.v.size(); ++i) {
    const float r = ref.v[i], o = out.v[i];
    if (std::isnan(r) || std::isinf(r)) continue;
    const double err = std::fabs(static_cast<double>(o) - r);
    const double tol = ref.exact ? 0.0 : (ref.atol >= 0 ? ref.atol : atol) + rtol * std::fabs(r);
    const bool ok = ref.exact ? std::memcmp(&r, &o, sizeof r) == 0 : err <= tol;
    if (!ok) {
      if (bad++ == 0) first = i;
      worst = std::max(worst, tol > 0 ? err / tol : err);
    }
  }
  if (bad == 0) return "";
  std::ostringstream os;
  os << std::setprecision(9) << ref.name << ": " << bad << " of " << ref.v.size() << " differ"
     << (ref.exact ? " (exact)" : "") << ", worst " << worst << (ref.exact ? "" : "x the tolerance") << "; first ["
     << first << "]: ref " << ref.v[first] << ", got " << out.v[first];
  return os.str();
}

// ------------------------------------------------------------------ cases by op family

inline Case gemm_case(bool ta, bool tb, int M, int N, int K, float alpha, float beta, bool big = false) {
  Case c;
  c.shape = "ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " " + dims({M, N, K}) +
            " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta);
  // Each fp32 result is within (K+2) u sum|a||b| of the exact product (u = 2^-24), so two are within
  // twice that of each other; E|a||b| = 2/pi for N(0,1) inputs, and beta C adds |beta| E|c| = 0.8 |beta|.
  c.atol = 1e-6 + 1.2e-7 * (K + 2) * (std::fabs(alpha) * 0.64 * K + 0.8 * std::fabs(beta));
  c.rtol = 1e-5;
  c.big = big;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    float* A = a.put(a.normal(static_cast<size_t>(M) * K));
    float* B = a.put(a.normal(static_cast<size_t>(K) * N));
    float* C = a.put(a.normal(static_cast<size_t>(M) * N));
    be.gemm(ta, tb, M, N, K, alpha, A, B, beta, C);
    return std::vector<Out>{a.get("C", C, static_cast<size_t>(M) * N)};
  };
  return c;
}

inline Case bias_act_case(Act act, int rows, int cols, bool bias, bool big = false) {
  Case c;
  c.shape = "act " + std::to_string(static_cast<int>(act)) + " " + dims({rows, cols}) + (bias ? " bias" : "");
  c.atol = 1e-6, c.rtol = 2e-6, c.big = big;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const size_t n = static_cast<size_t>(rows) * cols;
    float* b = bias ? a.put(a.normal(static_cast<size_t>(cols))) : nullptr;
    float* y = a.put(a.normal(n, 0.f, 2.f));
    be.bias_act_forward(act, 0.2f, rows, cols, b, y);
    std::vector<Out> out{a.get("y", y, n)};
    float* g = a.put(a.normal(n));
    float* gb = bias ? a.put(a.normal(static_cast<size_t>(cols))) : nullptr;
    be.bias_act_backward(act, 0.2f, rows, cols, y, g, gb);
    out.push_back(a.get("g", g, n));
    if (bias) out.push_back(a.get("gbias", gb, static_cast<size_t>(cols)));
    return out;
  };
  return c;
}

// Batch norm, train (forward and backward) then eval; sync: the _sync ops with one rank.
inline Case batchnorm_case(int N, int C, int S, float eps, Act act, bool sync, bool big = false) {
  Case c;
  c.shape = dims({N, C, S}) + " eps=" + std::to_string(eps) + " act " + std::to_string(static_cast<int>(act)) +
            (sync ? " (sync, one rank)" : "");
  c.atol = 1e-5, c.rtol = 1e-4, c.big = big;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const size_t n = static_cast<size_t>(N) * C * S, nc = static_cast<size_t>(C);
    float* x = a.put(a.normal(n, 0.5f, 2.f));
    float* gamma = a.put(a.uniform(nc, 0.5f, 1.5f));
    float* beta = a.put(a.normal(nc));
    float* y = a.zeros(n);
    float* mean = a.zeros(nc);
    float* invstd = a.zeros(nc);
    float* rm = a.put(a.normal(nc));
    float* rv = a.put(a.uniform(nc, 0.5f, 2.f));
    if (sync)
      be.batchnorm_forward_train_sync(N, C, S, eps, 0.1f, x, gamma, beta, y, mean, invstd, rm, rv, single_rank_reduce(),
                                      act, 0.2f);
    else
      be.batchnorm_forward_train(N, C, S, eps, 0.1f, x, gamma, beta, y, mean, invstd, rm, rv, act, 0.2f);
    std::vector<Out> out{a.get("y", y, n), a.get("save_mean", mean, nc), a.get("save_invstd", invstd, nc),
                         a.get("run_mean", rm, nc), a.get("run_var", rv, nc)};
    float* gy = a.put(a.normal(n));
    float* gx = a.zeros(n);
    float* gg = a.put(a.normal(nc));
    float* gbt = a.put(a.normal(nc));
    if (sync)
      be.batchnorm_backward_sync(N, C, S, x, gamma, mean, invstd, gy, gx, gg, gbt, single_rank_reduce());
    else
      be.batchnorm_backward(N, C, S, x, gamma, mean, invstd, gy, gx, gg, gbt);
    out.push_back(a.get("gx", gx, n));
    out.push_back(a.get("ggamma", gg, nc));
    out.push_back(a.get("gbeta", gbt, nc));
    be.batchnorm_forward_eval(N, C, S, eps, x, gamma, beta, rm, rv, y, act, 0.2f);
    out.push_back(a.get("y eval", y, n));
    return out;
  };
  return c;
}

inline Case conv_case(const ConvShape& s, Act act, bool big = false) {
  Case c;
  c.shape = "N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) + " " + dims({s.H, s.W}) +
            " K=" + std::to_string(s.K) + " kernel " + dims({s.R, s.S}) + " stride " + dims({s.stride_h, s.stride_w}) +
            " pad " + dims({s.pad_h, s.pad_w}) + " act " + std::to_string(static_cast<int>(act));
  // Each output is a sum of L products (forward C*R*S, data about K*R*S/strides, filter N*P*Q):
  // within 1e-5 + 2e-6 sqrt(L) sum|terms| of the CPU's (cuDNN's algorithms sum in other orders,
  // some through transforms), sum|terms| taken as its expectation L E|a||b| (x, gy ~ N(0,1),
  // w ~ N(0, 0.25): E|x||w| = 0.32, E|x||gy| = 0.64).
  const auto sum_tol = [](double L, double e_ab) { return 1e-5 + 2e-6 * std::sqrt(L) * L * e_ab; };
  const double L_fwd = static_cast<double>(s.C) * s.R * s.S;
  const double L_data =
      static_cast<double>(s.K) * ((s.R + s.stride_h - 1) / s.stride_h) * ((s.S + s.stride_w - 1) / s.stride_w);
  const double L_filt = static_cast<double>(s.N) * s.P() * s.Q();
  const double tol_y = sum_tol(L_fwd, 0.32), tol_gx = sum_tol(L_data, 0.32), tol_gw = sum_tol(L_filt, 0.64);
  c.atol = 1e-5, c.rtol = 1e-5, c.big = big;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const size_t nx = static_cast<size_t>(s.N) * s.C * s.H * s.W, nw = static_cast<size_t>(s.K) * s.C * s.R * s.S;
    const size_t ny = static_cast<size_t>(s.N) * s.K * s.P() * s.Q(), nk = static_cast<size_t>(s.K);
    float* ws = a.zeros(be.conv2d_workspace(s));
    float* x = a.put(a.normal(nx));
    float* w = a.put(a.normal(nw, 0.f, 0.5f));
    float* b = a.put(a.normal(nk));
    float* y = a.zeros(ny);
    be.conv2d_forward(s, x, w, b, y, ws, act, 0.2f);
    std::vector<Out> out{a.get("y", y, ny)};
    out.back().atol = tol_y;
    float* gy = a.put(a.normal(ny));
    float* gx = a.zeros(nx);
    be.conv2d_backward_data(s, gy, w, gx, ws);
    out.push_back(a.get("gx", gx, nx));
    out.back().atol = tol_gx;
    float* gw = a.put(a.normal(nw));
    float* gb = a.put(a.normal(nk));
    be.conv2d_backward_filter(s, x, gy, gw, gb, ws);
    out.push_back(a.get("gw", gw, nw));
    out.back().atol = tol_gw;
    out.push_back(a.get("gbias", gb, nk));  // our own kernel, sums in double: the case's 1e-5 + 1e-5 |ref|
    out.back().atol = 1e-5 + 2e-7 * std::sqrt(L_filt) * L_filt * 0.8;
    return out;
  };
  return c;
}

inline Case pool_case(Pool k, const PoolShape& s, bool big = false) {
  Case c;
  c.shape = std::string(k == Pool::avg ? "avg" : "max") + " N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) +
            " " + dims({s.H, s.W}) + " window " + dims({s.R, s.S}) + " stride " + dims({s.stride_h, s.stride_w}) +
            " pad " + dims({s.pad_h, s.pad_w});
  c.atol = 1e-6, c.rtol = 4e-6, c.big = big;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const size_t nx = static_cast<size_t>(s.N) * s.C * s.H * s.W, ny = static_cast<size_t>(s.N) * s.C * s.P() * s.Q();
    float* x = a.put(a.normal(nx));
    float* y = a.zeros(ny);
    be.pool2d_forward(k, s, x, y);
    std::vector<Out> out{a.get("y", y, ny)};
    if (k == Pool::max) out.back().exact = true;
    float* gy = a.put(a.normal(ny));
    float* gx = a.zeros(nx);
    be.pool2d_backward(k, s, x, y, gy, gx);
    out.push_back(a.get("gx", gx, nx));
    if (k == Pool::max) out.back().exact = true;
    return out;
  };
  return c;
}

inline Case fuse_case(Fusion f, int B, int in, int E, int K) {
  Case c;
  c.shape = "fusion " + std::to_string(static_cast<int>(f)) + " " + dims({B, in, E, K});
  c.atol = 1e-6, c.rtol = 1e-6;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const int cols = f == Fusion::embed_multiply ? in : in + E;
    const size_t no = static_cast<size_t>(B) * cols, nx = static_cast<size_t>(B) * in;
    const size_t nt = static_cast<size_t>(K) * E;
    float* x = a.put(a.normal(nx));
    float* cond = a.put(a.normal(static_cast<size_t>(B) * E));
    int32_t* labels = a.put(a.ints(static_cast<size_t>(B), 0, K - 1));
    float* table = a.put(a.normal(nt));
    float* o = a.zeros(no);
    be.fuse_forward(f, B, in, E, K, x, cond, labels, table, o);
    std::vector<Out> out{a.get("out", o, no)};
    float* gout = a.put(a.normal(no));
    float* gx = a.zeros(nx);
    float* gt = a.put(a.normal(nt));
    be.fuse_backward(f, B, in, E, K, x, labels, table, gout, gx, f == Fusion::concat ? nullptr : gt);
    out.push_back(a.get("gx", gx, nx));
    out.push_back(a.get("gtable", gt, nt));
    float* oh = a.zeros(static_cast<size_t>(B) * K);
    be.one_hot(B, K, labels, oh);
    out.push_back(Arena::exact(a.get("one_hot", oh, static_cast<size_t>(B) * K)));
    return out;
  };
  return c;
}

inline Case one_hot_case(int B, int K) {
  Case c;
  c.shape = "one_hot " + dims({B, K});
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    int32_t* labels = a.put(a.ints(static_cast<size_t>(B), 0, K - 1));
    float* out = a.put(a.normal(static_cast<size_t>(B) * K));  // overwritten
    be.one_hot(B, K, labels, out);
    return std::vector<Out>{Arena::exact(a.get("one_hot", out, static_cast<size_t>(B) * K))};
  };
  return c;
}

inline Case loss_case(LossKind k, int n, float target, float weight) {
  Case c;
  c.shape =
      "loss " + std::to_string(static_cast<int>(k)) + " n=" + std::to_string(n) + " target=" + std::to_string(target);
  c.atol = 1e-6, c.rtol = 1e-5;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    float* x = a.put(a.normal(static_cast<size_t>(n), 0.f, 3.f));
    float* grad = a.zeros(static_cast<size_t>(n));
    float* acc = a.put(Floats{0.25f, 1.f, 2.f});
    be.loss_fused(k, n, x, target, weight, grad, acc);
    return std::vector<Out>{a.get("grad", grad, static_cast<size_t>(n)), a.get("acc", acc, 3)};
  };
  return c;
}

inline Case softmax_case(int B, int K) {
  Case c;
  c.shape = dims({B, K});
  c.atol = 1e-6, c.rtol = 1e-5;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const size_t n = static_cast<size_t>(B) * K;
    float* x = a.put(a.normal(n, 0.f, 3.f));
    int32_t* labels = a.put(a.ints(static_cast<size_t>(B), 0, K - 1));
    float* grad = a.zeros(n);
    float* acc = a.put(Floats{0.5f, 1.f});
    be.softmax_xent(B, K, x, labels, 0.7f, grad, acc);
    return std::vector<Out>{a.get("grad", grad, n), a.get("acc", acc, 2)};
  };
  return c;
}

inline Case adam_case(size_t n, bool counter) {
  Case c;
  c.shape = "n=" + std::to_string(n) + (counter ? " step counter" : "");
  c.atol = 1e-7, c.rtol = 1e-5;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    float* p = a.put(a.normal(n));
    float* g = a.put(a.normal(n, 0.f, 0.1f));
    float* m = a.put(a.normal(n, 0.f, 0.01f));
    float* v = a.put(a.uniform(n, 0.f, 1e-3f));
    int32_t* t = counter ? a.put(Ints{4}) : nullptr;
    be.adam(n, p, g, m, v, 2e-4f, 0.5f, 0.999f, 1e-8f, 3, t);
    return std::vector<Out>{a.get("p", p, n), a.get("m", m, n), a.get("v", v, n)};
  };
  return c;
}

inline Case ema_case(size_t n, int start, int t, bool counter) {
  Case c;
  c.shape = "n=" + std::to_string(n) + " start=" + std::to_string(start) + " t=" + std::to_string(t);
  c.atol = 1e-7, c.rtol = 1e-6;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    float* avg = a.put(a.normal(n));
    float* p = a.put(a.normal(n));
    int32_t* tc = counter ? a.put(Ints{2}) : nullptr;
    be.ema_update(n, avg, p, 0.999f, start, t, tc);
    return std::vector<Out>{a.get("avg", avg, n)};
  };
  return c;
}

inline Case rng_case(size_t n, bool counter) {
  Case c;
  c.shape = "n=" + std::to_string(n) + (counter ? " stream counter" : "");
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    int32_t* ctr = a.put(Ints{3});
    const RngStream st = counter ? RngStream(7, ctr, 11) : RngStream(7);
    float* nrm = a.zeros(n);
    float* uni = a.zeros(n);
    int32_t* below = a.put(Ints(n, 0));
    int32_t* perm = a.put(Ints(n, 0));
    be.rand_normal(n, seed, st, 5, 0.5f, 2.f, nrm);
    be.rand_uniform(n, seed, st, 9, -1.f, 3.f, uni);
    be.rand_below(n, seed, st, 2, 10, below);
    be.permutation(static_cast<int>(n), seed, 13, perm);
    // rand_normal: Box-Muller through logf/cosf, whose last bit may differ on the GPU
    std::vector<Out> out{a.get("rand_normal", nrm, n), Arena::exact(a.get("rand_uniform", uni, n)),
                         a.get_int("rand_below", below, n), a.get_int("permutation", perm, n)};
    return out;
  };
  c.atol = 1e-6, c.rtol = 1e-6;
  return c;
}

inline Case dropout_case(size_t n, float p) {
  Case c;
  c.shape = "n=" + std::to_string(n) + " p=" + std::to_string(p);
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    float* x = a.put(a.normal(n));
    float* mask = a.zeros(n);
    be.dropout_forward(n, p, seed, 3, x, mask, 17);
    std::vector<Out> out{Arena::exact(a.get("x", x, n)), Arena::exact(a.get("mask", mask, n))};
    float* g = a.put(a.normal(n));
    be.mul(n, mask, g);
    out.push_back(Arena::exact(a.get("mul", g, n)));
    return out;
  };
  return c;
}

// y += alpha x: bit for bit on every backend (no fused multiply-add).
inline Case axpy_case(size_t n, float alpha) {
  Case c;
  c.shape = "n=" + std::to_string(n) + " alpha=" + std::to_string(alpha);
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const float* x = a.put(a.normal(n));
    float* y = a.put(a.normal(n));
    be.axpy(n, alpha, x, y);
    return std::vector<Out>{Arena::exact(a.get("y", y, n))};
  };
  return c;
}

inline Case gather_case(int B, int cols, int rows, bool offset) {
  Case c;
  c.shape = dims({B, cols, rows}) + (offset ? " offset" : "");
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const int o = offset ? 3 : 0;
    float* src = a.put(a.normal(static_cast<size_t>(rows) * cols));
    int32_t* srci = a.put(a.ints(static_cast<size_t>(rows), -1000, 1000));
    int32_t* idx = a.put(a.ints(static_cast<size_t>(B + o), 0, rows - 1));
    int32_t* off = offset ? a.put(Ints{o}) : nullptr;
    float* dst = a.zeros(static_cast<size_t>(B) * cols);
    int32_t* dsti = a.put(Ints(static_cast<size_t>(B), 0));
    be.gather_rows(B, cols, rows, src, idx, dst, off);
    be.gather_int(B, rows, srci, idx, dsti, off);
    const int c0 = cols / 3, nc = cols - c0 - (cols > 2 ? 1 : 0);
    float* part = a.zeros(static_cast<size_t>(B) * std::max(nc, 1));
    be.copy_cols(B, cols, c0, nc, src, part);
    return std::vector<Out>{Arena::exact(a.get("gather_rows", dst, static_cast<size_t>(B) * cols)),
                            a.get_int("gather_int", dsti, static_cast<size_t>(B)),
                            Arena::exact(a.get("copy_cols", part, static_cast<size_t>(B) * nc))};
  };
  return c;
}

inline Case memory_case(size_t n) {
  Case c;
  c.shape = "n=" + std::to_string(n);
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const Floats h = a.normal(n);
    const Ints hi = a.ints(n, -1000000, 1000000);
    float* x = a.zeros(n);
    be.upload(x, h.data(), n);
    int32_t* xi = a.put(Ints(n, 0));
    be.upload_int(xi, hi.data(), n);
    std::vector<Out> out{Arena::exact(a.get("upload/download", x, n)), a.get_int("upload_int/download_int", xi, n)};
    float* y = a.zeros(n);
    be.copy(y, x, n);
    out.push_back(Arena::exact(a.get("copy", y, n)));
    be.fill(y, n, -0.f);
    out.push_back(Arena::exact(a.get("fill", y, n)));
    return out;
  };
  return c;
}

inline Case counters_case(size_t n, int slots) {
  Case c;
  c.shape = "n=" + std::to_string(n) + " slots=" + std::to_string(slots);
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const Ints d = a.ints(8, -5, 5);
    int32_t* x = a.put(a.ints(8, 0, 100));
    be.add_ints(8, x, d.data());
    int32_t* slot = a.put(Ints{slots - 1});
    float* src = a.put(a.normal(n));
    float* dst = a.put(a.normal(n * slots));
    be.copy_to_slot(n, src, dst, slot, slots);
    return std::vector<Out>{a.get_int("add_ints", x, 8), Arena::exact(a.get("copy_to_slot", dst, n * slots))};
  };
  return c;
}

inline Case projection_case(int B, int F) {
  Case c;
  c.shape = dims({B, F});
  c.atol = 1e-6, c.rtol = 1e-5;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const size_t n = static_cast<size_t>(B) * F;
    float* phi = a.put(a.normal(n));
    float* e = a.put(a.normal(n));
    float* o = a.put(a.normal(static_cast<size_t>(B)));
    be.projection_forward(B, F, phi, e, o);
    float* g = a.put(a.normal(static_cast<size_t>(B)));
    float* gphi = a.put(a.normal(n));
    float* ge = a.zeros(n);
    be.projection_backward(B, F, phi, e, g, gphi, ge);
    return std::vector<Out>{a.get("out", o, static_cast<size_t>(B)), a.get("gphi", gphi, n), a.get("ge", ge, n)};
  };
  return c;
}

inline Case cbn_case(int N, int C, int S, Act act, bool big = false) {
  Case c;
  c.shape = dims({N, C, S}) + " act " + std::to_string(static_cast<int>(act));
  c.atol = 1e-5, c.rtol = 1e-4, c.big = big;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const size_t n = static_cast<size_t>(N) * C * S, nc = static_cast<size_t>(C), nnc = static_cast<size_t>(N) * C;
    float* x = a.put(a.normal(n, -0.5f, 1.5f));
    float* dg = a.put(a.normal(nnc, 0.f, 0.3f));
    float* db = a.put(a.normal(nnc, 0.f, 0.3f));
    float* y = a.zeros(n);
    float* mean = a.zeros(nc);
    float* invstd = a.zeros(nc);
    float* rm = a.put(a.normal(nc));
    float* rv = a.put(a.uniform(nc, 0.5f, 2.f));
    be.cbn_forward_train(N, C, S, 1e-5f, 0.1f, x, dg, db, y, mean, invstd, rm, rv, act, 0.2f);
    std::vector<Out> out{a.get("y", y, n), a.get("save_mean", mean, nc), a.get("save_invstd", invstd, nc),
                         a.get("run_mean", rm, nc), a.get("run_var", rv, nc)};
    float* gy = a.put(a.normal(n));
    float* gx = a.zeros(n);
    float* gdg = a.zeros(nnc);
    float* gdb = a.zeros(nnc);
    be.cbn_backward(N, C, S, x, dg, mean, invstd, gy, gx, gdg, gdb);
    out.push_back(a.get("gx", gx, n));
    out.push_back(a.get("gdgain", gdg, nnc));
    out.push_back(a.get("gdbias", gdb, nnc));
    be.cbn_forward_eval(N, C, S, 1e-5f, x, dg, db, rm, rv, y, act, 0.2f);
    out.push_back(a.get("y eval", y, n));
    return out;
  };
  return c;
}

inline Case spectral_norm_case(int rows, int cols) {
  Case c;
  c.shape = dims({rows, cols});
  c.atol = 1e-6, c.rtol = 1e-5;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    const size_t n = static_cast<size_t>(rows) * cols;
    float* t = a.put(a.normal(static_cast<size_t>(rows)));
    float* u = a.zeros(static_cast<size_t>(rows));
    float* sigma = a.zeros(1);
    be.spectral_norm_vec(rows, t, true, 1e-12f, u, sigma);
    std::vector<Out> out{a.get("u", u, static_cast<size_t>(rows)), a.get("sigma", sigma, 1)};
    be.spectral_norm_vec(rows, t, false, 1e-12f, u, sigma);
    out.push_back(a.get("sigma (u held)", sigma, 1));
    float* w = a.put(a.normal(n));
    float* wsn = a.zeros(n);
    be.spectral_norm_scale(n, w, sigma, wsn);
    out.push_back(a.get("w_sn", wsn, n));
    float* g = a.put(a.normal(n));
    float* dot = a.put(a.normal(1));
    float* left = a.put(a.normal(static_cast<size_t>(rows)));
    float* right = a.put(a.normal(static_cast<size_t>(cols)));
    float* gw = a.put(a.normal(n));
    be.spectral_norm_grad(rows, cols, g, dot, left, right, sigma, gw);
    out.push_back(a.get("gw", gw, n));
    return out;
  };
  return c;
}

inline Case augment_case(int B, int C, int H, int W, bool color, bool translation, bool cutout, bool big = false) {
  Case c;
  c.shape =
      dims({B, C, H, W}) + (color ? " color" : "") + (translation ? " translation" : "") + (cutout ? " cutout" : "");
  c.atol = 1e-5, c.rtol = 1e-5, c.big = big;
  c.run = [=](Backend& be, uint64_t seed) {
    Arena a(be, seed);
    AugmentSpec s;
    s.C = C, s.H = H, s.W = W;
    s.color = color, s.translation = translation, s.cutout = cutout;
    const size_t n = static_cast<size_t>(B) * C * H * W, np = static_cast<size_t>(B) * kAugmentParams;
    float* x = a.put(a.uniform(n, -1.f, 1.f));
    float* y = a.zeros(n);
    float* params = a.zeros(np);
    be.augment_forward(s, B, seed, 21, 5, x, y, params);
    std::vector<Out> out{a.get("y", y, n), a.get("params", params, np)};
    float* gy = a.put(a.normal(n));
    float* gx = a.zeros(n);
    be.augment_backward(s, B, params, gy, gx);
    out.push_back(a.get("gx", gx, n));
    return out;
  };
  return c;
}

// ------------------------------------------------------------------ the table

// The real model sizes: mnist_mlp (batch 64: 110 -> 128 -> 784 in G, 784+10 -> 128 -> 1 in D) and
// anime_conv (configs/anime_conv.json, batch 64: G's 15 -> 50 -> 25 channels at 192x192 and its
// 2x2 / 2 output conv, D's 5x5 convs at 96x96 and 48x48 with their 2x2 average pools).
inline std::vector<Entry> op_table() {
  std::vector<Entry> t;
  t.push_back({{"upload", "download", "upload_int", "download_int", "fill", "copy"},
               {OpKind::transfer, OpKind::copy},
               {memory_case(1), memory_case(257), memory_case(100003)}});
  t.push_back({{"gemm"},
               {OpKind::gemm},
               {gemm_case(false, false, 7, 13, 5, 1.f, 0.f), gemm_case(true, false, 17, 3, 29, 0.5f, 1.f),
                gemm_case(false, true, 1, 33, 65, -1.f, 0.25f), gemm_case(true, true, 31, 1, 2, 2.f, 0.f),
                gemm_case(false, false, 64, 128, 110, 1.f, 0.f, true),     // mnist_mlp G layer 1
                gemm_case(false, true, 64, 784, 128, 1.f, 0.f, true),      // G layer 2 (weights [784,128])
                gemm_case(true, false, 110, 128, 64, 1.f, 1.f, true),      // its weight gradient
                gemm_case(false, false, 64, 110, 128, 1.f, 0.f, true)}});  // its input gradient
  t.push_back({{"bias_act_forward", "bias_act_backward"},
               {OpKind::act_fwd, OpKind::act_bwd},
               {bias_act_case(Act::none, 3, 5, true), bias_act_case(Act::relu, 17, 9, true),
                bias_act_case(Act::leaky_relu, 1, 31, false), bias_act_case(Act::sigmoid, 13, 1, true),
                bias_act_case(Act::tanh, 7, 7, true), bias_act_case(Act::leaky_relu, 64, 128, true, true),
                bias_act_case(Act::tanh, 64, 784, true, true)}});
  t.push_back({{"dropout_forward", "mul"}, {OpKind::dropout}, {dropout_case(1, 0.5f), dropout_case(1001, 0.3f)}});
  t.push_back({{"axpy"}, {OpKind::bn_fwd}, {axpy_case(1, 0.1f), axpy_case(50, 0.1f), axpy_case(100003, -1.7f)}});
  t.push_back({{"batchnorm_forward_train", "batchnorm_forward_eval", "batchnorm_backward"},
               {OpKind::bn_fwd, OpKind::bn_bwd},
               {batchnorm_case(2, 3, 1, 1e-5f, Act::none, false), batchnorm_case(5, 7, 11, 0.8f, Act::relu, false),
                batchnorm_case(3, 1, 257, 1e-5f, Act::leaky_relu, false),
                batchnorm_case(64, 128, 1, 0.8f, Act::leaky_relu, false, true),    // mnist_mlp
                batchnorm_case(64, 15, 192 * 192, 1e-5f, Act::relu, false, true),  // anime_conv G
                batchnorm_case(64, 50, 192 * 192, 1e-5f, Act::relu, false, true)}});
  t.push_back(
      {{"batchnorm_forward_train_sync", "batchnorm_backward_sync"},
       {OpKind::bn_fwd, OpKind::bn_bwd},
       {batchnorm_case(3, 5, 7, 1e-5f, Act::tanh, true), batchnorm_case(64, 128, 1, 0.8f, Act::none, true, true)}});
  t.push_back({{"conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter", "conv2d_workspace"},
               {OpKind::conv_fwd, OpKind::conv_bwd_data, OpKind::conv_bwd_filter},
               {conv_case(conv_shape(3, 4, 17, 13, 15, 5, 3, 2, 2, 2, 1), Act::none),
                conv_case(conv_shape(2, 15, 11, 23, 25, 3, 5, 3, 3, 0, 2), Act::leaky_relu),
                conv_case(conv_shape(1, 50, 7, 7, 3, 7, 7, 1, 1, 0, 0), Act::tanh),
                conv_case(conv_shape(5, 1, 9, 9, 1, 1, 1, 1, 1, 0, 0), Act::sigmoid),
                conv_case(conv_shape(1, 4, 5, 6, 4, 2, 2, 3, 2, 1, 1), Act::relu),
                conv_case(conv_shape(64, 15, 192, 192, 50, 3, 3, 1, 1, 1, 1), Act::none, true),         // G conv 1
                conv_case(conv_shape(64, 50, 192, 192, 25, 3, 3, 1, 1, 1, 1), Act::none, true),         // G conv 2
                conv_case(conv_shape(64, 25, 192, 192, 3, 2, 2, 2, 2, 0, 0), Act::tanh, true),          // G output
                conv_case(conv_shape(64, 4, 96, 96, 32, 5, 5, 1, 1, 2, 2), Act::leaky_relu, true),      // D conv 1
                conv_case(conv_shape(64, 32, 48, 48, 64, 5, 5, 1, 1, 2, 2), Act::leaky_relu, true)}});  // D conv 2
  t.push_back({{"pool2d_forward", "pool2d_backward"},
               {OpKind::pool_fwd, OpKind::pool_bwd},
               {pool_case(Pool::avg, pool_shape(2, 3, 7, 9, 2, 3, 2, 1, 1, 1)),
                pool_case(Pool::max, pool_shape(3, 2, 11, 5, 3, 2, 2, 3, 1, 0)),
                pool_case(Pool::avg, pool_shape(64, 32, 96, 96, 2, 2, 2, 2, 0, 0), true),  // D pool 1
                pool_case(Pool::max, pool_shape(64, 64, 48, 48, 2, 2, 3, 3, 0, 0), true)}});
  t.push_back({{"fuse_forward", "fuse_backward", "one_hot"},
               {OpKind::fuse},
               {fuse_case(Fusion::concat, 3, 5, 7, 7), fuse_case(Fusion::embed_concat, 13, 1, 3, 5),
                fuse_case(Fusion::embed_multiply, 9, 17, 17, 4), fuse_case(Fusion::concat, 64, 100, 10, 10)}});
  for (int B : {1, 7, 300})
    for (int K : {1, 3, 10}) t.back().cases.push_back(one_hot_case(B, K));
  t.push_back(
      {{"loss_fused", "softmax_xent"},
       {OpKind::loss},
       {loss_case(LossKind::log, 1, 1.f, 0.5f), loss_case(LossKind::log, 1001, 0.f, 1.f),
        loss_case(LossKind::squared, 63, 1.f, 0.5f), loss_case(LossKind::hinge, 65, -1.f, 1.f),
        loss_case(LossKind::linear, 64, 1.f, 1.f), softmax_case(3, 7), softmax_case(64, 10), softmax_case(1, 1)}});
  t.push_back({{"adam"}, {OpKind::adam}, {adam_case(1, false), adam_case(1027, true)}});
  t.push_back({{"ema_update"}, {OpKind::ema}, {ema_case(33, 5, 1, false), ema_case(1001, 0, 3, true)}});
  t.push_back({{"rand_normal", "rand_uniform", "rand_below", "permutation"},
               {OpKind::rng},
               {rng_case(1, false), rng_case(1003, true), rng_case(60000, false)}});
  {
    Entry g{{"gather_rows", "gather_int", "copy_cols"}, {OpKind::gather}, {gather_case(3, 5, 7, true)}};
    for (int B : {1, 7, 64, 257})
      for (int cols : {1, 3, 784}) g.cases.push_back(gather_case(B, cols, 1000, false));
    for (int B : {1, 7, 64})
      for (int cols : {5, 9217}) g.cases.push_back(gather_case(B, cols, 300, B == 7));
    t.push_back(std::move(g));
  }
  t.push_back({{"add_ints", "copy_to_slot"}, {OpKind::counters}, {counters_case(1, 1), counters_case(37, 5)}});
  t.push_back({{"projection_forward", "projection_backward"},
               {OpKind::fuse},
               {projection_case(1, 1), projection_case(7, 33), projection_case(64, 128)}});
  t.push_back({{"cbn_forward_train", "cbn_forward_eval", "cbn_backward"},
               {OpKind::bn_fwd, OpKind::bn_bwd},
               {cbn_case(2, 3, 1, Act::none), cbn_case(5, 7, 13, Act::relu), cbn_case(64, 128, 1, Act::leaky_relu),
                cbn_case(64, 15, 192 * 192, Act::relu, true)}});
  t.push_back({{"spectral_norm_vec", "spectral_norm_scale", "spectral_norm_grad"},
               {OpKind::spectral_norm},
               {spectral_norm_case(1, 1), spectral_norm_case(7, 13), spectral_norm_case(128, 794)}});
  t.push_back(
      {{"augment_forward", "augment_backward"},
       {OpKind::augment},
       {augment_case(2, 1, 7, 9, true, false, false), augment_case(3, 3, 11, 5, false, true, true),
        augment_case(5, 2, 8, 8, true, true, true), augment_case(64, 1, 28, 28, true, true, true, true),  // mnist
        augment_case(64, 3, 96, 96, true, true, true, true)}});                                           // anime
  return t;
}

}  // namespace optable
}  // namespace cgan
