// Class-folder training end to end: a conditional GAN trained on drawn shapes draws each class's shape.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <string>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgan/base/safetensors.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/data/drawn_shapes.hpp"
#include "e2e_util.hpp"

namespace {

constexpr int kSize = 16, kPerClass = 200, kClasses = 3;

// Which shape an image shows, by template matching: every circle, square and triangle the drawing
// code can make (extent 6.4..12.8 px in 0.8 px steps, centre on a half-pixel grid, coverage from 4x4
// subsamples, as draw_shape), each as a unit vector of 16x16 coverages; the image's brightest channel
// (in 0..1) is scored against each by the dot product (cosine up to the image's own norm, so colour
// and brightness do not matter), and the best template's class wins. Speckle and soft edges lower
// every class's score alike, which is what a generated image has and a real one has not.
class ShapeMatcher {
 public:
  ShapeMatcher() {
    const int S = kSize;
    for (int k = 0; k < kClasses; ++k)
      for (float s = 6.4f; s <= 12.8f + 1e-4f; s += 0.8f)
        for (float cx = 0.5f * s; cx <= S - 0.5f * s + 1e-4f; cx += 0.5f)
          for (float cy = 0.5f * s; cy <= S - 0.5f * s + 1e-4f; cy += 0.5f) {
            std::vector<float> t(static_cast<size_t>(S) * S);
            double norm = 0;
            for (int y = 0; y < S; ++y)
              for (int x = 0; x < S; ++x) {
                int hits = 0;
                for (int sy = 0; sy < 4; ++sy)
                  for (int sx = 0; sx < 4; ++sx) hits += inside(k, x + (sx + 0.5f) / 4, y + (sy + 0.5f) / 4, cx, cy, s);
                t[y * S + x] = hits / 16.f;
                norm += static_cast<double>(t[y * S + x]) * t[y * S + x];
              }
            for (float& v : t) v = static_cast<float>(v / std::sqrt(norm));
            templates_.push_back(std::move(t));
            class_.push_back(k);
          }
  }
  // img: 3 x S x S in [-1, 1]
  int operator()(const float* img) const {
    const int P = kSize * kSize;
    std::vector<float> m(P);
    for (int p = 0; p < P; ++p) m[p] = 0.5f * (std::max({img[p], img[P + p], img[2 * P + p]}) + 1.f);
    double best = -1;
    int best_class = 0;
    for (size_t t = 0; t < templates_.size(); ++t) {
      double dot = 0;
      for (int p = 0; p < P; ++p) dot += m[p] * templates_[t][p];
      if (dot > best) best = dot, best_class = class_[t];
    }
    return best_class;
  }
  size_t size() const { return templates_.size(); }

 private:
  // draw_shape's geometry: extent s centred at (cx, cy); the triangle's apex up
  static bool inside(int shape, float x, float y, float cx, float cy, float s) {
    const float dx = x - cx, dy = y - cy, h = 0.5f * s;
    if (shape == 0) return dx * dx + dy * dy <= h * h;
    if (shape == 1) return std::fabs(dx) <= h && std::fabs(dy) <= h;
    return dy >= -h && dy <= h && std::fabs(dx) <= 0.5f * (dy + h);
  }
  std::vector<std::vector<float>> templates_;
  std::vector<int> class_;
};

// The training run's bits, pinned for every x86-64 host CI may land on (as tests/golden/golden.py
// pins them): oneDNN and OpenBLAS pick kernels by the instruction set they detect, and a GEMM split
// over another number of threads sums in another order; either would train another generator, and
// the accuracies below are those of this one. Restored when the test ends.
const std::vector<std::pair<std::string, std::string>> kPinnedCpuBits = {
    {"ONEDNN_MAX_CPU_ISA", "AVX2"}, {"DNNL_MAX_CPU_ISA", "AVX2"}, {"OPENBLAS_CORETYPE", "Haswell"},
    {"CGAN_CPU_THREADS", "2"},      {"OMP_NUM_THREADS", "2"},     {"OPENBLAS_NUM_THREADS", "2"}};
}  // namespace

