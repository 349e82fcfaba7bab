// Spectral normalization (cgan/nn/spectral_norm.hpp) on the CPU backend: the config syntax and its
// errors; the model's slots, names and init; one training forward against a host double reference of
// PyTorch's algorithm (power iteration, sigma, W / sigma); the backward against central finite
// differences; sigma against the largest singular value from a Jacobi eigen-decomposition; the
// Backend ops against their formulas; checkpoints in PyTorch's names, resume exactness; the memory
// plan.
//
// Inputs are fresh on every run (std::random_device, or CGAN_TEST_SEED to replay a failure); the
// seed is printed with every failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/nn/memory_plan.hpp"
#include "cgan/nn/model.hpp"
#include "cgan/nn/spectral_norm.hpp"
#include "cgan/nn/state_dict.hpp"
#include "cgan/train/trainer.hpp"
#include "e2e/e2e_util.hpp"
#include "model_fd.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

using json = nlohmann::json;
using testutil::error_of;

using testutil::test_seed;

// A config on 2-D points whose discriminator is `d` (a network object).
Config config_with_d(const json& d) {
  json cfg = {{"data", {{"kind", "mixture"}, {"count", 100}}},
              {"generator", {{"noise_dim", 2}, {"condition", {{"mode", "none"}}}, {"layers", {{{"linear", 2}}}}}},
              {"discriminator", d}};
  return parse_config(cfg);
}
NetSpec d_net(const json& layers, const json& extra = json::object()) {
  json d = {{"condition", {{"mode", "none"}}}, {"layers", layers}};
  d.update(extra);
  return config_with_d(d).discriminator;
}

// ---------------------------------------------------------------- config

TEST(SpectralNormConfig, LayerKeysAndTheNetworkDefault) {
  NetSpec n = d_net(json::parse(R"([{"linear": 8, "spectral_norm": true}, {"leaky_relu": 0.2}, {"linear": 1}])"));
  EXPECT_TRUE(n.layers[0].spectral_norm);
  EXPECT_FALSE(n.layers[1].spectral_norm);
  EXPECT_FALSE(n.layers[2].spectral_norm);
  // the network's key: every linear / conv2d, unless the layer says false
  n = d_net(json::parse(R"([{"reshape": [2, 1, 1]}, {"conv2d": {"out": 3, "kernel": 1}}, {"relu": {}},
                            {"linear": 4, "spectral_norm": false}, {"linear": 1}])"),
            {{"spectral_norm", true}});
  const bool want[] = {false, true, false, false, true};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(n.layers[i].spectral_norm, want[i]) << "layer " << i;
  // inside a conv2d's object
  n = d_net(json::parse(R"([{"reshape": [2, 1, 1]}, {"conv2d": {"out": 3, "kernel": 1, "spectral_norm": true}},
                            {"linear": 1}])"));
  EXPECT_TRUE(n.layers[1].spectral_norm);
  EXPECT_FALSE(n.layers[2].spectral_norm);
  // the config in effect names each normalised layer; the others are written as before
  const json j = net_spec_to_json(n);
  EXPECT_EQ(j["layers"][1], json::parse(R"({"conv2d": {"out": 3, "kernel": 1, "stride": 1, "padding": 0},
                                            "spectral_norm": true})"));
  EXPECT_EQ(j["layers"][2], json::parse(R"({"linear": 1})"));
  const NetSpec back = parse_net_spec(j, "discriminator");
  ASSERT_EQ(back.layers.size(), n.layers.size());
  for (size_t i = 0; i < n.layers.size(); ++i) EXPECT_EQ(back.layers[i].spectral_norm, n.layers[i].spectral_norm);
}

