// `cgan_gpu export`: a checkpoint's generator as an ONNX or TorchScript file (docs/DECISIONS.md says why
// through PyTorch). Checks the command line, the checkpoint and the output
// path, then runs tools/cgan_torch.py export, which writes the file under a temporary name and
// renames it when complete.
#include "cli.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "cgan/base/error.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/nn/checkpoint_info.hpp"

extern char** environ;

#ifndef CGAN_SOURCE_DIR
#define CGAN_SOURCE_DIR "."
#endif

namespace cgan::cli {

namespace {
int usage_error(const std::string& m) {
  std::fprintf(stderr, "cgan_gpu: export: %s\n", m.c_str());
  return 2;
}
std::string env_or(const char* name, const std::string& dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : dflt;
}
}  // namespace

// Exit codes: 0 written; 1 bad input (the checkpoint, the output path, the Python side; one line on
// stderr, no output file); 2 bad command line. The tool is $CGAN_TOOLS_DIR/cgan_torch.py (default: the
// source tree's tools/), run by $CGAN_PYTHON (default /usr/bin/python3, Debian's python3-torch).
int cmd_export(Args& a) {
  const std::vector<std::string> args(a.v.begin() + static_cast<std::ptrdiff_t>(a.i), a.v.end());
  a.i = a.v.size();
  namespace fs = std::filesystem;
  std::string ckpt, format, out;
  bool no_ema = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& f = args[i];
    if (is_help(f)) return print_command_help("export");
    const bool takes_value = f == "--checkpoint" || f == "--format" || f == "--out";
    if (takes_value && i + 1 >= args.size()) return usage_error(cat(f, ": missing value"));
    if (f == "--checkpoint")
      ckpt = args[++i];
    else if (f == "--format")
      format = args[++i];
    else if (f == "--out")
      out = args[++i];
    else if (f == "--no-ema")
      no_ema = true;
    else
      return usage_error(cat("unknown option '", f, "' (see cgan_gpu export --help)"));
  }
  if (ckpt.empty()) return usage_error("--checkpoint CKPT is required");
  if (format.empty()) return usage_error("--format onnx|torchscript is required");
  if (format != "onnx" && format != "torchscript")
    return usage_error(cat("--format: unknown format '", format, "' (onnx or torchscript)"));
  if (out.empty()) return usage_error("--out FILE is required");

  // The checkpoint, with the engine's own checks (a corrupt or foreign file is named here).
  const SafeTensors ck = read_safetensors(ckpt);
  (void)read_checkpoint_info(ck, ckpt);
  std::error_code ec;
  const fs::path dir = fs::absolute(fs::path(out), ec).parent_path();
  if (!fs::is_directory(dir, ec)) throw Error(cat(out, ": cannot write (no directory ", dir.string(), ")"));
  if (fs::is_directory(out, ec)) throw Error(cat(out, ": is a directory"));

  const std::string tools = env_or("CGAN_TOOLS_DIR", std::string(CGAN_SOURCE_DIR) + "/tools");
  const std::string tool = tools + "/cgan_torch.py";
  if (!fs::is_regular_file(tool, ec))
    throw Error(cat(tool, ": not found (set CGAN_TOOLS_DIR to the folder holding cgan_torch.py)"));
  const std::string python = env_or("CGAN_PYTHON", "/usr/bin/python3");

  std::vector<std::string> argv_s = {python, tool, "export", ckpt, "--format", format, "--out", out};
  if (no_ema) argv_s.push_back("--no-ema");
  std::vector<char*> argv;
  for (std::string& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ);
  if (rc != 0)
    throw Error(cat("cannot run the Python interpreter '", python, "' (", std::strerror(rc),
                    "; set CGAN_PYTHON to one with PyTorch)"));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw Error(cat("waiting for ", python, ": ", std::strerror(errno)));
  if (WIFSIGNALED(status))
    throw Error(cat(python, " ", tool, " export: killed by signal ", WTERMSIG(status), " (", out, " not written)"));
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  if (code != 0) return code == 2 ? 2 : 1;  // the tool has said why, in one line
  if (!fs::is_regular_file(out, ec)) throw Error(cat(out, ": the export reported success but wrote no file"));
  return 0;  // the tool has said what it wrote
}

}  // namespace cgan::cli
