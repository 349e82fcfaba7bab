// Datasets: IDX files (plain and .gz) round trip, every kind of broken file gets a one-line error
// naming the file and the problem, the synthetic 2-D sets have the right statistics and are
// deterministic, and (when fetched) the real MNIST / Fashion-MNIST sets load.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "cgan/data/data.hpp"
#include "cgan/base/error.hpp"

namespace {

namespace fs = std::filesystem;
using cgan::HostDataset;
using Bytes = std::vector<uint8_t>;
struct DataTempDir : testutil::TempDir {
  DataTempDir() : testutil::TempDir("data") {}
};

void put32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

Bytes idx3(uint32_t n, uint32_t rows, uint32_t cols, const Bytes& pixels, uint32_t magic = 0x00000803) {
  Bytes b;
  put32(b, magic);
  put32(b, n);
  put32(b, rows);
  put32(b, cols);
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

Bytes idx1(uint32_t n, const Bytes& labels, uint32_t magic = 0x00000801) {
  Bytes b;
  put32(b, magic);
  put32(b, n);
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

void write_file(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  ASSERT_TRUE(f.good()) << path;
}

Bytes read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile g = gzopen(path.c_str(), "wb9");
  ASSERT_NE(g, nullptr) << path;
  if (!b.empty()) {
    ASSERT_EQ(gzwrite(g, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
  }
  ASSERT_EQ(gzclose(g), Z_OK);
}

// Runs fn, which must throw cgan::Error; returns its message and checks it is one line holding
// every expected part.
std::string error_of(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
  } catch (const cgan::Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "error message is not one line: " << m;
    for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "'" << p << "' not in: " << m;
    return m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-cgan::Error: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

struct Sample {
  uint32_t n, rows, cols;
  Bytes pixels, labels;
};

Sample random_sample(std::mt19937& rng, int num_classes = 10) {
  Sample s;
  s.n = std::uniform_int_distribution<uint32_t>(1, 40)(rng);
  s.rows = std::uniform_int_distribution<uint32_t>(1, 9)(rng);
  s.cols = std::uniform_int_distribution<uint32_t>(1, 9)(rng);
  std::uniform_int_distribution<int> byte(0, 255), label(0, num_classes - 1);
  s.pixels.resize(static_cast<size_t>(s.n) * s.rows * s.cols);
  for (auto& p : s.pixels) p = static_cast<uint8_t>(byte(rng));
  s.pixels[0] = 0;
  s.pixels.back() = 255;
  s.labels.resize(s.n);
  for (auto& l : s.labels) l = static_cast<uint8_t>(label(rng));
  return s;
}

uint32_t fresh_seed() {
  std::random_device rd;
  return rd();
}

void expect_matches(const HostDataset& d, const Sample& s, float lo, float hi, int num_classes) {
  ASSERT_EQ(d.count, static_cast<int>(s.n));
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.height, static_cast<int>(s.rows));
  EXPECT_EQ(d.width, static_cast<int>(s.cols));
  EXPECT_EQ(d.dim(), static_cast<int>(s.rows * s.cols));
  EXPECT_EQ(d.num_classes, num_classes);
  ASSERT_EQ(d.x.size(), s.pixels.size());
  ASSERT_EQ(d.y.size(), s.labels.size());
  for (size_t i = 0; i < s.pixels.size(); ++i) {
    const double want = lo + (static_cast<double>(hi) - lo) * s.pixels[i] / 255.0;
    ASSERT_NEAR(d.x[i], want, 1e-6 * (1 + std::fabs(want))) << "pixel " << i;
  }
  EXPECT_EQ(d.x.front(), lo) << "pixel 0 must map to lo exactly";
  EXPECT_EQ(d.x.back(), hi) << "pixel 255 must map to hi exactly";
  for (size_t i = 0; i < s.labels.size(); ++i) ASSERT_EQ(d.y[i], s.labels[i]) << "label " << i;
}

// ---------------------------------------------------------------- IDX round trips

TEST(DataIdx, PlainRoundTrip) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  DataTempDir t;
  for (int rep = 0; rep < 5; ++rep) {
    const Sample s = random_sample(rng);
    write_file(t / "img", idx3(s.n, s.rows, s.cols, s.pixels));
    write_file(t / "lab", idx1(s.n, s.labels));
    expect_matches(cgan::load_idx_pair(t / "img", t / "lab", -1.f, 1.f), s, -1.f, 1.f, 10);
    expect_matches(cgan::load_idx_pair(t / "img", t / "lab", 0.f, 1.f), s, 0.f, 1.f, 10);
  }
}

TEST(DataIdx, GzRoundTrip) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  DataTempDir t;
  const Sample s = random_sample(rng, 7);
  const Bytes img = idx3(s.n, s.rows, s.cols, s.pixels), lab = idx1(s.n, s.labels);
  write_gz(t / "img.gz", img);
  write_gz(t / "lab.gz", lab);
  write_file(t / "lab", lab);
  EXPECT_EQ(cgan::read_file_maybe_gz(t / "img.gz"), img);
  expect_matches(cgan::load_idx_pair(t / "img.gz", t / "lab.gz", -1.f, 1.f, 7), s, -1.f, 1.f, 7);
  expect_matches(cgan::load_idx_pair(t / "img.gz", t / "lab", 0.f, 1.f, 7), s, 0.f, 1.f, 7);

  // Concatenated gzip members (`cat a.gz b.gz`) decompress to the concatenation.
  const size_t half = img.size() / 2;
  write_gz(t / "a.gz", Bytes(img.begin(), img.begin() + half));
  write_gz(t / "b.gz", Bytes(img.begin() + half, img.end()));
  Bytes both = read_raw(t / "a.gz");
  const Bytes b = read_raw(t / "b.gz");
  both.insert(both.end(), b.begin(), b.end());
  write_file(t / "ab.gz", both);
  EXPECT_EQ(cgan::read_file_maybe_gz(t / "ab.gz"), img);
}

TEST(DataIdx, LargeGzRoundTrip) {
  // Bigger than zlib's internal buffers, so decompression takes many rounds.
  std::mt19937 rng(fresh_seed());
  Bytes raw(3 << 20);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>((i % 251) ^ (rng() & 3));
  DataTempDir t;
  write_gz(t / "big.gz", raw);
  EXPECT_EQ(cgan::read_file_maybe_gz(t / "big.gz"), raw);
}

// ---------------------------------------------------------------- broken IDX files

TEST(DataIdx, TruncatedImages) {
  DataTempDir t;
  write_file(t / "lab", idx1(3, {0, 1, 2}));
  write_file(t / "img", idx3(3, 4, 5, Bytes(3 * 4 * 5 - 7, 9)));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); },
           {t / "img", "truncated", "header says 3x4x5 (60 bytes of pixels)", "53 bytes"});
  // Shorter than the header itself.
  write_file(t / "img", Bytes{0, 0, 8, 3, 0, 0, 0, 3, 0, 0});
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "img", "truncated", "10 bytes"});
  write_file(t / "img", Bytes{0, 0});
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "img", "truncated", "2 bytes"});
  write_file(t / "img", Bytes{});
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "img", "truncated", "0 bytes"});
}

