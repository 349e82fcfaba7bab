// Anime data: tag vocabularies and tag text, tags CSVs in both formats (and malformed lines), the
// image-folder loader with hostile files, the procedural faces and their colour probe, the config keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "cgan/data/anime_faces.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/config/config.hpp"
#include "cgan/base/error.hpp"
#include "cgan/data/image.hpp"
#include "cgan/train/trainer.hpp"

namespace {

namespace fs = std::filesystem;
using testutil::error_of;
using testutil::slurp;
using testutil::spit;
struct TempDir : testutil::TempDir {
  TempDir() : testutil::TempDir("anime") {}
};

const std::vector<std::string> kVocab = cgan::default_vocabulary();

int index_of(const std::string& phrase) {
  const auto it = std::find(kVocab.begin(), kVocab.end(), phrase);
  return it == kVocab.end() ? -1 : static_cast<int>(it - kVocab.begin());
}

// The phrases set in row r of a table, in vocabulary order.
std::vector<std::string> phrases(const cgan::TagTable& t, int r) {
  std::vector<std::string> out;
  for (size_t k = 0; k < t.vocab.size(); ++k)
    if (t.row(r)[k] > 0.5f) out.push_back(t.vocab[k]);
  return out;
}

std::vector<std::string> V(std::initializer_list<const char*> l) { return {l.begin(), l.end()}; }

void expect_one_line(const std::string& m) { EXPECT_EQ(m.find('\n'), std::string::npos) << m; }

cgan::Image solid(int w, int h, int c, uint8_t r, uint8_t g, uint8_t b) {
  cgan::Image img;
  img.width = w;
  img.height = h;
  img.channels = c;
  for (int i = 0; i < w * h; ++i) {
    img.pixels.push_back(r);
    if (c == 3) {
      img.pixels.push_back(g);
      img.pixels.push_back(b);
    }
  }
  return img;
}

}  // namespace

// ------------------------------------------------------------------ vocabulary and tag text

TEST(AnimeVocab, DefaultVocabulary) {
  ASSERT_EQ(kVocab.size(), 22u);
  EXPECT_EQ(cgan::default_hair_tags().size(), 12u);
  EXPECT_EQ(cgan::default_eye_tags().size(), 10u);
  EXPECT_EQ(kVocab[0], "orange hair");
  EXPECT_EQ(kVocab[11], "blonde hair");
  EXPECT_EQ(kVocab[12], "black eyes");
  EXPECT_EQ(kVocab[21], "blue eyes");
  EXPECT_EQ(cgan::hair_phrase_count(kVocab), 12);
  EXPECT_EQ(cgan::normalize_tag("  Blue_Hair \t"), "blue hair");
  EXPECT_EQ(cgan::normalize_tag("LONG   hair"), "long hair");
}

TEST(AnimeVocab, CheckVocabularyErrors) {
  EXPECT_EQ(cgan::check_vocabulary(V({"Blue_Hair", "smile"}), "v"), V({"blue hair", "smile"}));
  std::string m = error_of([] { cgan::check_vocabulary({}, "data.vocabulary"); });
  EXPECT_NE(m.find("data.vocabulary: the vocabulary is empty"), std::string::npos) << m;
  m = error_of([] { cgan::check_vocabulary(V({"blue hair", "red hair", "Blue  hair"}), "data.vocabulary"); });
  EXPECT_NE(m.find("data.vocabulary[2]"), std::string::npos) << m;
  EXPECT_NE(m.find("repeats entry [0]"), std::string::npos) << m;
  m = error_of([] { cgan::check_vocabulary(V({"a, b"}), "data.vocabulary"); });
  EXPECT_NE(m.find("data.vocabulary[0]"), std::string::npos) << m;
  m = error_of([] { cgan::check_vocabulary(V({"ok", "  "}), "data.vocabulary"); });
  EXPECT_NE(m.find("data.vocabulary[1]: empty tag phrase"), std::string::npos) << m;
}

