// safetensors checkpoints: round trips, the on-disk format, hostile files, atomic writes, and a
// cross-read by tools/check_safetensors.py.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/base/error.hpp"

namespace {

using testutil::error_of;
using testutil::slurp;
using testutil::spit;
struct TempDir : testutil::TempDir {
  TempDir() : testutil::TempDir("ckpt") {}
};

using cgan::NamedTensor;
using cgan::SafeTensors;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A raw file: length, header text (unpadded, as another writer might do), then `buffer` bytes.
std::string raw(const std::string& header, const std::string& buffer) { return le64(header.size()) + header + buffer; }

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.begin(), s.size());
  return s;
}

// The message of the cgan::Error `fn` throws; fails the test when it throws nothing or another type.
// Reading `bytes` (written to `name`) is rejected with a one-line message naming the file and `problem`.
void expect_rejected(const TempDir& dir, const std::string& name, const std::string& bytes,
                     const std::string& problem) {
  const std::string p = dir / name;
  spit(p, bytes);
  const std::string m = error_of([&] { cgan::read_safetensors(p); });
  EXPECT_NE(m.find(p), std::string::npos) << "message does not name the file: " << m;
  EXPECT_NE(m.find(problem), std::string::npos) << "expected '" << problem << "' in: " << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << "message is not one line: " << m;
}

std::mt19937 fresh_rng() {
  const unsigned seed = std::random_device{}();
  std::printf("[ seed ] %u\n", seed);
  return std::mt19937(seed);
}

NamedTensor random_tensor(std::mt19937& rng, const std::string& name, std::vector<int64_t> shape) {
  NamedTensor t;
  t.name = name;
  t.shape = std::move(shape);
  size_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<size_t>(d);
  std::normal_distribution<float> nd(0.f, 3.f);
  for (size_t i = 0; i < n; ++i) t.data.push_back(nd(rng));
  return t;
}

SafeTensors sample_checkpoint(std::mt19937& rng) {
  SafeTensors st;
  st.tensors.push_back(random_tensor(rng, "generator.layers.0.weight", {7, 5}));
  st.tensors.push_back(random_tensor(rng, "generator.layers.0.bias", {7}));
  st.tensors.push_back(random_tensor(rng, "scalar", {}));
  st.tensors.push_back(random_tensor(rng, "empty", {0, 3}));
  st.tensors.push_back(random_tensor(rng, "conv", {2, 3, 3, 3}));
  // Special values must survive bit for bit.
  st.tensors.push_back({"special",
                        {6},
                        {-0.f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                         std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
                         std::numeric_limits<float>::quiet_NaN()}});
  return st;
}

void expect_same(const SafeTensors& a, const SafeTensors& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const NamedTensor& x = a.tensors[i];
    const NamedTensor* y = b.find(x.name);
    ASSERT_NE(y, nullptr) << x.name;
    EXPECT_EQ(x.shape, y->shape) << x.name;
    ASSERT_EQ(x.data.size(), y->data.size()) << x.name;
    if (!x.data.empty()) {
      EXPECT_EQ(0, std::memcmp(x.data.data(), y->data.data(), x.data.size() * sizeof(float))) << x.name;
    }
  }
  EXPECT_EQ(a.metadata, b.metadata);
}

bool have_python() { return std::system("python3 -c 'import json, struct' >/dev/null 2>&1") == 0; }

// Runs a shell command; returns its exit status and fills `out` with stdout+stderr.
int run(const std::string& cmd, std::string* out) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// ------------------------------------------------------------------ round trips and format

TEST(Checkpoint, RoundTripTensorsWithEmptyMetadata) {
  TempDir dir;
  auto rng = fresh_rng();
  const SafeTensors st = sample_checkpoint(rng);
  const std::string p = dir / "a.safetensors";
  cgan::write_safetensors(p, st);
  const SafeTensors back = cgan::read_safetensors(p);
  expect_same(st, back);
  // Written order is buffer order, which the reader returns.
  for (size_t i = 0; i < st.tensors.size(); ++i) EXPECT_EQ(st.tensors[i].name, back.tensors[i].name);
  EXPECT_TRUE(back.metadata.empty());
  EXPECT_EQ(back.at("scalar").shape.size(), 0u);
  EXPECT_EQ(back.at("scalar").data.size(), 1u);
  EXPECT_EQ(back.find("nope"), nullptr);
}

