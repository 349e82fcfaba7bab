#include "cgan/report/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace cgan {

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  const long long t = static_cast<long long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%llds", t);
  return buf;
}

Progress::Progress(const std::string& mode, int64_t total, int64_t start_step)
    : total_(total), start_(start_step), t0_(clock::now()), last_draw_(t0_) {
  quiet_ = mode == "none";
  tty_ = mode == "auto" && ::isatty(fileno(stderr));
}

double Progress::rate(int64_t step) const {
  const double el = std::chrono::duration<double>(clock::now() - t0_).count();
  const double done = static_cast<double>(step - start_);
  return el > 0 && done > 0 ? done / el : 0;
}

std::string Progress::line(int64_t step, int64_t epoch, const LossRow& r) const {
  const double rate = this->rate(step);
  const double eta = rate > 0 ? static_cast<double>(total_ - step) / rate : -1;
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "step %lld/%lld (%.1f%%) epoch %lld | %.0f it/s ETA %s | D %.4f G %.4f | D(x) %.3f D(G(z)) %.3f | "
                "D acc %.3f",
                static_cast<long long>(step), static_cast<long long>(total_),
                100.0 * static_cast<double>(step) / static_cast<double>(total_), static_cast<long long>(epoch), rate,
                format_duration(eta).c_str(), r.d_loss, r.g_loss, r.d_real, r.d_fake, r.d_acc);
  std::string s = buf;
  if (has_eval_) {
    std::snprintf(buf, sizeof buf, " | cond acc %.3f", eval_acc_);
    s += buf;
  }
  return s;
}

void Progress::tick(int64_t step, int64_t epoch, const LossRow& last) {
  if (!tty_ || quiet_) return;
  const auto now = clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  std::fprintf(stderr, "\r\033[K%s", line(step, epoch, last).c_str());
  std::fflush(stderr);
  dirty_ = true;
}

void Progress::log(int64_t step, int64_t epoch, const LossRow& last) {
  if (quiet_) return;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s\n", line(step, epoch, last).c_str());
    dirty_ = false;
  } else {
    std::fprintf(stderr, "%s\n", line(step, epoch, last).c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (tty_ && dirty_) std::fprintf(stderr, "\n");
  dirty_ = false;
}

}  // namespace cgan
