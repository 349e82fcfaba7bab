// Sampling from a trained generator's checkpoint: the `cgan_gpu sample` command.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/base/streams.hpp"
#include "cgan/data/data.hpp"
#include "cgan/report/grid.hpp"

namespace cgan {

struct SampleRequest {
  std::vector<int32_t> labels;  // one per image (conditional models)
  std::vector<float> tags;      // models of tagged sets: one multi-hot vector per image (labels.size() of them)
  int count = 0;                // unconditional models: how many
  int rows = 1, cols = 1;       // grid layout
  uint64_t seed = 1;            // noise seed
  std::string save_tensors;     // when set: a safetensors file with the noise, labels, condition
                                // vectors and generated samples (for tools/cgan_torch.py --noise)
  bool ema = true;              // the averaged generator (train.ema) when the checkpoint has one; false: the raw one
  std::vector<float> noise;     // when given: the n x noise_dim noise itself (else drawn from seed)
  uint64_t noise_offset = 0;    // drawn noise starts at this Philox index (a later chunk of one long draw)
};

// The generated samples of a request (n x dim, host) with their labels and the data's shape.
struct SampleOutput {
  std::vector<float> x;
  std::vector<int32_t> labels;
  DataShape shape;
};
SampleOutput generate_samples(Backend& be, const SafeTensors& ck, const std::string& path, const SampleRequest& req);

// Loads the generator from a checkpoint (its stored config decides the architecture), generates
// and renders the request.
Image sample_from_checkpoint(Backend& be, const SafeTensors& ck, const std::string& path, const SampleRequest& req);

}  // namespace cgan
