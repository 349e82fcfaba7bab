// What a training checkpoint says about its run: the stored config and data shape, checked field by
// field, and the generator rebuilt from it (for sample, eval and resume; src/nn/checkpoint_info.cpp).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/nn/model.hpp"

namespace cgan {

// The `num_classes` a network of this spec is built with: 0 without conditioning, the number of
// labels for the embedding modes, cond_width() for concat_onehot, label_plane and projection, and
// for a network with conditional batch norm (an error with an embedding mode on tagged data).
int condition_width(const NetSpec& net, const DataShape& shape);

// Metadata helpers shared by training and sampling.
int64_t checkpoint_meta_int(const SafeTensors& ck, const std::string& key, const std::string& path);
DataShape data_shape_of(const HostDataset& d, const DataSpec& spec);
DataShape data_shape_from_metadata(const SafeTensors& ck, const std::string& path);
Config config_from_checkpoint(const SafeTensors& ck, const std::string& path,
                              const std::vector<std::string>& overrides = {});
// A training checkpoint's stored config and data shape, every metadata field (data_shape,
// num_classes, data_range, tag_dim, vocabulary) checked against what the config's data.kind
// produces; errors name the checkpoint and the field. Use this, not the two helpers above, to read
// a checkpoint written by training.
struct CheckpointInfo {
  Config cfg;
  DataShape shape;
};
CheckpointInfo read_checkpoint_info(const SafeTensors& ck, const std::string& path,
                                    const std::vector<std::string>& overrides = {});
// The checkpoint's generator at batch 1 (views at other batches share its parameters): every
// parameter slot checked against the stored tensor of that name and shape, and its output width
// against the data shape. use_ema: the averaged generator (train.ema, "generator_ema.*") when the
// checkpoint holds one, else the raw one; false: always the raw one (`--no-ema`). Before loading,
// the whole file is checked (check_checkpoint_tensors).
std::unique_ptr<Model> load_generator(Backend& be, const CheckpointInfo& info, const SafeTensors& ck,
                                      const std::string& path, bool use_ema = true);
// Every tensor the engine knows by name (generator.*, generator_ema.*, discriminator.*, optim.*)
// checked against its slot's dtype and shape (check_known_tensors), whether or not the command
// reads it; names it does not know are allowed. Models of batch 1 are built for their slots
// (`generator`: one already built, else one is made here).
void check_checkpoint_tensors(Backend& be, const CheckpointInfo& info, const SafeTensors& ck, const std::string& path,
                              const Model* generator = nullptr);

}  // namespace cgan
