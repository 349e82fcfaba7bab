// Images: grid arithmetic and value mapping, PNG round trips, hostile image files, resizing.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <stb_image_write.h>

#include "test_util.hpp"
#include "cgan/base/error.hpp"
#include "cgan/data/image.hpp"

namespace {

using testutil::error_of;
using testutil::slurp;
using testutil::spit;
struct TempDir : testutil::TempDir {
  TempDir() : testutil::TempDir("img") {}
};

using cgan::Image;

std::mt19937 fresh_rng() {
  const unsigned seed = std::random_device{}();
  std::printf("[ seed ] %u\n", seed);
  return std::mt19937(seed);
}

Image random_image(std::mt19937& rng, int w, int h, int c) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = c;
  img.pixels.resize(static_cast<size_t>(w) * h * c);
  for (auto& p : img.pixels) p = static_cast<uint8_t>(rng() & 0xff);
  return img;
}

uint8_t px(const Image& img, int x, int y, int c = 0) {
  return img.pixels[(static_cast<size_t>(y) * img.width + x) * img.channels + c];
}

// Reading `path` is rejected with a one-line message naming it and `problem`.
void expect_read_rejected(const std::string& path, const std::string& problem) {
  const std::string m = error_of([&] { cgan::read_image(path); });
  EXPECT_NE(m.find(path), std::string::npos) << "message does not name the file: " << m;
  EXPECT_NE(m.find(problem), std::string::npos) << "expected '" << problem << "' in: " << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

// ------------------------------------------------------------------ make_grid

TEST(Image, GridSizeArithmetic) {
  std::vector<float> s(80 * 28 * 28, 0.f);
  Image g = cgan::make_grid(s.data(), 80, 1, 28, 28, 10, 8, -1.f, 1.f, 2);
  EXPECT_EQ(g.width, 8 * 28 + 9 * 2);     // 242
  EXPECT_EQ(g.height, 10 * 28 + 11 * 2);  // 302
  EXPECT_EQ(g.channels, 1);
  EXPECT_EQ(g.pixels.size(), size_t(242) * 302);

  g = cgan::make_grid(s.data(), 3, 1, 28, 28, 10, 8, -1.f, 1.f, 0);
  EXPECT_EQ(g.width, 8 * 28);
  EXPECT_EQ(g.height, 10 * 28);

  std::vector<float> rgb(6 * 3 * 5 * 7, 0.f);
  g = cgan::make_grid(rgb.data(), 6, 3, 5, 7, 2, 3, 0.f, 1.f, 1);
  EXPECT_EQ(g.width, 3 * 7 + 4);
  EXPECT_EQ(g.height, 2 * 5 + 3);
  EXPECT_EQ(g.channels, 3);
  EXPECT_EQ(g.pixels.size(), size_t(25) * 13 * 3);
}

TEST(Image, GridValueMappingAndClamping) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // One 1x8 grey tile in [-1, 1].
  const std::vector<float> s = {-1.f, 1.f, 0.f, -5.f, 5.f, nan, -inf, inf};
  const Image g = cgan::make_grid(s.data(), 1, 1, 1, 8, 1, 1, -1.f, 1.f, 2);
  ASSERT_EQ(g.width, 12);
  ASSERT_EQ(g.height, 5);
  const std::vector<int> expect = {0, 255, 128, 0, 255, 0, 0, 255};
  for (int x = 0; x < 8; ++x) EXPECT_EQ(px(g, 2 + x, 2), expect[x]) << "x=" << x;

  // Against the formula on random values in [0, 1].
  auto rng = fresh_rng();
  std::uniform_real_distribution<float> u(-0.2f, 1.2f);
  std::vector<float> r(4 * 9 * 11);
  for (auto& v : r) v = u(rng);
  const Image h = cgan::make_grid(r.data(), 4, 1, 9, 11, 2, 2, 0.f, 1.f, 3);
  for (int i = 0; i < 4; ++i)
    for (int y = 0; y < 9; ++y)
      for (int x = 0; x < 11; ++x) {
        const double v = r[static_cast<size_t>(i) * 99 + y * 11 + x];
        const double want = std::min(255.0, std::max(0.0, std::floor(v * 255.0 + 0.5)));
        const int gx = 3 + (i % 2) * 14 + x, gy = 3 + (i / 2) * 12 + y;
        EXPECT_NEAR(px(h, gx, gy), want, 1.0) << i << " " << x << " " << y;  // float vs double rounding
      }
}

