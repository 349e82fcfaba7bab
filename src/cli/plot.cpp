// `cgan_gpu plot`: redraws a run directory's curves from its CSVs.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cgan/base/error.hpp"
#include "cgan/report/plot.hpp"

#include "cli.hpp"

namespace cgan::cli {

int cmd_plot(Args& a) {
  std::string dir;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("plot");
    if (!f.empty() && f[0] == '-') throw Usage(cat("unknown option '", f, "' (see cgan_gpu plot --help)"));
    if (!dir.empty()) throw Usage(cat("plot: one run directory, got '", dir, "' and '", f, "'"));
    dir = f;
  }
  if (dir.empty()) throw Usage("plot: give a run directory (cgan_gpu plot RUN_DIR)");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(dir, ec);
  if (std::filesystem::is_regular_file(st)) throw Error(cat(dir, ": is a file, not a run directory"));
  if (std::filesystem::exists(st) && !std::filesystem::is_directory(st))
    throw Error(cat(dir, ": is not a directory (a FIFO, socket or device), not a run directory"));
  if (!std::filesystem::is_directory(st)) throw Error(cat(dir, ": not a run directory (no such directory)"));
  const std::vector<std::string> written = write_run_plots(dir);
  if (written.empty()) throw Error(cat(dir, ": nothing to plot (no rows in losses.csv or metrics.csv)"));
  for (const std::string& w : written) std::printf("wrote %s\n", w.c_str());
  return 0;
}

}  // namespace cgan::cli