TEST(Checkpoint, MetadataRoundTrip) {
  TempDir dir;
  auto rng = fresh_rng();
  SafeTensors st;
  st.tensors.push_back(random_tensor(rng, "w", {3}));
  st.metadata = {{"format", "cgan_gpu.checkpoint.v1"},
                 {"config", R"({"a": [1, 2, {"b": "c\"d"}]})"},
                 {"empty", ""},
                 {"multi\nline", "tab\there, quote \" backslash \\ and ünïcødé ✓"},
                 {"step", "12345"}};
  const std::string p = dir / "m.safetensors";
  cgan::write_safetensors(p, st);
  expect_same(st, cgan::read_safetensors(p));
}

TEST(Checkpoint, NoTensorsAtAll) {
  TempDir dir;
  SafeTensors st;
  st.metadata["only"] = "metadata";
  cgan::write_safetensors(dir / "e.safetensors", st);
  expect_same(st, cgan::read_safetensors(dir / "e.safetensors"));
}

TEST(Checkpoint, OnDiskLayoutFollowsTheSpec) {
  TempDir dir;
  SafeTensors st;
  st.tensors.push_back({"b", {2}, {1.5f, -2.f}});
  st.tensors.push_back({"a", {1, 3}, {3.f, 4.f, 5.f}});
  st.metadata["k"] = "v";
  const std::string p = dir / "l.safetensors";
  cgan::write_safetensors(p, st);
  const std::string bytes = slurp(p);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";
  ASSERT_EQ(bytes.size(), 8 + n + 5 * 4);
  const auto h = nlohmann::json::parse(bytes.substr(8, n));  // trailing spaces are JSON whitespace
  EXPECT_EQ(h.at("__metadata__"), (nlohmann::json{{"k", "v"}}));
  EXPECT_EQ(h.at("b").at("dtype"), "F32");
  EXPECT_EQ(h.at("b").at("shape"), (nlohmann::json{2}));
  EXPECT_EQ(h.at("b").at("data_offsets"), (nlohmann::json{0, 8}));
  EXPECT_EQ(h.at("a").at("shape"), (nlohmann::json{1, 3}));
  EXPECT_EQ(h.at("a").at("data_offsets"), (nlohmann::json{8, 20}));
  EXPECT_EQ(bytes.substr(8 + n), floats({1.5f, -2.f, 3.f, 4.f, 5.f}));
}