TEST(DataIdx, TruncatedLabels) {
  DataTempDir t;
  write_file(t / "img", idx3(3, 2, 2, Bytes(12, 1)));
  write_file(t / "lab", idx1(3, {0, 1}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); },
           {t / "lab", "truncated", "header says 3 labels", "2 bytes"});
}

TEST(DataIdx, TruncatedAndCorruptGzip) {
  DataTempDir t;
  std::mt19937 rng(fresh_seed());
  Bytes px(50 * 28 * 28);
  for (auto& p : px) p = static_cast<uint8_t>(rng());
  write_gz(t / "img.gz", idx3(50, 28, 28, px));
  Bytes gz = read_raw(t / "img.gz");
  write_file(t / "cut.gz", Bytes(gz.begin(), gz.begin() + gz.size() / 2));
  error_of([&] { cgan::read_file_maybe_gz(t / "cut.gz"); }, {t / "cut.gz", "bad gzip data", "truncated"});
  // Only the trailer (CRC + size) missing.
  write_file(t / "cut.gz", Bytes(gz.begin(), gz.end() - 4));
  error_of([&] { cgan::read_file_maybe_gz(t / "cut.gz"); }, {t / "cut.gz", "bad gzip data"});
  // Flipped bytes in the compressed body: inflate or the CRC check notices.
  Bytes bad = gz;
  for (size_t i = 20; i < 60 && i < bad.size(); ++i) bad[i] ^= 0x5a;
  write_file(t / "bad.gz", bad);
  error_of([&] { cgan::read_file_maybe_gz(t / "bad.gz"); }, {t / "bad.gz", "bad gzip data"});
  // Garbage after the stream.
  Bytes tail = gz;
  tail.insert(tail.end(), {1, 2, 3});
  write_file(t / "tail.gz", tail);
  error_of([&] { cgan::read_file_maybe_gz(t / "tail.gz"); }, {t / "tail.gz", "bad gzip data", "trailing"});
  // Just the magic.
  write_file(t / "magic.gz", Bytes{0x1f, 0x8b});
  error_of([&] { cgan::read_file_maybe_gz(t / "magic.gz"); }, {t / "magic.gz", "bad gzip data"});
  // The errors surface through the loader too.
  write_file(t / "lab", idx1(50, Bytes(50, 1)));
  error_of([&] { cgan::load_idx_pair(t / "bad.gz", t / "lab", 0, 1); }, {t / "bad.gz", "bad gzip data"});
}

