// Which checkpoint `--resume` means: a file, `latest`, or a run directory's newest checkpoint.
#include "cgan/train/resume_target.hpp"

#include <filesystem>

#include "cgan/base/error.hpp"
#include "cgan/config/config.hpp"
#include "cgan/report/run_checkpoints.hpp"

namespace cgan {
namespace fs = std::filesystem;

ResumeTarget resolve_resume(const SessionOptions& o) {
  const std::string& r = o.resume;
  std::string dir;
  std::error_code ec;
  if (r == "latest") {
    if (!o.out_dir.empty())
      dir = o.out_dir;
    else if (!o.config_path.empty())
      dir = "out/" + load_config(o.config_path, o.sets).name;
    else
      throw UsageError("--resume latest: give --out RUN_DIR or --config FILE (its run directory out/<name>)");
    if (!fs::is_directory(dir, ec)) throw Error(cat("--resume latest: ", dir, ": no such run directory"));
  } else if (fs::is_directory(r, ec)) {
    dir = r;
  } else {
    ResumeTarget t{r, read_safetensors(r)};
    return t;
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (!fs::is_directory(fs::path(dir) / "checkpoints", ec))
    throw Error(cat("--resume ", r, ": ", dir, " is not a run directory (it has no checkpoints/ folder)"));
  const std::vector<CheckpointFile> cks = list_checkpoints(dir);
  if (cks.empty())
    throw Error(cat("--resume ", r, ": ", dir, "/checkpoints holds no checkpoint (step_N.safetensors) to resume from"));
  ResumeTarget t{cks.back().path, SafeTensors{}};
  try {
    t.ck = read_safetensors(t.path);
  } catch (const Error& e) {
    throw Error(cat("--resume ", r, ": the newest checkpoint is damaged (", e.what(), "); ",
                    cks.size() > 1 ? cat("resume from the one before it with --resume ", cks[cks.size() - 2].path)
                                   : std::string("there is no older one to resume from")));
  }
  return t;
}

}  // namespace cgan
