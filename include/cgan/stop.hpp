// Stop requests: SIGINT and SIGTERM only set a flag that the run polls (after loading, before the run
// directory is touched, after every training step), so a stop never leaves a half-written file.
#pragma once
#include <string>

#include "cgan/error.hpp"

namespace cgan {

// While one exists, SIGINT and SIGTERM set the stop flag instead of killing the process; the
// previous handlers come back when it is destroyed. Creating one clears the flag and unblocks the
// two signals (a pending one is then seen at once).
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
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
