// A model's parameters, state and Adam moments as named checkpoint tensors: PyTorch's state_dict
// layout (checkpoint format v2) and the engine's own v1 layout, which older files use.
#pragma once
#include <cstdint>
#include <string>

#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/nn/model.hpp"

namespace cgan {

// The "format" metadata of the GAN checkpoints this build writes, and of the ones before it.
constexpr const char* kCheckpointFormat = "cgan_gpu.checkpoint.v2";
constexpr const char* kCheckpointFormatV1 = "cgan_gpu.checkpoint.v1";

// How a file names and lays out a model's tensors (`net` is "generator", "discriminator", ...).
//
// torch (v2): the state_dict of the equivalent torch.nn.Sequential, whose children are named by the
//   layer's index in the config's `layers` list (a linear or conv keeps its own index when the
//   engine fuses the activation after it) plus a child "condition" for the conditioner:
//     <net>.<i>.weight, <net>.<i>.bias      linear [out, in] and [out]; conv2d [K, C, R, S] and [K]
//     <net>.<i>.weight, .bias, .running_mean, .running_var (F32 [C]), .num_batches_tracked (I64 [])
//                                           batch norm
//     <net>.<i>.gain.weight, .bias.weight, .running_mean, .running_var, .num_batches_tracked
//                                           conditional batch norm: nn.Linear(K, C, bias=False) [C, K] each
//     <net>.embed.weight                    projection: nn.Embedding [K, F]
//     <net>.<i>.weight_orig, .weight_u, .weight_v, .bias
//                                           a spectrally normalised linear / conv2d, as
//                                           torch.nn.utils.spectral_norm's module (W [out, in] or
//                                           [K, C, R, S], u [out] or [K], v [in] or [C*R*S])
//     <net>.condition.weight                embed_concat / embed_multiply: nn.Embedding [K, E]
//     <net>.condition.weight, .bias         label_plane: nn.Linear(K -> H*W), [H*W, K] and [H*W]
//   Adam's moments, per trained parameter in its parameter's layout, as optim.<net>.m.<name> and
//   optim.<net>.v.<name> (outside the "<net>." prefix: that prefix selects exactly a state_dict).
// v1: <net>.layers.<i>.weight as the engine holds it (linear [in, out]), <net>.cond.embedding,
//   <net>.cond.weight [K, H*W], <net>.cond.bias, batch-norm running statistics, and the Adam moments
//   as two flat vectors <net>.adam.m / <net>.adam.v: the trained slots packed in slot order.
enum class TensorLayout { v1, torch };

// The layout of a GAN checkpoint from its "format" metadata: v2 -> torch; v1 or none -> v1
// (the files written before the format carried PyTorch's names); anything else is an error.
TensorLayout checkpoint_layout(const SafeTensors& ck, const std::string& path);

// Appends m's parameters and state (v1: still the classifier files' layout). torch layout: every batch norm also gets num_batches_tracked =
// bn_batches (the model's training forwards, as PyTorch counts them).
void put_model_params(SafeTensors& st, Backend& be, const Model& m, const std::string& net, TensorLayout layout,
                      int64_t bn_batches = 0);
// Appends m's Adam moments in the torch layout (this build writes no other).
void put_adam_state(SafeTensors& st, Backend& be, const Model& m, const std::string& net);

// Copy a model's parameters and state / Adam moments out of a file. A missing tensor, another shape
// or dtype is an error naming the file and the tensor. Every tensor is addressed through its slot,
// never by assuming the slots are packed.
void load_model_params(Model& m, const SafeTensors& ck, const std::string& net, const std::string& path,
                       TensorLayout layout);
void load_adam_state(Model& m, Backend& be, const SafeTensors& ck, const std::string& net, const std::string& path,
                     TensorLayout layout);

// Every tensor of the file that the engine knows by name for model `m` under `net` (its parameters,
// state and, torch layout, each batch norm's num_batches_tracked: I64 []; with `adam`, its Adam
// moments) is checked against its slot's dtype and shape, whether or not the caller reads it; an
// absent one is left to the loaders above, a name the engine does not know is allowed (PyTorch's
// load_state_dict(strict=False)).
void check_known_tensors(const Model& m, const SafeTensors& ck, const std::string& net, const std::string& path,
                         TensorLayout layout, bool adam);

}  // namespace cgan