TEST(ClassFolderTraining, EachClassesSamplesDrawItsShape) {
  const testutil::ScopedEnv pinned(kPinnedCpuBits);
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
  const ShapeMatcher clf;
  int real_ok = 0;
  for (int i = 0; i < real.count; ++i) real_ok += clf(real.x.data() + static_cast<size_t>(i) * real.dim()) == real.y[i];
  const double real_acc = static_cast<double>(real_ok) / real.count;
  std::printf("shape matcher (%zu templates) on the real images: %.3f\n", clf.size(), real_acc);
  ASSERT_GT(real_acc, 0.9) << "the shape matcher must tell the real shapes apart for the test to mean anything";

  // the shipped config (16x16, 3000 steps), on this folder, through the real binary
  auto r =
      e2e::run_cli("--config configs/shapes_folder.json --device cpu --out " + run + " --set data.dir=\\\"" + data +
                       "\\\" --set log.sample_every=0 --set log.checkpoint_every=3000 --set log.progress=\\\"none\\\"",
                   d / "log_train");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(testutil::slurp(run + "/classes.txt"), "circle\nsquare\ntriangle\n");
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

  // the evaluator on a class folder: a classifier trained on the folder (10 % of each class held
  // out), then `eval` scores the checkpoint per class, by name, against the whole folder
  const std::string clf_file = d / "clf.safetensors";
  r = e2e::run_cli(
      "classifier --data image_folder --data-dir " + data + " --size 16 --steps 600 --device cpu --out " + clf_file,
      d / "log_clf");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("(60 image_folder test images)"), std::string::npos) << r.output;
  const cgan::SafeTensors clf_st = cgan::read_safetensors(clf_file);
  EXPECT_EQ(clf_st.metadata.at("class_names"), "circle\nsquare\ntriangle\n");
  EXPECT_GT(std::stod(clf_st.metadata.at("test_accuracy")), 0.9);
  r = e2e::run_cli(
      "eval --checkpoint " + ck + " --classifier " + clf_file + " --count 200 --device cpu --out " + (d / "eval"),
      d / "log_eval");
  ASSERT_EQ(r.code, 0) << r.output;
  std::printf("%s", r.output.c_str());
  EXPECT_NE(r.output.find("vs 600 real images (the whole class folder)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\n2 triangle  "), std::string::npos) << r.output;
  const nlohmann::json m = nlohmann::json::parse(testutil::slurp(d / "eval/metrics.json"));
  ASSERT_EQ(m["per_label"].size(), 3u);
  for (int c = 0; c < kClasses; ++c) {
    EXPECT_EQ(m["per_label"][c]["name"], cgan::shape_class_names()[c]);
    // the classifier agrees with the template matcher that each class draws its shape
    EXPECT_GT(m["per_label"][c]["cond_acc"].get<double>(), 0.6) << cgan::shape_class_names()[c];
  }
  EXPECT_GT(m["cond_acc"].get<double>(), 0.7);
  // another folder's classes are refused, naming the difference
  cgan::write_shapes_folder(d / "other2", 3, kSize, 1);
  std::filesystem::rename(d / "other2/square", d / "other2/box");
  r = e2e::run_cli("eval --checkpoint " + ck + " --classifier " + clf_file + " --data-dir " + (d / "other2") +
                       " --device cpu --out " + (d / "eval2"),
                   d / "log_eval");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(e2e::lines_of(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("its class folders are not the checkpoint's classes"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(d / "eval2/metrics.json"));

  // names and numbers mix in --labels; an unknown name lists the classes
  auto s = e2e::run_cli("sample --checkpoint " + ck + " --labels circle,2,square --device cpu --out " +
                            (d / "row.png") + " --save-tensors " + (d / "row.safetensors"),
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

// Training with eval.every on a class folder: the folder's default classifier
// (classifiers/<folder>_<H>x<W>.safetensors, from configs/classifier_image_folder.json in the working
// directory) is trained first, then every evaluation appends a metrics.csv row.
TEST(ClassFolderTraining, EvalEveryTrainsTheFoldersDefaultClassifierFirst) {
  e2e::TempDir d("shapes_eval");
  const std::string data = d / "shapes", cwd = d / "cwd";
  cgan::write_shapes_folder(data, 40, kSize, 5);
  std::filesystem::create_directories(cwd + "/configs");
  nlohmann::json spec =
      nlohmann::json::parse(testutil::slurp(std::string(CGAN_SOURCE_DIR) + "/configs/classifier_image_folder.json"));
  spec["train"]["steps"] = 40;  // the shipped spec's layers, a short training
  { std::ofstream(cwd + "/configs/classifier_image_folder.json") << spec.dump(); }
  const std::string cfg = std::string(CGAN_SOURCE_DIR) + "/configs/shapes_folder.json";
  auto r =
      e2e::run_cli("--config " + cfg + " --device cpu --out " + (d / "run") + " --set data.dir=\\\"" + data +
                       "\\\" --set train.steps=60 --set eval.every=30 --set eval.count=40 --set log.sample_every=0 "
                       "--set log.progress=\\\"none\\\"",
                   d / "log", cwd);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("the evaluator's classifier classifiers/shapes_16x16.safetensors does not exist yet"),
            std::string::npos)
      << r.output;
  const cgan::SafeTensors clf = cgan::read_safetensors(cwd + "/classifiers/shapes_16x16.safetensors");
  EXPECT_EQ(clf.metadata.at("class_names"), "circle\nsquare\ntriangle\n");
  EXPECT_EQ(clf.metadata.at("data_dir"), data);
  const auto rows = e2e::lines_of(testutil::slurp(d / "run/metrics.csv"));
  EXPECT_EQ(rows, 3);  // the header and the rows of steps 30 and 60
  // without the spec in the working directory, the missing classifier is a one-line error
  std::filesystem::remove_all(cwd + "/classifiers");
  std::filesystem::remove(cwd + "/configs/classifier_image_folder.json");
  r = e2e::run_cli("--config " + cfg + " --device cpu --out " + (d / "run2") + " --set data.dir=\\\"" + data +
                       "\\\" --set train.steps=2 --set eval.every=1",
                   d / "log", cwd);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(e2e::lines_of(r.output), 2) << r.output;  // the data set's "loaded" line, then the error
  EXPECT_NE(r.output.find("configs/classifier_image_folder.json, the spec to train it from, is missing (run from the "
                          "repository root, or create it with: cgan_gpu classifier --data image_folder --data-dir " +
                          data + " --size 16 --out classifiers/shapes_16x16.safetensors --config SPEC)"),
            std::string::npos)
      << r.output;
}