TEST(DataIdx, WrongMagic) {
  DataTempDir t;
  write_file(t / "img", idx3(2, 2, 2, Bytes(8, 0), 0x12345678));
  write_file(t / "lab", idx1(2, {0, 1}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); },
           {t / "img", "wrong magic 0x12345678", "0x00000803"});
  write_file(t / "img", idx3(2, 2, 2, Bytes(8, 0)));
  write_file(t / "lab", idx1(2, {0, 1}, 0x89504e47));  // a PNG's first bytes
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); },
           {t / "lab", "wrong magic 0x89504e47", "0x00000801"});
}

TEST(DataIdx, WrongDimensionCount) {
  DataTempDir t;
  // A labels file where the images should be, and the other way round.
  write_file(t / "img", idx3(2, 2, 2, Bytes(8, 0)));
  write_file(t / "lab", idx1(2, {0, 1}));
  error_of([&] { cgan::load_idx_pair(t / "lab", t / "lab", 0, 1); },
           {t / "lab", "wrong number of dimensions", "1 dimension(s)", "need 3"});
  error_of([&] { cgan::load_idx_pair(t / "img", t / "img", 0, 1); },
           {t / "img", "wrong number of dimensions", "3 dimension(s)", "need 1"});
  write_file(t / "img4", idx3(2, 2, 2, Bytes(8, 0), 0x00000804));
  error_of([&] { cgan::load_idx_pair(t / "img4", t / "lab", 0, 1); },
           {t / "img4", "wrong number of dimensions", "4 dimension(s)"});
}

TEST(DataIdx, WrongElementType) {
  DataTempDir t;
  write_file(t / "img", idx3(2, 2, 2, Bytes(32, 0), 0x00000d03));  // float elements
  write_file(t / "lab", idx1(2, {0, 1}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "img", "element type 0x0d"});
}

TEST(DataIdx, TrailingBytes) {
  DataTempDir t;
  Bytes img = idx3(2, 3, 3, Bytes(18, 7));
  img.insert(img.end(), {1, 2, 3});
  write_file(t / "img", img);
  write_file(t / "lab", idx1(2, {0, 1}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); },
           {t / "img", "trailing bytes", "header says 2x3x3 (18 bytes of pixels)", "3 extra"});
  write_file(t / "img", idx3(2, 3, 3, Bytes(18, 7)));
  write_file(t / "lab", idx1(2, {0, 1, 1}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "lab", "trailing bytes", "1 extra"});
}

