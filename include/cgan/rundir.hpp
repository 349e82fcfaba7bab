// RunDir: everything a run writes lives under out/<name>/ (or --out DIR):
//   config.json, losses.csv, losses_avg.csv, samples/step_N.png, checkpoints/step_N.safetensors.
#pragma once
#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cgan {

class RunDir {
 public:
  explicit RunDir(std::string dir);  // creates dir, samples/ and checkpoints/
  const std::string& path() const { return dir_; }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  std::string checkpoint_path(int64_t step) const;
  std::string sample_path(int64_t step) const;
  void write_config(const nlohmann::json& effective) const;

 private:
  std::string dir_;
};

// One row of losses.csv.
struct LossRow {
  int64_t step = 0;
  float d_loss = 0, g_loss = 0, d_real = 0, d_fake = 0, d_acc = 0;
};

// losses.csv (every step) and losses_avg.csv (trailing moving average over `window` steps),
// appended and flushed as rows arrive. Started at step s > 0 (a resume), rows after s that an
// earlier run wrote are dropped first, so the files read as one uninterrupted run.
class LossLog {
 public:
  LossLog(const RunDir& rd, int window, int64_t start_step);
  ~LossLog();
  LossLog(const LossLog&) = delete;
  LossLog& operator=(const LossLog&) = delete;
  void append(const std::vector<LossRow>& rows);

 private:
  std::string raw_path_, avg_path_;
  std::FILE *raw_ = nullptr, *avg_ = nullptr;
  size_t window_;
  std::deque<LossRow> recent_;
  double sum_[5] = {0, 0, 0, 0, 0};
};

std::vector<LossRow> read_loss_csv(const std::string& path);

}  // namespace cgan
