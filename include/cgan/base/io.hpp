// File I/O shared by every reader of user files (config, checkpoint, IDX, images, tags CSV,
// vocabulary) and every writer of the run directory (checkpoints, PNGs, CSV headers, config).
#pragma once
#include <cstddef>
#include <cstdint>
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

// Opens `path` for reading only if it is a regular file: a folder, FIFO, socket or device is
// refused before it is opened (opening a FIFO would block forever) with
// "<path>: is a FIFO, not a <what>"; a missing or unreadable file gives
// "<path>: cannot open <what>: <reason>". Returns the descriptor (blocking, close-on-exec); the
// caller closes it. *size (if given) receives the file's size.
int open_regular_file(const std::string& path, const std::string& what, uint64_t* size = nullptr);
// The whole content of a regular file (as open_regular_file), refused when it is larger than
// max_bytes ("<path>: <what> of N bytes is larger than the limit of M bytes").
std::string read_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes = uint64_t(1) << 30);

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(const std::string& s);

}  // namespace cgan