TEST(Checkpoint, ReadsOtherWritersLayout) {
  // Header keys in another order than the buffer, no padding, no metadata, a zero-size tensor.
  TempDir dir;
  const std::string hdr = R"({"z":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("a":{"dtype":"F32","shape":[],"data_offsets":[8,12]},)"
                          R"("m":{"dtype":"F32","shape":[0],"data_offsets":[12,12]},)"
                          R"("__metadata__":null})";
  const std::string p = dir / "other.safetensors";
  spit(p, raw(hdr, floats({1.f, 2.f, 3.f})));
  const SafeTensors st = cgan::read_safetensors(p);
  ASSERT_EQ(st.tensors.size(), 3u);
  EXPECT_EQ(st.tensors[0].name, "z");  // buffer order
  EXPECT_EQ(st.at("z").data, (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(st.at("a").data, (std::vector<float>{3.f}));
  EXPECT_TRUE(st.at("m").data.empty());
  EXPECT_TRUE(st.metadata.empty());
}

TEST(Checkpoint, AtNamesTheMissingTensor) {
  SafeTensors st;
  st.tensors.push_back({"present", {1}, {0.f}});
  EXPECT_EQ(&st.at("present"), &st.tensors[0]);
  const std::string m = error_of([&] { st.at("generator.layers.9.weight"); });
  EXPECT_NE(m.find("generator.layers.9.weight"), std::string::npos) << m;
}

// ------------------------------------------------------------------ hostile files

TEST(Checkpoint, RejectsFilesThatAreNotSafetensors) {
  TempDir dir;
  expect_rejected(dir, "zero.safetensors", "", "empty");
  expect_rejected(dir, "short.safetensors", "abc", "shorter than the 8-byte");
  expect_rejected(dir, "text.safetensors", "This is a plain text file, not a checkpoint at all.\n", "header length");
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89", 33);
  expect_rejected(dir, "image.png", png, "header length");
  expect_rejected(dir, "tiny_header.safetensors", le64(1) + "{", "too small");
  const std::string m = error_of([&] { cgan::read_safetensors(dir / "missing.safetensors"); });
  EXPECT_NE(m.find(dir / "missing.safetensors"), std::string::npos) << m;
  EXPECT_NE(m.find("No such file"), std::string::npos) << m;
  const std::string d = error_of([&] { cgan::read_safetensors(dir.path); });
  EXPECT_NE(d.find("is a directory, not a checkpoint"), std::string::npos) << d;
}

TEST(Checkpoint, RejectsBadHeaderLength) {
  TempDir dir;
  const std::string hdr = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_rejected(dir, "huge.safetensors", le64(uint64_t(1) << 40) + hdr + floats({1.f}), "larger than the limit");
  expect_rejected(dir, "max.safetensors", le64(~uint64_t(0)) + hdr + floats({1.f}), "larger than the limit");
  expect_rejected(dir, "past.safetensors", le64(hdr.size() + 5) + hdr, "exceeds");
}

TEST(Checkpoint, RejectsTruncatedFiles) {
  TempDir dir;
  auto rng = fresh_rng();
  const std::string p = dir / "full.safetensors";
  cgan::write_safetensors(p, sample_checkpoint(rng));
  const std::string bytes = slurp(p);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  std::uniform_int_distribution<size_t> anywhere(1, bytes.size() - 1);
  for (size_t cut : {size_t(0), size_t(4), size_t(8), size_t(9), size_t(8 + n / 2), size_t(8 + n), size_t(8 + n + 3),
                     bytes.size() - 4, bytes.size() - 1, anywhere(rng), anywhere(rng)}) {
    SCOPED_TRACE(cut);
    const std::string q = dir / ("cut_" + std::to_string(cut) + ".safetensors");
    spit(q, bytes.substr(0, cut));
    const std::string m = error_of([&] { cgan::read_safetensors(q); });
    EXPECT_NE(m.find(q), std::string::npos) << m;
    EXPECT_TRUE(m.find("truncated") != std::string::npos || m.find("empty") != std::string::npos ||
                m.find("shorter") != std::string::npos)
        << m;
  }
}

TEST(Checkpoint, RejectsCorruptHeaders) {
  TempDir dir;
  const std::string one = floats({1.f});
  expect_rejected(dir, "notjson.safetensors", raw("{this is not json}", one), "not valid JSON");
  expect_rejected(dir, "array.safetensors", raw("[1, 2, 3]", one), "does not start with '{'");
  expect_rejected(dir, "cut_json.safetensors", raw(R"({"a":{"dtype":"F32","shape":[1],)", one), "not valid JSON");
  expect_rejected(dir, "garbage_after.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} xyz)", one), "not valid JSON");
  expect_rejected(dir, "bad_utf8.safetensors",
                  raw("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", one), "not valid JSON");
  expect_rejected(dir, "entry_not_object.safetensors", raw(R"({"a": 3})", one), "not described by an object");
  expect_rejected(dir, "no_dtype.safetensors", raw(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", one),
                  "has no \"dtype\"");
  expect_rejected(dir, "dtype_num.safetensors", raw(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", one),
                  "\"dtype\" is not a string");
  expect_rejected(dir, "no_shape.safetensors", raw(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", one),
                  "has no \"shape\"");
  expect_rejected(dir, "shape_str.safetensors", raw(R"({"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", one),
                  "\"shape\" is not an array");
  expect_rejected(dir, "shape_neg.safetensors", raw(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", one),
                  "not a non-negative integer");
  expect_rejected(dir, "shape_float.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", one),
                  "not a non-negative integer");
  expect_rejected(dir, "shape_overflow.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}})", one),
                  "overflows");
  expect_rejected(dir, "no_offsets.safetensors", raw(R"({"a":{"dtype":"F32","shape":[1]}})", one),
                  "has no \"data_offsets\"");
  expect_rejected(dir, "offsets_three.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", one), "not a pair");
  expect_rejected(dir, "offsets_neg.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", one), "not a pair");
  expect_rejected(dir, "offsets_backwards.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", one), "end before they begin");
  expect_rejected(dir, "unknown_field.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", one), "unknown field");
  expect_rejected(dir, "empty_name.safetensors", raw(R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", one),
                  "empty name");
  std::string deep = "1";
  for (int i = 0; i < 100; ++i) deep = "{\"a\":" + deep + "}";
  expect_rejected(dir, "deep.safetensors", raw(deep, one), "nests deeper");
  expect_rejected(dir, "deep_array.safetensors",
                  raw("{\"a\":" + std::string(1000, '[') + std::string(1000, ']') + "}", one), "nests deeper");
}

TEST(Checkpoint, RejectsWrongDtype) {
  TempDir dir;
  for (const char* dt : {"F16", "BF16", "F64", "I32", "U8", "BOOL", "f32", "i64", ""}) {
    SCOPED_TRACE(dt);
    const std::string hdr = std::string(R"({"w":{"dtype":")") + dt + R"(","shape":[1],"data_offsets":[0,4]}})";
    expect_rejected(dir, "dtype.safetensors", raw(hdr, floats({1.f})), "only F32 and I64 are supported");
  }
  // I64 spans 8 bytes a value
  expect_rejected(dir, "i64_short.safetensors",
                  raw(R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[0,4]}})", floats({1.f})),
                  "shape holds 1 I64 values (8 bytes) but data_offsets span 4 bytes");
}

