// Errors: every failure the user can cause is a cgan::Error with a one-line message.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace cgan {

struct Error : std::runtime_error {
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Builds a message from streamable parts: throw Error(cat("file ", p, ": bad magic"));
template <typename... Ts>
std::string cat(const Ts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

}  // namespace cgan

// Internal invariant / argument check: throws cgan::Error naming file:line.
#define CGAN_CHECK(cond, ...)                                                                  \
  do {                                                                                         \
    if (!(cond)) throw ::cgan::Error(::cgan::cat(__FILE__, ":", __LINE__, ": ", __VA_ARGS__)); \
  } while (0)
