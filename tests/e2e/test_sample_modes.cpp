// A short MNIST run's reals.png, and `sample --interpolate` / `sample --dump-dir` on its checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/image.hpp"
#include "cgan/train/datasets.hpp"
#include "e2e_util.hpp"

using namespace cgan;
using e2e::has_mnist;
using e2e::lines_of;
namespace fs = std::filesystem;

namespace {

// One 20-step MNIST run shared by the tests of this file.
class SampleModes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!has_mnist()) return;
    dir_ = new e2e::TempDir("sample_modes");
    const auto r = e2e::run_cli(
        "--config configs/mnist_mlp.json --set train.steps=20 --set log.progress=none "
        "--set log.sample_every=0 --set log.checkpoint_every=0 --out " +
            (*dir_ / "run"),
        *dir_ / "log");
    ASSERT_EQ(r.code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_, dir_ = nullptr; }
  void SetUp() override {
    if (!has_mnist()) GTEST_SKIP() << "data/mnist is missing: run tools/fetch_data.sh mnist";
  }
  static std::string ck() { return *dir_ / "run/checkpoints/step_20.safetensors"; }
  static e2e::TempDir* dir_;
};
e2e::TempDir* SampleModes::dir_ = nullptr;
}  // namespace

TEST_F(SampleModes, RealsPngShowsRealImagesOfLabelKInRowK) {
  const Image g = read_image(*dir_ / "run/reals.png");
  const int rows = 10, cols = 10, h = 28, w = 28, pad = 2;
  const Image want = make_grid(std::vector<float>(100 * 784, 0.f).data(), 100, 1, h, w, rows, cols, 0.f, 1.f);
  ASSERT_EQ(g.width, want.width);
  ASSERT_EQ(g.height, want.height);
  ASSERT_EQ(g.channels, 1);
  // every real image rendered as the grid renders it (a 1 x 1 grid without border each)
  const HostDataset data = load_dataset(
      load_config(e2e::source("configs/mnist_mlp.json"), {"data.dir=" + e2e::source("data/mnist")}).data, true);
  Image all;
  for (int i = 0; i < data.count; ++i) {
    const Image one = make_grid(&data.x[static_cast<size_t>(i) * h * w], 1, 1, h, w, 1, 1, 0.f, 1.f, 0);
    all.pixels.insert(all.pixels.end(), one.pixels.begin(), one.pixels.end());
  }
  std::vector<int> seen;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      std::vector<uint8_t> cell;
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          cell.push_back(g.pixels[static_cast<size_t>(pad + r * (h + pad) + y) * g.width + pad + c * (w + pad) + x]);
      int match = -1;
      for (int i = 0; i < data.count && match < 0; ++i)
        if (data.y[i] == r &&
            std::equal(cell.begin(), cell.end(), all.pixels.begin() + static_cast<ptrdiff_t>(i) * h * w))
          match = i;
      EXPECT_GE(match, 0) << "row " << r << ", column " << c << " is not a real image of label " << r;
      seen.push_back(match);
    }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end()) << "an image is shown twice";
  // a resume keeps it; --overwrite lists it among the run's files (removed with them)
  const auto t0 = fs::last_write_time(*dir_ / "run/reals.png");
  auto r = e2e::run_cli("--resume latest --out " + (*dir_ / "run") + " --set train.steps=21 --set log.progress=none",
                        *dir_ / "log_r");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(fs::last_write_time(*dir_ / "run/reals.png"), t0);
  fs::create_directories(*dir_ / "other");
  fs::copy_file(*dir_ / "run/reals.png", *dir_ / "other/reals.png");
  r = e2e::run_cli("--config configs/mnist_mlp.json --set train.steps=1 --out " + (*dir_ / "other"), *dir_ / "log_o");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("already holds a run (reals.png)"), std::string::npos) << r.output;
}

