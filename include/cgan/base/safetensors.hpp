// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
//
//   8 bytes   N, little-endian uint64: length of the header
//   N bytes   UTF-8 JSON object {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
//             "__metadata__": {"<key>": "<string>", ...}}, padded with spaces to a multiple of 8
//   rest      the byte buffer; tensor data at [b, e) relative to its start, little-endian
//
// F32 and I64 tensors are written and read (another dtype is rejected with a clear error). The writer
// lays tensors out in the order of SafeTensors::tensors; the reader returns them in buffer order
// (which is that order for files this writer made). Every failure is a cgan::Error whose one-line
// message starts with the file's path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace cgan {

enum class DType { f32, i64 };

// The most tensors a file may list (read and written). The biggest shipped model,
// configs/anime_sngan.json, writes 109 (G: 23 with its batch norms' statistics, its weight average
// 23, G's Adam m and v 28; D: 17, its Adam moments 18); the most a layer adds to a file is 14 (a
// conditional batch norm: 5 in G, 5 in the average, 4 moments), so 65,536 leaves room for two nets
// of over 2,500 layers each, while a hostile header of 200,000 one-value entries is refused after
// reading its first 65,538 keys, in well under a second.
constexpr size_t kMaxSafetensorsEntries = 65536;

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;  // [] is a scalar (one element)
  std::vector<float> data;     // F32: row-major, size == product(shape); empty for I64
  DType dtype = DType::f32;
  std::vector<int64_t> ints{};  // I64: row-major, size == product(shape); empty for F32
};

struct SafeTensors {
  std::vector<NamedTensor> tensors;
  std::map<std::string, std::string> metadata;  // written as "__metadata__" (omitted when empty)

  // nullptr when absent. A hashed lookup (index built on first use, rebuilt when `tensors` changes
  // length): matching every slot of a model against a file is linear in the file's tensors.
  const NamedTensor* find(const std::string& name) const;
  // Throws cgan::Error naming the missing tensor.
  const NamedTensor& at(const std::string& name) const;

 private:
  mutable std::unordered_map<std::string, size_t> index_;
  mutable size_t index_size_ = 0;
};

// Validates `st` (unique non-empty names, non-negative dims, data size == product of shape, UTF-8
// names and metadata) before touching the disk, then writes atomically: "<path>.tmp.<pid>", fsync,
// rename over `path`. On any failure the temporary is removed and an existing file at `path` is
// left as it was. The parent directory must exist (it is not created).
void write_safetensors(const std::string& path, const SafeTensors& st);

// Reads and fully validates a file (sizes, header JSON, field types, dtype, shape vs. byte span,
// offsets in range, contiguous and non-overlapping, buffer fully covered, no duplicate keys,
// string metadata). Hostile input gives a cgan::Error, never a crash.
SafeTensors read_safetensors(const std::string& path);

}  // namespace cgan
