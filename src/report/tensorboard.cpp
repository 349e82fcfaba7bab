#include "cgan/report/tensorboard.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "cgan/base/error.hpp"

namespace cgan {
namespace {

// ---- protocol-buffer wire format (varint = 0, 64-bit = 1, length-delimited = 2, 32-bit = 5)

void varint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
}
void key(std::string& s, int field, int wire) {
  varint(s, static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire));
}
void field_varint(std::string& s, int field, uint64_t v) {
  key(s, field, 0);
  varint(s, v);
}
void field_bytes(std::string& s, int field, const std::string& b) {
  key(s, field, 2);
  varint(s, b.size());
  s += b;
}
void field_double(std::string& s, int field, double v) {
  key(s, field, 1);
  uint64_t u;
  std::memcpy(&u, &v, 8);
  for (int i = 0; i < 8; ++i) s += static_cast<char>(u >> (8 * i));
}
void field_float(std::string& s, int field, float v) {
  key(s, field, 5);
  uint32_t u;
  std::memcpy(&u, &v, 4);
  for (int i = 0; i < 4; ++i) s += static_cast<char>(u >> (8 * i));
}

// Event {wall_time = 1, step = 2, summary = 5} holding Summary {value = 1} with one value.
std::string event_with_value(double wall_time, int64_t step, const std::string& value) {
  std::string summary, ev;
  field_bytes(summary, 1, value);
  field_double(ev, 1, wall_time);
  field_varint(ev, 2, static_cast<uint64_t>(step));
  field_bytes(ev, 5, summary);
  return ev;
}

// Reads one varint at s[*i]; false when the bytes end first.
bool read_varint(const std::string& s, size_t* i, uint64_t* v) {
  *v = 0;
  for (int shift = 0; *i < s.size() && shift < 64; shift += 7) {
    const auto b = static_cast<unsigned char>(s[(*i)++]);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Calls f(field, wire, varint value, bytes) for each field of a message; false on malformed input.
template <class F>
bool each_field(const std::string& m, F f) {
  size_t i = 0;
  while (i < m.size()) {
    uint64_t k = 0, v = 0;
    if (!read_varint(m, &i, &k)) return false;
    const int wire = static_cast<int>(k & 7), field = static_cast<int>(k >> 3);
    std::string bytes;
    if (wire == 0) {
      if (!read_varint(m, &i, &v)) return false;
    } else if (wire == 1 || wire == 5) {
      const size_t n = wire == 1 ? 8 : 4;
      if (m.size() - i < n) return false;
      i += n;
    } else if (wire == 2) {
      if (!read_varint(m, &i, &v) || v > m.size() - i) return false;
      bytes = m.substr(i, static_cast<size_t>(v));
      i += static_cast<size_t>(v);
    } else {
      return false;
    }
    f(field, wire, v, bytes);
  }
  return true;
}

uint32_t crc_table(int i) {
  static uint32_t t[256];
  static bool init = [] {
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[n] = c;
    }
    return true;
  }();
  (void)init;
  return t[i];
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = crc_table((crc ^ p[i]) & 0xff) ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tfrecord(const std::string& data) {
  std::string r;
  const uint64_t len = data.size();
  for (int i = 0; i < 8; ++i) r += static_cast<char>(len >> (8 * i));
  const uint32_t lc = masked_crc32c(r.data(), 8), dc = masked_crc32c(data.data(), data.size());
  for (int i = 0; i < 4; ++i) r += static_cast<char>(lc >> (8 * i));
  r += data;
  for (int i = 0; i < 4; ++i) r += static_cast<char>(dc >> (8 * i));
  return r;
}

std::vector<std::string> read_tfrecords(const std::string& b, const std::string& what, bool stop_at_damage) {
  std::vector<std::string> out;
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(b[at + i])) << (8 * i);
    return v;
  };
  size_t i = 0;
  while (i < b.size()) try {
      if (b.size() - i < 12) throw Error(cat(what, ": truncated record header at byte ", i));
      uint64_t len = 0;
      for (int k = 0; k < 8; ++k) len |= static_cast<uint64_t>(static_cast<unsigned char>(b[i + k])) << (8 * k);
      if (u32(i + 8) != masked_crc32c(b.data() + i, 8)) throw Error(cat(what, ": bad length CRC at byte ", i));
      if (len > b.size() - i - 12 || b.size() - i - 12 - len < 4)
        throw Error(cat(what, ": truncated record at byte ", i));
      const std::string data = b.substr(i + 12, static_cast<size_t>(len));
      if (u32(i + 12 + len) != masked_crc32c(data.data(), data.size()))
        throw Error(cat(what, ": bad data CRC at byte ", i));
      out.push_back(data);
      i += 16 + static_cast<size_t>(len);
    } catch (const Error&) {
      if (!stop_at_damage) throw;
      break;
    }
  return out;
}