TEST(AnimeVocab, FileRoundTripAndErrors) {
  TempDir d;
  const std::vector<std::string> v = {"blue hair", "red eyes", "smile", "long hair"};
  cgan::write_vocabulary(d / "vocab.txt", v);
  EXPECT_EQ(slurp(d / "vocab.txt"), "blue hair\nred eyes\nsmile\nlong hair\n");
  EXPECT_EQ(cgan::read_vocabulary(d / "vocab.txt"), v);
  cgan::write_vocabulary(d / "default.txt", kVocab);
  EXPECT_EQ(cgan::read_vocabulary(d / "default.txt"), kVocab);

  spit(d / "comments.txt", "# my tags\r\n\r\nBlue_Hair\r\n  red eyes \n");
  EXPECT_EQ(cgan::read_vocabulary(d / "comments.txt"), V({"blue hair", "red eyes"}));

  spit(d / "dup.txt", "# header\nblue hair\n\nred eyes\nBLUE HAIR\n");
  std::string m = error_of([&] { cgan::read_vocabulary(d / "dup.txt"); });
  EXPECT_NE(m.find(d / "dup.txt:5"), std::string::npos) << m;
  EXPECT_NE(m.find("repeats"), std::string::npos) << m;
  expect_one_line(m);

  spit(d / "empty.txt", "# nothing\n\n");
  m = error_of([&] { cgan::read_vocabulary(d / "empty.txt"); });
  EXPECT_NE(m.find("no tag phrase"), std::string::npos) << m;
  m = error_of([&] { cgan::read_vocabulary(d / "missing.txt"); });
  EXPECT_NE(m.find(d / "missing.txt"), std::string::npos) << m;
  m = error_of([&] { cgan::write_vocabulary(d / "nodir/vocab.txt", v); });
  EXPECT_NE(m.find("nodir"), std::string::npos) << m;
}

TEST(AnimeVocab, TagTextToMultiHot) {
  auto hot = [](const std::vector<float>& t) {
    std::vector<std::string> s;
    for (size_t k = 0; k < t.size(); ++k) {
      EXPECT_TRUE(t[k] == 0.f || t[k] == 1.f);
      if (t[k] > 0.5f) s.push_back(kVocab[k]);
    }
    return s;
  };
  EXPECT_EQ(hot(cgan::tags_from_text("blue hair, yellow eyes", kVocab)), V({"blue hair", "yellow eyes"}));
  EXPECT_EQ(hot(cgan::tags_from_text("Yellow_Eyes;BLUE   hair,", kVocab)), V({"blue hair", "yellow eyes"}));
  EXPECT_EQ(hot(cgan::tags_from_text("blue hair yellow eyes", kVocab)), V({"blue hair", "yellow eyes"}));
  EXPECT_EQ(hot(cgan::tags_from_text("red eyes", kVocab)), V({"red eyes"}));
  const std::vector<float> t = cgan::tags_from_text("pink hair, green eyes", kVocab);
  EXPECT_EQ(cgan::tags_to_text(t.data(), kVocab), "pink hair, green eyes");

  std::string m = error_of([] { cgan::tags_from_text("blue hair, long hair", kVocab); });
  EXPECT_NE(m.find("unknown tag \"long hair\""), std::string::npos) << m;
  EXPECT_NE(m.find("orange hair, white hair"), std::string::npos) << m;  // lists the vocabulary
  EXPECT_NE(m.find("blue eyes"), std::string::npos) << m;
  expect_one_line(m);
  m = error_of([] { cgan::tags_from_text("blue hair green", kVocab); });
  EXPECT_NE(m.find("unknown tag \"green\""), std::string::npos) << m;
  m = error_of([] { cgan::tags_from_text(" , ", kVocab); });
  EXPECT_NE(m.find("no tag"), std::string::npos) << m;
}

// ------------------------------------------------------------------ tags CSV

