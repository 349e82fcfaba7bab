// safetensors reader/writer; see include/cgan/base/safetensors.hpp for the format and the guarantees.
#include "cgan/base/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "cgan/base/error.hpp"
#include "cgan/base/io.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cgan_gpu's safetensors I/O assumes a little-endian host"
#endif
static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559, "F32 must be IEEE-754 binary32");

namespace cgan {

namespace {

constexpr uint64_t kMaxHeader = 100000000;  // same cap as the reference implementation
constexpr int kMaxJsonDepth = 16;           // a valid header nests 3 deep

// A string as JSON would write it (quoted, control characters escaped): safe inside a one-line
// message whatever a hostile file put in a tensor name.
std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string errno_text(int e) { return std::strerror(e); }

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return true;
  *out = a * b;
  return false;
}

// Reads exactly `size` bytes at `offset`; false on error or end of file (errno 0 then).
bool read_all(int fd, void* data, size_t size, uint64_t offset) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::pread(fd, p, std::min<size_t>(size, size_t(1) << 30), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {
      errno = 0;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Thrown out of the JSON parser callback; turned into an Error naming the file.
struct HeaderProblem {
  std::string what;
};

// The header's shape, checked event by event without building a DOM (see read_safetensors).
struct HeaderScan : nlohmann::json_sax<nlohmann::json> {
  std::vector<std::unordered_set<std::string>> keys;  // one per open container (empty for arrays)
  size_t top_level = 0;                               // keys of the outermost object

  void nest() {
    if (keys.size() > static_cast<size_t>(kMaxJsonDepth))
      throw HeaderProblem{cat("the header JSON nests deeper than ", kMaxJsonDepth)};
  }
  bool open() {
    nest();
    keys.emplace_back();
    return true;
  }
  bool close() {
    keys.pop_back();
    return true;
  }
  bool scalar() {
    nest();
    return true;
  }
  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool string(string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return scalar(); }
  bool start_object(std::size_t) override { return open(); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    nest();
    if (!keys.back().insert(k).second) throw HeaderProblem{cat("the header JSON repeats the key ", quoted(k))};
    if (keys.size() == 1 && ++top_level > kMaxSafetensorsEntries + 1)  // + 1: "__metadata__"
      throw HeaderProblem{cat("the header lists more than ", kMaxSafetensorsEntries,
                              " entries, more than any cgan_gpu model has tensors (parameters, state, Adam "
                              "moments and weight average together)")};
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
};

}  // namespace

// ------------------------------------------------------------------ SafeTensors

const NamedTensor* SafeTensors::find(const std::string& name) const {
  // The index is rebuilt when the tensor list has changed length since it was made (writers only
  // append); one hashed lookup per name keeps matching a model against a file linear in its size.
  if (index_size_ != tensors.size() || index_.empty() != tensors.empty()) {
    index_.clear();
    index_.reserve(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) index_.emplace(tensors[i].name, i);
    index_size_ = tensors.size();
  }
  auto it = index_.find(name);
  if (it == index_.end() || it->second >= tensors.size() || tensors[it->second].name != name) {
    for (const NamedTensor& t : tensors)  // a name changed in place after indexing (no caller does)
      if (t.name == name) return &t;
    return nullptr;
  }
  return &tensors[it->second];
}

const NamedTensor& SafeTensors::at(const std::string& name) const {
  const NamedTensor* t = find(name);
  if (!t) throw Error(cat("safetensors: no tensor named ", quoted(name)));
  return *t;
}

// ------------------------------------------------------------------ write

void write_safetensors(const std::string& path, const SafeTensors& st) {
  using ojson = nlohmann::ordered_json;
  ojson header = ojson::object();
  auto check_utf8 = [&](const std::string& s, const std::string& what) {
    try {
      (void)nlohmann::json(s).dump();
    } catch (const nlohmann::json::exception&) {
      throw Error(cat(path, ": ", what, " is not valid UTF-8"));
    }
  };
  if (!st.metadata.empty()) {
    ojson md = ojson::object();
    for (const auto& [k, v] : st.metadata) {
      check_utf8(k, cat("metadata key ", quoted(k)));
      check_utf8(v, cat("metadata value of ", quoted(k)));
      md[k] = v;
    }
    header["__metadata__"] = std::move(md);
  }
  if (st.tensors.size() > kMaxSafetensorsEntries)
    throw Error(cat(path, ": ", st.tensors.size(), " tensors, more than the ", kMaxSafetensorsEntries,
                    " a cgan_gpu file may hold"));
  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (size_t i = 0; i < st.tensors.size(); ++i) {
    const NamedTensor& t = st.tensors[i];
    if (t.name.empty()) throw Error(cat(path, ": tensor #", i, " has an empty name"));
    if (t.name == "__metadata__") throw Error(cat(path, ": tensor #", i, " uses the reserved name \"__metadata__\""));
    check_utf8(t.name, cat("tensor #", i, "'s name"));
    if (!names.insert(t.name).second) throw Error(cat(path, ": duplicate tensor name ", quoted(t.name)));
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw Error(cat(path, ": tensor ", quoted(t.name), " has a negative dimension ", d));
      if (mul_overflows(n, static_cast<uint64_t>(d), &n))
        throw Error(cat(path, ": tensor ", quoted(t.name), " has a shape whose size overflows"));
    }
    const bool i64 = t.dtype == DType::i64;
    const size_t have = i64 ? t.ints.size() : t.data.size();
    if (n != have || (i64 ? !t.data.empty() : !t.ints.empty()))
      throw Error(cat(path, ": tensor ", quoted(t.name), " has ", have, " values but its shape holds ", n));
    const uint64_t bytes = n * (i64 ? sizeof(int64_t) : sizeof(float));  // n == have: cannot overflow
    header[t.name] = {{"dtype", i64 ? "I64" : "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<uint64_t>(h.size()) >> (8 * i));
  std::vector<ByteSpan> chunks{{len, 8}, {h.data(), h.size()}};
  for (const NamedTensor& t : st.tensors) {
    if (t.dtype == DType::i64)
      chunks.push_back({t.ints.data(), t.ints.size() * sizeof(int64_t)});
    else
      chunks.push_back({t.data.data(), t.data.size() * sizeof(float)});
  }
  write_file_atomic(path, chunks);
}

// ------------------------------------------------------------------ read

SafeTensors read_safetensors(const std::string& path) {
  Fd f;
  uint64_t file_size = 0;
  f.fd = open_regular_file(path, "checkpoint", &file_size);
  auto bad = [&](const std::string& what) { return Error(cat(path, ": not a valid safetensors file: ", what)); };
  auto read_or_throw = [&](void* dst, size_t n, uint64_t at, const char* what) {
    if (!read_all(f.fd, dst, n, at)) {
      if (errno != 0) throw Error(cat(path, ": read error in the ", what, ": ", errno_text(errno)));
      throw bad(cat("file ends inside the ", what, " (was it truncated?)"));
    }
  };

  if (file_size == 0) throw bad("the file is empty (0 bytes)");
  if (file_size < 8) throw bad(cat("the file is only ", file_size, " bytes, shorter than the 8-byte header length"));
  unsigned char len[8];
  read_or_throw(len, 8, 0, "header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (n > kMaxHeader) throw bad(cat("header length ", n, " is larger than the limit of ", kMaxHeader, " bytes"));
  if (n > file_size - 8)
    throw bad(
        cat("header length ", n, " exceeds the ", file_size - 8, " bytes after the length field (truncated file?)"));
  if (n < 2) throw bad(cat("header length ", n, " is too small for a JSON object"));
  std::string h(static_cast<size_t>(n), '\0');
  read_or_throw(h.data(), h.size(), 8, "header");
  if (h[0] != '{') throw bad("the header does not start with '{'");

  // First a SAX pass that builds nothing, rejecting duplicate keys (nlohmann would keep the last),
  // absurd nesting and more top-level entries than any model has tensors (counted as they are read:
  // a 14 MB header of 200,000 entries is refused after its first kMaxSafetensorsEntries + 2 keys);
  // then the plain parse. Both are linear: nlohmann's parse-with-callback rescans the enclosing
  // object at the end of every nested one (to drop discarded values), quadratic in the entries.
  nlohmann::json header;
  try {
    HeaderScan scan;
    if (nlohmann::json::sax_parse(h, &scan))
      header = nlohmann::json::parse(h);
    else
      header = nlohmann::json::parse(h);  // not JSON: throws, with the parser's own words
  } catch (const HeaderProblem& p) {
    throw bad(p.what);
  } catch (const nlohmann::json::exception& e) {
    throw bad(cat("the header is not valid JSON (", e.what(), ")"));
  }
  if (!header.is_object()) throw bad("the header is not a JSON object");

  SafeTensors st;
  struct Entry {
    uint64_t begin, end;
    NamedTensor t;
  };
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "__metadata__") {
      if (v.is_null()) continue;
      if (!v.is_object()) throw bad("\"__metadata__\" is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw bad(cat("metadata value of ", quoted(m.key()), " is not a string"));
        st.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string tn = cat("tensor ", quoted(key));
    if (key.empty()) throw bad("a tensor has an empty name");
    if (!v.is_object()) throw bad(cat(tn, " is not described by an object"));
    for (auto fit = v.begin(); fit != v.end(); ++fit)
      if (fit.key() != "dtype" && fit.key() != "shape" && fit.key() != "data_offsets")
        throw bad(cat(tn, " has an unknown field ", quoted(fit.key())));
    auto dt = v.find("dtype");
    if (dt == v.end()) throw bad(cat(tn, " has no \"dtype\""));
    if (!dt->is_string()) throw bad(cat(tn, ": \"dtype\" is not a string"));
    const std::string dtype = dt->get<std::string>();
    if (dtype != "F32" && dtype != "I64")
      throw bad(cat(tn, " has dtype ", quoted(dtype), "; only F32 and I64 are supported"));
    auto sh = v.find("shape");
    if (sh == v.end()) throw bad(cat(tn, " has no \"shape\""));
    if (!sh->is_array()) throw bad(cat(tn, ": \"shape\" is not an array"));
    Entry e;
    e.t.name = key;
    e.t.dtype = dtype == "I64" ? DType::i64 : DType::f32;
    const uint64_t elem = dtype == "I64" ? sizeof(int64_t) : sizeof(float);
    uint64_t count = 1;
    bool overflow = false;
    for (const nlohmann::json& d : *sh) {
      if (!d.is_number_unsigned()) throw bad(cat(tn, ": \"shape\" holds ", d.dump(), ", not a non-negative integer"));
      const uint64_t u = d.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw bad(cat(tn, ": dimension ", u, " is too large"));
      e.t.shape.push_back(static_cast<int64_t>(u));
      overflow = overflow || mul_overflows(count, u, &count);
    }
    uint64_t bytes = 0;
    if (overflow || mul_overflows(count, elem, &bytes)) throw bad(cat(tn, ": the shape's size overflows"));
    auto off = v.find("data_offsets");
    if (off == v.end()) throw bad(cat(tn, " has no \"data_offsets\""));
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
      throw bad(cat(tn, ": \"data_offsets\" is not a pair of non-negative integers"));
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.end < e.begin) throw bad(cat(tn, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin"));
    if (e.end - e.begin != bytes)
      throw bad(cat(tn, ": shape holds ", count, " ", dtype, " values (", bytes, " bytes) but data_offsets span ",
                    e.end - e.begin, " bytes"));
    entries.push_back(std::move(e));
  }

  // The buffer must be covered exactly: sorted by offset, each tensor starts where the last ended.
  const uint64_t buffer = file_size - 8 - n;
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const Entry& e : entries) {
    const std::string tn = cat("tensor ", quoted(e.t.name));
    if (e.end > buffer)
      throw bad(cat(tn, ": data_offsets [", e.begin, ", ", e.end, "] run past the ", buffer,
                    "-byte data buffer (truncated file?)"));
    if (e.begin < cursor) throw bad(cat(tn, ": data_offsets [", e.begin, ", ", e.end, "] overlap another tensor"));
    if (e.begin > cursor)
      throw bad(cat(tn, ": data_offsets [", e.begin, ", ", e.end, "] leave a gap at byte ", cursor, " of the buffer"));
    cursor = e.end;
  }
  if (cursor != buffer)
    throw bad(cat(buffer - cursor, " trailing bytes after the last tensor (buffer is ", buffer,
                  " bytes, tensors cover ", cursor, ")"));

  st.tensors.reserve(entries.size());
  for (Entry& e : entries) {
    void* dst = nullptr;
    if (e.t.dtype == DType::i64) {
      e.t.ints.resize(static_cast<size_t>((e.end - e.begin) / sizeof(int64_t)));
      dst = e.t.ints.data();
    } else {
      e.t.data.resize(static_cast<size_t>((e.end - e.begin) / sizeof(float)));
      dst = e.t.data.data();
    }
    if (e.end > e.begin) read_or_throw(dst, static_cast<size_t>(e.end - e.begin), 8 + n + e.begin, "tensor data");
    st.tensors.push_back(std::move(e.t));
  }
  return st;
}

}  // namespace cgan
