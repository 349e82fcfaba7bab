#include "cgan/report/rundir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cgan/base/error.hpp"
#include "cgan/base/io.hpp"

namespace cgan {
namespace fs = std::filesystem;

namespace {

// What a run writes at the top of its directory (the checkpoints/ and samples/ folders count when
// they hold anything).
const char* const kRunFiles[] = {"config.json", "vocab.txt",    "classes.txt", "losses.csv", "losses_avg.csv",
                                 "metrics.csv", "metrics.json", "checkpoints", "samples",    "losses.png",
                                 "metrics.png", "reals.png",    "tb"};

void make_dir(const std::string& d) {
  std::error_code ec;
  fs::create_directories(d, ec);
  if (ec || !fs::is_directory(d))
    throw Error(cat(d, ": cannot create run directory: ", ec ? ec.message() : "not a directory"));
}

// The newest checkpoints/step_N.safetensors, or "".
std::string latest_checkpoint(const std::string& dir) {
  std::error_code ec;
  long long best = -1;
  std::string path;
  for (fs::directory_iterator it(dir + "/checkpoints", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    long long step = -1;
    char tail[16] = {0};
    if (std::sscanf(n.c_str(), "step_%lld.%15s", &step, tail) == 2 && std::string(tail) == "safetensors" && step > best)
      best = step, path = it->path().string();
  }
  return path;
}

}  // namespace

std::vector<std::string> run_files(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const char* name : kRunFiles) {
    const fs::path p = fs::path(dir) / name;
    if (!fs::exists(fs::symlink_status(p, ec))) continue;
    if (fs::is_directory(p, ec) && fs::is_empty(p, ec)) continue;
    found.push_back(name);
  }
  return found;
}

RunDir::RunDir(std::string dir, RunDirMode mode) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  make_dir(dir_);
  lock_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ < 0) throw Error(cat(dir_, ": cannot open run directory: ", std::strerror(errno)));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (e == EWOULDBLOCK)
      throw Error(cat(dir_,
                      ": run directory is in use by another cgan_gpu process; wait for it to finish or "
                      "choose another --out"));
    throw Error(cat(dir_, ": cannot lock run directory: ", std::strerror(e)));
  }
  try {
    const std::vector<std::string> old = run_files(dir_);
    if (!old.empty() && mode == RunDirMode::fresh) {
      std::string list;
      for (const std::string& f : old) list += (list.empty() ? "" : ", ") + f;
      const std::string ck = latest_checkpoint(dir_);
      throw Error(cat(dir_, ": already holds a run (", list, "); ",
                      ck.empty() ? std::string("it has no checkpoint to resume from: ")
                                 : cat("continue it with --resume ", ck, ", "),
                      "replace it with --overwrite, or choose another --out"));
    }
    if (mode == RunDirMode::overwrite) {  // an overwrite stopped half-way left its old files aside: finish it
      std::error_code ec;
      for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename().string().rfind(".replaced-run-", 0) == 0) {
          std::error_code rm;
          fs::remove_all(it->path(), rm);
        }
    }
    if (!old.empty() && mode == RunDirMode::overwrite) {
      // Moved aside first (renames: quick, and a stop in the middle leaves the old files together in
      // one clearly named folder, never mixed with the new run's), then deleted.
      const std::string aside = cat(dir_, "/.replaced-run-", static_cast<long>(::getpid()));
      make_dir(aside);
      for (const std::string& f : old) {
        std::error_code ec;
        fs::rename(fs::path(dir_) / f, fs::path(aside) / f, ec);
        if (ec) throw Error(cat(dir_, "/", f, ": cannot move the old run's file aside: ", ec.message()));
      }
      std::error_code ec;
      fs::remove_all(aside, ec);
      if (ec) throw Error(cat(aside, ": cannot remove the old run's files: ", ec.message()));
    }
    make_dir(dir_ + "/samples");
    make_dir(dir_ + "/checkpoints");
  } catch (...) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw;
  }
}

RunDir::~RunDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

std::string RunDir::checkpoint_path(int64_t step) const {
  return cat(dir_, "/checkpoints/step_", step, ".safetensors");
}
std::string RunDir::sample_path(int64_t step) const { return cat(dir_, "/samples/step_", step, ".png"); }

void RunDir::write_config(const nlohmann::json& effective) const {
  write_file_atomic(file("config.json"), effective.dump(2) + "\n");
}

static const char* kHeader = "step,d_loss,g_loss,d_real,d_fake,d_acc\n";

static std::string row_text(const LossRow& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%lld,%.6g,%.6g,%.6g,%.6g,%.6g\n", static_cast<long long>(r.step), r.d_loss, r.g_loss,
                r.d_real, r.d_fake, r.d_acc);
  return buf;
}

std::vector<LossRow> read_loss_csv(const std::string& path) {
  std::vector<LossRow> rows;
  std::error_code ec;
  if (!fs::exists(path, ec)) return rows;
  std::istringstream in(read_regular_file(path, "loss log"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    LossRow r;
    long long step = 0;
    if (std::sscanf(line.c_str(), "%lld,%f,%f,%f,%f,%f", &step, &r.d_loss, &r.g_loss, &r.d_real, &r.d_fake, &r.d_acc) ==
        6) {
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
  if (!raw_ || !avg_)
    throw Error(cat(raw_ ? avg_path_ : raw_path_, ": cannot open for appending: ", std::strerror(errno)));
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
