// The exponential moving average of the generator's weights (config train.ema; Yazıcı et al. 2019,
// as BigGAN and PyTorch-StudioGAN keep it): after each G Adam step t,
//   avg = weights                                    while t <= start
//   avg = avg - (1 - decay) (avg - weights)          after   (= decay avg + (1 - decay) weights)
// for the parameters and for the batch-norm running statistics alike (docs/DECISIONS.md says why);
// a spectral norm's u and v (unit vectors) are copied from the generator, not averaged.
// The update is one Backend op (ema_update) per buffer that reads t from the trainer's device
// counter, so it runs inside the captured CUDA graph. Sampling and evaluation use the average by
// default; checkpoints keep it beside the raw weights as "generator_ema.<name>" in the PyTorch
// state_dict layout of the generator (cgan/nn/state_dict.hpp).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/buffer.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/nn/model.hpp"

namespace cgan {

// The checkpoint prefix of the averaged generator ("generator_ema.0.weight", ...).
constexpr const char* kEmaNet = "generator_ema";

class WeightAverage {
 public:
  // Averages of `source`'s parameters and state in backend buffers of its layout, initialised to a
  // copy of it; `spec`, `in_dim`, `num_classes` are source's (for the model view over them).
  WeightAverage(Backend& be, const Model& source, const NetSpec& spec, int in_dim, int num_classes, const EmaSpec& ema);
  ~WeightAverage();
  WeightAverage(const WeightAverage&) = delete;
  WeightAverage& operator=(const WeightAverage&) = delete;

  // avg = source now (start of training; resuming from a checkpoint without an average).
  void copy_from_source();
  // Enqueues the update after source's optimiser step t + (*t_counter) (t_counter: optional int32
  // in backend memory, read when the ops run).
  void update(int t, const int32_t* t_counter = nullptr);

  // A forward-only Model (batch 1) over the averages; a view at another batch shares it:
  // Model(be, spec, in_dim, K, batch, name, &model()).
  const Model& model() const { return *view_; }
  Model& model() { return *view_; }

  // Checkpoints: appends the averages as "generator_ema.<state_dict name>" (num_batches_tracked =
  // bn_batches, as the raw generator's); reads them back (a missing tensor is an error naming it).
  void put(SafeTensors& st, int64_t bn_batches) const;
  void load(const SafeTensors& ck, const std::string& path);

 private:
  Backend& be_;
  const Model& source_;
  EmaSpec spec_;
  Buffer<float> params_, state_;
  std::unique_ptr<Model> view_;  // declared after the buffers it reads, so destroyed before them
};

// Whether a checkpoint holds an averaged generator (tensors named "generator_ema.*").
bool checkpoint_has_ema(const SafeTensors& ck);

}  // namespace cgan
