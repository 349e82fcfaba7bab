// StepTracer: what a training iteration records for `cgan_gpu trace` (a no-op unless tracing).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/nn/model.hpp"

namespace cgan {

// The GAN step calls its tracer at every point of interest, unconditionally. This base class is
// the null tracer: every call does nothing and names are not even built (the step passes name
// parts; the tracer joins them only when it records). Tensor names: docs/DECISIONS.md ("Step traces").
class StepTracer {
 public:
  virtual ~StepTracer() = default;
  // Whether anything is recorded (the step then runs eagerly, never from a CUDA graph).
  virtual bool active() const { return false; }
  // A backend buffer of `shape`, named prefix + name.
  virtual void buf(const std::string& /*prefix*/, const char* /*name*/, const float* /*p*/,
                   std::vector<int64_t> /*shape*/) {}
  // An int buffer of n values (stored as F32).
  virtual void ints(const std::string& /*prefix*/, const char* /*name*/, const int32_t* /*p*/, int64_t /*n*/) {}
  // The dropout masks of the last forward of `m` (prefix + name + "mask.<layer>") and, with weights,
  // its ReLU / LeakyReLU outputs (prefix + name + "side.<layer>": which side of the kink each took).
  virtual void masks(const std::string& /*prefix*/, const char* /*name*/, const Model& /*m*/, const NetSpec& /*spec*/) {
  }
  // With weights: a model's gradients (before its Adam update); its parameters and state (after).
  virtual void grads(const std::string& /*prefix*/, const char* /*name*/, const Model& /*m*/) {}
  virtual void params(const std::string& /*prefix*/, const char* /*name*/, const Model& /*m*/) {}
};

// The tracer behind Trainer::set_trace: appends every record to *out; gradients and parameters
// only when `weights`.
std::unique_ptr<StepTracer> make_tensor_tracer(Backend& be, SafeTensors* out, bool weights);

}  // namespace cgan
