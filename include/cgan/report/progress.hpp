// The progress line: step, epoch, speed, ETA, losses, D(x), D(G(z)), D's accuracy and, when the
// evaluator runs during training (config "eval"), the last conditional accuracy.
// On a terminal it is redrawn in place (and committed every log.every steps); otherwise one plain
// line is printed every log.every steps.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "cgan/report/rundir.hpp"

namespace cgan {

class Progress {
 public:
  Progress(const std::string& mode, int64_t total, int64_t start_step);
  void tick(int64_t step, int64_t epoch, const LossRow& last);  // between log steps
  void log(int64_t step, int64_t epoch, const LossRow& last);   // on log steps
  void finish();
  // The last conditional accuracy the evaluator measured, shown at the end of the line from now on.
  void set_eval(double cond_acc) {
    has_eval_ = true;
    eval_acc_ = cond_acc;
  }
  std::string line(int64_t step, int64_t epoch, const LossRow& last) const;
  // Steps per second since the start (the line's it/s); 0 before the first step.
  double rate(int64_t step) const;

 private:
  using clock = std::chrono::steady_clock;
  bool tty_ = false, quiet_ = false, dirty_ = false, has_eval_ = false;
  double eval_acc_ = 0;
  int64_t total_, start_;
  clock::time_point t0_, last_draw_;
};

std::string format_duration(double seconds);

}  // namespace cgan
