// Hostile input (issue 10), one test per class of the general mechanisms: every reader refuses a
// non-regular file before opening it, the strict JSON reader, depth-limited messages, the gzip cap
// from the IDX header, the image header size, UTF-8 checks, the memory plan and the checkpoint
// metadata check.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cgan/data/tags.hpp"
#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/data/image.hpp"
#include "cgan/base/io.hpp"
#include "cgan/nn/memory_plan.hpp"
#include "cgan/nn/model.hpp"
#include "cgan/train/trainer.hpp"
#include "test_util.hpp"

namespace {

using json = nlohmann::json;
using testutil::error_of;
using testutil::spit;
using testutil::TempDir;

bool has(const std::string& m, const std::string& part) { return m.find(part) != std::string::npos; }

// The message of fn applied to a FIFO. Should fn block opening it (the bug), a watchdog opens the
// write end after 3 s so that the test fails instead of hanging.
std::string error_on_fifo(const std::string& fifo, const std::function<void()>& fn) {
  std::atomic<bool> done{false}, rescued{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 300 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (done) return;
    rescued = true;
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  });
  std::string m = error_of(fn);
  done = true;
  watchdog.join();
  EXPECT_FALSE(rescued) << "the reader blocked on the FIFO " << fifo;
  return m;
}

}  // namespace

// ---------------------------------------------------------------- not a regular file

TEST(HostileInput, EveryReaderRefusesAFifoWithoutOpeningIt) {
  TempDir d("fifo");
  const std::string f = d / "in.fifo";
  ASSERT_EQ(::mkfifo(f.c_str(), 0600), 0);
  struct Case {
    const char* what;
    std::function<void()> read;
  };
  const std::vector<Case> cases = {
      {"config file", [&] { cgan::load_config(f); }},
      {"checkpoint", [&] { cgan::read_safetensors(f); }},
      {"data file", [&] { cgan::read_file_maybe_gz(f); }},
      {"image file", [&] { cgan::read_image(f); }},
      {"tags CSV", [&] { cgan::read_tags_csv(f, cgan::default_vocabulary()); }},
      {"vocabulary file", [&] { cgan::read_vocabulary(f); }},
  };
  for (const Case& c : cases) {
    const std::string m = error_on_fifo(f, c.read);
    EXPECT_EQ(m, f + ": is a FIFO, not a" + (c.what[0] == 'i' ? std::string("n ") : std::string(" ")) + c.what)
        << c.what;
  }
  // A directory is named as such by the same check.
  EXPECT_EQ(error_of([&] { cgan::read_regular_file(d.path, "tags CSV"); }),
            d.path + ": is a directory, not a tags CSV");
}

TEST(HostileInput, AFifoInsideAnImageFolderIsSkippedOrRefusedNotWaitedOn) {
  TempDir d("fifo_folder");
  std::filesystem::create_directory(d / "imgs");
  cgan::Image img;
  img.width = img.height = 8;
  img.channels = 3;
  img.pixels.assign(8 * 8 * 3, 128);
  cgan::write_png(d / "imgs/a.png", img);
  ASSERT_EQ(::mkfifo((d / "imgs/b.png").c_str(), 0600), 0);
  spit(d / "tags.csv", "a,blonde hair:1\nb,blonde hair:1\n");
  cgan::ImageFolderSpec s;
  s.dir = d / "imgs";
  s.tags = d / "tags.csv";
  s.height = s.width = 8;
  s.strict = true;
  const std::string m = error_on_fifo(d / "imgs/b.png", [&] {
    std::ostringstream log;
    cgan::load_image_folder(s, log);
  });
  EXPECT_TRUE(has(m, "b.png: is a FIFO, not an image file")) << m;
  // The tags CSV as a FIFO.
  std::filesystem::remove(d / "imgs/b.png");
  std::filesystem::remove(d / "tags.csv");
  ASSERT_EQ(::mkfifo((d / "tags.csv").c_str(), 0600), 0);
  s.tags = "";  // found beside the folder
  const std::string t = error_on_fifo(d / "tags.csv", [&] {
    std::ostringstream log;
    cgan::load_image_folder(s, log);
  });
  EXPECT_EQ(t, "data.tags: " + d / "imgs/../tags.csv" + ": is a FIFO, not a tags CSV");
}

