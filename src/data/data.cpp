#include "cgan/data/data.hpp"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "cgan/base/error.hpp"
#include "cgan/base/io.hpp"
#include "cgan/base/philox.hpp"

namespace cgan {
namespace fs = std::filesystem;

namespace {

constexpr uint32_t kIdx3Magic = 0x00000803;           // unsigned byte, 3 dimensions
constexpr uint32_t kIdx1Magic = 0x00000801;           // unsigned byte, 1 dimension
constexpr size_t kMaxDecompressed = size_t{8} << 30;  // guards against gzip bombs

// Philox streams of the synthetic sets: cgan/base/streams.hpp (through philox.hpp).

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

// Decompresses chunk by chunk. Once the output holds enough bytes for `expected` to answer, the
// output may not grow past its answer (a header saying 64 images stops a bomb after 64 images).
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& path, const ExpectedSize& expected) {
  std::vector<uint8_t> out;
  uint64_t cap = kMaxDecompressed;
  bool cap_known = !expected;
  auto learn_cap = [&] {
    if (cap_known) return;
    const std::optional<uint64_t> e = expected(out.data(), out.size());
    if (!e) return;
    cap_known = true;
    cap = std::min<uint64_t>(*e, kMaxDecompressed);
    // The gzip trailer holds the size mod 2^32 of the last member: a good first guess.
    if (in.size() >= 18) {
      const uint8_t* t = in.data() + in.size() - 4;
      const uint64_t hint = static_cast<uint64_t>(t[0]) | (static_cast<uint64_t>(t[1]) << 8) |
                            (static_cast<uint64_t>(t[2]) << 16) | (static_cast<uint64_t>(t[3]) << 24);
      out.reserve(static_cast<size_t>(std::min(hint, cap)));
    }
  };
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    throw Error(cat(path, ": cannot start gzip decompression (zlib inflateInit2 failed)"));
  size_t pos = 0;
  uint8_t buf[1 << 16];
  for (;;) {
    const size_t chunk = std::min<size_t>(in.size() - pos, std::numeric_limits<uInt>::max());
    zs.next_in = const_cast<Bytef*>(in.data() + pos);
    zs.avail_in = static_cast<uInt>(chunk);
    int rc = Z_OK;
    do {
      zs.next_out = buf;
      zs.avail_out = sizeof buf;
      rc = inflate(&zs, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        const std::string why = zs.msg ? zs.msg : (rc == Z_MEM_ERROR ? "out of memory" : "corrupt data");
        inflateEnd(&zs);
        throw Error(cat(path, ": bad gzip data: ", why));
      }
      out.insert(out.end(), buf, buf + (sizeof buf - zs.avail_out));
      learn_cap();
      if (out.size() > cap) {
        inflateEnd(&zs);
        if (cap == kMaxDecompressed)
          throw Error(cat(path, ": bad gzip data: decompresses to more than ", kMaxDecompressed >> 30,
                          " GiB, larger than any dataset this reader accepts"));
        throw Error(cat(path, ": trailing bytes: decompresses to more than the ", cap,
                        " bytes its header describes (stopped there)"));
      }
    } while (rc != Z_STREAM_END && zs.avail_out == 0);
    pos += chunk - zs.avail_in;
    if (rc == Z_STREAM_END) {
      // Another gzip member may follow (files made with `cat a.gz b.gz`); anything else is junk.
      if (pos == in.size()) break;
      if (in.size() - pos >= 2 && in[pos] == 0x1f && in[pos + 1] == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      inflateEnd(&zs);
      throw Error(
          cat(path, ": bad gzip data: ", in.size() - pos, " bytes of trailing garbage after the compressed stream"));
    }
    if (pos == in.size() && zs.avail_in == 0 && rc != Z_STREAM_END) {
      // All input consumed and inflate wants more: the file was cut short.
      if (zs.avail_out != 0 || rc == Z_BUF_ERROR) {
        inflateEnd(&zs);
        throw Error(cat(path, ": bad gzip data: truncated (the compressed stream ends early after ", out.size(),
                        " decompressed bytes)"));
      }
    }
  }
  inflateEnd(&zs);
  return out;
}

// Checks an IDX magic number; `want_dims` is 1 (labels) or 3 (images).
void check_magic(uint32_t magic, int want_dims, const std::string& path) {
  const uint32_t want = want_dims == 3 ? kIdx3Magic : kIdx1Magic;
  if (magic == want) return;
  const char* what = want_dims == 3 ? "images" : "labels";
  if ((magic >> 16) == 0 && ((magic >> 8) & 0xff) == 0x08)
    throw Error(cat(path, ": wrong number of dimensions: IDX header (magic ", hex32(magic), ") has ", magic & 0xff,
                    " dimension(s) but ", what, " need ", want_dims, " (magic ", hex32(want), ")"));
  if ((magic >> 16) == 0 && (magic & 0xff) == static_cast<uint32_t>(want_dims))
    throw Error(cat(path, ": wrong IDX element type 0x", hex32((magic >> 8) & 0xff).substr(8), " in magic ",
                    hex32(magic), ": only unsigned bytes (0x08, magic ", hex32(want), ") are supported"));
  throw Error(cat(path, ": wrong magic ", hex32(magic), ": not an IDX ", what, " file (expected ", hex32(want), ")"));
}

void check_payload(uint64_t want, size_t header, size_t total, const std::string& dims, const char* what,
                   const std::string& path) {
  const uint64_t have = total - header;
  if (have == want) return;
  if (have < want)
    throw Error(cat(path, ": truncated: header says ", dims, " (", want, " bytes of ", what, ") but file has ", have,
                    " bytes after the ", header, "-byte header"));
  throw Error(cat(path, ": trailing bytes: header says ", dims, " (", want, " bytes of ", what, ") but file has ", have,
                  " bytes after the ", header, "-byte header (", have - want, " extra)"));
}

std::vector<float> pixel_table(float lo, float hi) {
  std::vector<float> t(256);
  for (int p = 0; p < 256; ++p)
    t[p] =
        static_cast<float>(static_cast<double>(lo) + (static_cast<double>(hi) - static_cast<double>(lo)) * p / 255.0);
  return t;
}

// An IDX file's magic (for `ndims` dimensions: 3 for images, 1 for labels), then its whole header
// (the magic and one 4-byte size per dimension) present.
// `total`: the size of the whole file, of which the first `n` bytes are at `p` (n == total, or at
// least the header).
void check_idx_header(const uint8_t* p, size_t n, uint64_t total, int ndims, const std::string& path) {
  if (total < 4) throw Error(cat(path, ": truncated: file has ", total, " bytes, too short for an IDX header"));
  check_magic(be32(p), ndims, path);
  const size_t header = 4 + 4 * static_cast<size_t>(ndims);
  if (total < header)
    throw Error(cat(path, ": truncated: file has ", total, " bytes, less than the ", header, "-byte IDX ",
                    ndims == 3 ? "images" : "labels", " header"));
  CGAN_CHECK(n >= header, "internal: IDX header not read");
}

// An IDX images header (first n bytes of a file of `total` bytes) checked, the payload size too.
IdxImages idx3_header(const uint8_t* p, size_t n, uint64_t total, const std::string& path) {
  check_idx_header(p, n, total, 3, path);
  const uint32_t count = be32(p + 4), rows = be32(p + 8), cols = be32(p + 12);
  const std::string dims = cat(count, "x", rows, "x", cols);
  if (count == 0) throw Error(cat(path, ": header says 0 images (", dims, "): the file holds no data"));
  if (rows == 0 || cols == 0)
    throw Error(cat(path, ": header says images of ", rows, "x", cols, " pixels: sizes must be positive"));
  const uint64_t want = static_cast<uint64_t>(count) * rows * cols;
  if (count > static_cast<uint32_t>(std::numeric_limits<int32_t>::max()) || rows > 65535 || cols > 65535)
    throw Error(cat(path, ": header says ", dims, ", which is too large"));
  check_payload(want, 16, total, dims, "pixels", path);
  IdxImages im;
  im.count = static_cast<int>(count);
  im.rows = static_cast<int>(rows);
  im.cols = static_cast<int>(cols);
  return im;
}

void idx1_header(const uint8_t* p, size_t n, uint64_t total, const std::string& path) {
  check_idx_header(p, n, total, 1, path);
  const uint32_t count = be32(p + 4);
  if (count == 0) throw Error(cat(path, ": header says 0 labels: the file holds no data"));
  if (count > static_cast<uint32_t>(std::numeric_limits<int32_t>::max()))
    throw Error(cat(path, ": header says ", count, " labels, which is too many"));
  check_payload(count, 8, total, cat(count, " labels"), "labels", path);
}

// An IDX file's bytes. A plain file's header is read and checked against the file's size before
// the payload is (a lying or huge file is refused without being loaded); gzip files stop
// decompressing where the header says (read_file_maybe_gz).
std::vector<uint8_t> read_idx_file(const std::string& path, int ndims) {
  uint64_t size = 0;
  const int fd = open_regular_file(path, "data file", &size);
  uint8_t head[16] = {};
  const size_t want = std::min<uint64_t>(size, 4 + 4 * static_cast<uint64_t>(ndims));
  size_t got = 0;
  while (got < want) {
    const ssize_t r = ::pread(fd, head + got, want - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int e = errno;
      ::close(fd);
      throw Error(cat(path, ": read error in the IDX header: ", r < 0 ? std::strerror(e) : "file shrank"));
    }
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  if (got >= 2 && head[0] == 0x1f && head[1] == 0x8b) return read_file_maybe_gz(path, idx_expected_size);
  if (ndims == 3)
    (void)idx3_header(head, got, size, path);
  else
    idx1_header(head, got, size, path);
  return read_file_maybe_gz(path, idx_expected_size);
}

void check_count(int count, const char* who) {
  if (count <= 0) throw Error(cat(who, ": count must be a positive integer, got ", count));
  if (static_cast<int64_t>(count) * 2 > std::numeric_limits<int32_t>::max())
    throw Error(cat(who, ": count ", count, " is too large"));
}

}  // namespace

std::vector<uint8_t> read_file_maybe_gz(const std::string& path, const ExpectedSize& expected) {
  const std::string s = read_regular_file(path, "data file", kMaxDecompressed);
  std::vector<uint8_t> bytes(s.begin(), s.end());
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) return gunzip(bytes, path, expected);
  return bytes;
}

std::optional<uint64_t> idx_expected_size(const uint8_t* p, size_t n) {
  if (n < 4) return std::nullopt;
  const uint32_t magic = be32(p);
  const size_t dims = magic & 0xff;
  if ((magic >> 16) != 0 || dims == 0 || dims > 4) return std::numeric_limits<uint64_t>::max();  // the parser says why
  const size_t header = 4 + 4 * dims;
  if (n < header) return std::nullopt;
  uint64_t total = 1;  // saturates at the 8 GiB cap
  for (size_t d = 0; d < dims; ++d) {
    const uint64_t n_d = be32(p + 4 + 4 * d);
    total = n_d != 0 && total > kMaxDecompressed / n_d ? kMaxDecompressed : total * n_d;
  }
  const uint64_t elem = ((magic >> 8) & 0xff) == 0x08 ? 1 : 8;  // other types are refused by the parser
  return total * elem + header;
}

IdxImages parse_idx3_images(const std::vector<uint8_t>& b, const std::string& path) {
  IdxImages im = idx3_header(b.data(), b.size(), b.size(), path);
  im.pixels.assign(b.begin() + 16, b.end());
  return im;
}

std::vector<uint8_t> parse_idx1_labels(const std::vector<uint8_t>& b, const std::string& path) {
  idx1_header(b.data(), b.size(), b.size(), path);
  return std::vector<uint8_t>(b.begin() + 8, b.end());
}

HostDataset load_idx_pair(const std::string& images_path, const std::string& labels_path, float lo, float hi,
                          int num_classes) {
  if (num_classes < 1 || num_classes > 256)
    throw Error(cat(labels_path, ": num_classes must be in 1..256 for byte labels, got ", num_classes));
  if (!std::isfinite(lo) || !std::isfinite(hi))
    throw Error(cat(images_path, ": pixel range [", lo, ", ", hi, "] is not finite"));
  IdxImages im = parse_idx3_images(read_idx_file(images_path, 3), images_path);
  const std::vector<uint8_t> labels = parse_idx1_labels(read_idx_file(labels_path, 1), labels_path);
  if (static_cast<size_t>(im.count) != labels.size())
    throw Error(cat(images_path, ": holds ", im.count, " images but ", labels_path, " holds ", labels.size(),
                    " labels: the counts must match"));
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= num_classes)
      throw Error(cat(labels_path, ": label ", static_cast<int>(labels[i]), " at index ", i,
                      " is out of range (expected 0..", num_classes - 1, ")"));
  HostDataset d;
  d.name = images_path;
  d.count = im.count;
  d.channels = 1;
  d.height = im.rows;
  d.width = im.cols;
  d.num_classes = num_classes;
  const std::vector<float> table = pixel_table(lo, hi);
  d.x.resize(im.pixels.size());
  for (size_t i = 0; i < im.pixels.size(); ++i) d.x[i] = table[im.pixels[i]];
  d.y.assign(labels.begin(), labels.end());
  return d;
}