TEST(SpectralNormConfig, BadValuesNameTheKey) {
  auto err = [](const std::string& layers, const json& extra = json::object()) {
    return error_of([&] { d_net(json::parse(layers), extra); });
  };
  EXPECT_EQ(err(R"([{"linear": 8}, {"relu": {}, "spectral_norm": true}, {"linear": 1}])"),
            "discriminator.layers[1].spectral_norm: only linear and conv2d layers take spectral normalization "
            "(this is a relu)");
  EXPECT_EQ(err(R"([{"linear": 8, "spectral_norm": 1}, {"linear": 1}])"),
            "discriminator.layers[0].spectral_norm: expected true or false, got 1");
  EXPECT_EQ(
      err(R"([{"reshape": [2, 1, 1]}, {"conv2d": {"out": 3, "kernel": 1, "spectral_norm": "on"}}, {"linear": 1}])"),
      "discriminator.layers[1].conv2d.spectral_norm: expected true or false, got \"on\"");
  EXPECT_EQ(err(R"([{"reshape": [2, 1, 1]}, {"conv2d": {"out": 3, "kernel": 1, "spectral_norm": true},
                    "spectral_norm": true}, {"linear": 1}])"),
            "discriminator.layers[1].conv2d.spectral_norm: given twice (also beside \"conv2d\"); keep one");
  EXPECT_EQ(err(R"([{"linear": 1}])", {{"spectral_norm", "yes"}}),
            "discriminator.spectral_norm: expected true or false, got \"yes\"");
  const std::string m = err(R"([{"linear": 8, "spectral_norms": true}, {"linear": 1}])");
  EXPECT_EQ(m.rfind("discriminator.layers[0]: expected an object with one key naming the layer (", 0), 0u) << m;
  EXPECT_NE(m.find("optionally \"spectral_norm\""), std::string::npos) << m;
}

// ---------------------------------------------------------------- helpers on a model's slots

const ParamSlot& slot(const Model& m, const std::string& name) {
  for (const ParamSlot& s : m.slots())
    if (s.name == name) return s;
  throw Error("no slot " + name);
}

std::vector<float> fetch(Backend& be, const float* p, size_t n) {
  std::vector<float> h(n);
  if (n) be.download(h.data(), p, n);
  return h;
}

