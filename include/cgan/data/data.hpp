// Datasets held in host memory: MNIST-style IDX files (plain or .gz) and the synthetic 2-D sets
// (one Gaussian, a labelled mixture of Gaussians on a circle). Every loading failure is a
// cgan::Error whose one-line message names the file and what is wrong with it.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cgan/base/error.hpp"  // loaders throw cgan::Error

namespace cgan {

struct HostDataset {
  std::string name;
  int count = 0;
  int channels = 1, height = 1, width = 1;  // per-sample shape; 2-D points: 1x1x2
  int num_classes = 0;                      // 0 = unconditional; else y lies in 0..num_classes-1
  std::vector<float> x;                     // count*dim, already scaled to the requested range; images
                                            // are NCHW (channels first, PyTorch's layout)
  std::vector<int32_t> y;                   // count labels (all 0 when unconditional)
  // Multi-hot tags (anime sets; tag_dim 0 elsewhere): tags[i*tag_dim + k] is 1 when sample i carries
  // the phrase vocab[k], else 0. For these sets y is the hair colour: the index, among the
  // vocabulary's phrases ending in " hair", of the sample's first such phrase (see cgan/data/tags.hpp).
  int tag_dim = 0;
  std::vector<float> tags;               // count*tag_dim, 0/1
  std::vector<std::string> vocab;        // tag_dim phrases; index = position in the tag vector
  int skipped = 0;                       // image folders: files left out (unreadable, untagged, ...)
  std::vector<std::string> class_names;  // class-folder sets: num_classes names, index = label; else empty
  int dim() const { return channels * height * width; }
};

// Given the first n decompressed bytes, the total size the content may have, or nullopt while more
// bytes are needed to tell (an IDX header: 4 + 4 * dims bytes).
using ExpectedSize = std::function<std::optional<uint64_t>(const uint8_t* p, size_t n)>;

// Whole file contents; gzip files (magic 1f 8b) are decompressed (concatenated members too),
// never past what `expected` allows once it can tell (else 8 GiB).
// Errors: missing/unreadable file, not a regular file, corrupt or truncated gzip data, more data
// than the header describes.
std::vector<uint8_t> read_file_maybe_gz(const std::string& path, const ExpectedSize& expected = nullptr);
// The ExpectedSize of an IDX file: its header plus the payload its dimensions describe.
std::optional<uint64_t> idx_expected_size(const uint8_t* p, size_t n);

// Parsed IDX payloads (unsigned-byte element type only). `path` is used in error messages only.
struct IdxImages {
  int count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count*rows*cols, row-major
};
IdxImages parse_idx3_images(const std::vector<uint8_t>& bytes, const std::string& path);
std::vector<uint8_t> parse_idx1_labels(const std::vector<uint8_t>& bytes, const std::string& path);

// An images file (idx3, magic 0x00000803) with its labels file (idx1, magic 0x00000801).
// Pixels p in 0..255 become lo + (hi - lo) * p / 255; labels must lie in 0..num_classes-1.
HostDataset load_idx_pair(const std::string& images_path, const std::string& labels_path, float lo, float hi,
                          int num_classes = 10);

// MNIST / Fashion-MNIST folder: train-{images-idx3,labels-idx1}-ubyte (t10k-* when !train), each
// plain or with .gz (the plain file wins when both exist). A missing folder or file is an error
// naming it and suggesting tools/fetch_data.sh.
HostDataset load_mnist_dir(const std::string& dir, bool train, float lo, float hi);

// `count` 2-D points from N((mean_x, mean_y), diag(std_x^2, std_y^2)); unconditional.
// Deterministic: Philox(seed), the same on every machine.
HostDataset make_gaussian(int count, float mean_x, float mean_y, float std_x, float std_y, uint64_t seed);

// `count` 2-D points from `modes` Gaussians of standard deviation `stddev`; mode k is centred at
// radius * (cos 2πk/modes, sin 2πk/modes) and its points carry label k. Labels are balanced (counts
// differ by at most one) and in a random (Philox-shuffled) order. num_classes = modes.
HostDataset make_mixture(int count, int modes, float radius, float stddev, uint64_t seed);

// The mixture's centres: 2 floats (x, y) per mode, the exact values make_mixture uses.
std::vector<float> mixture_centers(int modes, float radius);

// What a dataset looks like, stored in checkpoints so sampling needs no data files.
struct DataShape {
  int channels = 1, height = 1, width = 1, num_classes = 0;
  float lo = 0.f, hi = 1.f;
  int tag_dim = 0;                       // multi-hot tag sets (anime): tag vector width, else 0
  std::vector<std::string> vocab;        // the tag phrases (tag_dim of them)
  std::vector<std::string> class_names;  // class-folder sets: the label names (num_classes), else empty
  int dim() const { return channels * height * width; }
  // Width of the condition vector a concat_onehot / label_plane network reads: the tag vector for
  // tagged sets, the one-hot label otherwise.
  int cond_width() const { return tag_dim > 0 ? tag_dim : num_classes; }
  bool is_points() const { return channels == 1 && height == 1; }
};

}  // namespace cgan