// ---------------------------------------------------------------- JSON: strict reader, bounded messages

TEST(HostileInput, DuplicateKeysAreRefusedNamingTheKeyPath) {
  TempDir d("dup");
  spit(d / "c.json", R"({"train": {"steps": 2, "batch_size": 4, "steps": 3}})");
  EXPECT_EQ(error_of([&] { cgan::load_config(d / "c.json"); }),
            d / "c.json" + ": key \"train.steps\" appears twice (keys must be unique)");
  EXPECT_EQ(error_of([&] {
              cgan::parse_json_text(R"({"g": {"layers": [{"linear": 8}, {"linear": 2, "linear": 3}]}})", "x");
            }),
            "x: key \"g.layers[1].linear\" appears twice (keys must be unique)");
  // The same key in two different objects is fine.
  EXPECT_NO_THROW(cgan::parse_json_text(R"({"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 1}, {"k": 2}]})", "x"));
}

TEST(HostileInput, DeeplyNestedValuesAreRefusedAndDescribedBriefly) {
  TempDir d("deep");
  spit(d / "c.json", "{\"description\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  EXPECT_EQ(error_of([&] { cgan::load_config(d / "c.json"); }), d / "c.json" + ": nests deeper than 64 levels");
  json j = json::parse(R"({"data": {"kind": "mixture"}, "generator": {"layers": [{"linear": 2}]},
                           "discriminator": {"layers": [{"linear": 1}]}})");
  EXPECT_EQ(
      error_of([&] { cgan::apply_override(j, "description=" + std::string(60000, '[') + std::string(60000, ']')); }),
      "--set description: nests deeper than 64 levels");
  // A value nested within the limit, but wide: the message shows a bounded excerpt.
  json v = json::array();
  for (int i = 0; i < 50; ++i) v = json::array({v, std::string(1000, 'x')});
  const std::string e = cgan::describe_json(v);
  EXPECT_EQ(e.size(), 60u) << e;
  EXPECT_EQ(e.substr(57), "...");
  j["description"] = v;
  const std::string m = error_of([&] { cgan::parse_config(j); });
  EXPECT_LT(m.size(), 200u) << m;
  EXPECT_TRUE(has(m, "description: expected a string, got [[[[")) << m;
}

TEST(HostileInput, SetOverridesRefuseInvalidUtf8AndHugeIndicesNamingTheKey) {
  json j = json::parse(R"({"generator": {"layers": [{"linear": 2}]}})");
  EXPECT_EQ(error_of([&] { cgan::apply_override(j, "description=a\xff\xfe"); }),
            "--set description: the value is not valid UTF-8");
  EXPECT_EQ(error_of([&] { cgan::apply_override(j, "na\xc3me=x"); }), "--set: the key is not valid UTF-8");
  EXPECT_EQ(error_of([&] { cgan::apply_override(j, "generator.layers[99999999999999999999].linear=5"); }),
            "--set generator.layers[99999999999999999999].linear: index [99999999999999999999] is too large");
  EXPECT_TRUE(cgan::valid_utf8("blonde hair \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"})
    EXPECT_FALSE(cgan::valid_utf8(bad)) << bad;
}

TEST(HostileInput, AVocabularyWithInvalidUtf8IsRefusedAtStartNamingTheLine) {
  TempDir d("vocab");
  spit(d / "vocab.txt", "blonde hair\nbl\xe9 eyes\n");  // Latin-1, not UTF-8
  EXPECT_EQ(error_of([&] { cgan::read_vocabulary(d / "vocab.txt"); }),
            d / "vocab.txt" + ":2: tag phrase is not valid UTF-8 (save the file as UTF-8)");
}

// ---------------------------------------------------------------- IDX: gzip bounded by the header