TEST(AnimeTagsCsv, ColourTextFormat) {
  const std::string text =
      "\xEF\xBB\xBFid,tags\r\n"
      "7,blue hair yellow eyes\r\n"
      "8,Red_Hair  and GREEN eyes\n"
      "\n"
      "009,\"long blonde hair, red eyes\"\n"
      "10,white hair\n"
      "11,smiling\n";
  const cgan::TagTable t = cgan::parse_tags_csv(text, "tags.csv", kVocab);
  EXPECT_TRUE(t.warnings.empty());
  ASSERT_EQ(t.rows(), 5);
  EXPECT_EQ(t.ids, V({"7", "8", "009", "10", "11"}));
  EXPECT_EQ(phrases(t, 0), V({"blue hair", "yellow eyes"}));
  EXPECT_EQ(phrases(t, 1), V({"red hair", "green eyes"}));
  EXPECT_EQ(phrases(t, 2), V({"blonde hair", "red eyes"}));
  EXPECT_EQ(phrases(t, 3), V({"white hair"}));
  EXPECT_TRUE(phrases(t, 4).empty());
  EXPECT_EQ(t.row_of.at("9"), 2);  // "009" and "9" are the same id
  EXPECT_EQ(cgan::id_key(" 007 "), "7");
  EXPECT_EQ(cgan::id_key("000"), "0");
  EXPECT_EQ(cgan::id_key("a07"), "a07");
}

TEST(AnimeTagsCsv, DanbooruFormatAndMixedLines) {
  const std::string text =
      "1,blue hair:1234\tlong hair:55\tyellow eyes:12\n"
      "2,smile:3\topen mouth:9\n"
      "3,Aqua_Hair:0\t:d:77\tpink eyes : 5\n"
      "4,purple hair purple eyes\n";  // a colour-text line in the same file
  const cgan::TagTable t = cgan::parse_tags_csv(text, "t.csv", kVocab);
  EXPECT_TRUE(t.warnings.empty()) << t.warnings.front();
  ASSERT_EQ(t.rows(), 4);
  EXPECT_EQ(phrases(t, 0), V({"blue hair", "yellow eyes"}));
  EXPECT_TRUE(phrases(t, 1).empty());
  EXPECT_EQ(phrases(t, 2), V({"aqua hair", "pink eyes"}));
  EXPECT_EQ(phrases(t, 3), V({"purple hair", "purple eyes"}));
  EXPECT_EQ(cgan::label_of_tags(t.row(0), kVocab), 8);   // blue hair
  EXPECT_EQ(cgan::label_of_tags(t.row(1), kVocab), 12);  // no hair phrase: the extra class

  // a custom vocabulary keeps other tags
  const cgan::TagTable c = cgan::parse_tags_csv(text, "t.csv", V({"smile", "long hair", "blue hair"}));
  EXPECT_EQ(phrases(c, 0), V({"long hair", "blue hair"}));
  EXPECT_EQ(phrases(c, 1), V({"smile"}));
  EXPECT_EQ(cgan::hair_phrase_count(c.vocab), 2);
  EXPECT_EQ(cgan::label_of_tags(c.row(0), c.vocab), 0);  // long hair: the first hair phrase
}

TEST(AnimeTagsCsv, MalformedLinesAreSkippedWithWarnings) {
  const std::string text =
      "1,blue hair yellow eyes\n"
      "no comma here\n"         // 2
      " ,red hair\n"            // 3
      "4,blue hair:many\n"      // 4: non-numeric count
      "5,blue hair:3\tsmile\n"  // 5: field without count
      "6,red hair red eyes\n"
      "1,green hair\n"   // 7: duplicate id
      "06,green hair\n"  // 8: duplicate of 6 under id_key
      "9,:12\n";         // 9: empty tag
  const cgan::TagTable t = cgan::parse_tags_csv(text, "dir/tags.csv", kVocab);
  EXPECT_EQ(t.ids, V({"1", "6"}));
  EXPECT_EQ(phrases(t, 0), V({"blue hair", "yellow eyes"}));  // the first occurrence wins
  EXPECT_EQ(t.malformed, 7);
  ASSERT_EQ(t.warnings.size(), 7u);
  const char* want[] = {"dir/tags.csv:2: no comma",
                        "dir/tags.csv:3: empty id",
                        "dir/tags.csv:4: field \"blue hair:many\": count \"many\" is not a non-negative integer",
                        "dir/tags.csv:5: field \"smile\" is not tag:count",
                        "dir/tags.csv:7: duplicate id \"1\" (first on line 1)",
                        "dir/tags.csv:8: duplicate id \"06\" (first on line 6)",
                        "dir/tags.csv:9: field \":12\" has an empty tag"};
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(t.warnings[i].rfind(want[i], 0), 0u) << t.warnings[i];
    EXPECT_NE(t.warnings[i].find("(line skipped)"), std::string::npos) << t.warnings[i];
    expect_one_line(t.warnings[i]);
  }
  // strict: the first malformed line is the error
  const std::string m = error_of([&] { cgan::parse_tags_csv(text, "dir/tags.csv", kVocab, true); });
  EXPECT_EQ(m.rfind("dir/tags.csv:2: no comma", 0), 0u) << m;
  expect_one_line(m);
  const std::string m2 = error_of([&] { cgan::parse_tags_csv("1,red hair\n1,blue hair\n", "x.csv", kVocab, true); });
  EXPECT_EQ(m2, "x.csv:2: duplicate id \"1\" (first on line 1)");
}