TEST(Image, GridPlacementBordersAndEmptyCells) {
  // 3 RGB samples of 2x2 in a 2x2 grid; sample i has channel c = (i*3 + c + 1) / 10.
  std::vector<float> s(3 * 3 * 4);
  for (int i = 0; i < 3; ++i)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 4; ++k) s[(i * 3 + c) * 4 + k] = (i * 3 + c + 1) / 10.f;
  const Image g = cgan::make_grid(s.data(), 3, 3, 2, 2, 2, 2, 0.f, 1.f, 1);
  ASSERT_EQ(g.width, 7);
  ASSERT_EQ(g.height, 7);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 7; ++x) {
      const bool border = x % 3 == 0 || y % 3 == 0;
      const int cell = (y / 3) * 2 + (x / 3);
      for (int c = 0; c < 3; ++c) {
        int want;
        if (border)
          want = 128;
        else if (cell == 3)
          want = 0;  // empty cell: black
        else
          want = static_cast<int>(std::floor((cell * 3 + c + 1) / 10.f * 255.f + 0.5f));
        EXPECT_EQ(px(g, x, y, c), want) << x << "," << y << " c" << c;
      }
    }
}

TEST(Image, GridRejectsBadArguments) {
  std::vector<float> s(100, 0.f);
  EXPECT_NE(error_of([&] { cgan::make_grid(s.data(), 5, 1, 2, 2, 2, 2, 0.f, 1.f); }).find("do not fit"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cgan::make_grid(s.data(), 1, 2, 2, 2, 1, 1, 0.f, 1.f); }).find("channels"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cgan::make_grid(s.data(), 1, 1, 2, 2, 1, 1, 1.f, 1.f); }).find("value range"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cgan::make_grid(s.data(), 1, 1, 0, 2, 1, 1, 0.f, 1.f); }).find("tile size"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cgan::make_grid(s.data(), 1, 1, 2, 2, 1, 1, 0.f, 1.f, -1); }).find("padding"),
            std::string::npos);
}

// ------------------------------------------------------------------ PNG round trips

TEST(Image, PngRoundTripGreyAndRgb) {
  TempDir dir;
  auto rng = fresh_rng();
  for (int c : {1, 3}) {
    SCOPED_TRACE(c);
    const Image img = random_image(rng, 37, 23, c);
    const std::string p = dir / ("rt" + std::to_string(c) + ".png");
    cgan::write_png(p, img);
    const Image back = cgan::read_image(p);
    EXPECT_EQ(back.width, img.width);
    EXPECT_EQ(back.height, img.height);
    EXPECT_EQ(back.channels, c);
    EXPECT_EQ(back.pixels, img.pixels);
  }
  // A grid written and read back is the same grid.
  std::vector<float> s(6 * 3 * 8 * 8);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& v : s) v = u(rng);
  const Image g = cgan::make_grid(s.data(), 6, 3, 8, 8, 2, 4, -1.f, 1.f);
  cgan::write_png(dir / "grid.png", g);
  EXPECT_EQ(cgan::read_image(dir / "grid.png").pixels, g.pixels);
  EXPECT_EQ(dir.list().size(), 3u) << "temporary files left behind";
}