// A plain IDX file's header is checked against the file's size before the payload is read: a
// header that claims more than the file holds, or a huge (sparse) file behind a small header, is
// refused at once, naming the file.
TEST(DataIdx, PlainFilesAreCheckedByTheirHeaderBeforeTheyAreLoaded) {
  DataTempDir t;
  write_file(t / "lab", idx1(2, {0, 1}));
  write_file(t / "img", idx3(1000000, 28, 28, Bytes(784, 0)));
  auto t0 = std::chrono::steady_clock::now();
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); },
           {t / "img", "truncated: header says 1000000x28x28 (784000000 bytes of pixels) but file has 784 bytes"});
  write_file(t / "img", idx3(2, 2, 2, Bytes(8, 0)));
  {  // 6 GiB, sparse: no disk used, but reading it whole took seconds and 6 GiB of memory
    std::filesystem::resize_file(t / "img", uint64_t(6) << 30);
  }
  t0 = std::chrono::steady_clock::now();
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); },
           {t / "img", "trailing bytes: header says 2x2x2 (8 bytes of pixels)", "(6442450920 extra)"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  write_file(t / "img", idx3(2, 2, 2, Bytes(8, 0)));
  write_file(t / "lab", idx1(5000000, {0, 1}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); },
           {t / "lab", "truncated: header says 5000000 labels (5000000 bytes of labels) but file has 2 bytes"});
}

TEST(DataIdx, ZeroCountOrSize) {
  DataTempDir t;
  write_file(t / "img", idx3(0, 28, 28, {}));
  write_file(t / "lab", idx1(0, {}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "img", "0 images"});
  write_file(t / "img", idx3(1, 1, 1, {5}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "lab", "0 labels"});
  write_file(t / "img", idx3(3, 0, 28, {}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "img", "0x28"});
}

TEST(DataIdx, MismatchedCounts) {
  DataTempDir t;
  write_file(t / "img", idx3(5, 2, 2, Bytes(20, 3)));
  write_file(t / "lab", idx1(6, {0, 1, 2, 3, 4, 5}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "img", t / "lab", "5 images", "6 labels"});
}

TEST(DataIdx, LabelOutOfRange) {
  DataTempDir t;
  write_file(t / "img", idx3(5, 2, 2, Bytes(20, 3)));
  write_file(t / "lab", idx1(5, {0, 1, 9, 10, 4}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); },
           {t / "lab", "label 10 at index 3", "out of range", "0..9"});
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1, 3); }, {t / "lab", "label 9 at index 2", "0..2"});
  write_file(t / "lab", idx1(5, {0, 1, 2, 255, 4}));
  error_of([&] { cgan::load_idx_pair(t / "img", t / "lab", 0, 1); }, {t / "lab", "label 255 at index 3"});
}

TEST(DataIdx, MissingOrUnreadableFile) {
  DataTempDir t;
  write_file(t / "lab", idx1(1, {0}));
  error_of([&] { cgan::load_idx_pair(t / "nope", t / "lab", 0, 1); }, {t / "nope", "cannot open", "No such file"});
  error_of([&] { cgan::read_file_maybe_gz(t / "nope.gz"); }, {t / "nope.gz", "cannot open"});
  fs::create_directory(t / "sub");
  error_of([&] { cgan::read_file_maybe_gz(t / "sub"); }, {t / "sub", "is a directory, not a data file"});
}

// ---------------------------------------------------------------- MNIST-style folders

TEST(DataMnistDir, FindsPlainAndGzFiles) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  DataTempDir t;
  const Sample tr = random_sample(rng), te = random_sample(rng);
  write_file(t / "train-images-idx3-ubyte", idx3(tr.n, tr.rows, tr.cols, tr.pixels));
  write_file(t / "train-labels-idx1-ubyte", idx1(tr.n, tr.labels));
  write_gz(t / "t10k-images-idx3-ubyte.gz", idx3(te.n, te.rows, te.cols, te.pixels));
  write_gz(t / "t10k-labels-idx1-ubyte.gz", idx1(te.n, te.labels));
  expect_matches(cgan::load_mnist_dir(t.path, true, -1.f, 1.f), tr, -1.f, 1.f, 10);
  expect_matches(cgan::load_mnist_dir(t.path, false, 0.f, 1.f), te, 0.f, 1.f, 10);
  // The plain file wins over a .gz of the same name.
  write_gz(t / "train-images-idx3-ubyte.gz", Bytes{1, 2, 3});
  expect_matches(cgan::load_mnist_dir(t.path, true, 0.f, 1.f), tr, 0.f, 1.f, 10);
}

