// The generator's weight average (include/cgan/nn/ema.hpp).
#include "cgan/nn/ema.hpp"

#include <algorithm>

#include "cgan/base/error.hpp"
#include "cgan/nn/state_dict.hpp"

namespace cgan {

WeightAverage::WeightAverage(Backend& be, const Model& source, const NetSpec& spec, int in_dim, int num_classes,
                             const EmaSpec& ema)
    : be_(be), source_(source), spec_(ema) {
  CGAN_CHECK(ema.decay > 0.f && ema.decay < 1.f && ema.start >= 0, "train.ema: decay ", ema.decay,
             " outside (0, 1) or negative start ", ema.start);
  params_ = Buffer<float>(be, std::max<size_t>(source.param_count(), 1));
  state_ = Buffer<float>(be, std::max<size_t>(source.state_count(), 1));
  view_ = std::make_unique<Model>(be, spec, in_dim, num_classes, 1, source.name() + "_ema", source, params_, state_);
  copy_from_source();
}

WeightAverage::~WeightAverage() = default;  // the view first, then the buffers

void WeightAverage::copy_from_source() {
  if (source_.param_count()) be_.copy(params_, source_.params(), source_.param_count());
  if (source_.state_count()) be_.copy(state_, source_.state(), source_.state_count());
}

static bool is_power_iteration_vector(const std::string& name) {
  auto ends = [&](const char* suffix) {
    const std::string x(suffix);
    return name.size() >= x.size() && name.compare(name.size() - x.size(), x.size(), x) == 0;
  };
  return ends("weight_u") || ends("weight_v");
}

void WeightAverage::update(int t, const int32_t* t_counter) {
  const int start = static_cast<int>(spec_.start);
  if (source_.param_count())
    be_.ema_update(source_.param_count(), params_, source_.params(), spec_.decay, start, t, t_counter);
  if (source_.state_count())
    be_.ema_update(source_.state_count(), state_, source_.state(), spec_.decay, start, t, t_counter);
  // A spectral norm's power-iteration vectors are unit vectors the evaluation forward reads as they
  // are: the average's are the generator's own (copied), not an average of unit vectors.
  for (const ParamSlot& s : source_.slots())
    if (s.state && is_power_iteration_vector(s.name)) be_.copy(state_ + s.offset, source_.state() + s.offset, s.count);
}

void WeightAverage::put(SafeTensors& st, int64_t bn_batches) const {
  put_model_params(st, be_, *view_, kEmaNet, TensorLayout::torch, bn_batches);
}

void WeightAverage::load(const SafeTensors& ck, const std::string& path) {
  load_model_params(*view_, ck, kEmaNet, path, TensorLayout::torch);
}

bool checkpoint_has_ema(const SafeTensors& ck) {
  const std::string prefix = std::string(kEmaNet) + ".";
  return std::any_of(ck.tensors.begin(), ck.tensors.end(),
                     [&](const NamedTensor& t) { return t.name.compare(0, prefix.size(), prefix) == 0; });
}

}  // namespace cgan