// I64 tensors (batch norm's num_batches_tracked, a 0-dim scalar in PyTorch) round-trip next to F32
// ones, and the header says "I64" with 8 bytes a value.
TEST(Checkpoint, I64TensorsRoundTrip) {
  TempDir dir;
  auto rng = fresh_rng();
  SafeTensors st;
  st.tensors.push_back(random_tensor(rng, "w", {2, 3}));
  NamedTensor n;
  n.name = "bn.num_batches_tracked";
  n.dtype = cgan::DType::i64;
  n.ints = {(int64_t(1) << 40) + 7};  // needs all 8 bytes
  st.tensors.push_back(n);
  NamedTensor v = n;
  v.name = "counts";
  v.shape = {3};
  v.ints = {-1, 0, std::numeric_limits<int64_t>::max()};
  st.tensors.push_back(v);
  st.tensors.push_back(random_tensor(rng, "b", {3}));
  const std::string p = dir / "i64.safetensors";
  cgan::write_safetensors(p, st);
  const SafeTensors back = cgan::read_safetensors(p);
  ASSERT_EQ(back.tensors.size(), 4u);
  EXPECT_EQ(back.at("w").data, st.tensors[0].data);
  EXPECT_EQ(back.at("b").data, st.tensors[3].data);
  const NamedTensor& bn = back.at("bn.num_batches_tracked");
  EXPECT_EQ(bn.dtype, cgan::DType::i64);
  EXPECT_TRUE(bn.shape.empty());
  EXPECT_TRUE(bn.data.empty());
  EXPECT_EQ(bn.ints, n.ints);
  EXPECT_EQ(back.at("counts").ints, v.ints);
  EXPECT_EQ(back.at("counts").shape, (std::vector<int64_t>{3}));
  const std::string bytes = slurp(p);
  uint64_t len = 0;
  std::memcpy(&len, bytes.data(), 8);
  const nlohmann::json h = nlohmann::json::parse(bytes.substr(8, len));
  EXPECT_EQ(h.at("bn.num_batches_tracked").at("dtype"), "I64");
  EXPECT_EQ(h.at("bn.num_batches_tracked").at("shape"), nlohmann::json::array());
  const uint64_t b0 = h.at("bn.num_batches_tracked").at("data_offsets")[0];
  EXPECT_EQ(h.at("bn.num_batches_tracked").at("data_offsets")[1].get<uint64_t>(), b0 + 8);
  int64_t raw_value = 0;
  std::memcpy(&raw_value, bytes.data() + 8 + len + b0, 8);
  EXPECT_EQ(raw_value, n.ints[0]);
  // a value count that does not match the shape, or values in the other dtype's vector, are refused
  SafeTensors bad;
  NamedTensor m = n;
  m.ints = {1, 2};
  bad.tensors = {m};
  EXPECT_THROW(cgan::write_safetensors(dir / "bad.safetensors", bad), cgan::Error);
  m.ints = {1};
  m.data = {1.f};
  bad.tensors = {m};
  EXPECT_THROW(cgan::write_safetensors(dir / "bad.safetensors", bad), cgan::Error);
}