HostDataset load_mnist_dir(const std::string& dir, bool train, float lo, float hi) {
  const bool fashion = dir.find("fashion") != std::string::npos;
  const std::string hint = fashion ? "run tools/fetch_data.sh fashion to get Fashion-MNIST"
                                   : "run tools/fetch_data.sh mnist (or tools/fetch_data.sh fashion "
                                     "for Fashion-MNIST) to get the data";
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error(cat(dir, ": no such folder; ", hint));
  if (!fs::is_directory(dir, ec)) throw Error(cat(dir, ": is not a folder; ", hint));
  const std::string prefix = train ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    const fs::path base = fs::path(dir) / (prefix + stem);
    if (fs::exists(base, ec)) return base.string();
    const std::string gz = base.string() + ".gz";
    if (fs::exists(gz, ec)) return gz;
    throw Error(cat(base.string(), "[.gz]: not found; ", hint));
  };
  const std::string images = find("-images-idx3-ubyte");
  const std::string labels = find("-labels-idx1-ubyte");
  HostDataset d = load_idx_pair(images, labels, lo, hi, 10);
  d.name = cat(dir, train ? " (train)" : " (test)");
  return d;
}

std::vector<float> mixture_centers(int modes, float radius) {
  if (modes < 1) throw Error(cat("mixture: modes must be a positive integer, got ", modes));
  std::vector<float> c(2 * static_cast<size_t>(modes));
  for (int k = 0; k < modes; ++k) {
    const double a = 6.283185307179586 * k / modes;
    c[2 * k] = static_cast<float>(radius * std::cos(a));
    c[2 * k + 1] = static_cast<float>(radius * std::sin(a));
  }
  return c;
}

