// Whole-model finite-difference gradient check: a model's backward (parameter and input gradients) against central differences of a scalar loss of its forward, skipping coordinates where the loss has a kink within the step.
//
// The loss is only piecewise smooth (leaky-relu kinks, max-pool switches). With one-sided
// differences r = (L(k) - L(0)) / k and l = (L(0) - L(-k)) / k, one kink inside [-k, k] puts the
// central difference (r + l) / 2 off the true one-sided derivative by at most about |r - l| / 2,
// while on a smooth stretch |r - l| = k |L''| is small; kinks on both sides can hide from that
// but then show as a change of the central difference between steps 3k and k (O(k^2) when
// smooth). Coordinates failing either test are skipped (counted), the rest must match within
// tol(a, b) = 2e-3 + 1e-2 max(|a|, |b|). Used by tests/cpu/test_model.cpp, test_conditional.cpp
// and test_spectral_norm.cpp.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"
#include "cgan/nn/model.hpp"

namespace cgan {
namespace modelfd {

// The loss the checks differentiate: L = sum_i r[i] out[i] (in double) of m's forward on x (and the
// condition cd, may be null; train: training mode).
inline double weighted_sum_loss(Backend& be, Model& m, const float* xd, const float* cd, const std::vector<float>& r,
                                bool train = true) {
  std::vector<float> out(r.size());
  be.download(out.data(), m.forward(xd, nullptr, cd, train), out.size());
  double L = 0;
  for (size_t i = 0; i < out.size(); ++i) L += double(r[i]) * out[i];
  return L;
}

// Its backward, after a forward: gradients zeroed, dL/dout = r; the parameter gradients into g and
// the input gradient (gxd, gx.size() floats) into gx.
inline void weighted_sum_backward(Backend& be, Model& m, const std::vector<float>& r, float* gxd, std::vector<float>& g,
                                  std::vector<float>& gx) {
  m.zero_grads();
  be.upload(m.grad_out_buffer(), r.data(), r.size());
  m.backward(m.grad_out_buffer(), gxd, true);
  g.resize(m.param_count());
  be.download(g.data(), m.grads(), g.size());
  be.download(gx.data(), gxd, gx.size());
}

class FdCheck {
 public:
  static constexpr double kStep = 1e-3;
  static double tol(double a, double b) { return 2e-3 + 1e-2 * std::max(std::fabs(a), std::fabs(b)); }

  // loss: the scalar loss of the model's current parameters and inputs (evaluated once here: L(0)).
  explicit FdCheck(std::function<double()> loss) : loss_(std::move(loss)), L0_(loss_()) {}

  // One coordinate: analytic against the differences of L_at(d) = the loss with it moved by d.
  void check(double analytic, const std::function<double(double)>& L_at, const std::string& what) {
    const double k = kStep;
    const double r = (L_at(k) - L0_) / k, l = (L0_ - L_at(-k)) / k, central = (r + l) / 2;
    const double wide = (L_at(3 * k) - L_at(-3 * k)) / (6 * k);
    if (std::fabs(r - l) > tol(r, l) || std::fabs(wide - central) > 0.5 * tol(wide, central)) {
      ++skipped_;
      return;
    }
    ++checked_;
    EXPECT_LE(std::fabs(analytic - central), tol(analytic, central))
        << what << ": backward " << analytic << ", finite difference " << central << " (one-sided " << l << ", " << r
        << "; step " << 3 * k << ": " << wide << ")";
  }

  // per_slot(slot) random coordinates of every parameter slot of m (state slots left out): g (the
  // backward's parameter gradients) against the loss with p[i] moved (set through set_params with
  // the state st, then restored).
  template <class Rng>
  void params(Model& m, std::vector<float>& p, const std::vector<float>& st, const std::vector<float>& g,
              const std::function<int(const ParamSlot&)>& per_slot, Rng& rng) {
    for (const ParamSlot& sl : m.slots()) {
      if (sl.state) continue;
      for (int t = 0, n = per_slot(sl); t < n; ++t) {
        const size_t i = sl.offset + std::uniform_int_distribution<size_t>(0, sl.count - 1)(rng);
        const float keep = p[i];
        check(
            g[i],
            [&](double d) {
              p[i] = keep + float(d);
              m.set_params(p.data(), st.data());
              const double L = loss_();
              p[i] = keep;
              m.set_params(p.data(), st.data());
              return L;
            },
            cat(sl.name, "[", i - sl.offset, "]"));
      }
    }
  }

  // count random coordinates of the input x (host copy of xd, backend memory): gx against the loss
  // with x[i] moved (uploaded, then restored).
  template <class Rng>
  void inputs(Backend& be, float* xd, std::vector<float>& x, const std::vector<float>& gx, int count, Rng& rng) {
    for (int t = 0; t < count; ++t) {
      const size_t i = std::uniform_int_distribution<size_t>(0, x.size() - 1)(rng);
      const float keep = x[i];
      check(
          gx[i],
          [&](double d) {
            x[i] = keep + float(d);
            be.upload(xd, x.data(), x.size());
            const double L = loss_();
            x[i] = keep;
            be.upload(xd, x.data(), x.size());
            return L;
          },
          cat("x[", i, "]"));
    }
  }

  int checked() const { return checked_; }
  int skipped() const { return skipped_; }

 private:
  std::function<double()> loss_;
  double L0_;
  int checked_ = 0, skipped_ = 0;
};

}  // namespace modelfd
}  // namespace cgan