TEST(Checkpoint, RejectsShapeSizeMismatch) {
  TempDir dir;
  expect_rejected(dir, "mismatch.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats({1.f, 2.f})),
                  "shape holds 3 F32 values (12 bytes) but data_offsets span 8 bytes");
  expect_rejected(dir, "scalar_zero.safetensors", raw(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,0]}})", ""),
                  "shape holds 1 F32 values");
}

TEST(Checkpoint, RejectsBadOffsets) {
  TempDir dir;
  const std::string two = floats({1.f, 2.f}), three = floats({1.f, 2.f, 3.f});
  expect_rejected(dir, "out_of_range.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", two),
                  "run past the 8-byte data buffer");
  expect_rejected(
      dir, "far_out.safetensors",
      raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551608,18446744073709551612]}})", two),
      "run past");
  expect_rejected(dir, "overlap.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                      three),
                  "overlap");
  expect_rejected(dir, "same_place.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                      two),
                  "overlap");
  expect_rejected(dir, "gap.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                      three),
                  "gap at byte 4");
  expect_rejected(dir, "start_gap.safetensors", raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two),
                  "gap at byte 0");
  expect_rejected(dir, "trailing.safetensors", raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", two),
                  "4 trailing bytes");
}

TEST(Checkpoint, RejectsDuplicatesAndBadMetadata) {
  TempDir dir;
  const std::string one = floats({1.f});
  expect_rejected(dir, "dup.safetensors",
                  raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                      one),
                  "repeats the key \"a\"");
  expect_rejected(dir, "dup_field.safetensors",
                  raw(R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", one),
                  "repeats the key \"dtype\"");
  const std::string t = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  expect_rejected(dir, "md_num.safetensors", raw(R"({"__metadata__":{"step":5},)" + t + "}", one),
                  "metadata value of \"step\" is not a string");
  expect_rejected(dir, "md_array.safetensors", raw(R"({"__metadata__":["x"],)" + t + "}", one),
                  "\"__metadata__\" is not an object");
  expect_rejected(dir, "md_dup.safetensors", raw(R"({"__metadata__":{"k":"1","k":"2"},)" + t + "}", one),
                  "repeats the key \"k\"");
}

