// TensorBoard event files: CRC-32C known vectors, TFRecord framing, the hand-encoded Event fields,
// event-file creation and the resume trim.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "cgan/base/error.hpp"
#include "cgan/report/tensorboard.hpp"
#include "cgan/report/tb_log.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace cgan;

TEST(TensorBoard, Crc32cKnownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  std::string inc(32, '\0');
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c(inc.data(), 32), 0x46DD794Eu);
  // incremental = whole
  EXPECT_EQ(crc32c("56789", 5, crc32c("1234", 4)), 0xE3069283u);
  const uint32_t c = 0xE3069283u;
  EXPECT_EQ(masked_crc32c("123456789", 9), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(TensorBoard, FramingRoundTripsAndChecksCrcs) {
  const std::string data = "hello event";
  const std::string r = tfrecord(data);
  ASSERT_EQ(r.size(), data.size() + 16);
  EXPECT_EQ(static_cast<unsigned char>(r[0]), data.size());
  for (int i = 1; i < 8; ++i) EXPECT_EQ(r[i], '\0');
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(r[at + i])) << (8 * i);
    return v;
  };
  EXPECT_EQ(u32(8), masked_crc32c(r.data(), 8));
  EXPECT_EQ(r.substr(12, data.size()), data);
  EXPECT_EQ(u32(12 + data.size()), masked_crc32c(data.data(), data.size()));

  const std::string two = r + tfrecord("");
  const auto recs = read_tfrecords(two, "x");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0], data);
  EXPECT_EQ(recs[1], "");
  std::string bad = two;
  bad[14] ^= 1;  // inside the first record's data
  try {
    read_tfrecords(bad, "events.x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("events.x: bad data CRC"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_tfrecords(bad, "x", true).size(), 0u);
  EXPECT_EQ(read_tfrecords(two.substr(0, two.size() - 3), "x", true).size(), 1u);  // torn tail
  EXPECT_THROW(read_tfrecords(two.substr(0, two.size() - 3), "x"), Error);
}

TEST(TensorBoard, EventFieldsDecode) {
  // file_version: wall_time (field 1, 64-bit) then file_version (field 3, bytes)
  const std::string fv = tb_event::file_version(1.5);
  ASSERT_EQ(fv.size(), 9u + 2u + 13u);
  EXPECT_EQ(static_cast<unsigned char>(fv[0]), 0x09);
  EXPECT_EQ(static_cast<unsigned char>(fv[9]), 0x1a);
  EXPECT_EQ(fv.substr(11), "brain.Event:2");
  int64_t step = -1;
  std::string tag = "?";
  tb_event::step_and_tag(fv, &step, &tag);
  EXPECT_EQ(step, 0);
  EXPECT_EQ(tag, "");
  tb_event::step_and_tag(tb_event::scalar(2.0, 300, "losses/d_loss", 0.5f), &step, &tag);
  EXPECT_EQ(step, 300);
  EXPECT_EQ(tag, "losses/d_loss");
  tb_event::step_and_tag(tb_event::text(2.0, 1LL << 40, "config", "{}"), &step, &tag);
  EXPECT_EQ(step, 1LL << 40);
  EXPECT_EQ(tag, "config");
  // scalar event: ... summary (field 5) { value (field 1) { tag (1), simple_value (2, 32-bit) } }
  const std::string s = tb_event::scalar(0.0, 1, "a", 1.0f);
  const std::string tail = s.substr(s.size() - 5);
  EXPECT_EQ(static_cast<unsigned char>(tail[0]), 0x15);
  float v = 0;
  std::memcpy(&v, tail.data() + 1, 4);
  EXPECT_EQ(v, 1.0f);
}

TEST(TensorBoard, EventFileNameAndTrim) {
  testutil::TempDir d("tb");
  const std::string dir = d.path + "/tb";
  std::string first;
  {
    EventFile f(dir);
    first = f.path();
    EXPECT_EQ(fs::path(first).filename().string().rfind("events.out.tfevents.", 0), 0u) << first;
    for (int s = 1; s <= 10; ++s) f.add(tb_event::scalar(1.0, s * 10, "x", static_cast<float>(s)));
    f.add(tb_event::text(1.0, 50, "config", "{}"));
    f.flush();
  }
  EventFile second(dir);  // same second: another name
  EXPECT_NE(second.path(), first);
  trim_event_files(dir, 50);
  const auto recs = read_tfrecords(testutil::slurp(first), first);
  ASSERT_EQ(recs.size(), 6u);  // file_version + steps 10..50 (the config text at 50 goes)
  int64_t step = 0;
  std::string tag;
  tb_event::step_and_tag(recs.back(), &step, &tag);
  EXPECT_EQ(step, 50);
  EXPECT_EQ(tag, "x");
}

TEST(TensorBoard, UnwritableFolderIsOneLineError) {
  testutil::TempDir d("tb");
  { std::ofstream(d.path + "/file") << "x"; }
  try {
    EventFile f(d.path + "/file/tb");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind(d.path + "/file/tb: cannot create the TensorBoard folder", 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}