// W as PyTorch sees it ([rows, cols] row-major, double) from a weight slot.
std::vector<double> torch_matrix(const std::vector<float>& p, const ParamSlot& w, int rows, int cols, bool transposed) {
  std::vector<double> W(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      W[static_cast<size_t>(r) * cols + c] =
          p[w.offset + (transposed ? static_cast<size_t>(c) * rows + r : static_cast<size_t>(r) * cols + c)];
  return W;
}

std::vector<double> normalized(std::vector<double> x) {
  double n = 0;
  for (double v : x) n += v * v;
  n = std::max(std::sqrt(n), 1e-12);
  for (double& v : x) v /= n;
  return x;
}

// y = W x or W^T x
std::vector<double> mv(const std::vector<double>& W, int rows, int cols, const std::vector<double>& x, bool t) {
  std::vector<double> y(t ? cols : rows, 0.0);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const double w = W[static_cast<size_t>(r) * cols + c];
      if (t)
        y[c] += w * x[r];
      else
        y[r] += w * x[c];
    }
  return y;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------- model slots and init

TEST(SpectralNormModel, SlotsStateNamesInitAndSummary) {
  auto be = make_cpu_backend();
  const NetSpec n =
      d_net(json::parse(R"([{"reshape": [2, 3, 3]}, {"conv2d": {"out": 4, "kernel": 2}, "spectral_norm": true},
                                          {"leaky_relu": 0.2}, {"linear": 5, "spectral_norm": true}, {"linear": 1}])"));
  Model m(*be, n, 18, 0, 3, "d");
  const struct {
    const char* name;
    std::vector<int64_t> shape;
    bool state;
  } want[] = {{"layers.1.weight_orig", {4, 2, 2, 2}, false},
              {"layers.1.bias", {4}, false},
              {"layers.1.weight_u", {4}, true},
              {"layers.1.weight_v", {8}, true},
              {"layers.3.weight_orig", {16, 5}, false},
              {"layers.3.bias", {5}, false},
              {"layers.3.weight_u", {5}, true},
              {"layers.3.weight_v", {16}, true},
              {"layers.4.weight", {5, 1}, false},
              {"layers.4.bias", {1}, false}};
  ASSERT_EQ(m.slots().size(), std::size(want));
  for (size_t i = 0; i < std::size(want); ++i) {
    EXPECT_EQ(m.slots()[i].name, want[i].name);
    EXPECT_EQ(m.slots()[i].shape, want[i].shape) << want[i].name;
    EXPECT_EQ(m.slots()[i].state, want[i].state) << want[i].name;
  }
  const std::string s = m.summary();
  EXPECT_NE(s.find("conv2d 2x3x3 -> 4x2x2 (kernel 2x2, stride 1x1) + leaky_relu (fused) + spectral norm"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("linear 4x2x2 -> 5 + spectral norm"), std::string::npos) << s;
  EXPECT_EQ(s.find("linear 5 -> 1 + spectral norm"), std::string::npos) << s;

  // u and v: unit vectors of normal draws, reproducible from the seed, different per vector
  m.init_params(11);
  const std::vector<float> st = fetch(*be, m.state(), m.state_count());
  for (const char* name : {"layers.1.weight_u", "layers.1.weight_v", "layers.3.weight_u", "layers.3.weight_v"}) {
    const ParamSlot& sl = slot(m, name);
    double n2 = 0, big = 0;
    for (size_t i = sl.offset; i < sl.offset + sl.count; ++i)
      n2 += double(st[i]) * st[i], big = std::max(big, std::fabs(double(st[i])));
    EXPECT_NEAR(n2, 1.0, 1e-6) << name;
    EXPECT_LT(big, 0.999) << name << ": not a one-hot vector";
  }
  EXPECT_NE(st[slot(m, "layers.3.weight_u").offset], st[slot(m, "layers.1.weight_u").offset]);
  m.init_params(11);
  EXPECT_EQ(fetch(*be, m.state(), m.state_count()), st);
}

// ---------------------------------------------------------------- one forward against PyTorch's algorithm

// A linear and a conv network of one normalised layer each: the training forward's output, u and v
// against the host double reference of torch.nn.utils.spectral_norm's pre-forward hook, and the
// evaluation forward (no iteration: u, v unchanged, sigma from the stored vectors).
TEST(SpectralNormModel, OneForwardIsPyTorchsPowerIterationAndScaling) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  for (const bool conv : {false, true}) {
    SCOPED_TRACE(conv ? "conv2d" : "linear");
    const int B = 3, C = 2, H = 3, K = 4, R = 2;  // conv: 2x3x3 -> 4x2x2, W [4, 8]
    const NetSpec n = conv ? d_net(json::parse(R"([{"reshape": [2, 3, 3]},
                                                   {"conv2d": {"out": 4, "kernel": 2}, "spectral_norm": true}])"))
                           : d_net(json::parse(R"([{"linear": 6, "spectral_norm": true}])"));
    const int in = conv ? C * H * H : 5;
    Model m(*be, n, in, 0, B, "d");
    m.init_params(rng());
    const int rows = conv ? K : 6, cols = conv ? C * R * R : in;
    const std::string pre = conv ? "layers.1." : "layers.0.";
    const std::vector<float> p = fetch(*be, m.params(), m.param_count());
    std::vector<float> st = fetch(*be, m.state(), m.state_count());
    const ParamSlot &ws = slot(m, pre + "weight_orig"), &bs = slot(m, pre + "bias");
    const ParamSlot &us = slot(m, pre + "weight_u"), &vs = slot(m, pre + "weight_v");
    const std::vector<double> W = torch_matrix(p, ws, rows, cols, !conv);
    const std::vector<double> u0(st.begin() + us.offset, st.begin() + us.offset + rows);
    const std::vector<double> v1 = normalized(mv(W, rows, cols, u0, true));
    const std::vector<double> u1 = normalized(mv(W, rows, cols, v1, false));
    const double sigma = dot(u1, mv(W, rows, cols, v1, false));

    std::vector<float> x(static_cast<size_t>(B) * in);
    for (auto& v : x) v = uni(-1, 1);
    float* xd = be->alloc(x.size());
    be->upload(xd, x.data(), x.size());
    auto reference = [&](double s) {  // the layer's output with W / s
      std::vector<double> y;
      for (int b = 0; b < B; ++b) {
        const float* xb = x.data() + static_cast<size_t>(b) * in;
        if (!conv) {
          for (int o = 0; o < rows; ++o) {
            double a = p[bs.offset + o];
            for (int i = 0; i < in; ++i) a += W[static_cast<size_t>(o) * cols + i] / s * xb[i];
            y.push_back(a);
          }
          continue;
        }
        const int P = H - R + 1;
        for (int k = 0; k < K; ++k)
          for (int py = 0; py < P; ++py)
            for (int px = 0; px < P; ++px) {
              double a = p[bs.offset + k];
              for (int c = 0; c < C; ++c)
                for (int r = 0; r < R; ++r)
                  for (int q = 0; q < R; ++q)
                    a += W[static_cast<size_t>(k) * cols + (c * R + r) * R + q] / s * xb[(c * H + py + r) * H + px + q];
              y.push_back(a);
            }
      }
      return y;
    };
    auto expect_close = [](const std::vector<float>& got, const std::vector<double>& want, double tol,
                           const std::string& what) {
      ASSERT_EQ(got.size(), want.size()) << what;
      for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << what << "[" << i << "]";
    };
    const std::vector<float> y =
        fetch(*be, m.forward(xd, nullptr, nullptr, true), static_cast<size_t>(B) * m.out_dim());
    expect_close(y, reference(sigma), 2e-5, "training output");
    st = fetch(*be, m.state(), m.state_count());
    expect_close(std::vector<float>(st.begin() + us.offset, st.begin() + us.offset + rows), u1, 1e-6, "u after");
    expect_close(std::vector<float>(st.begin() + vs.offset, st.begin() + vs.offset + cols), v1, 1e-6, "v after");
    // evaluation: no iteration, sigma = u1^T W v1 from the stored vectors
    const std::vector<float> ye = fetch(*be, m.forward(xd, nullptr, nullptr, false), y.size());
    EXPECT_EQ(fetch(*be, m.state(), m.state_count()), st) << "an evaluation forward changed u or v";
    const std::vector<double> uf(st.begin() + us.offset, st.begin() + us.offset + rows);
    const std::vector<double> vf(st.begin() + vs.offset, st.begin() + vs.offset + cols);
    expect_close(ye, reference(dot(uf, mv(W, rows, cols, vf, false))), 2e-5, "evaluation output");
    be->free(xd);
  }
}

// ---------------------------------------------------------------- backward against finite differences

// L = sum_i r_i out_i. One training forward sets u, v (one power iteration) and sigma; backward
// gives dL/dW with u, v constant. The same function of the weights is the evaluation forward, which
// keeps the stored u, v: its central differences must match the backward, for every parameter
// tensor (weight_orig through sigma) and the input. Relative 1e-2 (float forward passes).
TEST(SpectralNormModel, BackwardMatchesFiniteDifferences) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto be = make_cpu_backend();
  const struct {
    const char* what;
    const char* layers;
    int in, batch;
  } cases[] = {
      {"linear", R"([{"linear": 7, "spectral_norm": true}, {"leaky_relu": 0.2}, {"linear": 3, "spectral_norm": true}])",
       5, 4},
      {"conv", R"([{"reshape": [2, 5, 4]}, {"conv2d": {"out": 3, "kernel": [3, 2], "stride": [2, 1], "padding": 1},
                   "spectral_norm": true}, {"tanh": {}},
                   {"conv2d": {"out": 2, "kernel": 2, "spectral_norm": true}}, {"linear": 2, "spectral_norm": true}])",
       40, 3},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    Model m(*be, d_net(json::parse(c.layers)), c.in, 0, c.batch, "d");
    m.init_params(rng());
    // make sigma matter: scale the weights up (sigma >> 1) so that a missing correction shows
    std::vector<float> p = fetch(*be, m.params(), m.param_count());
    for (auto& v : p) v *= 3.f;
    std::vector<float> st = fetch(*be, m.state(), m.state_count());
    m.set_params(p.data(), st.data());
    const int B = c.batch, O = m.out_dim();
    std::vector<float> x(static_cast<size_t>(B) * c.in), r(static_cast<size_t>(B) * O);
    for (auto& v : x) v = uni(-1, 1);
    for (auto& v : r) v = uni(-1, 1);
    float* xd = be->alloc(x.size());
    float* gxd = be->alloc(x.size());
    be->upload(xd, x.data(), x.size());
    m.forward(xd, nullptr, nullptr, true);  // one power iteration: u, v as the backward uses them
    std::vector<float> g, gx(x.size());
    modelfd::weighted_sum_backward(*be, m, r, gxd, g, gx);
    st = fetch(*be, m.state(), m.state_count());  // u, v after the iteration

    // eval mode: the stored u, v held (no power iteration inside the differences)
    auto loss = [&]() { return modelfd::weighted_sum_loss(*be, m, xd, nullptr, r, false); };
    // kinks (leaky ReLU): one-sided differences that disagree mark a coordinate to skip
    // (tests/model_fd.hpp)
    modelfd::FdCheck fd(loss);
    fd.params(
        m, p, st, g, [](const ParamSlot&) { return 6; }, rng);
    fd.inputs(*be, xd, x, gx, 8, rng);
    const int checked = fd.checked(), skipped = fd.skipped();
    std::printf("[ %s ] %d coordinates checked, %d skipped (non-smooth within the step)\n", c.what, checked, skipped);
    EXPECT_GE(checked, (checked + skipped) * 2 / 3);
    be->free(xd);
    be->free(gxd);
  }
}

