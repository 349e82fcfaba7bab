// Class-folder training end to end: a conditional GAN trained on drawn shapes draws each class's shape.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cgan/base/safetensors.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/data/drawn_shapes.hpp"
#include "e2e_util.hpp"

namespace {

constexpr int kSize = 16, kPerClass = 200, kClasses = 3;

constexpr int kFeatures = 4;
// Shape features of a 3 x S x S image in [-1, 1]. m = the brightest channel, in 0..1; b = m averaged
// over 3x3 (generated images are speckled); the shape's box is where b exceeds half its peak. Then:
// the box's share the shape fills, the shape's share in the box's upper half, and the brightness
// (m, 2x2 pixels, over b's peak) of the box's top and of its bottom corners. Circle ~ (0.78, 0.5,
// low, low), square ~ (0.97, 0.5, high, high), triangle, apex up, ~ (0.66, 0.34, low, high).
std::array<double, kFeatures> features(const float* img) {
  const int S = kSize, P = S * S;
  std::vector<float> m(P), b(P);
  for (int p = 0; p < P; ++p) m[p] = 0.5f * (std::max({img[p], img[P + p], img[2 * P + p]}) + 1.f);
  float peak = 1e-6f;
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      float acc = 0;
      int n = 0;
      for (int yy = std::max(0, y - 1); yy <= std::min(S - 1, y + 1); ++yy)
        for (int xx = std::max(0, x - 1); xx <= std::min(S - 1, x + 1); ++xx) acc += m[yy * S + xx], ++n;
      b[y * S + x] = acc / n;
      peak = std::max(peak, b[y * S + x]);
    }
  int x0 = S, x1 = -1, y0 = S, y1 = -1, n = 0;
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x)
      if (b[y * S + x] > 0.5f * peak) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y), ++n;
  if (n == 0) return {0, 0, 0, 0};
  const double box = static_cast<double>(x1 - x0 + 1) * (y1 - y0 + 1), mid = 0.5 * (y0 + y1);
  double top = 0;
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x)
      if (b[y * S + x] > 0.5f * peak) top += y < mid ? 1.0 : (y == mid ? 0.5 : 0.0);
  auto corner = [&](int y, int x, int sy, int sx) {  // 2x2 pixels inward from (y, x)
    double acc = 0;
    int k = 0;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        const int yy = y + i * sy, xx = x + j * sx;
        if (yy >= 0 && yy < S && xx >= 0 && xx < S) acc += m[yy * S + xx], ++k;
      }
    return acc / k / peak;
  };
  return {n / box, top / n, 0.5 * (corner(y0, x0, 1, 1) + corner(y0, x1, 1, -1)),
          0.5 * (corner(y1, x0, -1, 1) + corner(y1, x1, -1, -1))};
}

