// The command line's shared declarations: usage errors, arguments, the MPI group, and one entry point per command.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cgan/base/error.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/train/distributed.hpp"
#include "cgan/train/sample.hpp"
#include "cgan/train/session.hpp"

namespace cgan::cli {

using Usage = UsageError;  // a bad command line: exit code 2

// The process group when started by mpirun with more than one rank (docs/DISTRIBUTED.md), else null.
extern std::unique_ptr<Communicator> g_comm;

constexpr long long kMaxSampleImages = 10000;  // --count and --labels: images in one sample picture

// The arguments after the command name, consumed left to right.
struct Args {
  std::vector<std::string> v;
  size_t i = 0;
  bool more() const { return i < v.size(); }
  std::string value(const std::string& flag) {
    if (i >= v.size()) throw Usage(cat(flag, ": missing value"));
    return v[i++];
  }
};

// ---- help.cpp
// Every command's usage and options, then the exit codes (`cgan_gpu --help`).
std::string full_help();
// `cgan_gpu CMD --help`: that command's usage and options, exit 0.
int print_command_help(const std::string& cmd);

// ---- args.cpp
bool is_help(const std::string& f);
// An integer in [lo, hi], else a Usage error naming flag.
long long parse_count(const std::string& flag, const std::string& s, long long lo, long long hi);
// Which generator sample and eval use: the weight average (train.ema) unless --no-ema, when the
// checkpoint holds one; note_no_ema says so when --no-ema changes nothing.
const char* generator_kind(bool use_ema, const SafeTensors& ck);
void note_no_ema(bool no_ema, const SafeTensors& ck, const std::string& ckpt);
// Creates the folder an output file goes in.
void make_parent_dir(const std::string& file);

// ---- sample_interpolate.cpp, sample_dump.cpp: `sample --interpolate` and `sample --dump-dir`, given
// the parsed options, the checkpoint and a backend (the request carries seed, EMA and tensors file)
struct SampleMode {
  const SafeTensors& ck;
  const std::string& ckpt;
  const CheckpointInfo& info;
  Backend* be;
  bool conditional;
  long long label, count, rows, steps;  // -1: not given; label checked against the classes
  std::string tags, out, dump_dir;
};
int sample_interpolate(const SampleMode& m, SampleRequest req);
int sample_dump(const SampleMode& m, SampleRequest req);

// ---- one file each
int cmd_train(Args& a);
int cmd_sample(Args& a);
int cmd_trace(Args& a);
int cmd_bench(Args& a);
int cmd_classifier(Args& a);
int cmd_eval(Args& a);
int cmd_plot(Args& a);
int cmd_export(Args& a);

}  // namespace cgan::cli