// ---------------------------------------------------------------- sigma -> the largest singular value

// The eigenvalues of a symmetric matrix A [n, n] (cyclic Jacobi rotations, double).
std::vector<double> jacobi_eigenvalues(std::vector<double> A, int n) {
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) off += A[i * n + j] * A[i * n + j];
    if (off < 1e-30) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = A[p * n + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double cs = 1 / std::sqrt(t * t + 1), sn = t * cs;
        for (int k = 0; k < n; ++k) {  // A = J^T A J
          const double akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = cs * akp - sn * akq;
          A[k * n + q] = sn * akp + cs * akq;
        }
        for (int k = 0; k < n; ++k) {
          const double apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = cs * apk - sn * aqk;
          A[q * n + k] = sn * apk + cs * aqk;
        }
      }
  }
  std::vector<double> e(n);
  for (int i = 0; i < n; ++i) e[i] = A[i * n + i];
  return e;
}

// Largest singular value of W [rows, cols]: sqrt of the largest eigenvalue of the smaller Gram matrix.
double largest_singular_value(const std::vector<double>& W, int rows, int cols) {
  const bool left = rows <= cols;  // W W^T [rows, rows] or W^T W [cols, cols]
  const int n = left ? rows : cols;
  std::vector<double> G(static_cast<size_t>(n) * n, 0.0);
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) {
      double s = 0;
      if (left)
        for (int c = 0; c < cols; ++c) s += W[a * cols + c] * W[b * cols + c];
      else
        for (int r = 0; r < rows; ++r) s += W[r * cols + a] * W[r * cols + b];
      G[a * n + b] = s;
    }
  const std::vector<double> e = jacobi_eigenvalues(G, n);
  return std::sqrt(*std::max_element(e.begin(), e.end()));
}

