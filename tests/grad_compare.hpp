// Norm-scaled comparison of two runs' parameter gradients, slot by slot (the whole-iteration parity
// check of the CUDA backend against the CPU one, unit-tested on the CPU in tests/cpu/
// test_grad_compare.cpp), leaving out the slots whose true gradient is structurally zero.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iomanip>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cgan/config/config.hpp"
#include "cgan/nn/model.hpp"

namespace cgan {
namespace gradcheck {

// Tolerances on the worst slot's relative difference after one whole iteration (losses and
// gradients before any Adam update reaches them). fp32: the CUDA backend differs from the CPU only
// in summation order (reductions in double, cuBLAS/cuDNN sums in fp32): ~1e-6 per op, grown
// through a few layers and one Adam step of the discriminator to well under 1e-3. tf32: inputs of
// every GEMM and convolution rounded to a 10-bit mantissa (2^-11 ~ 5e-4 relative each, random in
// sign, so a slot's norm-scaled error stays a few 1e-3 over a handful of chained layers): 1e-2,
// which still flags the planted 5% leaky-slope defect (2.7e-2 and 4.4e-2 on the CPU).
constexpr double kTolFp32 = 1e-3;
constexpr double kTolTf32 = 1e-2;

// Slots (by ParamSlot name) whose true gradient is exactly zero: the bias of a linear or conv2d
// layer that feeds a training-mode batch norm directly (one bias per normalised channel, so the
// batch mean removes it). Their computed gradient is rounding noise of either sign. A linear
// followed by a reshape and then a batch norm over images is not among them: its bias has one
// entry per (channel, pixel), and only each channel's sum of those gradients is zero.
inline std::set<std::string> structurally_zero(const NetSpec& spec) {
  std::set<std::string> out;
  for (size_t i = 0; i + 1 < spec.layers.size(); ++i) {
    const std::string& k = spec.layers[i].kind;
    if ((k == LayerKind::linear || k == LayerKind::conv2d) && spec.layers[i + 1].kind == LayerKind::batchnorm)
      out.insert("layers." + std::to_string(i) + ".bias");
  }
  return out;
}

struct SlotResult {
  std::string name;
  double ref_norm = 0, diff_norm = 0, rel = 0;
  bool skipped = false;  // structurally zero: left out
};

struct Result {
  std::vector<SlotResult> slots;
  double worst = 0;  // largest rel over the compared slots
  std::string worst_slot;
  bool size_mismatch = false;
  bool pass(double tol) const { return !size_mismatch && worst <= tol; }
  // Slot by slot: rel <= max(tol, factor * scale's rel for the same slot), where `scale` compares
  // the same reference with a run whose only change is a known perturbation (the CPU's TF32
  // emulation): a difference is accepted up to `factor` times what that perturbation alone causes.
  // Fills *why with the first slot over its bound.
  bool pass_scaled(const Result& scale, double factor, double tol, std::string* why) const {
    if (size_mismatch || scale.size_mismatch || scale.slots.size() != slots.size()) {
      if (why) *why = "gradient sizes differ";
      return false;
    }
    for (size_t i = 0; i < slots.size(); ++i) {
      const SlotResult &s = slots[i], &k = scale.slots[i];
      if (s.skipped) continue;
      const double bound = std::max(tol, factor * k.rel);
      if (s.name != k.name || !(s.rel <= bound)) {
        if (why) {
          std::ostringstream os;
          os << std::setprecision(4) << s.name << ": " << s.rel << " over its bound " << bound << " (max(" << tol
             << ", " << factor << " x " << k.rel << "))";
          *why = os.str();
        }
        return false;
      }
    }
    return true;
  }
  std::string describe(const std::string& what) const {
    std::ostringstream os;
    os << std::setprecision(4) << what << ": ";
    if (size_mismatch) return os.str() + "gradient sizes differ";
    os << "worst relative gradient difference " << worst << " in " << worst_slot << " (";
    for (const SlotResult& s : slots) {
      os << s.name << " ";
      if (s.skipped)
        os << "skipped, structurally zero; ";
      else
        os << s.rel << "; ";
    }
    os << ")";
    return os.str();
  }
};

// For each trainable slot: rel = ||test - ref|| / max(||ref||, floor), with
// floor = 1e-3 * ||ref over all compared slots|| (so a slot whose gradient is legitimately tiny is
// held to the model's scale, not to its own). Slots named in `skip` are left out. NaN anywhere in
// a compared slot makes rel infinite.
inline Result compare(const std::vector<ParamSlot>& slots, const std::vector<float>& ref,
                      const std::vector<float>& test, const std::set<std::string>& skip) {
  Result r;
  if (ref.size() != test.size()) {
    r.size_mismatch = true;
    r.worst = INFINITY;
    return r;
  }
  double all = 0;
  for (const ParamSlot& s : slots) {
    if (s.state || skip.count(s.name)) continue;
    for (size_t i = s.offset; i < s.offset + s.count; ++i) all += double(ref[i]) * ref[i];
  }
  const double floor = 1e-3 * std::sqrt(all);
  for (const ParamSlot& s : slots) {
    if (s.state) continue;
    SlotResult x;
    x.name = s.name;
    x.skipped = skip.count(s.name) > 0;
    double rn = 0, dn = 0;
    bool nan = false;
    for (size_t i = s.offset; i < s.offset + s.count; ++i) {
      const double a = ref[i], b = test[i];
      if (std::isnan(a) != std::isnan(b)) nan = true;
      rn += a * a;
      dn += (b - a) * (b - a);
    }
    x.ref_norm = std::sqrt(rn);
    x.diff_norm = std::sqrt(dn);
    const double scale = std::max(x.ref_norm, floor);
    x.rel = nan || std::isnan(dn) ? INFINITY : (scale > 0 ? x.diff_norm / scale : (dn > 0 ? INFINITY : 0.0));
    if (!x.skipped && (x.rel > r.worst || r.worst_slot.empty())) {
      r.worst = std::max(r.worst, x.rel);
      if (x.rel >= r.worst) r.worst_slot = s.name;
    }
    r.slots.push_back(x);
  }
  return r;
}

}  // namespace gradcheck
}  // namespace cgan