TEST(DataMnistDir, MissingFolderOrFileSuggestsFetch) {
  DataTempDir t;
  error_of([&] { cgan::load_mnist_dir(t / "nowhere", true, 0, 1); },
           {t / "nowhere", "no such folder", "tools/fetch_data.sh mnist"});
  error_of([&] { cgan::load_mnist_dir(t / "fashion", true, 0, 1); }, {t / "fashion", "tools/fetch_data.sh fashion"});
  write_file(t / "train-images-idx3-ubyte", idx3(1, 1, 1, {0}));
  error_of([&] { cgan::load_mnist_dir(t.path, true, 0, 1); },
           {t / "train-labels-idx1-ubyte[.gz]", "not found", "tools/fetch_data.sh"});
  error_of([&] { cgan::load_mnist_dir(t.path, false, 0, 1); },
           {t / "t10k-images-idx3-ubyte[.gz]", "not found", "tools/fetch_data.sh"});
  error_of([&] { cgan::load_mnist_dir(t / "train-images-idx3-ubyte", true, 0, 1); },
           {t / "train-images-idx3-ubyte", "not a folder"});
}

// ---------------------------------------------------------------- synthetic sets

TEST(DataSynthetic, GaussianMeanAndStd) {
  std::mt19937 rng(fresh_seed());
  const uint64_t seed = rng();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  const int n = 40000;
  const float mx = std::uniform_real_distribution<float>(-5, 5)(rng);
  const float my = std::uniform_real_distribution<float>(-5, 5)(rng);
  const float sx = std::uniform_real_distribution<float>(0.1f, 3)(rng);
  const float sy = std::uniform_real_distribution<float>(0.1f, 3)(rng);
  const HostDataset d = cgan::make_gaussian(n, mx, my, sx, sy, seed);
  ASSERT_EQ(d.count, n);
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.height, 1);
  EXPECT_EQ(d.width, 2);
  EXPECT_EQ(d.dim(), 2);
  EXPECT_EQ(d.num_classes, 0);
  ASSERT_EQ(d.x.size(), 2u * n);
  ASSERT_EQ(d.y.size(), static_cast<size_t>(n));
  double m[2] = {0, 0}, v[2] = {0, 0}, cov = 0;
  for (int i = 0; i < n; ++i)
    for (int a = 0; a < 2; ++a) m[a] += d.x[2 * i + a];
  m[0] /= n;
  m[1] /= n;
  for (int i = 0; i < n; ++i) {
    const double dx = d.x[2 * i] - m[0], dy = d.x[2 * i + 1] - m[1];
    v[0] += dx * dx;
    v[1] += dy * dy;
    cov += dx * dy;
  }
  const double s0 = std::sqrt(v[0] / (n - 1)), s1 = std::sqrt(v[1] / (n - 1));
  // 5 standard errors: the mean's is s/sqrt(n), the standard deviation's about s/sqrt(2n).
  EXPECT_NEAR(m[0], mx, 5 * sx / std::sqrt(n));
  EXPECT_NEAR(m[1], my, 5 * sy / std::sqrt(n));
  EXPECT_NEAR(s0, sx, 5 * sx / std::sqrt(2.0 * n));
  EXPECT_NEAR(s1, sy, 5 * sy / std::sqrt(2.0 * n));
  EXPECT_NEAR(cov / (n - 1) / (s0 * s1), 0.0, 5 / std::sqrt(n)) << "x and y must be independent";
  // Roughly 68% within one standard deviation on each axis.
  int within = 0;
  for (int i = 0; i < n; ++i) within += std::fabs(d.x[2 * i] - mx) < sx;
  EXPECT_NEAR(static_cast<double>(within) / n, 0.6827, 0.015);
}