// ------------------------------------------------------------------ image folder

TEST(AnimeImageFolder, LoadsResizesAndSkipsBadFiles) {
  TempDir d;
  fs::create_directory(d / "faces");
  const std::string faces = d / "faces";
  cgan::write_png(faces + "/1.png", solid(40, 30, 3, 255, 0, 128));  // resized to 16x12
  cgan::write_png(faces + "/2.PNG", solid(16, 12, 1, 51, 0, 0));     // grey, same size
  cgan::write_png(faces + "/3.png", solid(8, 6, 3, 0, 255, 0));      // enlarged
  cgan::write_png(faces + "/4.png", solid(8, 6, 3, 1, 2, 3));        // no tags row
  cgan::write_png(faces + "/5.png", solid(8, 6, 3, 1, 2, 3));        // row without vocabulary tag
  const std::string good = slurp(faces + "/1.png");
  spit(faces + "/6.png", good.substr(0, good.size() / 2));  // truncated PNG
  spit(faces + "/7.png", "this is not an image\n");         // text named .png
  spit(faces + "/8.png", "");                               // zero bytes
  spit(faces + "/notes.txt", "ignored");
  spit(d / "tags.csv",  // beside the folder: the default <dir>/../tags.csv
       "1,blue hair yellow eyes\n2,red hair:10\tgreen eyes:3\n3,green eyes\n5,smile\n6,red hair\n7,red hair\n"
       "8,red hair\nbad line\n");

  cgan::ImageFolderSpec s;
  s.dir = faces;
  s.height = 12;
  s.width = 16;
  s.lo = -1.f;
  s.hi = 1.f;
  std::ostringstream log;
  const cgan::HostDataset ds = cgan::load_image_folder(s, log);
  const std::string out = log.str();
  ASSERT_EQ(ds.count, 3) << out;
  EXPECT_EQ(ds.channels, 3);
  EXPECT_EQ(ds.height, 12);
  EXPECT_EQ(ds.width, 16);
  EXPECT_EQ(ds.skipped, 5) << out;  // 6, 7, 8 unreadable; 4 untagged; 5 no vocabulary tag
  for (const char* f : {"/6.png", "/7.png", "/8.png", "/4.png"})
    EXPECT_NE(out.find(faces + f), std::string::npos) << "no warning naming " << f << " in:\n" << out;
  EXPECT_EQ(out.find("/5.png"), std::string::npos) << out;
  EXPECT_NE(out.find("tags.csv:8: no comma"), std::string::npos) << out;
  EXPECT_NE(out.find("3 images loaded"), std::string::npos) << out;
  EXPECT_NE(out.find("skipped 5 (3 unreadable, 1 without a tags row, 1 without a vocabulary tag"), std::string::npos)
      << out;

  // NCHW values: image 1 is (255, 0, 128) everywhere
  const size_t plane = 12 * 16;
  ASSERT_EQ(ds.x.size(), 3 * 3 * plane);
  for (size_t p = 0; p < plane; ++p) {
    EXPECT_FLOAT_EQ(ds.x[p], 1.f);
    EXPECT_FLOAT_EQ(ds.x[plane + p], -1.f);
    EXPECT_NEAR(ds.x[2 * plane + p], -1.f + 2.f * 128 / 255, 1e-6);
  }
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(ds.x[3 * plane + c * plane + 5], -1.f + 2.f * 51 / 255, 1e-6);  // grey
  EXPECT_FLOAT_EQ(ds.x[6 * plane + plane + 7], 1.f);  // image 3: green
  // tags, labels, vocabulary
  ASSERT_EQ(ds.tag_dim, 22);
  EXPECT_EQ(ds.vocab, kVocab);
  ASSERT_EQ(ds.tags.size(), 3u * 22);
  EXPECT_EQ(cgan::tags_to_text(&ds.tags[0], kVocab), "blue hair, yellow eyes");
  EXPECT_EQ(cgan::tags_to_text(&ds.tags[22], kVocab), "red hair, green eyes");
  EXPECT_EQ(cgan::tags_to_text(&ds.tags[44], kVocab), "green eyes");
  EXPECT_EQ(ds.y, (std::vector<int32_t>{8, 5, 12}));
  EXPECT_EQ(ds.num_classes, 13);  // 12 hair colours + "no hair colour"

  // strict: the first unreadable file is a one-line error naming it
  s.strict = true;
  s.tags = d / "strict_tags.csv";
  spit(s.tags, "1,blue hair\n2,red hair\n3,green eyes\n6,red hair\n7,red hair\n8,red hair\n");
  std::ostringstream log2;
  std::string m = error_of([&] { cgan::load_image_folder(s, log2); });
  EXPECT_NE(m.find("data.dir: " + faces + "/4.png"), std::string::npos) << m;  // 4 has no row
  EXPECT_NE(m.find("data.strict"), std::string::npos) << m;
  expect_one_line(m);
  spit(s.tags, "1,blue hair\n2,red hair\n3,green eyes\n4,red hair\n5,red hair\n6,red hair\n7,red hair\n8,red hair\n");
  m = error_of([&] { cgan::load_image_folder(s, log2); });
  EXPECT_NE(m.find(faces + "/6.png"), std::string::npos) << m;
  expect_one_line(m);
  fs::remove(faces + "/6.png");
  m = error_of([&] { cgan::load_image_folder(s, log2); });
  EXPECT_NE(m.find(faces + "/7.png"), std::string::npos) << m;
  fs::remove(faces + "/7.png");
  m = error_of([&] { cgan::load_image_folder(s, log2); });
  EXPECT_NE(m.find(faces + "/8.png"), std::string::npos) << m;
  EXPECT_NE(m.find("empty file"), std::string::npos) << m;
  fs::remove(faces + "/8.png");
  std::ostringstream log3;
  EXPECT_EQ(cgan::load_image_folder(s, log3).count, 5);
  // strict: a malformed CSV line names the tags file and line
  spit(s.tags, "1,blue hair\n2,red hair:x\n");
  m = error_of([&] { cgan::load_image_folder(s, log3); });
  EXPECT_NE(m.find("data.tags: " + s.tags + ":2: "), std::string::npos) << m;
}

