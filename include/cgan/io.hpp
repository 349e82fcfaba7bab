// File I/O shared by every writer of the run directory (checkpoints, PNGs, CSV headers, config).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace cgan {

struct ByteSpan {
  const void* data;
  size_t size;
};

// Writes the chunks to "<path>.tmp.<pid>", fsyncs, and renames it over `path`; on any failure the
// temporary file is removed, an existing file at `path` is left untouched, and cgan::Error names
// the path and the reason (a missing directory is named as such).
void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& chunks);
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace cgan
