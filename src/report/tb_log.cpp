#include "cgan/report/tb_log.hpp"

#include <cstdlib>
#include <filesystem>

#include "cgan/base/error.hpp"
#include "cgan/base/io.hpp"

namespace cgan {
namespace fs = std::filesystem;

static const char* const kConfigTag = "config";

void trim_event_files(const std::string& dir, int64_t step) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().find("tfevents") != std::string::npos && it->is_regular_file())
      files.push_back(it->path().string());
  for (const std::string& f : files) {
    const std::string bytes = read_regular_file(f, "event file");
    const std::vector<std::string> recs = read_tfrecords(bytes, f, true);
    std::string kept;
    for (const std::string& r : recs) {
      int64_t s = 0;
      std::string tag;
      tb_event::step_and_tag(r, &s, &tag);
      if (s > step || (s == step && step > 0 && tag == kConfigTag)) continue;
      kept += tfrecord(r);
    }
    if (kept.size() != bytes.size()) write_file_atomic(f, kept);
  }
}

TbLog::TbLog(const RunDir& rd, int64_t start_step) {
  const std::string dir = rd.file("tb");
  if (start_step > 0) trim_event_files(dir, start_step);
  file_ = std::make_unique<EventFile>(dir);
  const std::string config = read_regular_file(rd.file("config.json"), "config");
  file_->add(tb_event::text(tb_wall_time(), start_step, kConfigTag, config));
  file_->flush();
}

void TbLog::losses(const std::vector<LossRow>& rows) {
  if (rows.empty()) return;
  const double t = tb_wall_time();
  for (const LossRow& r : rows) {
    const char* names[5] = {"d_loss", "g_loss", "d_real", "d_fake", "d_acc"};
    const float v[5] = {r.d_loss, r.g_loss, r.d_real, r.d_fake, r.d_acc};
    for (int i = 0; i < 5; ++i) {
      char buf[48];
      std::snprintf(buf, sizeof buf, "%.6g", v[i]);  // losses.csv's format
      file_->add(tb_event::scalar(t, r.step, cat("losses/", names[i]), static_cast<float>(std::strtod(buf, nullptr))));
    }
  }
  file_->flush();
}

void TbLog::scalars(int64_t step, const std::vector<std::pair<std::string, std::string>>& tag_text) {
  const double t = tb_wall_time();
  for (const auto& [tag, text] : tag_text)
    file_->add(tb_event::scalar(t, step, tag, static_cast<float>(std::strtod(text.c_str(), nullptr))));
  file_->flush();
}

void TbLog::scalar(int64_t step, const std::string& tag, float value) {
  file_->add(tb_event::scalar(tb_wall_time(), step, tag, value));
  file_->flush();
}

void TbLog::image(int64_t step, const std::string& tag, const std::string& png_path) {
  const std::string png = read_regular_file(png_path, "sample grid");
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(png[at + i]);
    return v;
  };
  if (png.size() < 33 || png.compare(1, 3, "PNG") != 0 || png.compare(12, 4, "IHDR") != 0)
    throw Error(cat(png_path, ": not a PNG file"));
  const int colour_type = static_cast<unsigned char>(png[25]);
  const int colorspace = colour_type == 0 ? 1 : colour_type == 4 ? 2 : colour_type == 6 ? 4 : 3;
  file_->add(tb_event::image(tb_wall_time(), step, tag, static_cast<int>(be32(20)), static_cast<int>(be32(16)),
                             colorspace, png));
  file_->flush();
}

}  // namespace cgan