// Many training forwards of one SpectralNorm: sigma = u^T W v never exceeds the largest singular
// value (u, v are unit vectors) and converges to it; W_sn then has spectral norm 1. Both storage
// orders (a conv's W, a linear's W^T).
TEST(SpectralNorm, SigmaConvergesToTheLargestSingularValue) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto be = make_cpu_backend();
  for (const SpectralNormShape s : {SpectralNormShape{13, 29, false}, SpectralNormShape{31, 17, true}}) {
    SCOPED_TRACE(cat(s.rows, "x", s.cols, s.transposed ? " stored transposed" : ""));
    std::vector<float> w(s.count()), u(s.rows), v(s.cols);
    for (auto& x : w) x = 0.3f * nd(rng);
    SpectralNorm::init_vector(u.data(), s.rows, rng(), 1);
    SpectralNorm::init_vector(v.data(), s.cols, rng(), 2);
    float* wd = be->alloc(w.size());
    float* ud = be->alloc(u.size());
    float* vd = be->alloc(v.size());
    be->upload(wd, w.data(), w.size());
    be->upload(ud, u.data(), u.size());
    be->upload(vd, v.data(), v.size());
    ParamSlot ws{"w", {}, 0, s.count(), false};
    const std::vector<double> W = torch_matrix(w, ws, s.rows, s.cols, s.transposed);
    const double smax = largest_singular_value(W, s.rows, s.cols);
    SpectralNorm sn(*be, s);
    float sigma = 0;
    for (int it = 0; it < 1000; ++it) {
      sn.forward(wd, ud, vd, true);
      be->download(&sigma, sn.sigma(), 1);
      ASSERT_LE(sigma, smax * (1 + 1e-5)) << "iteration " << it;
    }
    EXPECT_NEAR(sigma / smax, 1.0, 1e-5) << "sigma " << sigma << ", largest singular value " << smax;
    const std::vector<float> wsn = fetch(*be, sn.weight_sn(), s.count());
    EXPECT_NEAR(largest_singular_value(torch_matrix(wsn, ws, s.rows, s.cols, s.transposed), s.rows, s.cols), 1.0, 1e-5);
    be->free(wd);
    be->free(ud);
    be->free(vd);
  }
}

// ---------------------------------------------------------------- the Backend ops

