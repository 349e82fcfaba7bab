// SIGINT/SIGTERM as a polled stop flag; see include/cgan/base/stop.hpp.
#include "cgan/base/stop.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <csignal>

namespace cgan {

namespace {
std::atomic<int> g_stop{0};
extern "C" void on_stop_signal(int sig) { g_stop.store(sig); }
}  // namespace

namespace {
std::atomic<bool> g_closing{false};

sigset_t stop_set() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}
}  // namespace

StopSignals::StopSignals() {
  g_stop.store(0);
  g_closing.store(false);
  // The handlers stay as a fallback for a thread that existed before this point (its mask is its own).
  old_int_ = std::signal(SIGINT, on_stop_signal);
  old_term_ = std::signal(SIGTERM, on_stop_signal);
  const sigset_t s = stop_set();
  pthread_sigmask(SIG_BLOCK, &s, &old_mask_);
  // A stop already pending (a parent may have started us with the two blocked: the mask and the
  // pending set survive exec) is taken here, so the first poll sees it deterministically.
  const timespec zero{0, 0};
  if (const int sig = sigtimedwait(&s, nullptr, &zero); sig > 0) g_stop.store(sig);
  watcher_ = std::thread([s] {
    for (;;) {
      int sig = 0;
      if (sigwait(&s, &sig) != 0) continue;
      if (g_closing.load()) return;
      g_stop.store(sig);
    }
  });
}

StopSignals::~StopSignals() {
  g_closing.store(true);
  pthread_kill(watcher_.native_handle(), SIGTERM);  // wakes its sigwait; the flag makes it return
  watcher_.join();
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
  pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

int stop_requested() { return g_stop.load(); }

std::string signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

void throw_if_stopped(const std::string& when) {
  if (const int sig = stop_requested())
    throw Stopped(cat("stopped by ", signal_name(sig), " ", when, "; nothing was written"));
}

}  // namespace cgan