TEST(HostileInput, GzipIdxStopsDecompressingWhereItsHeaderEnds) {
  TempDir d("gzbomb");
  // A header saying 64 images of 28x28, followed by 4 MB of zeros (a 4 KB file).
  std::string raw = std::string("\0\0\x08\x03\0\0\0\x40\0\0\0\x1c\0\0\0\x1c", 16) + std::string(4 << 20, '\0');
  gzFile g = gzopen((d / "img.gz").c_str(), "wb1");
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(gzwrite(g, raw.data(), static_cast<unsigned>(raw.size())), static_cast<int>(raw.size()));
  ASSERT_EQ(gzclose(g), Z_OK);
  EXPECT_LT(std::filesystem::file_size(d / "img.gz"), 100000u);
  spit(d / "lab", std::string("\0\0\x08\x01\0\0\0\x40", 8) + std::string(64, '\1'));
  EXPECT_EQ(error_of([&] { cgan::load_idx_pair(d / "img.gz", d / "lab", 0, 1); }),
            d / "img.gz" + ": trailing bytes: decompresses to more than the " + std::to_string(16 + 64 * 784) +
                " bytes its header describes (stopped there)");
  // A well-formed file of exactly that size still loads.
  raw.resize(16 + 64 * 784);
  g = gzopen((d / "ok.gz").c_str(), "wb9");
  ASSERT_EQ(gzwrite(g, raw.data(), static_cast<unsigned>(raw.size())), static_cast<int>(raw.size()));
  ASSERT_EQ(gzclose(g), Z_OK);
  EXPECT_EQ(cgan::load_idx_pair(d / "ok.gz", d / "lab", 0, 1).count, 64);
  EXPECT_EQ(cgan::idx_expected_size(reinterpret_cast<const uint8_t*>(raw.data()), 8), std::nullopt);
}

// ---------------------------------------------------------------- images: our size check first

TEST(HostileInput, AnImageHeaderClaimingAHugeSizeIsRefusedForItsSize) {
  TempDir d("hugeimg");
  // A PNG signature and IHDR saying 20000x20000 RGB (no pixel data: the size check comes first).
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  png += std::string("\0\0\x4e\x20\0\0\x4e\x20\x08\x02\0\0\0", 13) + std::string("\0\0\0\0", 4);
  spit(d / "big.png", png);
  EXPECT_EQ(error_of([&] { cgan::read_image(d / "big.png"); }),
            d / "big.png" + ": cannot read image: image of 20000x20000x3 is too large");
  // JPEG: SOI, then a SOF0 saying 30000x30000 with 3 components.
  std::string jpg("\xff\xd8\xff\xc0\0\x11\x08\x75\x30\x75\x30\x03", 12);
  jpg += std::string(20, '\0');
  spit(d / "big.jpg", jpg);
  EXPECT_EQ(error_of([&] { cgan::read_image(d / "big.jpg"); }),
            d / "big.jpg" + ": cannot read image: image of 30000x30000x3 is too large");
}

// ---------------------------------------------------------------- the memory plan

TEST(HostileInput, TheMemoryPlanNamesTheLayerBeforeAnythingIsAllocated) {
  cgan::NetSpec net;
  cgan::LayerSpec wide;
  wide.kind = cgan::LayerKind::linear;
  wide.out = 1 << 24;
  cgan::LayerSpec out = wide;
  out.out = 784;
  net.layers = {wide, out};
  net.condition.mode = "concat_onehot";
  const uint64_t GB = 1000ull * 1000 * 1000;
  const std::string m = error_of([&] { cgan::plan_model_memory(net, 100, 10, 64, "generator", 16 * GB, "cpu"); });
  EXPECT_EQ(m.rfind("generator.layers[0].linear: 16777216 units need ", 0), 0u) << m;
  EXPECT_TRUE(has(m, " GB of parameters and activations at batch 64, more than the 16.0 GB the cpu backend has")) << m;
  // Through the Model (what the trainer, sample and eval build), on the real backend: whatever its
  // memory, layer 0 (34 GB) or layer 1 (a 16777216x784 weight, past 32 bits) is refused first.
  auto be = cgan::make_backend("cpu");
  const std::string mm = error_of([&] { cgan::Model G(*be, net, 100, 10, 64, "generator"); });
  EXPECT_TRUE(has(mm, "generator.layers[0].linear: 16777216 units need") ||
              has(mm, "generator.layers[1].linear: the weight 16777216x784"))
      << mm;
  // A modest model plans what Model allocates at most.
  net.layers[0].out = 128;
  const cgan::MemoryPlan p = cgan::plan_model_memory(net, 100, 10, 64, "generator", 16 * GB, "cpu");
  EXPECT_EQ(p.params, 110u * 128 + 128 + 128u * 784 + 784);
  EXPECT_EQ(p.state, 0u);
}

