// The evaluator's sanity checks with a tiny classifier trained in a second on an MNIST subset: the
// real test images scored as if generated, a generator that repeats one image per label, and images
// with shuffled labels. Plus Model::output_of and the classifier file's round trip and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "cgan/data/anime_faces.hpp"
#include "cgan/data/drawn_shapes.hpp"
#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/eval/classifier.hpp"
#include "cgan/data/data.hpp"
#include "cgan/eval/evaluate.hpp"
#include "cgan/nn/model.hpp"
#include "test_util.hpp"

using namespace cgan;
namespace fs = std::filesystem;

namespace {

std::string mnist_dir() { return std::string(CGAN_SOURCE_DIR) + "/data/mnist"; }
bool has_mnist() {
  return fs::exists(mnist_dir() + "/t10k-images-idx3-ubyte") || fs::exists(mnist_dir() + "/t10k-images-idx3-ubyte.gz");
}

HostDataset head(const HostDataset& d, int n) {
  HostDataset h = d;
  h.count = std::min(n, d.count);
  h.x.resize(static_cast<size_t>(h.count) * d.dim());
  h.y.resize(h.count);
  return h;
}

// The first `per` test images of every label, grouped by label.
HostDataset balanced(const HostDataset& d, int per) {
  HostDataset b = d;
  b.x.clear();
  b.y.clear();
  b.count = 0;
  for (int l = 0; l < d.num_classes; ++l) {
    int got = 0;
    for (int i = 0; i < d.count && got < per; ++i)
      if (d.y[i] == l) {
        b.x.insert(b.x.end(), d.x.begin() + static_cast<ptrdiff_t>(i) * d.dim(),
                   d.x.begin() + static_cast<ptrdiff_t>(i + 1) * d.dim());
        b.y.push_back(l);
        ++got, ++b.count;
      }
  }
  return b;
}

constexpr int kPer = 100;  // real images per label

class Evaluator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!has_mnist()) return;
    be_ = make_cpu_backend().release();
    ClassifierSpec spec = parse_classifier_spec(nlohmann::json::parse(R"({"data": {"kind": "mnist"},
            "layers": [{"linear": 128}, {"relu": {}}, {"linear": 64}, {"relu": {}}, {"linear": 10}],
            "train": {"steps": 400, "batch_size": 64, "lr": 0.002}})"),
                                                "tiny");
    const HostDataset train = head(load_mnist_dir(mnist_dir(), true, 0.f, 1.f), 6000);
    real_ = new HostDataset(balanced(load_mnist_dir(mnist_dir(), false, 0.f, 1.f), kPer));
    file_ = new SafeTensors(train_classifier(*be_, spec, train, *real_, &accuracy_));
    clf_ = new Classifier(*be_, *file_, "tiny", 256);
    ref_ = new RealReference(prepare_reference(*clf_, *real_));
  }
  static void TearDownTestSuite() {
    delete ref_;
    delete clf_;
    delete file_;
    delete real_;
    delete be_;
  }
  void SetUp() override {
    if (!has_mnist()) GTEST_SKIP() << "MNIST not found in data/mnist (tools/fetch_data.sh mnist)";
  }
  // Image i of label l in the balanced real set.
  static const float* image(int l, int i) { return real_->x.data() + static_cast<size_t>(l * kPer + i) * 784; }

  static Backend* be_;
  static HostDataset* real_;
  static SafeTensors* file_;
  static Classifier* clf_;
  static RealReference* ref_;
  static double accuracy_;
};
Backend* Evaluator::be_ = nullptr;
HostDataset* Evaluator::real_ = nullptr;
SafeTensors* Evaluator::file_ = nullptr;
Classifier* Evaluator::clf_ = nullptr;
RealReference* Evaluator::ref_ = nullptr;
double Evaluator::accuracy_ = 0;

