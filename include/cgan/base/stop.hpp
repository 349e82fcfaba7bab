// Stop requests: SIGINT and SIGTERM only set a flag that the run polls (after loading, before the run
// directory is touched, after every training step), so a stop never leaves a half-written file.
#pragma once
#include <signal.h>

#include <string>
#include <thread>

#include "cgan/base/error.hpp"

namespace cgan {

// While one exists, SIGINT and SIGTERM set the stop flag instead of killing the process; the
// previous handlers and signal mask come back when it is destroyed. Creating one clears the flag,
// takes a stop already pending (e.g. sent before exec) at once, and blocks the two signals in this
// thread, so every thread started from then on (OpenMP workers of the GEMM libraries) inherits the
// block: a dedicated thread receives them with sigwait. No signal frame then ever lands on a worker
// in the middle of a JIT kernel (oneDNN's sgemm corrupted its heap when one did, 1 run in 4).
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
  sigset_t old_mask_;
  std::thread watcher_;
};

// The signal that asked to stop (SIGINT or SIGTERM), or 0.
int stop_requested();
// "SIGINT" / "SIGTERM".
std::string signal_name(int sig);

// Thrown where a stop is honoured before training starts (exit 130, nothing written).
struct Stopped : Error {
  explicit Stopped(const std::string& m) : Error(m) {}
};
// Throws Stopped ("stopped by SIGTERM <when>; nothing was written") when a stop was requested.
void throw_if_stopped(const std::string& when);

}  // namespace cgan
