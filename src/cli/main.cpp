// cgan_gpu: the command line. Exit codes: 0 success; 1 bad input or a failed run (config, data
// file, checkpoint, I/O; the message names it); 2 bad command line; 3 a loss became non-finite;
// 130 stopped by SIGINT/SIGTERM after writing a checkpoint.
// main only dispatches: one file per command under src/cli/ (cli.hpp lists them).
#include <cstdio>
#include <new>
#include <stdexcept>
#include <string>

#include "cgan/backend/backend.hpp"
#include "cgan/base/stop.hpp"
#include "cgan/train/distributed.hpp"
#include "cgan/train/trainer.hpp"
#include "cli.hpp"

using namespace cgan;
using namespace cgan::cli;

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) a.v.emplace_back(argv[i]);
  try {
    if (a.v.empty()) throw Usage("no command (try cgan_gpu --help)");
    const std::string& first = a.v[0];
    if (first == "--help" || first == "-h" || first == "help") {
      std::fputs(full_help().c_str(), stdout);
      return 0;
    }
    if (first == "--version") {
      std::printf("cgan_gpu %s (backends: cpu%s)\n", CGAN_VERSION, cuda_compiled() ? ", cuda" : "");
      return 0;
    }
    // Started by mpirun (or another MPI launcher) with several ranks: data-parallel training.
    const LaunchInfo launch = detect_launch();
    if (launch.launched && launch.size > 1) g_comm = make_communicator(launch);
    // A command name is consumed; anything else (options, a config) goes to train, the default.
    static const struct {
      const char* name;
      int (*run)(Args&);
    } kCommands[] = {{"sample", cmd_sample}, {"bench", cmd_bench},  {"classifier", cmd_classifier},
                     {"eval", cmd_eval},     {"train", cmd_train},  {"trace", cmd_trace},
                     {"plot", cmd_plot},     {"export", cmd_export}};
    for (const auto& c : kCommands)
      if (first == c.name) {
        if (g_comm && first != "train" && first != "bench")
          throw Usage(
              cat(first, ": runs in one process; start it without mpirun (only train and bench run on several ranks)"));
        a.i = 1;
        return c.run(a);
      }
    return cmd_train(a);
  } catch (const JobError& e) {  // agreed by every rank of an mpirun job: said once, by rank 0
    if (!g_comm || g_comm->rank() == 0) std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return e.code;
  } catch (const Usage& e) {
    if (g_comm && g_comm->rank() != 0) return 2;  // every rank parsed the same command line: said once
    std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return 2;
  } catch (const Stopped& e) {
    std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return 130;
  } catch (const NonFiniteLoss& e) {  // under mpirun every rank sees the same (reduced) losses: said once
    if (!g_comm || g_comm->rank() == 0) std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return 3;
  } catch (const Error& e) {
    // Under mpirun one rank failed on its own (the others wait in the next all-reduce): it names
    // itself and ends the job (MPI_Abort), so no rank hangs.
    if (g_comm) g_comm->abort(e.what(), 1);
    std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    if (g_comm) g_comm->abort("out of memory", 1);
    std::fprintf(stderr, "cgan_gpu: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    if (g_comm) g_comm->abort(cat("internal error: ", e.what()), 1);
    std::fprintf(stderr, "cgan_gpu: internal error: %s\n", e.what());
    return 1;
  }
}