HostDataset make_gaussian(int count, float mean_x, float mean_y, float std_x, float std_y, uint64_t seed) {
  check_count(count, "gaussian");
  if (!(std_x >= 0.f) || !(std_y >= 0.f) || !std::isfinite(std_x) || !std::isfinite(std_y))
    throw Error(cat("gaussian: standard deviations must be finite and >= 0, got [", std_x, ", ", std_y, "]"));
  HostDataset d;
  d.name = "gaussian";
  d.count = count;
  d.channels = d.height = 1;
  d.width = 2;
  d.num_classes = 0;
  d.x.resize(2 * static_cast<size_t>(count));
  d.y.assign(count, 0);
  for (int i = 0; i < count; ++i) {
    const uint64_t idx = 2 * static_cast<uint64_t>(i);
    d.x[2 * i] = mean_x + std_x * philox_normal(seed, kGaussianStream, idx);
    d.x[2 * i + 1] = mean_y + std_y * philox_normal(seed, kGaussianStream, idx + 1);
  }
  return d;
}

HostDataset make_mixture(int count, int modes, float radius, float stddev, uint64_t seed) {
  check_count(count, "mixture");
  if (modes < 1) throw Error(cat("mixture: modes must be a positive integer, got ", modes));
  if (!(stddev >= 0.f) || !std::isfinite(stddev))
    throw Error(cat("mixture: stddev must be finite and >= 0, got ", stddev));
  if (!std::isfinite(radius)) throw Error(cat("mixture: radius must be finite, got ", radius));
  const std::vector<float> c = mixture_centers(modes, radius);
  HostDataset d;
  d.name = "mixture";
  d.count = count;
  d.channels = d.height = 1;
  d.width = 2;
  d.num_classes = modes;
  d.y.resize(count);
  for (int i = 0; i < count; ++i) d.y[i] = i % modes;  // balanced
  for (int i = count - 1; i > 0; --i) {                // Fisher-Yates with Philox: random order
    const uint32_t j =
        philox_below(seed, kMixtureShuffleStream, static_cast<uint64_t>(i), static_cast<uint32_t>(i) + 1);
    std::swap(d.y[i], d.y[j]);
  }
  d.x.resize(2 * static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const uint64_t idx = 2 * static_cast<uint64_t>(i);
    const int k = d.y[i];
    d.x[2 * i] = c[2 * k] + stddev * philox_normal(seed, kMixtureNoiseStream, idx);
    d.x[2 * i + 1] = c[2 * k + 1] + stddev * philox_normal(seed, kMixtureNoiseStream, idx + 1);
  }
  return d;
}

}  // namespace cgan