// Nearest class mean over the features, each scaled by its pooled within-class standard deviation.
struct ShapeClassifier {
  std::array<std::array<double, kFeatures>, kClasses> mean{};
  std::array<double, kFeatures> sd{};
  ShapeClassifier(const std::vector<float>& x, const std::vector<int32_t>& y, int dim) {
    std::array<int, kClasses> count{};
    std::vector<std::array<double, kFeatures>> f(y.size());
    for (size_t i = 0; i < y.size(); ++i) {
      f[i] = features(x.data() + i * dim);
      for (int k = 0; k < kFeatures; ++k) mean[y[i]][k] += f[i][k];
      ++count[y[i]];
    }
    for (int c = 0; c < kClasses; ++c)
      for (int k = 0; k < kFeatures; ++k) mean[c][k] /= count[c];
    for (size_t i = 0; i < y.size(); ++i)
      for (int k = 0; k < kFeatures; ++k) sd[k] += std::pow(f[i][k] - mean[y[i]][k], 2);
    for (int k = 0; k < kFeatures; ++k) sd[k] = std::sqrt(sd[k] / y.size()) + 1e-6;
  }
  int operator()(const float* img) const {
    const auto f = features(img);
    int best = 0;
    double best_d = 1e300;
    for (int c = 0; c < kClasses; ++c) {
      double d = 0;
      for (int k = 0; k < kFeatures; ++k) d += std::pow((f[k] - mean[c][k]) / sd[k], 2);
      if (d < best_d) best_d = d, best = c;
    }
    return best;
  }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(ClassFolderTraining, EachClassesSamplesDrawItsShape) {
  e2e::TempDir d("shapes");
  const std::string data = d / "shapes", run = d / "run";
  cgan::write_shapes_folder(data, kPerClass, kSize, 7);
  std::ostringstream log;
  cgan::ClassFolderSpec spec;
  spec.dir = data;
  spec.height = spec.width = kSize;
  const cgan::HostDataset real = cgan::load_class_folder(spec, log);
  ASSERT_EQ(real.count, kClasses * kPerClass);
  ASSERT_EQ(real.class_names, cgan::shape_class_names());
  const ShapeClassifier clf(real.x, real.y, real.dim());
  int real_ok = 0;
  for (int i = 0; i < real.count; ++i) real_ok += clf(real.x.data() + static_cast<size_t>(i) * real.dim()) == real.y[i];
  const double real_acc = static_cast<double>(real_ok) / real.count;
  std::printf("shape classifier on the real images: %.3f\n", real_acc);
  ASSERT_GT(real_acc, 0.9) << "the feature classifier must tell the real shapes apart for the test to mean anything";

  // the shipped config (16x16, 3000 steps), on this folder, through the real binary
  auto r = e2e::run_cli("--config configs/shapes_folder.json --device cpu --out " + run + " --set data.dir=\\\"" + data +
                            "\\\" --set log.sample_every=0 --set log.checkpoint_every=3000 --set log.progress=\\\"none\\\"",
                        d / "log_train");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(slurp(run + "/classes.txt"), "circle\nsquare\ntriangle\n");
  const std::string ck = run + "/checkpoints/step_3000.safetensors";
  EXPECT_EQ(cgan::read_safetensors(ck).metadata.at("class_names"), "circle\nsquare\ntriangle\n");

  std::array<double, kClasses> acc{};
  double mean_acc = 0;
  for (int c = 0; c < kClasses; ++c) {
    const std::string name = cgan::shape_class_names()[c], st = d / (name + ".safetensors");
    auto s = e2e::run_cli("sample --checkpoint " + ck + " --label " + name + " --count 200 --device cpu --out " +
                              (d / (name + ".png")) + " --save-tensors " + st,
                          d / "log_s");
    ASSERT_EQ(s.code, 0) << s.output;
    const cgan::SafeTensors t = cgan::read_safetensors(st);
    const cgan::NamedTensor& labels = t.at("labels");
    const cgan::NamedTensor& samples = t.at("samples");
    ASSERT_EQ(samples.shape, (std::vector<int64_t>{200, real.dim()}));
    int ok = 0;
    for (int i = 0; i < 200; ++i) {
      ASSERT_EQ(labels.data[i], c);
      ok += clf(samples.data.data() + static_cast<size_t>(i) * real.dim()) == c;
    }
    acc[c] = ok / 200.0;
    mean_acc += acc[c] / kClasses;
  }
  std::printf("generated images classified as their class: circle %.3f, square %.3f, triangle %.3f (chance 0.333)\n",
              acc[0], acc[1], acc[2]);
  for (int c = 0; c < kClasses; ++c) EXPECT_GT(acc[c], 0.6) << cgan::shape_class_names()[c];
  EXPECT_GT(mean_acc, 0.7);

  // names and numbers mix in --labels; an unknown name lists the classes
  auto s = e2e::run_cli("sample --checkpoint " + ck + " --labels circle,2,square --device cpu --out " + (d / "row.png") +
                            " --save-tensors " + (d / "row.safetensors"),
                        d / "log_s");
  ASSERT_EQ(s.code, 0) << s.output;
  EXPECT_EQ(cgan::read_safetensors(d / "row.safetensors").at("labels").data, (std::vector<float>{0, 2, 1}));
  s = e2e::run_cli("sample --checkpoint " + ck + " --label dog --device cpu --out " + (d / "dog.png"), d / "log_s");
  EXPECT_EQ(s.code, 1);
  EXPECT_NE(s.output.find("--label: 'dog' is neither a class name nor a label number (classes: 0 circle, 1 square, "
                          "2 triangle)"),
            std::string::npos)
      << s.output;
  EXPECT_FALSE(std::filesystem::exists(d / "dog.png"));
}
