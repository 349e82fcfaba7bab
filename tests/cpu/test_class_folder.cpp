// The class-folder loader (data.kind "image_folder"): class order, labels, resizing and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cgan/config/config.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/data/drawn_shapes.hpp"
#include "cgan/data/image.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using cgan::Error;

namespace {

void put_png(const std::string& path, int w, int h, int channels, uint8_t value) {
  fs::create_directories(fs::path(path).parent_path());
  cgan::Image img;
  img.width = w, img.height = h, img.channels = channels;
  img.pixels.assign(static_cast<size_t>(w) * h * channels, value);
  cgan::write_png(path, img);
}

void put_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string error_of(const cgan::ClassFolderSpec& s) {
  std::ostringstream log;
  try {
    cgan::load_class_folder(s, log);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

cgan::ClassFolderSpec spec_of(const std::string& dir, int h = 4, int w = 6) {
  cgan::ClassFolderSpec s;
  s.dir = dir;
  s.height = h, s.width = w;
  return s;
}

}  // namespace

TEST(ClassFolder, ClassesSortedCaseSensitivelyLabelsAreIndicesImagesResized) {
  testutil::TempDir d("cf");
  // torchvision sorts class names by code point: "B" < "a" < "b"
  put_png(d / "b/x.png", 10, 8, 3, 200);
  put_png(d / "b/deeper/y.JPG.png", 3, 3, 1, 255);  // found recursively; grey replicated
  put_png(d / "B/z.png", 6, 4, 3, 0);
  put_png(d / "a/w.png", 1, 1, 3, 51);
  put_text(d / "a/notes.txt", "not an image, ignored");
  put_text(d / "README", "a top-level file");
  std::ostringstream log;
  const cgan::HostDataset ds = cgan::load_class_folder(spec_of(d.path), log);
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"B", "a", "b"}));
  EXPECT_EQ(ds.num_classes, 3);
  ASSERT_EQ(ds.count, 4);
  EXPECT_EQ(ds.y, (std::vector<int32_t>{0, 1, 2, 2}));  // B/z, a/w, then b/deeper/y before b/x (path order)
  EXPECT_EQ(ds.channels, 3);
  EXPECT_EQ(ds.height, 4);
  EXPECT_EQ(ds.width, 6);
  const int dim = 3 * 4 * 6;
  ASSERT_EQ(ds.x.size(), static_cast<size_t>(4 * dim));
  auto px = [&](int i, int k) { return ds.x[static_cast<size_t>(i) * dim + k]; };
  for (int k = 0; k < dim; ++k) {
    EXPECT_FLOAT_EQ(px(0, k), -1.f);                     // 0 -> lo
    EXPECT_NEAR(px(1, k), -1.f + 2.f * 51 / 255, 1e-6);  // a 1x1 image blown up stays flat
    EXPECT_FLOAT_EQ(px(2, k), 1.f);                      // grey 255 on all three planes
    EXPECT_NEAR(px(3, k), -1.f + 2.f * 200 / 255, 1e-6);
  }
  EXPECT_NE(log.str().find("1 file(s) at the top level ignored"), std::string::npos) << log.str();
}

TEST(ClassFolder, BadInputIsAOneLineErrorNamingIt) {
  testutil::TempDir d("cfbad");
  EXPECT_EQ(error_of(spec_of(d / "nope")), "data.dir: " + (d / "nope") + ": no such folder");
  put_text(d / "file", "x");
  EXPECT_EQ(error_of(spec_of(d / "file")), "data.dir: " + (d / "file") + ": is not a folder");
  put_png(d / "flat/a.png", 2, 2, 3, 9);
  EXPECT_EQ(error_of(spec_of(d / "flat")), "data.dir: " + (d / "flat") +
                                               ": no class folders (data.kind \"image_folder\" reads one sub-folder of "
                                               "images per class)");
  put_png(d / "set/cat/a.png", 2, 2, 3, 9);
  fs::create_directories(d / "set/dog");
  put_text(d / "set/dog/a.txt", "x");
  EXPECT_EQ(error_of(spec_of(d / "set")),
            "data.dir: " + (d / "set/dog") + ": class folder \"dog\" holds no PNG or JPEG image");
  fs::create_directories(d / "commas/a,b");
  put_png(d / "commas/a,b/a.png", 2, 2, 3, 9);
  EXPECT_EQ(error_of(spec_of(d / "commas")),
            "data.dir: " + (d / "commas/a,b") + ": the class name holds ',' (the --labels separator)");
}