TEST_F(Evaluator, RealImagesScoredAsGeneratedMatchTheClassifierWithZeroDistance) {
  EXPECT_GT(accuracy_, 0.8) << "the tiny classifier should learn something in 400 steps";
  EXPECT_NEAR(ref_->classifier_accuracy, accuracy_, 1.5e-3);
  ImageSource real = [](int l, int n) {
    return std::vector<float>(image(l, 0), image(l, 0) + static_cast<size_t>(n) * 784);
  };
  EvalOptions o;
  o.count = kPer;
  const EvalResult r = evaluate(*clf_, *ref_, real, o);
  // the same images, so the same decisions (up to a GEMM rounding that moves a near-tie: 1 in 1000)
  EXPECT_NEAR(r.cond_acc, accuracy_, 1.5e-3);
  EXPECT_NEAR(r.fd, 0.0, 1e-3);
  for (const LabelScore& s : r.labels) {
    EXPECT_NEAR(s.fd, 0.0, 1e-3) << "label " << s.label;
    EXPECT_NEAR(s.diversity, 1.0, 1e-5) << "label " << s.label;
  }
  EXPECT_NEAR(r.diversity, 1.0, 1e-5);
  // the same images: every generated point is a real one and vice versa
  EXPECT_EQ(r.precision, 1.0);
  EXPECT_EQ(r.recall, 1.0);
  EXPECT_NEAR(r.intra_precision, 1.0, 1e-12);  // a mean of ten 1s
  EXPECT_NEAR(r.intra_recall, 1.0, 1e-12);
  for (const LabelScore& s : r.labels) EXPECT_EQ(s.pr_count, kPer) << "label " << s.label;

  // the same images in [-1, 1] from a generator of that range: mapped back, the same scores
  ImageSource signed_real = [&](int l, int n) {
    std::vector<float> x = real(l, n);
    for (float& v : x) v = 2.f * v - 1.f;
    return x;
  };
  o.gen_lo = -1.f;
  const EvalResult s = evaluate(*clf_, *ref_, signed_real, o);
  EXPECT_NEAR(s.cond_acc, r.cond_acc, 1.5e-3);
  EXPECT_NEAR(s.fd, 0.0, 1e-3);

  const nlohmann::json j = r.to_json();
  for (const char* k : {"cond_acc", "fd", "intra_fd", "diversity", "diversity_min", "precision", "recall",
                        "intra_precision", "intra_recall", "per_label"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["per_label"].size(), 10u);
  EXPECT_NE(r.table().find("  all "), std::string::npos);
}

TEST_F(Evaluator, OneImagePerLabelScoresZeroDiversity) {
  ImageSource collapsed = [](int l, int n) {
    std::vector<float> x;
    for (int i = 0; i < n; ++i) x.insert(x.end(), image(l, 0), image(l, 0) + 784);
    return x;
  };
  EvalOptions o;
  o.count = 50;
  const EvalResult r = evaluate(*clf_, *ref_, collapsed, o);
  // identical images give features equal up to the GEMM's rounding at different batch rows
  for (const LabelScore& s : r.labels) EXPECT_NEAR(s.diversity, 0.0, 1e-5) << "label " << s.label;
  EXPECT_NEAR(r.diversity_min, 0.0, 1e-5);
  EXPECT_GT(r.intra_fd, 1.0) << "one image is far from a whole class";
  // the one image is a real one (precision 1), and it covers next to nothing of its label: the
  // generated balls have radius 0, so at most that image itself is covered
  for (const LabelScore& s : r.labels) {
    EXPECT_EQ(s.pr_count, 50) << "label " << s.label;
    EXPECT_EQ(s.precision, 1.0) << "label " << s.label;
    EXPECT_LE(s.recall, 1.0 / 50) << "label " << s.label;
  }
  EXPECT_LE(r.recall, 1.0 / 50);
}

TEST_F(Evaluator, ShuffledLabelsScoreAboutOneInTen) {
  std::mt19937 rng(7);
  ImageSource shuffled = [&](int, int n) {
    std::vector<float> x;
    std::uniform_int_distribution<int> pick(0, real_->count - 1);
    for (int i = 0; i < n; ++i) {
      const float* p = real_->x.data() + static_cast<size_t>(pick(rng)) * 784;
      x.insert(x.end(), p, p + 784);
    }
    return x;
  };
  EvalOptions o;
  o.count = 200;
  const EvalResult r = evaluate(*clf_, *ref_, shuffled, o);
  EXPECT_GT(r.cond_acc, 0.05);
  EXPECT_LT(r.cond_acc, 0.16);
  EXPECT_LT(r.fd, r.intra_fd) << "all images together look real; per label they do not";
  // the same with precision: overall every image is a real one, per label most are another digit
  EXPECT_GT(r.precision, 0.95);
  EXPECT_LT(r.intra_precision, 0.5);
}

TEST_F(Evaluator, ClassifierFileRoundTripAndErrors) {
  testutil::TempDir d("clf");
  write_safetensors(d / "c.safetensors", *file_);
  auto c = load_classifier(*be_, d / "c.safetensors");
  EXPECT_EQ(c->data_kind(), "mnist");
  EXPECT_EQ(c->feature_dim(), 64);
  EXPECT_NEAR(c->test_accuracy(), accuracy_, 1e-6);
  EXPECT_EQ(file_->metadata.at("format"), "cgan_gpu.classifier.v1");
  for (const char* k : {"network", "spec", "data_kind", "data_shape", "data_range", "test_accuracy", "steps"})
    EXPECT_TRUE(file_->metadata.count(k)) << k;

  std::string msg = testutil::error_of([&] { load_classifier(*be_, d / "missing.safetensors"); });
  EXPECT_NE(msg.find("cgan_gpu classifier --data mnist"), std::string::npos) << msg;
  DataShape fashion = c->shape();
  msg = testutil::error_of([&] { check_classifier_matches(*c, "fashion", fashion, "the checkpoint x"); });
  EXPECT_NE(msg.find("does not match the checkpoint x"), std::string::npos) << msg;
  DataShape small = c->shape();
  small.height = 14;
  EXPECT_THROW(check_classifier_matches(*c, "mnist", small, "x"), Error);
  SafeTensors other = *file_;
  other.metadata["format"] = "cgan_gpu.checkpoint.v1";
  msg = testutil::error_of([&] { Classifier bad(*be_, other, "ck.safetensors"); });
  EXPECT_EQ(msg.rfind("ck.safetensors: not a cgan_gpu classifier", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

}  // namespace

TEST(ModelOutputOf, ReturnsLayerOutputsAndRejectsFusedLinears) {
  auto be = make_cpu_backend();
  NetSpec net;
  net.condition.mode = "none";
  LayerSpec lin;
  lin.out = 3;
  LayerSpec relu;
  relu.kind = LayerKind::relu;
  LayerSpec drop;
  drop.kind = LayerKind::dropout;
  drop.p = 0.5f;
  LayerSpec lin2;
  lin2.out = 2;
  net.layers = {lin, relu, drop, lin2};
  Model m(*be, net, 4, 0, 2, "m");
  m.init_params(3);
  EXPECT_EQ(m.layer_count(), 4);
  EXPECT_THROW(m.output_of(1), Error) << "before any forward";
  const std::vector<float> x = {1, -2, 3, 0.5f, -1, 0, 2, 1};
  float* xd = be->alloc(8);
  be->upload(xd, x.data(), 8);
  const float* out = m.forward(xd, nullptr, nullptr, false);
  int w = 0;
  const float* h = m.output_of(1, &w);  // linear 3 + relu (fused)
  EXPECT_EQ(w, 3);
  EXPECT_EQ(m.output_of(2, &w), h) << "dropout in evaluation mode passes its input through";
  EXPECT_EQ(m.output_of(3, &w), out);
  EXPECT_EQ(w, 2);
  for (int i = 0; i < 6; ++i) EXPECT_GE(h[i], 0.f);
  const std::string msg = testutil::error_of([&] { m.output_of(0); });
  EXPECT_NE(msg.find("fused"), std::string::npos) << msg;
  EXPECT_THROW(m.output_of(4), Error);
  EXPECT_THROW(m.output_of(-1), Error);
  be->free(xd);
}

// The anime evaluator's sanity figures: real procedural faces "generated" at the training sizes,
// resized to the probe's 96x96 as AnimeAttributeTally does, read back nearly perfectly; the same images
// paired with another image's tags score about chance.
TEST(AnimeEvaluator, RealFacesThroughTheProbeSizeReadBackAndShuffledTagsScoreChance) {
  for (int size : {32, 48, 96}) {
    SCOPED_TRACE(cat("size ", size));
    const HostDataset d = make_anime_faces(400, size, size, 11);
    DataShape s;
    s.channels = 3, s.height = size, s.width = size, s.lo = -1.f, s.hi = 1.f;
    const std::vector<float> img = probe_size_images(d.x, d.count, s);
    ASSERT_EQ(img.size(), static_cast<size_t>(d.count) * 3 * kProbeSize * kProbeSize);
    const AttributeAccuracy a =
        attribute_accuracy(img.data(), d.count, kProbeSize, kProbeSize, -1.f, 1.f, d.tags.data(), d.tag_dim);
    std::printf("[ size %d ] probe after resizing to 96: hair %.3f, eyes %.3f\n", size, a.hair, a.eye);
    EXPECT_GE(a.hair, 0.95);
    if (size >= 48) EXPECT_GE(a.eye, 0.9);
    std::vector<float> shifted(d.tags.size());
    for (int i = 0; i < d.count; ++i)
      std::copy_n(d.tags.data() + static_cast<size_t>((i + 1) % d.count) * d.tag_dim, d.tag_dim,
                  shifted.data() + static_cast<size_t>(i) * d.tag_dim);
    const AttributeAccuracy w =
        attribute_accuracy(img.data(), d.count, kProbeSize, kProbeSize, -1.f, 1.f, shifted.data(), d.tag_dim);
    EXPECT_LT(w.hair, 0.2);
  }
}

// Anime classifier specs: the image size and training count, the input reshape put in front of a
// network that starts with a conv, and one-line errors for bad values.
TEST(AnimeClassifierSpec, SizeCountAndTheInputShape) {
  const auto spec = parse_classifier_spec(nlohmann::json::parse(R"({
      "data": {"kind": "anime", "size": [32, 48], "count": 500},
      "layers": [{"conv2d": {"out": 4, "kernel": 3}}, {"relu": {}}, {"linear": 12}]})"),
                                          "spec");
  EXPECT_EQ(spec.height, 32);
  EXPECT_EQ(spec.width, 48);
  EXPECT_EQ(spec.count, 500);
  EXPECT_EQ(spec.lo, -1.f);
  ASSERT_EQ(spec.net.layers.size(), 4u);
  EXPECT_EQ(spec.net.layers[0].kind, LayerKind::reshape);
  EXPECT_EQ(spec.net.layers[0].shape[0], 3);
  EXPECT_EQ(spec.net.layers[0].shape[1], 32);
  EXPECT_EQ(spec.net.layers[0].shape[2], 48);
  EXPECT_EQ(default_classifier_path("anime", 32, 48), "classifiers/anime_32x48.safetensors");
  EXPECT_EQ(default_classifier_path("mnist"), "classifiers/mnist.safetensors");
  auto err = [](const std::string& text) {
    return testutil::error_of([&] { parse_classifier_spec(nlohmann::json::parse(text), "spec.json"); });
  };
  EXPECT_NE(err(R"({"data": {"kind": "anime", "size": [8, 8]}, "layers": [{"linear": 12}]})").find("data.size"),
            std::string::npos);
  EXPECT_NE(err(R"({"data": {"kind": "anime", "count": 5}, "layers": [{"linear": 12}]})").find("data.count"),
            std::string::npos);
  EXPECT_NE(err(R"({"data": {"kind": "mnist", "size": [28, 28]}, "layers": [{"linear": 10}]})").find("size"),
            std::string::npos);
  // the shipped anime spec parses
  const auto shipped = load_classifier_spec(std::string(CGAN_SOURCE_DIR) + "/configs/classifier_anime.json");
  EXPECT_EQ(shipped.data_kind, "anime");
  EXPECT_EQ(shipped.net.layers[0].kind, LayerKind::reshape);
}

// Class-folder classifier specs: dir and size from the data (load_classifier_spec_for), the class
// names listed from the folder, {"linear": "classes"} sized to them, the default file per folder
// and size; the trained file carries the class names, and a run with other classes is refused.
TEST(ImageFolderClassifier, SpecClassNamesAndTheClassesCheck) {
  testutil::TempDir d("ifclf");
  const std::string folder = d / "shapes";
  write_shapes_folder(folder, 12, 8, 3);
  DataSpec data;
  data.kind = DataKind::Kind::image_folder;
  data.dir = folder + "/";
  data.height = data.width = 8;
  const ClassifierSpec spec =
      load_classifier_spec_for(std::string(CGAN_SOURCE_DIR) + "/configs/classifier_image_folder.json", data);
  EXPECT_EQ(spec.data_kind, "image_folder");
  EXPECT_EQ(spec.dir, folder + "/");
  EXPECT_EQ(spec.height, 8);
  EXPECT_EQ(spec.channels, 3);
  EXPECT_EQ(spec.class_names, (std::vector<std::string>{"circle", "square", "triangle"}));
  EXPECT_EQ(spec.net.layers.back().kind, LayerKind::linear);
  EXPECT_EQ(spec.net.layers.back().out, 3);  // "classes"
  EXPECT_EQ(spec.net.layers[0].kind, LayerKind::reshape);
  EXPECT_EQ(spec.to_json()["data"]["dir"], folder + "/");
  EXPECT_EQ(default_classifier_path(data), "classifiers/shapes_8x8.safetensors");  // the trailing '/' dropped
  // "classes" in an MNIST spec is 10
  const auto mnist = parse_classifier_spec(
      nlohmann::json::parse(R"({"data": {"kind": "mnist"}, "layers": [{"linear": 8}, {"linear": "classes"}]})"), "s");
  EXPECT_EQ(mnist.net.layers.back().out, 10);
  auto err = [](const std::string& text) {
    return testutil::error_of([&] { parse_classifier_spec(nlohmann::json::parse(text), "spec.json"); });
  };
  EXPECT_EQ(err(R"({"data": {"kind": "image_folder", "size": 8}, "layers": [{"linear": "classes"}]})"),
            "spec.json: data.dir: missing (the folder of class folders; cgan_gpu classifier --data-dir DIR fills it "
            "in)");
  EXPECT_EQ(err(R"({"data": {"kind": "image_folder", "dir": ")" + folder + R"("}, "layers": [{"linear": "classes"}]})"),
            "spec.json: data.size: missing (N or [H, W]; cgan_gpu classifier --size N fills it in)");
  EXPECT_NE(err(R"({"data": {"kind": "image_folder", "dir": ")" + folder +
                R"(", "size": 8, "test_fraction": 0.9}, "layers": [{"linear": "classes"}]})")
                .find("data.test_fraction: expected a value in [0.01, 0.5]"),
            std::string::npos);
  EXPECT_NE(err(R"({"data": {"kind": "image_folder", "dir": ")" + d / "none" +
                R"(", "size": 8}, "layers": [{"linear": "classes"}]})")
                .find("cannot list the folder"),
            std::string::npos);
  DataSpec mn;
  mn.kind = DataKind::Kind::mnist;
  EXPECT_NE(testutil::error_of([&] {
              load_classifier_spec_for(std::string(CGAN_SOURCE_DIR) + "/configs/classifier_image_folder.json", mn);
            }).find("data.kind is not \"mnist\""),
            std::string::npos);

  // a few steps of training: the file names the classes; the same classes pass, others do not
  ClassifierSpec quick = spec;
  quick.steps = 3;
  quick.batch_size = 8;
  auto be = make_cpu_backend();
  const std::string out = d / "clf.safetensors";
  const ClassifierTrained t = train_classifier_file(*be, quick, folder, "--data-dir", out);
  EXPECT_EQ(t.test_count, 3);  // 12 per class, f = 0.1: one of each
  const SafeTensors f = read_safetensors(out);
  EXPECT_EQ(f.metadata.at("class_names"), "circle\nsquare\ntriangle\n");
  std::unique_ptr<Classifier> clf = load_classifier(*be, out);
  DataShape shape = clf->shape();
  EXPECT_EQ(shape.class_names, spec.class_names);
  check_classifier_matches(*clf, "image_folder", shape, "the run");
  shape.class_names = {"circle", "star", "triangle"};
  EXPECT_EQ(testutil::error_of([&] { check_classifier_matches(*clf, "image_folder", shape, "the run"); }),
            out +
                ": the classifier's classes differ from those of the run (label 1 is \"square\" for the "
                "classifier, \"star\" for the other)");
  // a missing file names the command that makes it
  EXPECT_EQ(testutil::error_of([&] { load_classifier(*be, d / "no.safetensors", 500, classifier_command(data, "X")); }),
            d / "no.safetensors" + ": classifier file not found; create it with: cgan_gpu classifier --data " +
                "image_folder --data-dir " + folder + "/ --size 8 --out X");

  // the evaluator's table and JSON name the labels
  EvalResult r;
  r.labels.resize(2);
  r.labels[1].label = 1;
  const std::string table = r.table({"circle", "square"});
  EXPECT_NE(table.find("label     cond_acc"), std::string::npos) << table;
  EXPECT_NE(table.find("\n1 square    0.0000"), std::string::npos) << table;
  EXPECT_EQ(r.to_json({"circle", "square"})["per_label"][1]["name"], "square");
  EXPECT_FALSE(r.to_json()["per_label"][1].contains("name"));
  EXPECT_NE(r.table().find("\n    1    0.0000"), std::string::npos) << r.table();
}
