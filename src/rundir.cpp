#include "cgan/rundir.hpp"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cgan/error.hpp"
#include "cgan/io.hpp"

namespace cgan {
namespace fs = std::filesystem;

RunDir::RunDir(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  for (const std::string& d : {dir_, dir_ + "/samples", dir_ + "/checkpoints"}) {
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec || !fs::is_directory(d)) throw Error(cat(d, ": cannot create run directory: ", ec ? ec.message() : "not a directory"));
  }
}

std::string RunDir::checkpoint_path(int64_t step) const { return cat(dir_, "/checkpoints/step_", step, ".safetensors"); }
std::string RunDir::sample_path(int64_t step) const { return cat(dir_, "/samples/step_", step, ".png"); }

void RunDir::write_config(const nlohmann::json& effective) const {
  write_file_atomic(file("config.json"), effective.dump(2) + "\n");
}

static const char* kHeader = "step,d_loss,g_loss,d_real,d_fake,d_acc\n";

static std::string row_text(const LossRow& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%lld,%.6g,%.6g,%.6g,%.6g,%.6g\n", static_cast<long long>(r.step), r.d_loss,
                r.g_loss, r.d_real, r.d_fake, r.d_acc);
  return buf;
}

std::vector<LossRow> read_loss_csv(const std::string& path) {
  std::vector<LossRow> rows;
  std::ifstream in(path);
  if (!in) return rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    LossRow r;
    long long step = 0;
    if (std::sscanf(line.c_str(), "%lld,%f,%f,%f,%f,%f", &step, &r.d_loss, &r.g_loss, &r.d_real, &r.d_fake,
                    &r.d_acc) == 6) {
      r.step = step;
      rows.push_back(r);
    }
  }
  return rows;
}

LossLog::LossLog(const RunDir& rd, int window, int64_t start_step)
    : raw_path_(rd.file("losses.csv")), avg_path_(rd.file("losses_avg.csv")), window_(static_cast<size_t>(window)) {
  std::string raw = kHeader, avg = kHeader;
  if (start_step > 0) {  // resume: keep the history up to the checkpoint, rebuild the window
    for (const LossRow& r : read_loss_csv(raw_path_)) {
      if (r.step > start_step) break;
      raw += row_text(r);
      recent_.push_back(r);
      if (recent_.size() > window_) recent_.pop_front();
    }
    for (const LossRow& r : read_loss_csv(avg_path_)) {
      if (r.step > start_step) break;
      avg += row_text(r);
    }
    for (const LossRow& r : recent_) {
      const float v[5] = {r.d_loss, r.g_loss, r.d_real, r.d_fake, r.d_acc};
      for (int i = 0; i < 5; ++i) sum_[i] += v[i];
    }
  }
  write_file_atomic(raw_path_, raw);
  write_file_atomic(avg_path_, avg);
  raw_ = std::fopen(raw_path_.c_str(), "ab");
  avg_ = std::fopen(avg_path_.c_str(), "ab");
  if (!raw_ || !avg_) throw Error(cat(raw_ ? avg_path_ : raw_path_, ": cannot open for appending: ", std::strerror(errno)));
}

LossLog::~LossLog() {
  if (raw_) std::fclose(raw_);
  if (avg_) std::fclose(avg_);
}

void LossLog::append(const std::vector<LossRow>& rows) {
  if (rows.empty()) return;
  std::string raw, avg;
  for (const LossRow& r : rows) {
    raw += row_text(r);
    recent_.push_back(r);
    const float v[5] = {r.d_loss, r.g_loss, r.d_real, r.d_fake, r.d_acc};
    for (int i = 0; i < 5; ++i) sum_[i] += v[i];
    if (recent_.size() > window_) {
      const LossRow& o = recent_.front();
      const float w[5] = {o.d_loss, o.g_loss, o.d_real, o.d_fake, o.d_acc};
      for (int i = 0; i < 5; ++i) sum_[i] -= w[i];
      recent_.pop_front();
    }
    const double n = static_cast<double>(recent_.size());
    LossRow a;
    a.step = r.step;
    a.d_loss = static_cast<float>(sum_[0] / n);
    a.g_loss = static_cast<float>(sum_[1] / n);
    a.d_real = static_cast<float>(sum_[2] / n);
    a.d_fake = static_cast<float>(sum_[3] / n);
    a.d_acc = static_cast<float>(sum_[4] / n);
    avg += row_text(a);
  }
  if (std::fwrite(raw.data(), 1, raw.size(), raw_) != raw.size() || std::fflush(raw_) != 0 ||
      std::fwrite(avg.data(), 1, avg.size(), avg_) != avg.size() || std::fflush(avg_) != 0)
    throw Error(cat(raw_path_, ": write failed: ", std::strerror(errno)));
}

}  // namespace cgan