TEST(AnimeImageFolder, TagsPathDefaultsAndErrors) {
  TempDir d;
  fs::create_directory(d / "faces");
  const std::string faces = d / "faces";
  cgan::write_png(faces + "/a.jpg.png", solid(4, 4, 3, 0, 0, 0));
  cgan::ImageFolderSpec s;
  s.dir = faces;
  s.height = s.width = 4;
  std::ostringstream log;
  std::string m = error_of([&] { cgan::load_image_folder(s, log); });
  EXPECT_NE(m.find("data.tags: no tags CSV given"), std::string::npos) << m;
  spit(faces + "/tags.csv", "a.jpg,blue hair\n");  // inside the folder: found first
  spit(d / "tags.csv", "other,red hair\n");
  const cgan::HostDataset ds = cgan::load_image_folder(s, log);
  EXPECT_EQ(ds.count, 1);
  EXPECT_EQ(ds.y, (std::vector<int32_t>{8}));
  EXPECT_EQ(ds.num_classes, 12);
  s.dir = d / "nope";
  m = error_of([&] { cgan::load_image_folder(s, log); });
  EXPECT_NE(m.find("data.dir: " + s.dir + ": no such folder"), std::string::npos) << m;
  s.dir = faces;
  s.tags = d / "missing.csv";
  m = error_of([&] { cgan::load_image_folder(s, log); });
  EXPECT_NE(m.find("data.tags: " + s.tags), std::string::npos) << m;
  s.tags = d / "tags.csv";  // no row matches: nothing usable
  m = error_of([&] { cgan::load_image_folder(s, log); });
  EXPECT_NE(m.find("no usable image"), std::string::npos) << m;
  expect_one_line(m);
}