// A header of `extra` one-value tensors after one real one (a 14 MB header for 200,000).
std::string many_tensors(size_t extra) {
  std::string h = R"({"real":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  std::string buf = floats({1.f, 2.f});
  for (size_t i = 0; i < extra; ++i) {
    const uint64_t b = 8 + 4 * i;
    h += ",\"junk." + std::to_string(i) + R"(":{"dtype":"F32","shape":[],"data_offsets":[)" + std::to_string(b) + "," +
         std::to_string(b + 4) + "]}";
  }
  h += "}";
  buf.append(4 * extra, '\0');
  return raw(h, buf);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(Checkpoint, AHeaderOfMoreEntriesThanAnyModelIsRefusedPromptly) {
  TempDir dir;
  const std::string bytes = many_tensors(200000);
  ASSERT_GT(bytes.size(), size_t(14) << 20);
  const auto t0 = std::chrono::steady_clock::now();
  expect_rejected(dir, "many.safetensors", bytes,
                  "not a valid safetensors file: the header lists more than 65536 entries, more than any cgan_gpu "
                  "model has tensors (parameters, state, Adam moments and weight average together)");
  EXPECT_LT(seconds_since(t0), 1.0) << "the refusal took too long";
}

TEST(Checkpoint, ReadingAndLookingUpIsLinearInTheEntries) {
  // Just under the bound: every entry read and every name looked up (it took minutes when the
  // parser rescanned the header object after each entry and find() scanned the list).
  TempDir dir;
  const std::string p = dir / "under.safetensors";
  spit(p, many_tensors(cgan::kMaxSafetensorsEntries - 1));
  const auto t0 = std::chrono::steady_clock::now();
  const SafeTensors st = cgan::read_safetensors(p);
  ASSERT_EQ(st.tensors.size(), cgan::kMaxSafetensorsEntries);
  for (size_t i = 0; i + 1 < cgan::kMaxSafetensorsEntries; ++i)
    ASSERT_NE(st.find("junk." + std::to_string(i)), nullptr) << i;
  EXPECT_EQ(st.find("junk.x"), nullptr);
  EXPECT_EQ(st.at("real").data, std::vector<float>({1.f, 2.f}));
  EXPECT_LT(seconds_since(t0), 5.0) << "reading " << cgan::kMaxSafetensorsEntries << " entries took too long";
}

TEST(Checkpoint, TheWriterRefusesMoreEntriesThanTheReaderTakes) {
  TempDir dir;
  SafeTensors st;
  for (size_t i = 0; i <= cgan::kMaxSafetensorsEntries; ++i) st.tensors.push_back({"t" + std::to_string(i), {}, {0.f}});
  const std::string p = dir / "w.safetensors";
  const std::string m = error_of([&] { cgan::write_safetensors(p, st); });
  EXPECT_EQ(m, p + ": 65537 tensors, more than the 65536 a cgan_gpu file may hold");
  EXPECT_FALSE(std::ifstream(p).good());
}

TEST(Checkpoint, RandomCorruptionNeverCrashes) {
  TempDir dir;
  auto rng = fresh_rng();
  const std::string p = dir / "fuzz_src.safetensors";
  SafeTensors st = sample_checkpoint(rng);
  st.metadata["k"] = "v";
  cgan::write_safetensors(p, st);
  const std::string good = slurp(p);
  const std::string q = dir / "fuzz.safetensors";
  int rejected = 0;
  for (int it = 0; it < 300; ++it) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Mostly hit the length field and the header, where the structure is.
      const size_t span = (rng() % 4 == 0) ? b.size() : std::min<size_t>(b.size(), 200);
      b[rng() % span] = static_cast<char>(rng() & 0xff);
    }
    spit(q, b);
    try {
      cgan::read_safetensors(q);
    } catch (const cgan::Error& e) {
      ++rejected;
      EXPECT_NE(std::string(e.what()).find(q), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(rejected, 0);
}

// ------------------------------------------------------------------ writing

TEST(Checkpoint, WriteIntoMissingDirectoryFailsCleanly) {
  TempDir dir;
  const std::string p = dir / "no_such_dir/ck.safetensors";
  SafeTensors st;
  st.tensors.push_back({"a", {1}, {1.f}});
  const std::string m = error_of([&] { cgan::write_safetensors(p, st); });
  EXPECT_NE(m.find(p), std::string::npos) << m;
  EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
  EXPECT_TRUE(dir.list().empty()) << "left " << dir.list().size() << " entries behind";
}

TEST(Checkpoint, FailedOverwriteKeepsTheOldFile) {
  TempDir dir;
  auto rng = fresh_rng();
  const std::string p = dir / "keep.safetensors";
  const SafeTensors old = sample_checkpoint(rng);
  cgan::write_safetensors(p, old);
  const std::string before = slurp(p);

  auto attempt = [&](const SafeTensors& bad, const std::string& problem) {
    const std::string m = error_of([&] { cgan::write_safetensors(p, bad); });
    EXPECT_NE(m.find(p), std::string::npos) << m;
    EXPECT_NE(m.find(problem), std::string::npos) << m;
    EXPECT_EQ(slurp(p), before) << "the old checkpoint was modified";
    EXPECT_EQ(dir.list(), std::vector<std::string>{"keep.safetensors"}) << "a temporary file was left behind";
  };
  SafeTensors bad = old;
  bad.tensors[0].data.pop_back();
  attempt(bad, "has 34 values but its shape holds 35");
  bad = old;
  bad.tensors[1].name = bad.tensors[0].name;
  attempt(bad, "duplicate tensor name");
  bad = old;
  bad.tensors[2].name = "";
  attempt(bad, "empty name");
  bad = old;
  bad.tensors[2].name = "__metadata__";
  attempt(bad, "reserved name");
  bad = old;
  bad.tensors[3].shape = {-1, 0};
  attempt(bad, "negative dimension");
  bad = old;
  bad.metadata["k"] = std::string("\xff\xfe", 2);
  attempt(bad, "not valid UTF-8");

  // A good overwrite replaces it.
  SafeTensors next;
  next.tensors.push_back({"new", {2}, {7.f, 8.f}});
  cgan::write_safetensors(p, next);
  expect_same(next, cgan::read_safetensors(p));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"keep.safetensors"});
}

TEST(Checkpoint, RenameFailureRemovesTheTemporary) {
  TempDir dir;
  const std::string p = dir / "is_a_dir";
  ASSERT_EQ(::mkdir(p.c_str(), 0755), 0);
  SafeTensors st;
  st.tensors.push_back({"a", {1}, {1.f}});
  const std::string m = error_of([&] { cgan::write_safetensors(p, st); });
  EXPECT_NE(m.find(p), std::string::npos) << m;
  EXPECT_EQ(dir.list(), std::vector<std::string>{"is_a_dir"});
}

// ------------------------------------------------------------------ cross-read with Python

TEST(Checkpoint, PythonCheckerReadsOurFiles) {
  if (!have_python()) GTEST_SKIP() << "python3 not available";
  const std::string tool = std::string(CGAN_SOURCE_DIR) + "/tools/check_safetensors.py";
  TempDir dir;
  auto rng = fresh_rng();
  SafeTensors st = sample_checkpoint(rng);
  st.metadata = {{"format", "cgan_gpu.checkpoint.v1"}, {"step", "42"}};
  const std::string p = dir / "py.safetensors";
  cgan::write_safetensors(p, st);
  std::string out;
  ASSERT_EQ(run("python3 '" + tool + "' '" + p + "'", &out), 0) << out;
  for (const NamedTensor& t : st.tensors) EXPECT_NE(out.find(t.name), std::string::npos) << out;
  EXPECT_NE(out.find("[7, 5]"), std::string::npos) << out;
  EXPECT_NE(out.find("format"), std::string::npos) << out;
  EXPECT_NE(out.find("step"), std::string::npos) << out;

  // And it rejects what the C++ reader rejects.
  const std::string q = dir / "bad.safetensors";
  spit(q, raw(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats({1.f, 2.f})));
  EXPECT_NE(run("python3 '" + tool + "' '" + q + "'", &out), 0) << out;
  spit(q, slurp(p).substr(0, slurp(p).size() - 2));
  EXPECT_NE(run("python3 '" + tool + "' '" + q + "'", &out), 0) << out;
}

}  // namespace
