// The command line's shared pieces: parsing counts, the --no-ema choice, output folders, the MPI group.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cgan/base/error.hpp"
#include "cgan/nn/ema.hpp"
#include "cli.hpp"

namespace cgan::cli {

std::unique_ptr<Communicator> g_comm;

bool is_help(const std::string& f) { return f == "--help" || f == "-h"; }

long long parse_count(const std::string& flag, const std::string& s, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end || errno || x < lo || x > hi)
    throw Usage(cat(flag, ": expected an integer in [", lo, ", ", hi, "], got '", s, "'"));
  return x;
}

// Which generator sample and eval use: the weight average (train.ema) unless --no-ema, when the
// checkpoint holds one. --no-ema on a checkpoint without an average changes nothing: a note, not an
// error, so one command line serves checkpoints with and without it.
const char* generator_kind(bool use_ema, const SafeTensors& ck) {
  return use_ema && checkpoint_has_ema(ck) ? "averaged (train.ema)" : "raw";
}
void note_no_ema(bool no_ema, const SafeTensors& ck, const std::string& ckpt) {
  if (no_ema && !checkpoint_has_ema(ck))
    std::fprintf(stderr,
                 "cgan_gpu: note: %s holds no averaged generator (trained without train.ema); --no-ema changes "
                 "nothing\n",
                 ckpt.c_str());
}

void make_parent_dir(const std::string& file) {
  const std::filesystem::path parent = std::filesystem::path(file).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) throw Error(cat(file, ": cannot create directory ", parent.string(), ": ", ec.message()));
}

}  // namespace cgan::cli