TEST_F(SampleModes, InterpolationEndsAreThePlainSamplesOfItsEndpointNoises) {
  const e2e::TempDir& d = *dir_;
  auto i = e2e::run_cli("sample --checkpoint " + ck() + " --interpolate --rows 3 --steps 5 --seed 7 --save-tensors " +
                            (d / "interp.st") + " --out " + (d / "interp.png"),
                        d / "log_i");
  ASSERT_EQ(i.code, 0) << i.output;
  auto p = e2e::run_cli("sample --checkpoint " + ck() + " --labels 0,0,1,1,2,2 --seed 7 --save-tensors " +
                            (d / "plain.st") + " --out " + (d / "plain.png"),
                        d / "log_p");
  ASSERT_EQ(p.code, 0) << p.output;
  const Image g = read_image(d / "interp.png");
  const Image want = make_grid(std::vector<float>(15 * 784, 0.f).data(), 15, 1, 28, 28, 3, 5, 0.f, 1.f);
  EXPECT_EQ(g.width, want.width);
  EXPECT_EQ(g.height, want.height);
  const SafeTensors I = read_safetensors(d / "interp.st"), P = read_safetensors(d / "plain.st");
  const std::vector<float>&xi = I.at("samples").data, &xp = P.at("samples").data, &zi = I.at("noise").data,
        &zp = P.at("noise").data, &li = I.at("labels").data;
  ASSERT_EQ(xi.size(), 15u * 784);
  ASSERT_EQ(zi.size(), 15u * 100);
  auto maxdiff = [](const float* a, const float* b, size_t n) {
    double m = 0;
    for (size_t k = 0; k < n; ++k) m = std::max(m, std::fabs(double(a[k]) - b[k]));
    return m;
  };
  for (int r = 0; r < 3; ++r) {
    for (int j = 0; j < 5; ++j) EXPECT_EQ(li[r * 5 + j], r) << "row " << r << " shows label r";
    // the noise at both ends is exactly the plain sample's (images 2r and 2r+1 of seed 7)
    EXPECT_EQ(maxdiff(&zi[(r * 5) * 100], &zp[(2 * r) * 100], 100), 0.0) << "row " << r;
    EXPECT_EQ(maxdiff(&zi[(r * 5 + 4) * 100], &zp[(2 * r + 1) * 100], 100), 0.0) << "row " << r;
    // so are the images (up to the GEMM's summation order at another batch size)
    EXPECT_LE(maxdiff(&xi[(r * 5) * 784], &xp[(2 * r) * 784], 784), 1e-5) << "row " << r;
    EXPECT_LE(maxdiff(&xi[(r * 5 + 4) * 784], &xp[(2 * r + 1) * 784], 784), 1e-5) << "row " << r;
    for (int j = 1; j < 4; ++j) {  // the columns between differ from both ends and from each other
      EXPECT_GT(maxdiff(&xi[(r * 5 + j) * 784], &xi[(r * 5) * 784], 784), 1e-3) << r << "," << j;
      EXPECT_GT(maxdiff(&xi[(r * 5 + j) * 784], &xi[(r * 5 + 4) * 784], 784), 1e-3) << r << "," << j;
      EXPECT_GT(maxdiff(&xi[(r * 5 + j) * 784], &xi[(r * 5 + j + 1) * 784], 784), 1e-3) << r << "," << j;
      // slerp keeps the noise's norm between the ends' (a straight line would dip towards 0)
      double n = 0, na = 0, nb = 0;
      for (int k = 0; k < 100; ++k)
        n += zi[(r * 5 + j) * 100 + k] * zi[(r * 5 + j) * 100 + k], na += zi[(r * 5) * 100 + k] * zi[(r * 5) * 100 + k],
            nb += zi[(r * 5 + 4) * 100 + k] * zi[(r * 5 + 4) * 100 + k];
      EXPECT_GE(std::sqrt(n), std::min(std::sqrt(na), std::sqrt(nb)) - 1e-3) << r << "," << j;
    }
  }
  // --label N: every row that label
  auto l = e2e::run_cli("sample --checkpoint " + ck() + " --interpolate --rows 2 --steps 3 --label 4 --save-tensors " +
                            (d / "l4.st") + " --out " + (d / "l4.png"),
                        d / "log_l");
  ASSERT_EQ(l.code, 0) << l.output;
  const SafeTensors L = read_safetensors(d / "l4.st");
  ASSERT_EQ(L.at("labels").data.size(), 6u);
  for (float v : L.at("labels").data) EXPECT_EQ(v, 4.f);
  // bad requests: one line, no file
  for (const std::string& bad :
       std::vector<std::string>{"--interpolate --steps 1", "--interpolate --labels 1,2", "--rows 3",
                                "--interpolate --label 10", "--interpolate --dump-dir " + (d / "x")}) {
    auto e = e2e::run_cli("sample --checkpoint " + ck() + " " + bad + " --out " + (d / "bad.png"), d / "log_e");
    EXPECT_NE(e.code, 0) << bad;
    EXPECT_EQ(lines_of(e.output), 1) << bad << ": " << e.output;
    EXPECT_FALSE(fs::exists(d / "bad.png")) << bad;
  }
}

TEST_F(SampleModes, DumpDirWritesOneDecodablePngPerImageWithItsLabel) {
  const e2e::TempDir& d = *dir_;
  auto r = e2e::run_cli("sample --checkpoint " + ck() + " --dump-dir " + (d / "dump") + " --count 25", d / "log_d");
  ASSERT_EQ(r.code, 0) << r.output;
  std::map<int, int> per_label;
  int pngs = 0;
  for (const auto& e : fs::directory_iterator(d / "dump")) {
    const std::string n = e.path().filename().string();
    if (n == "labels.csv") continue;
    int idx = -1, label = -1;
    ASSERT_EQ(std::sscanf(n.c_str(), "img_%6d_label_%d.png", &idx, &label), 2) << n;
    EXPECT_EQ(label, idx % 10) << n;
    const Image im = read_image(e.path().string());
    EXPECT_EQ(im.width, 28);
    EXPECT_EQ(im.height, 28);
    EXPECT_EQ(im.channels, 1);
    ++per_label[label], ++pngs;
  }
  EXPECT_EQ(pngs, 25);
  for (int k = 0; k < 10; ++k) EXPECT_EQ(per_label[k], k < 5 ? 3 : 2) << "label " << k;
  const std::string csv = testutil::slurp(d / "dump/labels.csv");
  EXPECT_EQ(lines_of(csv), 26);
  EXPECT_NE(csv.find("img_000013_label_3.png,3\n"), std::string::npos) << csv;
  // --label N: all of that label
  r = e2e::run_cli("sample --checkpoint " + ck() + " --dump-dir " + (d / "seven") + " --count 4 --label 7",
                   d / "log_d");
  ASSERT_EQ(r.code, 0) << r.output;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(fs::exists(d / ("seven/img_00000" + std::to_string(i) + "_label_7.png")));
  // a folder holding files is refused (a score over mixed files would mislead), nothing added
  r = e2e::run_cli("sample --checkpoint " + ck() + " --dump-dir " + (d / "seven") + " --count 4", d / "log_d");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("is not an empty folder"), std::string::npos) << r.output;
  EXPECT_EQ(std::distance(fs::directory_iterator(d / "seven"), fs::directory_iterator()), 5);
  r = e2e::run_cli("sample --checkpoint " + ck() + " --dump-dir " + (d / "nocount"), d / "log_d");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_FALSE(fs::exists(d / "nocount"));
}