namespace tb_event {

std::string file_version(double wall_time) {
  std::string ev;
  field_double(ev, 1, wall_time);
  field_bytes(ev, 3, "brain.Event:2");
  return ev;
}

std::string scalar(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string v;
  field_bytes(v, 1, tag);
  field_float(v, 2, value);
  return event_with_value(wall_time, step, v);
}

std::string image(double wall_time, int64_t step, const std::string& tag, int height, int width, int colorspace,
                  const std::string& png) {
  std::string img, v;
  field_varint(img, 1, static_cast<uint64_t>(height));
  field_varint(img, 2, static_cast<uint64_t>(width));
  field_varint(img, 3, static_cast<uint64_t>(colorspace));
  field_bytes(img, 4, png);
  field_bytes(v, 1, tag);
  field_bytes(v, 4, img);
  return event_with_value(wall_time, step, v);
}

std::string text(double wall_time, int64_t step, const std::string& tag, const std::string& text) {
  std::string plugin, meta, tensor, v;
  field_bytes(plugin, 1, "text");
  field_bytes(meta, 1, plugin);
  field_varint(tensor, 1, 7);  // DT_STRING
  field_bytes(tensor, 2, "");  // TensorShapeProto with no dimensions: a scalar
  field_bytes(tensor, 8, text);
  field_bytes(v, 1, tag);
  field_bytes(v, 9, meta);
  field_bytes(v, 8, tensor);
  return event_with_value(wall_time, step, v);
}

void step_and_tag(const std::string& event, int64_t* step, std::string* tag) {
  *step = 0;
  tag->clear();
  std::string summary;
  each_field(event, [&](int f, int w, uint64_t v, const std::string& b) {
    if (f == 2 && w == 0) *step = static_cast<int64_t>(v);
    if (f == 5 && w == 2) summary = b;
  });
  bool found = false;
  each_field(summary, [&](int f, int w, uint64_t, const std::string& value) {
    if (found || f != 1 || w != 2) return;
    found = true;
    each_field(value, [&](int f2, int w2, uint64_t, const std::string& t) {
      if (f2 == 1 && w2 == 2) *tag = t;
    });
  });
}

}  // namespace tb_event

double tb_wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

EventFile::EventFile(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw Error(cat(dir, ": cannot create the TensorBoard folder: ", ec ? ec.message() : "not a directory"));
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "localhost");
  const std::string base = cat(dir, "/events.out.tfevents.", static_cast<long long>(tb_wall_time()), ".", host);
  int fd = -1;
  for (int n = 0; n < 1000 && fd < 0; ++n) {
    path_ = n == 0 ? base : cat(base, ".", n);
    fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) throw Error(cat(dir, ": cannot create an event file: ", std::strerror(errno)));
  }
  if (fd < 0) throw Error(cat(dir, ": cannot create an event file: too many of the same name"));
  f_ = ::fdopen(fd, "wb");
  if (!f_) {
    ::close(fd);
    throw Error(cat(path_, ": cannot open: ", std::strerror(errno)));
  }
  add(tb_event::file_version(tb_wall_time()));
  flush();
}

EventFile::~EventFile() {
  if (f_) std::fclose(f_);
}

void EventFile::add(const std::string& event) {
  const std::string r = tfrecord(event);
  if (std::fwrite(r.data(), 1, r.size(), f_) != r.size())
    throw Error(cat(path_, ": write failed: ", std::strerror(errno)));
}

void EventFile::flush() {
  if (std::fflush(f_) != 0) throw Error(cat(path_, ": write failed: ", std::strerror(errno)));
}

}  // namespace cgan