TEST(Image, AlphaIsDroppedOnRead) {
  TempDir dir;
  auto rng = fresh_rng();
  const Image rgba = random_image(rng, 9, 4, 4);
  cgan::write_png(dir / "a.png", rgba);
  const Image back = cgan::read_image(dir / "a.png");
  ASSERT_EQ(back.channels, 3);
  for (size_t i = 0; i < 36; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(back.pixels[i * 3 + c], rgba.pixels[i * 4 + c]);
  const Image ga = random_image(rng, 5, 5, 2);
  cgan::write_png(dir / "ga.png", ga);
  const Image g = cgan::read_image(dir / "ga.png");
  ASSERT_EQ(g.channels, 1);
  for (size_t i = 0; i < 25; ++i) EXPECT_EQ(g.pixels[i], ga.pixels[i * 2]);
}

TEST(Image, ReadsJpeg) {
  TempDir dir;
  // A smooth gradient survives JPEG at high quality within a few levels.
  Image img;
  img.width = 32;
  img.height = 16;
  img.channels = 3;
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 32; ++x) {
      img.pixels.push_back(static_cast<uint8_t>(x * 8));
      img.pixels.push_back(static_cast<uint8_t>(y * 16));
      img.pixels.push_back(128);
    }
  const std::string p = dir / "g.jpg";
  ASSERT_NE(stbi_write_jpg(p.c_str(), 32, 16, 3, img.pixels.data(), 95), 0);
  const Image back = cgan::read_image(p);
  ASSERT_EQ(back.width, 32);
  ASSERT_EQ(back.height, 16);
  ASSERT_EQ(back.channels, 3);
  int worst = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i) worst = std::max(worst, std::abs(back.pixels[i] - img.pixels[i]));
  EXPECT_LE(worst, 12);
}

TEST(Image, WritePngErrors) {
  TempDir dir;
  Image img;
  img.width = 4;
  img.height = 4;
  img.channels = 1;
  img.pixels.assign(16, 7);
  const std::string missing = dir / "no_dir/x.png";
  std::string m = error_of([&] { cgan::write_png(missing, img); });
  EXPECT_NE(m.find(missing), std::string::npos) << m;
  EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
  EXPECT_TRUE(dir.list().empty());

  // An inconsistent image is refused before anything is written; an old file stays.
  const std::string p = dir / "keep.png";
  cgan::write_png(p, img);
  const std::string before = slurp(p);
  Image bad = img;
  bad.pixels.pop_back();
  m = error_of([&] { cgan::write_png(p, bad); });
  EXPECT_NE(m.find(p), std::string::npos) << m;
  EXPECT_NE(m.find("15 bytes"), std::string::npos) << m;
  bad = img;
  bad.channels = 5;
  m = error_of([&] { cgan::write_png(p, bad); });
  EXPECT_NE(m.find("channels"), std::string::npos) << m;
  bad = img;
  bad.width = 0;
  m = error_of([&] { cgan::write_png(p, bad); });
  EXPECT_NE(m.find("not positive"), std::string::npos) << m;
  EXPECT_EQ(slurp(p), before);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"keep.png"});
}

// ------------------------------------------------------------------ hostile image files