TEST(SpectralNorm, BackendOpsMatchTheirFormulas) {
  const uint32_t seed = test_seed();
  SCOPED_TRACE(cat("CGAN_TEST_SEED=", seed));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto be = make_cpu_backend();
  const int n = 37, rows = 5, cols = 9;
  std::vector<float> t(n), u0(n);
  for (auto& x : t) x = nd(rng);
  for (auto& x : u0) x = nd(rng);
  float* td = be->alloc(n);
  float* ud = be->alloc(n);
  float* sd = be->alloc(1);
  be->upload(td, t.data(), n);
  // normalise + sigma
  be->spectral_norm_vec(n, td, true, 1e-12f, ud, sd);
  const std::vector<double> ref = normalized(std::vector<double>(t.begin(), t.end()));
  const std::vector<float> u = fetch(*be, ud, n);
  for (int i = 0; i < n; ++i) EXPECT_NEAR(u[i], ref[i], 1e-7) << i;
  EXPECT_NEAR(fetch(*be, sd, 1)[0],
              std::sqrt(dot(std::vector<double>(t.begin(), t.end()), std::vector<double>(t.begin(), t.end()))), 1e-5);
  // sigma only, with a given u (read, not written)
  be->upload(ud, u0.data(), n);
  be->spectral_norm_vec(n, td, false, 1e-12f, ud, sd);
  EXPECT_EQ(fetch(*be, ud, n), u0);
  EXPECT_NEAR(fetch(*be, sd, 1)[0],
              dot(std::vector<double>(u0.begin(), u0.end()), std::vector<double>(t.begin(), t.end())), 1e-5);
  // a zero vector stays zero (eps), as torch.nn.functional.normalize
  be->fill(td, n, 0.f);
  be->spectral_norm_vec(n, td, true, 1e-12f, ud, sd);
  EXPECT_EQ(fetch(*be, ud, n), std::vector<float>(n, 0.f));
  // W / sigma and the rank-one correction
  std::vector<float> w(rows * cols), g(rows * cols), gw(rows * cols), l(rows), r(cols);
  for (auto* vec : {&w, &g, &gw, &l, &r})
    for (auto& x : *vec) x = nd(rng);
  const float sigma = 1.7f, dt = -0.6f;
  float* wd = be->alloc(w.size());
  float* gd = be->alloc(g.size());
  float* gwd = be->alloc(gw.size());
  float* ld = be->alloc(rows);
  float* rd = be->alloc(cols);
  float* dd = be->alloc(1);
  be->upload(wd, w.data(), w.size());
  be->upload(gd, g.data(), g.size());
  be->upload(gwd, gw.data(), gw.size());
  be->upload(ld, l.data(), rows);
  be->upload(rd, r.data(), cols);
  be->upload(sd, &sigma, 1);
  be->upload(dd, &dt, 1);
  float* out = be->alloc(w.size());
  be->spectral_norm_scale(w.size(), wd, sd, out);
  const std::vector<float> scaled = fetch(*be, out, w.size());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(scaled[i], w[i] / 1.7, 1e-6) << i;
  be->spectral_norm_grad(rows, cols, gd, dd, ld, rd, sd, gwd);
  const std::vector<float> got = fetch(*be, gwd, gw.size());
  for (int a = 0; a < rows; ++a)
    for (int b = 0; b < cols; ++b) {
      const size_t i = static_cast<size_t>(a) * cols + b;
      EXPECT_NEAR(got[i], gw[i] + (g[i] - double(dt) * l[a] * r[b]) / sigma, 1e-5) << a << "," << b;
    }
  // the checked public ops (messages after the internal check's file:line)
  const std::string e1 = error_of([&] { be->spectral_norm_vec(0, td, true, 1e-12f, ud, sd); });
  EXPECT_NE(e1.find("spectral_norm_vec: n must be positive, got 0"), std::string::npos) << e1;
  const std::string e2 = error_of([&] { be->spectral_norm_grad(rows, cols, gd, nullptr, ld, rd, sd, gwd); });
  EXPECT_NE(e2.find("spectral_norm_grad: null pointer"), std::string::npos) << e2;
  for (float* p : {td, ud, sd, wd, gd, gwd, ld, rd, dd, out}) be->free(p);
}

// ---------------------------------------------------------------- checkpoints, resume, memory plan

// Spectral norm on every linear of mixture_cond's G and D.
const std::vector<std::string> kSnMlp = {"data.count=600", "generator.spectral_norm=true",
                                         "discriminator.spectral_norm=true", "train.fake_labels=random"};