// ------------------------------------------------------------------ procedural faces and the probe

TEST(AnimeFaces, DeterministicTaggedAndInRange) {
  const cgan::HostDataset a = cgan::make_anime_faces(300, 96, 96, 5);
  const cgan::HostDataset b = cgan::make_anime_faces(300, 96, 96, 5);
  const cgan::HostDataset c = cgan::make_anime_faces(300, 96, 96, 6);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.tags, b.tags);
  EXPECT_NE(a.x, c.x);
  // a face does not depend on how many are drawn (or on the thread split)
  const cgan::HostDataset small = cgan::make_anime_faces(3, 96, 96, 5);
  EXPECT_TRUE(std::equal(small.x.begin(), small.x.end(), a.x.begin()));

  EXPECT_EQ(a.count, 300);
  EXPECT_EQ(a.channels, 3);
  EXPECT_EQ(a.height, 96);
  EXPECT_EQ(a.width, 96);
  EXPECT_EQ(a.num_classes, 12);
  EXPECT_EQ(a.tag_dim, 22);
  EXPECT_EQ(a.vocab, kVocab);
  ASSERT_EQ(a.x.size(), size_t(300) * 3 * 96 * 96);
  const auto [lo, hi] = std::minmax_element(a.x.begin(), a.x.end());
  EXPECT_GE(*lo, -1.f);
  EXPECT_LE(*hi, 1.f);
  EXPECT_LT(*lo, -0.9f);
  EXPECT_GT(*hi, 0.9f);
  std::set<int> hairs, eyes;
  for (int i = 0; i < a.count; ++i) {
    const float* t = &a.tags[static_cast<size_t>(i) * 22];
    int nh = 0, ne = 0, h = -1, e = -1;
    for (int k = 0; k < 22; ++k) {
      ASSERT_TRUE(t[k] == 0.f || t[k] == 1.f);
      if (t[k] == 1.f) (k < 12 ? (++nh, h = k) : (++ne, e = k - 12));
    }
    ASSERT_EQ(nh, 1);
    ASSERT_EQ(ne, 1);
    EXPECT_EQ(a.y[i], h);
    hairs.insert(h);
    eyes.insert(e);
  }
  EXPECT_EQ(hairs.size(), 12u);
  EXPECT_EQ(eyes.size(), 10u);

  const cgan::HostDataset r = cgan::make_anime_faces(2, 64, 48, 5, 0.f, 1.f);
  EXPECT_EQ(r.height, 64);
  EXPECT_EQ(r.width, 48);
  const auto [rlo, rhi] = std::minmax_element(r.x.begin(), r.x.end());
  EXPECT_GE(*rlo, 0.f);
  EXPECT_LE(*rhi, 1.f);
  EXPECT_NE(error_of([] { cgan::make_anime_faces(0, 96, 96, 1); }).find("count"), std::string::npos);
  EXPECT_NE(error_of([] { cgan::make_anime_faces(1, 8, 96, 1); }).find("16..1024"), std::string::npos);
}

TEST(AnimeFaces, ProbeReadsColoursBack) {
  const int n = 500;
  const cgan::HostDataset d = cgan::make_anime_faces(n, 96, 96, 2024);
  const cgan::AttributeAccuracy acc = cgan::attribute_accuracy(d.x.data(), n, 96, 96, -1.f, 1.f, d.tags.data(), 22);
  std::printf("[ probe ] %d faces: hair %.3f, eyes %.3f, both %.3f\n", n, acc.hair, acc.eye, acc.both);
  EXPECT_GE(acc.hair, 0.95);
  EXPECT_GE(acc.eye, 0.95);
  EXPECT_GE(acc.both, 0.95);
  // the same faces in [0, 1]
  const cgan::HostDataset u = cgan::make_anime_faces(50, 96, 96, 2024, 0.f, 1.f);
  const cgan::AttributeAccuracy acc01 = cgan::attribute_accuracy(u.x.data(), 50, 96, 96, 0.f, 1.f, u.tags.data(), 22);
  EXPECT_GE(acc01.both, 0.95);
  // tags that do not belong to the images score low
  std::vector<float> shifted(d.tags.begin() + 22, d.tags.end());
  shifted.insert(shifted.end(), d.tags.begin(), d.tags.begin() + 22);
  const cgan::AttributeAccuracy wrong = cgan::attribute_accuracy(d.x.data(), n, 96, 96, -1.f, 1.f, shifted.data(), 22);
  EXPECT_LT(wrong.hair, 0.3);
  EXPECT_LT(wrong.eye, 0.3);
}

