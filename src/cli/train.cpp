// `cgan_gpu train`: parses the options and runs the training session (cgan/train/session.hpp).
#include <cstdio>
#include <string>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/train/distributed.hpp"
#include "cgan/base/error.hpp"
#include "cgan/base/stop.hpp"
#include "cgan/train/session.hpp"
#include "cgan/train/trainer.hpp"

#include "cli.hpp"

namespace cgan::cli {

int cmd_train(Args& a) {
  SessionOptions so;
  const StopSignals signals;  // SIGINT/SIGTERM from here on: exit 130, see docs/RELIABILITY.md
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("train");
    if (f == "--config")
      so.config_path = a.value(f);
    else if (f == "--set")
      so.sets.push_back(a.value(f));
    else if (f == "--out")
      so.out_dir = a.value(f);
    else if (f == "--resume")
      so.resume = a.value(f);
    else if (f == "--device")
      so.device = a.value(f);
    else if (f == "--overwrite")
      so.overwrite = true;
    else
      throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
  }
  if (so.config_path.empty() && so.resume.empty())
    throw Usage("train: give --config FILE or --resume CKPT (see --help)");
  // Under mpirun every rank sets the session up and the ranks agree on its outcome; only rank 0
  // claims and writes the run directory (cgan/train/session.hpp).
  Communicator* comm = g_comm.get();
  const bool writer = !comm || comm->rank() == 0;
  const std::unique_ptr<TrainingSession> session = open_training_session(so, comm);
  const Config& cfg = session->cfg;
  const std::unique_ptr<Backend>& be = session->backend;
  const HostDataset& data = session->data;
  Trainer& t = *session->trainer;
  if (writer) {
    std::fprintf(stderr, "cgan_gpu %s: %s on %s, %d samples, %s, run directory %s\n", CGAN_VERSION, cfg.name.c_str(),
                 be->name().c_str(), data.count,
                 so.resume.empty() ? "fresh start" : cat("resumed at step ", t.steps_done()).c_str(),
                 session->out_dir.c_str());
    if (comm)
      std::fprintf(stderr, "data parallel: %d ranks x %d samples = batch %d; gradients averaged over %s%s\n",
                   comm->size(), cfg.train.batch_size / comm->size(), cfg.train.batch_size,
                   be->name() == "cpu" ? "MPI" : "NCCL",
                   cfg.distributed.sync_batchnorm ? "; batch norm synchronized" : "");
    std::fprintf(stderr, "%s\n%s\n", t.generator().summary().c_str(), t.discriminator().summary().c_str());
  }
  return session->run();
}

}  // namespace cgan::cli