TEST(SpectralNormTraining, CheckpointsUsePyTorchsNamesAndRoundTrip) {
  auto be = make_cpu_backend();
  const Config cfg = load_config(e2e::source("configs/mixture_cond.json"), kSnMlp);
  const HostDataset data = load_dataset(cfg.data);
  Trainer a(cfg, *be, data);
  a.init();
  for (int i = 0; i < 5; ++i) a.step(), a.take_rows();
  const SafeTensors st = a.snapshot();
  // D: concat_onehot 2 + 8 -> 64 -> 64 -> 1
  const struct {
    const char* name;
    std::vector<int64_t> shape;
  } want[] = {{"discriminator.0.weight_orig", {64, 10}}, {"discriminator.0.weight_u", {64}},
              {"discriminator.0.weight_v", {10}},        {"discriminator.4.weight_orig", {1, 64}},
              {"discriminator.4.weight_u", {1}},         {"discriminator.4.weight_v", {64}},
              {"generator.4.weight_orig", {2, 64}},      {"optim.discriminator.m.0.weight_orig", {64, 10}}};
  for (const auto& w : want) {
    const NamedTensor* t = st.find(w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_EQ(t->shape, w.shape) << w.name;
  }
  EXPECT_EQ(st.find("discriminator.0.weight"), nullptr);
  EXPECT_EQ(st.find("optim.discriminator.m.0.weight_u"), nullptr) << "u and v are state, not trained";
  // u is a unit vector after 5 iterations (one power iteration per D forward)
  const NamedTensor* u = st.find("discriminator.2.weight_u");
  ASSERT_NE(u, nullptr);
  double n2 = 0;
  for (float x : u->data) n2 += double(x) * x;
  EXPECT_NEAR(n2, 1.0, 1e-5);
  // the file round trip restores weights, u, v and Adam state
  e2e::TempDir dir("sn_ck");
  write_safetensors(dir / "ck.safetensors", st);
  Trainer b(cfg, *be, data);
  b.restore(read_safetensors(dir / "ck.safetensors"), dir / "ck.safetensors");
  e2e::expect_models_identical(*be, a.generator(), b.generator());
  e2e::expect_models_identical(*be, a.discriminator(), b.discriminator());
}

TEST(SpectralNormTraining, ResumeIsExact) {
  e2e::check_resume_exact(*make_cpu_backend(), "configs/mixture_cond.json", kSnMlp);
  // conv layers (and the label plane, batch norm, the three-term loss) with spectral norm in D
  e2e::check_resume_exact(*make_cpu_backend(), "configs/anime_small.json",
                          {"data.count=120", "train.batch_size=8", "discriminator.spectral_norm=true"});
}

TEST(SpectralNormTraining, MemoryPlanCountsTheBuffers) {
  const NetSpec plain = d_net(json::parse(R"([{"reshape": [2, 3, 3]}, {"conv2d": {"out": 4, "kernel": 2}},
                                              {"linear": 5}, {"linear": 1}])"));
  NetSpec sn = plain;
  sn.layers[1].spectral_norm = sn.layers[2].spectral_norm = true;
  const uint64_t cap = uint64_t(1) << 40;
  const MemoryPlan a = plan_model_memory(plain, 18, 0, 4, "d", cap, "cpu");
  const MemoryPlan b = plan_model_memory(sn, 18, 0, 4, "d", cap, "cpu");
  EXPECT_EQ(b.params, a.params);
  EXPECT_EQ(b.state - a.state, uint64_t(4 + 8 + 5 + 16));  // u [K] + v [C*R*S], u [out] + v [in]
  EXPECT_EQ(a.spectral_norm, 0u);
  EXPECT_EQ(b.spectral_norm, spectral_norm_buffer_floats({4, 8, false}) + spectral_norm_buffer_floats({5, 16, true}));
  EXPECT_GE(b.spectral_norm, uint64_t(2 * (32 + 80)));  // W_sn and its gradient per layer, at least
  EXPECT_EQ(b.bytes() - a.bytes(), 4 * ((b.state - a.state) + b.spectral_norm));
  // a view on another model's parameters still computes its own W_sn
  EXPECT_EQ(b.bytes(true) - a.bytes(true), 4 * b.spectral_norm);
}

}  // namespace
}  // namespace cgan
