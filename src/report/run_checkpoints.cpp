// The checkpoints a run directory holds, listed by step (cgan/report/run_checkpoints.hpp).
#include "cgan/report/run_checkpoints.hpp"

#include <algorithm>
#include <filesystem>

namespace cgan {
namespace fs = std::filesystem;

bool parse_checkpoint_name(const std::string& name, int64_t* step) {
  static const std::string pre = "step_", post = ".safetensors";
  if (name.size() <= pre.size() + post.size() || name.compare(0, pre.size(), pre) != 0 ||
      name.compare(name.size() - post.size(), post.size(), post) != 0)
    return false;
  const std::string digits = name.substr(pre.size(), name.size() - pre.size() - post.size());
  if (digits.empty() || digits.size() > 18) return false;
  int64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  if (step) *step = n;
  return true;
}

std::vector<CheckpointFile> list_checkpoints(const std::string& run_dir) {
  std::vector<CheckpointFile> out;
  std::error_code ec;
  for (fs::directory_iterator it(fs::path(run_dir) / "checkpoints", ec), end; !ec && it != end; it.increment(ec)) {
    int64_t step = 0;
    std::error_code rc;
    if (!it->is_regular_file(rc) || !parse_checkpoint_name(it->path().filename().string(), &step)) continue;
    out.push_back({step, it->path().string()});
  }
  std::sort(out.begin(), out.end(), [](const CheckpointFile& a, const CheckpointFile& b) { return a.step < b.step; });
  return out;
}

}  // namespace cgan