TEST(AnimeFaces, ProbeSaysUnknownWithoutAFace) {
  const size_t dim = 3 * 96 * 96;
  for (float v : {-1.f, 0.f, 1.f}) {  // black, mid-grey (= gray hair), white
    const std::vector<float> blank(dim, v);
    const cgan::AnimeColours c = cgan::probe_anime_colours(blank.data(), 96, 96, -1.f, 1.f);
    EXPECT_EQ(c.hair, -1) << v;
    EXPECT_EQ(c.eye, -1) << v;
  }
  // a skin-coloured disc on a background: a face but no hair and no eyes
  const cgan::AnimePalette& pal = cgan::default_anime_palette();
  std::vector<float> img(dim);
  for (int y = 0; y < 96; ++y)
    for (int x = 0; x < 96; ++x) {
      const bool face = (x - 48) * (x - 48) + (y - 50) * (y - 50) < 25 * 25;
      const cgan::Rgb c = face ? pal.skin : pal.background[0];
      img[0 * 9216 + y * 96 + x] = c.r / 127.5f - 1.f;
      img[1 * 9216 + y * 96 + x] = c.g / 127.5f - 1.f;
      img[2 * 9216 + y * 96 + x] = c.b / 127.5f - 1.f;
    }
  const cgan::AnimeColours c = cgan::probe_anime_colours(img.data(), 96, 96, -1.f, 1.f);
  EXPECT_EQ(c.hair, -1);
  EXPECT_EQ(c.eye, -1);
  const std::vector<float> nan(dim, std::nanf(""));
  EXPECT_EQ(cgan::probe_anime_colours(nan.data(), 96, 96, -1.f, 1.f).hair, -1);
  EXPECT_NE(error_of([&] {
              cgan::attribute_accuracy(nan.data(), 1, 96, 96, -1.f, 1.f, nan.data(), 12);
            }).find("tag vectors of 12 entries"),
            std::string::npos);
}

// ------------------------------------------------------------------ config keys and load_dataset

