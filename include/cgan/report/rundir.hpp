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

// How a run may use a directory that already holds a run's files (see holds_run).
enum class RunDirMode {
  fresh,      // refused: "already holds a run", suggesting --resume and --overwrite
  overwrite,  // the old run's files are removed as a whole first (moved aside, then deleted)
  resume,     // the run being resumed continues there (its CSVs are cut back to the checkpoint)
};

class RunDir {
 public:
  // Claims `dir` for this process: creates it (and samples/, checkpoints/) if needed, takes an
  // advisory lock (flock on the directory itself; a second cgan_gpu gets "in use by another
  // cgan_gpu process") held until this object is destroyed, then applies `mode`. Every failure is
  // a one-line cgan::Error naming the directory; nothing in it is changed before the lock is held
  // and the mode's check has passed.
  RunDir(std::string dir, RunDirMode mode);
  ~RunDir();
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  const std::string& path() const { return dir_; }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  std::string checkpoint_path(int64_t step) const;
  std::string sample_path(int64_t step) const;
  void write_config(const nlohmann::json& effective) const;

 private:
  std::string dir_;
  int lock_fd_ = -1;
};

// The entries of `dir` that belong to a run (config.json, vocab.txt, classes.txt, the CSVs,
// metrics.json, the curves losses.png and metrics.png, reals.png, and checkpoints/, samples/ or tb/
// when not empty); empty when it holds no run or does not exist.
std::vector<std::string> run_files(const std::string& dir);

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