TEST(DataSynthetic, MixtureSamplesSitOnTheirLabelsMode) {
  std::mt19937 rng(fresh_seed());
  const uint64_t seed = rng();
  const int modes = std::uniform_int_distribution<int>(2, 12)(rng);
  const int n = 997 * modes / 4 + 13;  // not a multiple of modes
  SCOPED_TRACE(testing::Message() << "seed " << seed << ", modes " << modes << ", n " << n);
  const float radius = 2.f, stddev = 0.05f;
  const HostDataset d = cgan::make_mixture(n, modes, radius, stddev, seed);
  ASSERT_EQ(d.count, n);
  EXPECT_EQ(d.dim(), 2);
  EXPECT_EQ(d.width, 2);
  EXPECT_EQ(d.num_classes, modes);
  ASSERT_EQ(d.x.size(), 2u * n);
  ASSERT_EQ(d.y.size(), static_cast<size_t>(n));
  const std::vector<float> c = cgan::mixture_centers(modes, radius);
  ASSERT_EQ(c.size(), 2u * modes);
  std::vector<int> per(modes, 0);
  std::vector<double> sx(modes, 0), sy(modes, 0);
  int in_order = 0;
  for (int i = 0; i < n; ++i) {
    const int k = d.y[i];
    ASSERT_GE(k, 0);
    ASSERT_LT(k, modes);
    ++per[k];
    sx[k] += d.x[2 * i];
    sy[k] += d.x[2 * i + 1];
    in_order += k == i % modes;
    int best = -1;
    double bd = 1e30;
    for (int j = 0; j < modes; ++j) {
      const double dx = d.x[2 * i] - c[2 * j], dy = d.x[2 * i + 1] - c[2 * j + 1];
      if (dx * dx + dy * dy < bd) bd = dx * dx + dy * dy, best = j;
    }
    ASSERT_EQ(best, k) << "sample " << i << " at (" << d.x[2 * i] << ", " << d.x[2 * i + 1] << ")";
  }
  const auto [mn, mx] = std::minmax_element(per.begin(), per.end());
  EXPECT_LE(*mx - *mn, 1) << "labels must be balanced";
  // In a random order about n/modes labels match i % modes; the plain 0,1,2,... order matches all n.
  EXPECT_LT(in_order, n / modes + 6 * std::sqrt(n)) << "labels must come in a random order, not 0,1,2,...";
  for (int k = 0; k < modes; ++k) {
    EXPECT_NEAR(sx[k] / per[k], c[2 * k], 5 * stddev / std::sqrt(per[k])) << "mode " << k;
    EXPECT_NEAR(sy[k] / per[k], c[2 * k + 1], 5 * stddev / std::sqrt(per[k])) << "mode " << k;
  }
}

TEST(DataSynthetic, MixtureCentersAreOnTheCircle) {
  const std::vector<float> c = cgan::mixture_centers(8, 2.f);
  ASSERT_EQ(c.size(), 16u);
  EXPECT_FLOAT_EQ(c[0], 2.f);
  EXPECT_NEAR(c[1], 0.f, 1e-6);
  EXPECT_NEAR(c[4], 0.f, 1e-6);  // mode 2 at 90 degrees
  EXPECT_FLOAT_EQ(c[5], 2.f);
  for (int k = 0; k < 8; ++k) EXPECT_NEAR(std::hypot(c[2 * k], c[2 * k + 1]), 2.0, 1e-6);
}