TEST(HostileInput, ConvPaddingThatOverflowsThirtyTwoBitsIsNamedNotWrapped) {
  const json j = json::parse(R"({"data": {"kind": "mnist"}, "generator": {"layers": [{"linear": 784}]},
    "discriminator": {"condition": {"mode": "none"},
                      "layers": [{"reshape": [1, 28, 28]}, {"conv2d": {"out": 16, "kernel": 3, "padding": 1048576}},
                                 {"linear": 1}]}})");
  const cgan::Config cfg = cgan::parse_config(j);
  auto be = cgan::make_backend("cpu");
  EXPECT_EQ(error_of([&] { cgan::Model D(*be, cfg.discriminator, 784, 10, 2, "discriminator"); }),
            "discriminator.layers[1].conv2d: the output 16x2097178x2097178 (" +
                std::to_string(16ull * 2097178 * 2097178) + " values) does not fit the 32-bit sizes the ops take");
}

// ---------------------------------------------------------------- checkpoint metadata

TEST(HostileInput, CheckpointMetadataIsCheckedAgainstTheStoredConfig) {
  const json cfg = json::parse(R"({"name": "m", "data": {"kind": "mnist"},
    "generator": {"noise_dim": 4, "layers": [{"linear": 784}, {"sigmoid": {}}]},
    "discriminator": {"layers": [{"linear": 8}, {"leaky_relu": 0.2}, {"linear": 1}]}})");
  cgan::SafeTensors good;
  good.metadata = {{"config", cgan::parse_config(cfg).to_json().dump()},
                   {"data_shape", "1,28,28"},
                   {"num_classes", "10"},
                   {"data_range", "0,1"}};
  const cgan::CheckpointInfo info = cgan::read_checkpoint_info(good, "ck");
  EXPECT_EQ(info.shape.dim(), 784);
  struct Case {
    const char* key;
    const char* value;
    std::string msg;
  };
  const std::vector<Case> cases = {
      {"data_shape", "1,1,784",
       "ck: metadata 'data_shape' is 1,1,784 but the stored config's data.kind \"mnist\" has images (H > 1)"},
      {"data_shape", "3,28,28",
       "ck: metadata 'data_shape' is 3,28,28 but the stored config's data.kind \"mnist\" has grey images (C = 1)"},
      {"data_shape", "1,28", "ck: metadata 'data_shape' is malformed"},
      {"num_classes", "2000000000", "ck: metadata 'num_classes' is 2000000000, outside 0..65536"},
      {"num_classes", "0",
       "ck: metadata 'num_classes' is 0 but the stored config's data.kind \"mnist\" has 10 classes"},
      {"data_range", "-1,1", "ck: metadata 'data_range' is -1,1 but the stored config's data.kind \"mnist\" has 0,1"},
      {"tag_dim", "3", "ck: metadata 'vocabulary' is missing"},
      {"config", "{\"name\": \"m\", \"name\": \"n\"}", "ck: metadata 'config': key \"name\" appears twice"},
  };
  for (const Case& c : cases) {
    cgan::SafeTensors bad = good;
    bad.metadata[c.key] = c.value;
    const std::string m = error_of([&] { cgan::read_checkpoint_info(bad, "ck"); });
    EXPECT_EQ(m.rfind(c.msg, 0), 0u) << c.key << "=" << c.value << ": " << m;
  }
  // The tensors are checked through the generator's own slots: the first one missing is named, in one line.
  auto be = cgan::make_backend("cpu");
  const std::string m = error_of([&] { cgan::load_generator(*be, info, good, "ck"); });
  EXPECT_EQ(m, "ck: tensor 'generator.layers.0.weight' is missing (checkpoint from another architecture?)");
}
