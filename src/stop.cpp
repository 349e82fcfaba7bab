// SIGINT/SIGTERM as a polled stop flag; see include/cgan/stop.hpp.
#include "cgan/stop.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <csignal>

namespace cgan {

namespace {
std::atomic<int> g_stop{0};
extern "C" void on_stop_signal(int sig) { g_stop.store(sig); }
}  // namespace

StopSignals::StopSignals() {
  g_stop.store(0);
  old_int_ = std::signal(SIGINT, on_stop_signal);
  old_term_ = std::signal(SIGTERM, on_stop_signal);
  // A parent may have started us with the two blocked (the mask survives exec): unblock them, so
  // that a stop requested at any moment (even one already pending) is seen.
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
}

StopSignals::~StopSignals() {
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
}

int stop_requested() { return g_stop.load(); }

std::string signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

void throw_if_stopped(const std::string& when) {
  if (const int sig = stop_requested()) throw Stopped(cat("stopped by ", signal_name(sig), " ", when, "; nothing was written"));
}

}  // namespace cgan