namespace {
nlohmann::json with_data(const nlohmann::json& data) {
  nlohmann::json j = nlohmann::json::parse(R"({
    "generator": {"noise_dim": 4, "layers": [{"linear": 8}, {"relu": {}}, {"linear": 2}]},
    "discriminator": {"layers": [{"linear": 8}, {"leaky_relu": 0.2}, {"linear": 1}]},
    "train": {"batch_size": 4}
  })");
  j["data"] = data;
  return j;
}
std::string config_error(const nlohmann::json& data) {
  try {
    cgan::parse_config(with_data(data));
  } catch (const cgan::Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(AnimeConfig, KeysParseRoundTripAndLoad) {
  cgan::Config c = cgan::parse_config(with_data({{"kind", "anime"}, {"count", 20}, {"size", {32, 40}}, {"seed", 3}}));
  EXPECT_EQ(c.data.height, 32);
  EXPECT_EQ(c.data.width, 40);
  EXPECT_FLOAT_EQ(c.data.lo, -1.f);
  EXPECT_FLOAT_EQ(c.data.hi, 1.f);
  nlohmann::json j = c.to_json();
  EXPECT_EQ(j["data"],
            nlohmann::json::parse(R"({"kind":"anime","count":20,"seed":3,"size":[32,40],"range":[-1.0,1.0]})"));
  EXPECT_EQ(cgan::parse_config(j).to_json(), j);
  const cgan::HostDataset d = cgan::load_dataset(c.data);
  EXPECT_EQ(d.count, 20);
  EXPECT_EQ(d.height, 32);
  EXPECT_EQ(d.width, 40);
  EXPECT_EQ(d.tag_dim, 22);
  EXPECT_EQ(cgan::data_shape_of(d, c.data).lo, -1.f);
  EXPECT_NE(cgan::load_dataset(c.data, false).x, d.x);  // the test split uses seed + 1

  c = cgan::parse_config(with_data({{"kind", "images"}, {"dir", "faces"}}));
  j = c.to_json()["data"];
  EXPECT_EQ(j["tags"], "");
  EXPECT_EQ(j["size"], nlohmann::json({96, 96}));
  EXPECT_EQ(j["range"], nlohmann::json({-1.0, 1.0}));
  EXPECT_EQ(j["strict"], false);
  EXPECT_EQ(j["vocabulary"].get<std::vector<std::string>>(), kVocab);
  EXPECT_EQ(cgan::parse_config(c.to_json()).to_json(), c.to_json());
  c = cgan::parse_config(with_data({{"kind", "images"},
                                    {"dir", "faces"},
                                    {"tags", "t.csv"},
                                    {"strict", true},
                                    {"range", {0, 1}},
                                    {"vocabulary", {"Blue_Hair", "smile"}}}));
  EXPECT_EQ(c.data.vocabulary, V({"blue hair", "smile"}));
  EXPECT_TRUE(c.data.strict);
  EXPECT_EQ(cgan::parse_config(c.to_json()).to_json(), c.to_json());
  c = cgan::parse_config(with_data({{"kind", "images"}, {"dir", "faces"}, {"vocabulary", "vocab.txt"}}));
  EXPECT_EQ(c.data.vocabulary_file, "vocab.txt");
  EXPECT_EQ(c.to_json()["data"]["vocabulary"], "vocab.txt");

  // load_dataset: an image folder and a vocabulary file
  TempDir t;
  fs::create_directory(t / "img");
  cgan::write_png(t / "img/1.png", solid(10, 10, 3, 9, 9, 9));
  spit(t / "tags.csv", "1,smile:4\tblue hair:2\n");
  spit(t / "vocab.txt", "smile\n");
  c = cgan::parse_config(
      with_data({{"kind", "images"}, {"dir", t / "img"}, {"size", {8, 8}}, {"vocabulary", t / "vocab.txt"}}));
  const cgan::HostDataset f = cgan::load_dataset(c.data);
  EXPECT_EQ(f.count, 1);
  EXPECT_EQ(f.vocab, V({"smile"}));
  EXPECT_EQ(f.num_classes, 1);
  c.data.vocabulary_file = t / "none.txt";
  const std::string m = error_of([&] { cgan::load_dataset(c.data); });
  EXPECT_EQ(m.rfind("data.vocabulary: " + (t / "none.txt"), 0), 0u) << m;
}

TEST(AnimeConfig, BadKeysNameTheirPath) {
  EXPECT_NE(config_error({{"kind", "images"}}).find("data.dir: missing"), std::string::npos);
  EXPECT_NE(
      config_error({{"kind", "images"}, {"dir", "x"}, {"size", {96}}}).find("data.size: expected [height, width]"),
      std::string::npos);
  EXPECT_NE(
      config_error({{"kind", "anime"}, {"size", {8, 96}}}).find("data.size[0]: expected an integer in [16, 1024]"),
      std::string::npos);
  EXPECT_NE(config_error({{"kind", "images"}, {"dir", "x"}, {"vocabulary", {"a", 3}}}).find("data.vocabulary[1]"),
            std::string::npos);
  EXPECT_NE(config_error({{"kind", "images"}, {"dir", "x"}, {"vocabulary", {"a", "A"}}}).find("data.vocabulary[1]"),
            std::string::npos);
  EXPECT_NE(config_error({{"kind", "images"}, {"dir", "x"}, {"vocabulary", 5}}).find("data.vocabulary: expected"),
            std::string::npos);
  EXPECT_NE(config_error({{"kind", "images"}, {"dir", "x"}, {"strict", "yes"}}).find("data.strict"), std::string::npos);
  EXPECT_NE(config_error({{"kind", "images"}, {"dir", "x"}, {"count", 5}}).find("data.count: unknown key"),
            std::string::npos);
  EXPECT_NE(config_error({{"kind", "anime"}, {"tags", "x"}}).find("data.tags: unknown key"), std::string::npos);
  EXPECT_NE(config_error({{"kind", "anime"}, {"count", 2}}).find("train.batch_size"), std::string::npos);
  EXPECT_NE(config_error({{"kind", "mnist"}, {"size", {96, 96}}}).find("data.size: unknown key"), std::string::npos);
}
