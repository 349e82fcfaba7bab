// TensorBoard event files written by hand: TFRecord framing with masked CRC-32C and the Event /
// Summary protocol-buffer messages (TensorFlow's event.proto, summary.proto, tensor.proto field
// numbers), so a run's tb/ folder opens in `tensorboard --logdir` without TensorFlow here.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace cgan {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78); crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
// TFRecord's mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n);

// One TFRecord: uint64 length (little-endian), masked CRC of those 8 bytes, the data, masked CRC
// of the data.
std::string tfrecord(const std::string& data);

// The data of each record of a TFRecord stream, in order. Throws cgan::Error naming `what` on a
// truncated record or a CRC that does not match; with `stop_at_damage`, returns the records before
// the first such one instead (what a crash in the middle of a write leaves readable).
std::vector<std::string> read_tfrecords(const std::string& bytes, const std::string& what, bool stop_at_damage = false);

// Serialized tensorflow.Event messages (wall_time = 1, step = 2, file_version = 3, summary = 5).
namespace tb_event {
std::string file_version(double wall_time);  // file_version "brain.Event:2", step 0
std::string scalar(double wall_time, int64_t step, const std::string& tag, float value);
// Summary.Image {height 1, width 2, colorspace 3, encoded_image_string 4}; png = the file's bytes.
std::string image(double wall_time, int64_t step, const std::string& tag, int height, int width, int colorspace,
                  const std::string& png);
// Text plugin: metadata.plugin_data.plugin_name "text", tensor {dtype DT_STRING, shape [], string_val}.
std::string text(double wall_time, int64_t step, const std::string& tag, const std::string& text);
// The step (0 when absent) and, when the event holds a summary, its first value's tag ("" otherwise).
void step_and_tag(const std::string& event, int64_t* step, std::string* tag);
}  // namespace tb_event

// An event file tb/events.out.tfevents.<unix time>.<hostname> in `dir` (created if needed; a file of
// that name already there gets a ".N" suffix), opened with a file_version event. Every add() is
// appended to the stream; flush() writes what was added to the file. Failures are a one-line
// cgan::Error naming the directory or the file.
class EventFile {
 public:
  explicit EventFile(const std::string& dir);
  ~EventFile();
  EventFile(const EventFile&) = delete;
  EventFile& operator=(const EventFile&) = delete;
  const std::string& path() const { return path_; }
  void add(const std::string& event);  // a serialized Event
  void flush();

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

// Seconds since the epoch, as Event.wall_time.
double tb_wall_time();

}  // namespace cgan