TEST(DataSynthetic, DeterministicPerSeed) {
  const uint64_t seed = std::mt19937_64(fresh_seed())();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  const HostDataset g1 = cgan::make_gaussian(1001, 4, 4, 1.25f, 1.25f, seed);
  const HostDataset g2 = cgan::make_gaussian(1001, 4, 4, 1.25f, 1.25f, seed);
  const HostDataset g3 = cgan::make_gaussian(1001, 4, 4, 1.25f, 1.25f, seed + 1);
  EXPECT_EQ(g1.x, g2.x);
  EXPECT_NE(g1.x, g3.x);
  const HostDataset m1 = cgan::make_mixture(1001, 8, 2, 0.05f, seed);
  const HostDataset m2 = cgan::make_mixture(1001, 8, 2, 0.05f, seed);
  const HostDataset m3 = cgan::make_mixture(1001, 8, 2, 0.05f, seed + 1);
  EXPECT_EQ(m1.x, m2.x);
  EXPECT_EQ(m1.y, m2.y);
  EXPECT_NE(m1.x, m3.x);
  EXPECT_NE(m1.y, m3.y);
  // A prefix does not depend on the total count (each point is keyed by its index).
  const HostDataset g4 = cgan::make_gaussian(10, 4, 4, 1.25f, 1.25f, seed);
  EXPECT_TRUE(std::equal(g4.x.begin(), g4.x.end(), g1.x.begin()));
}

TEST(DataSynthetic, BadArgumentsAreErrors) {
  error_of([] { cgan::make_gaussian(0, 0, 0, 1, 1, 0); }, {"gaussian", "count"});
  error_of([] { cgan::make_gaussian(10, 0, 0, -1, 1, 0); }, {"gaussian", "standard deviation"});
  error_of([] { cgan::make_mixture(-5, 8, 2, 0.05f, 0); }, {"mixture", "count"});
  error_of([] { cgan::make_mixture(10, 0, 2, 0.05f, 0); }, {"mixture", "modes"});
  error_of([] { cgan::make_mixture(10, 4, 2, -0.05f, 0); }, {"mixture", "stddev"});
}

// ---------------------------------------------------------------- the real data, when fetched

void check_real_set(const HostDataset& d, int count, float lo, float hi) {
  EXPECT_EQ(d.count, count);
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.height, 28);
  EXPECT_EQ(d.width, 28);
  EXPECT_EQ(d.num_classes, 10);
  ASSERT_EQ(d.x.size(), static_cast<size_t>(count) * 784);
  ASSERT_EQ(d.y.size(), static_cast<size_t>(count));
  std::vector<int> per(10, 0);
  for (int32_t l : d.y) {
    ASSERT_GE(l, 0);
    ASSERT_LT(l, 10);
    ++per[l];
  }
  for (int k = 0; k < 10; ++k) EXPECT_GT(per[k], count / 20) << "label " << k << " (nearly) missing";
  const auto [mn, mx] = std::minmax_element(d.x.begin(), d.x.end());
  EXPECT_EQ(*mn, lo);
  EXPECT_EQ(*mx, hi);
  double mean = 0;
  for (float v : d.x) mean += v;
  mean /= static_cast<double>(d.x.size());
  EXPECT_GT(mean, lo + 0.03 * (hi - lo)) << "images look blank";
  EXPECT_LT(mean, lo + 0.6 * (hi - lo)) << "images look inverted or saturated";
}

TEST(DataReal, MnistTrainAndTest) {
  const std::string dir = std::string(CGAN_SOURCE_DIR) + "/data/mnist";
  ASSERT_TRUE(fs::is_directory(dir)) << dir << " is missing: run tools/fetch_data.sh mnist (tools/test.sh does)";
  check_real_set(cgan::load_mnist_dir(dir, true, -1.f, 1.f), 60000, -1.f, 1.f);
  check_real_set(cgan::load_mnist_dir(dir, false, 0.f, 1.f), 10000, 0.f, 1.f);
}

TEST(DataReal, FashionMnistTrainAndTest) {
  const std::string dir = std::string(CGAN_SOURCE_DIR) + "/data/fashion";
  ASSERT_TRUE(fs::is_directory(dir)) << dir << " is missing: run tools/fetch_data.sh fashion (tools/test.sh does)";
  check_real_set(cgan::load_mnist_dir(dir, true, 0.f, 1.f), 60000, 0.f, 1.f);
  check_real_set(cgan::load_mnist_dir(dir, false, -1.f, 1.f), 10000, -1.f, 1.f);
}

}  // namespace