TEST(Image, RejectsMissingEmptyTextAndTruncatedFiles) {
  TempDir dir;
  auto rng = fresh_rng();
  expect_read_rejected(dir / "missing.png", "No such file");
  expect_read_rejected(dir.path, "is a directory, not an image file");

  spit(dir / "zero.png", "");
  expect_read_rejected(dir / "zero.png", "empty file");

  spit(dir / "text.png", "This is a text file that merely ends in .png\n");
  expect_read_rejected(dir / "text.png", "not a readable image (stb_image:");

  const std::string p = dir / "full.png";
  cgan::write_png(p, random_image(rng, 40, 30, 3));  // random pixels: the IDAT stream is long
  const std::string bytes = slurp(p);
  std::uniform_int_distribution<size_t> anywhere(1, bytes.size() - 13);
  for (size_t cut : {size_t(4), size_t(8), size_t(20), size_t(33), size_t(60), bytes.size() / 2, bytes.size() - 20,
                     bytes.size() - 12, anywhere(rng), anywhere(rng), anywhere(rng)}) {
    SCOPED_TRACE(cut);
    const std::string q = dir / ("cut_" + std::to_string(cut) + ".png");
    spit(q, bytes.substr(0, cut));
    const std::string m = error_of([&] { cgan::read_image(q); });
    EXPECT_NE(m.find(q), std::string::npos) << m;
    EXPECT_NE(m.find("stb_image: "), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

// ------------------------------------------------------------------ resize

TEST(Image, ResizeSameSizeIsACopy) {
  auto rng = fresh_rng();
  const Image img = random_image(rng, 13, 7, 3);
  const Image r = cgan::resize_image(img, 13, 7);
  EXPECT_EQ(r.pixels, img.pixels);
}

TEST(Image, ResizeDownAveragesBlocks) {
  auto rng = fresh_rng();
  const Image img = random_image(rng, 6, 4, 1);
  const Image r = cgan::resize_image(img, 3, 2);
  ASSERT_EQ(r.width, 3);
  ASSERT_EQ(r.height, 2);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) {
      const double mean = (px(img, 2 * x, 2 * y) + px(img, 2 * x + 1, 2 * y) + px(img, 2 * x, 2 * y + 1) +
                           px(img, 2 * x + 1, 2 * y + 1)) /
                          4.0;
      EXPECT_NEAR(px(r, x, y), mean, 0.5 + 1e-3);
    }
}

TEST(Image, ResizeUpIsBilinear) {
  Image img;
  img.width = 2;
  img.height = 1;
  img.channels = 1;
  img.pixels = {0, 255};
  const Image r = cgan::resize_image(img, 4, 3);
  ASSERT_EQ(r.pixels.size(), 12u);
  const std::vector<uint8_t> row = {0, 64, 191, 255};
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_EQ(px(r, x, y), row[x]) << x << "," << y;
}

TEST(Image, ResizeKeepsConstantsAndRange) {
  auto rng = fresh_rng();
  for (int trial = 0; trial < 20; ++trial) {
    const int w0 = 1 + static_cast<int>(rng() % 40), h0 = 1 + static_cast<int>(rng() % 40);
    const int w1 = 1 + static_cast<int>(rng() % 40), h1 = 1 + static_cast<int>(rng() % 40);
    const int c = (rng() % 2) ? 3 : 1;
    Image k;
    k.width = w0;
    k.height = h0;
    k.channels = c;
    k.pixels.assign(static_cast<size_t>(w0) * h0 * c, static_cast<uint8_t>(rng() & 0xff));
    const Image r = cgan::resize_image(k, w1, h1);
    ASSERT_EQ(r.pixels.size(), static_cast<size_t>(w1) * h1 * c);
    for (uint8_t v : r.pixels) ASSERT_EQ(v, k.pixels[0]) << w0 << "x" << h0 << " -> " << w1 << "x" << h1;
    // Random content stays within the source's range.
    const Image img = random_image(rng, w0, h0, c);
    const Image q = cgan::resize_image(img, w1, h1);
    uint8_t lo = 255, hi = 0;
    for (uint8_t v : img.pixels) lo = std::min(lo, v), hi = std::max(hi, v);
    for (uint8_t v : q.pixels) ASSERT_TRUE(v >= lo && v <= hi);
  }
  const Image img = random_image(rng, 4, 4, 1);
  EXPECT_NE(error_of([&] { cgan::resize_image(img, 0, 4); }).find("not positive"), std::string::npos);
  Image bad = img;
  bad.pixels.pop_back();
  EXPECT_NE(error_of([&] { cgan::resize_image(bad, 2, 2); }).find("15 bytes"), std::string::npos);
}

}  // namespace