TEST(ClassFolder, CorruptImagesAreSkippedWithAWarningOrAreErrorsWhenStrict) {
  testutil::TempDir d("cfcorrupt");
  put_png(d / "cat/a.png", 2, 2, 3, 9);
  put_text(d / "cat/b.png", "not a png");
  put_png(d / "dog/a.png", 2, 2, 3, 9);
  std::ostringstream log;
  const cgan::HostDataset ds = cgan::load_class_folder(spec_of(d.path), log);
  EXPECT_EQ(ds.count, 2);
  EXPECT_EQ(ds.skipped, 1);
  EXPECT_NE(log.str().find("warning: data.dir: " + (d / "cat/b.png")), std::string::npos) << log.str();
  cgan::ClassFolderSpec strict = spec_of(d.path);
  strict.strict = true;
  const std::string e = error_of(strict);
  EXPECT_EQ(e.rfind("data.dir: " + (d / "cat/b.png") + ": ", 0), 0u) << e;
  EXPECT_NE(e.find("(data.strict is set)"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
  // a class whose every image is unreadable is an error even when not strict
  put_text(d / "eel/a.png", "broken");
  EXPECT_EQ(error_of(spec_of(d.path)),
            "data.dir: " + (d / "eel") + ": class folder \"eel\" has no readable image (1 unreadable)");
}

TEST(ClassFolder, ClassNamesTextAndLabelsByNameOrNumber) {
  const std::vector<std::string> names = {"cat", "dog", "7"};
  EXPECT_EQ(cgan::class_names_text(names), "cat\ndog\n7\n");
  EXPECT_EQ(cgan::class_names_from_text("cat\ndog\n7\n", "classes.txt"), names);
  EXPECT_EQ(cgan::class_names_from_text("cat\ndog\n7", "classes.txt"), names);
  EXPECT_THROW(cgan::class_names_from_text("cat\n\ndog\n", "classes.txt"), Error);
  EXPECT_THROW(cgan::class_names_from_text("cat\ncat\n", "classes.txt"), Error);
  EXPECT_THROW(cgan::class_names_from_text("", "classes.txt"), Error);
  EXPECT_EQ(cgan::label_from_text("dog", 3, names, "--label"), 1);
  EXPECT_EQ(cgan::label_from_text("2", 3, names, "--label"), 2);
  EXPECT_EQ(cgan::label_from_text("7", 3, names, "--label"), 2);  // a name wins over a number
  try {
    cgan::label_from_text("3", 3, names, "--labels");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--labels: label 3 is outside this model's classes 0..2 (classes: 0 cat, 1 dog, 2 7)");
  }
  EXPECT_THROW(cgan::label_from_text("eel", 3, names, "--label"), Error);
  EXPECT_THROW(cgan::label_from_text("-1", 3, names, "--label"), Error);
  EXPECT_EQ(cgan::label_text(1, names), "1 (dog)");
  EXPECT_EQ(cgan::label_text(1, {}), "1");
}

TEST(ClassFolder, ConfigKindImageFolder) {
  using json = nlohmann::json;
  auto cfg = [](const std::string& data) {
    return json::parse(R"({"data": )" + data + R"(,
      "generator": {"noise_dim": 4, "layers": [{"linear": 8}, {"relu": {}}, {"linear": 12}]},
      "discriminator": {"layers": [{"linear": 8}, {"leaky_relu": 0.2}, {"linear": 1}]}})");
  };
  const cgan::Config c = cgan::parse_config(cfg(R"({"kind": "image_folder", "dir": "shapes", "size": 2})"));
  EXPECT_EQ(c.data.height, 2);
  EXPECT_EQ(c.data.width, 2);
  EXPECT_FLOAT_EQ(c.data.lo, -1.f);
  EXPECT_EQ(cgan::parse_config(c.to_json()).to_json(), c.to_json());
  const cgan::Config c2 =
      cgan::parse_config(cfg(R"({"kind": "image_folder", "dir": "s", "size": [2, 3], "strict": true})"));
  EXPECT_EQ(c2.data.height, 2);
  EXPECT_EQ(c2.data.width, 3);
  EXPECT_TRUE(c2.data.strict);
  auto err = [&](const std::string& data) {
    try {
      cgan::parse_config(cfg(data));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(err(R"({"kind": "image_folder"})"),
            "data.dir: missing (data.kind \"image_folder\" needs the folder of class folders)");
  EXPECT_EQ(err(R"({"kind": "image_folder", "dir": "s", "size": "big"})"),
            "data.size: expected [height, width] or one integer, got \"big\"");
  EXPECT_NE(err(R"({"kind": "image_folder", "dir": "s", "tags": "t.csv"})").find("data.tags"), std::string::npos);
  // eval: the folder's own classifier by default; eval.every is allowed for a conditional G only
  EXPECT_EQ(c2.eval.classifier, "classifiers/s_2x3.safetensors");
  json j = cfg(R"({"kind": "image_folder", "dir": "s", "size": 2})");
  j["generator"]["condition"] = {{"mode", "concat_onehot"}};
  j["eval"] = {{"every", 10}};
  EXPECT_EQ(cgan::parse_config(j).eval.every, 10);
  j["generator"]["condition"] = {{"mode", "none"}};
  try {
    cgan::parse_config(j);
    ADD_FAILURE() << "an unconditional generator with eval.every was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "eval.every: the evaluator scores conditional generators of labelled images (data.kind mnist, fashion "
              "or image_folder, generator.condition.mode not \"none\")");
  }
}

TEST(DrawnShapes, DeterministicAndInsideTheImage) {
  for (int k = 0; k < 3; ++k) {
    const cgan::Image a = cgan::draw_shape(k, 16, 3, 5), b = cgan::draw_shape(k, 16, 3, 5);
    EXPECT_EQ(a.pixels, b.pixels);
    EXPECT_NE(a.pixels, cgan::draw_shape(k, 16, 3, 6).pixels);
    int lit = 0;  // pixels with some colour: at least the smallest triangle's area (6.4^2 / 2 = 20)
    for (size_t p = 0; p < a.pixels.size(); p += 3) lit += a.pixels[p] || a.pixels[p + 1] || a.pixels[p + 2];
    EXPECT_GT(lit, 15);
    EXPECT_LT(lit, 16 * 16);  // and some background
  }
}

// The classifier's held-out split: floor(n f) images of each class, spread evenly through it in
// path order, the last image of a class too small for f, the two halves disjoint and complete.
TEST(ClassFolder, HeldOutSplitIsPerClassEvenlySpreadAndComplete) {
  cgan::HostDataset all;
  all.name = "set";
  all.channels = 1, all.height = 1, all.width = 1;
  all.num_classes = 3;
  all.class_names = {"a", "b", "c"};
  const int n[3] = {20, 5, 2};  // with f = 0.1: 2 held out, 0 -> the last one, 0 -> the last one
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < n[k]; ++j) {
      all.x.push_back(static_cast<float>(100 * k + j));  // the value names the image: class k, index j
      all.y.push_back(k);
      ++all.count;
    }
  const cgan::HostDataset test = cgan::class_folder_split(all, 0.1, true);
  const cgan::HostDataset train = cgan::class_folder_split(all, 0.1, false);
  EXPECT_EQ(test.x, (std::vector<float>{9, 19, 104, 201}));
  EXPECT_EQ(test.y, (std::vector<int32_t>{0, 0, 1, 2}));
  EXPECT_EQ(test.count, 4);
  EXPECT_EQ(train.count, 23);
  EXPECT_EQ(train.class_names, all.class_names);
  std::vector<float> both = train.x;
  both.insert(both.end(), test.x.begin(), test.x.end());
  std::sort(both.begin(), both.end());
  std::vector<float> every = all.x;
  std::sort(every.begin(), every.end());
  EXPECT_EQ(both, every);
  // a quarter: j = 3, 7, 11, ... (floor((j + 1) / 4) steps up)
  const cgan::HostDataset q = cgan::class_folder_split(all, 0.25, true);
  EXPECT_EQ(q.x, (std::vector<float>{3, 7, 11, 15, 19, 103, 201}));
  // one image cannot be both trained on and held out
  all.x.push_back(300);
  all.y.push_back(2);
  all.x.erase(all.x.begin() + 25, all.x.begin() + 27);
  all.y.erase(all.y.begin() + 25, all.y.begin() + 27);
  all.count = 26;
  EXPECT_EQ(testutil::error_of([&] { cgan::class_folder_split(all, 0.1, true); }),
            "data.dir: set: class \"c\" has 1 usable image(s); a classifier needs at least 2 per class (one to train "
            "on, one held out)");
}

// class_folder_names lists and checks the classes without reading an image.
TEST(ClassFolder, NamesAreListedWithoutReadingImages) {
  testutil::TempDir d("cfn");
  put_text(d / "zebra/not_really.png", "not a PNG at all");
  put_text(d / "ant/also.png", "");
  put_text(d / "top.txt", "x");
  int top = 0;
  EXPECT_EQ(cgan::class_folder_names(d.path, &top), (std::vector<std::string>{"ant", "zebra"}));
  EXPECT_EQ(top, 1);
  EXPECT_NE(testutil::error_of([&] { cgan::class_folder_names(d / "missing"); }).find("cannot list the folder"),
            std::string::npos);
}
