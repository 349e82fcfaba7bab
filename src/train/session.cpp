// The training session's set-up: config or resume, backend, data, trainer, MPI agreement, run-directory claim.
#include "cgan/train/session.hpp"

#include <filesystem>
#include <new>

#include "cgan/backend/profile.hpp"
#include "cgan/base/stop.hpp"
#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/train/datasets.hpp"
#include "cgan/train/resume_target.hpp"
#include "cgan/train/run_memory.hpp"

namespace cgan {
namespace fs = std::filesystem;

std::string check_device(const std::string& device) {
  if (device != "auto" && device != "cpu" && device != "cuda")
    throw UsageError(cat("--device: expected auto, cpu or cuda, got '", device, "'"));
  return device;
}

std::string default_run_dir(const Config& cfg, const std::string& resume) {
  if (!resume.empty()) {
    const fs::path ck = fs::absolute(resume);
    if (ck.parent_path().filename() == "checkpoints" && !ck.parent_path().parent_path().empty())
      return ck.parent_path().parent_path().string();
  }
  return "out/" + cfg.name;
}

namespace {

// The set-up proper, on one rank (see open_training_session).
void set_up(TrainingSession& s, const SessionOptions& o, Communicator* comm) {
  const bool writer = !comm || comm->rank() == 0;
  ResumeTarget rt = o.resume.empty() ? ResumeTarget{} : resolve_resume(o);  // a file, `latest` or a run directory
  const std::string& resume = rt.path;
  s.checkpoint = std::move(rt.ck);
  s.cfg = !o.config_path.empty() ? load_config(o.config_path, o.sets)
                                 : read_checkpoint_info(s.checkpoint, resume, o.sets).cfg;
  if (!resume.empty() && !o.config_path.empty())
    (void)read_checkpoint_info(s.checkpoint, resume);  // its metadata, checked
  const Config& cfg = s.cfg;
  if (!o.device.empty()) s.cfg.device = check_device(o.device);
  BackendOptions bo{cfg.precision};
  if (comm) bo.cuda_device = comm->local_rank();  // one GPU per rank on each machine
  s.backend = make_backend(cfg.device, bo);
  s.data = load_dataset(cfg.data, true);
  {  // the whole run planned against what the backend has, before any of it is allocated
    const Shard sh = make_shard(cfg.train.batch_size, comm ? comm->rank() : 0, comm ? comm->size() : 1);
    check_run_memory(plan_run_memory(cfg, data_shape_of(s.data, cfg.data), s.data.count, sh.batch, writer, *s.backend),
                     cfg.name, *s.backend);
  }
  s.trainer = std::make_unique<Trainer>(cfg, *s.backend, s.data, comm);
  Trainer& t = *s.trainer;
  t.prepare_eval();  // a missing classifier fails here, before the run directory exists
  if (!resume.empty()) {
    t.restore(s.checkpoint, resume);
    if (t.steps_done() >= cfg.train.steps)
      throw Error(cat(resume, ": checkpoint is at step ", t.steps_done(), ", train.steps is ", cfg.train.steps,
                      "; raise it (e.g. --set train.steps=", cfg.train.steps * 2, ") to train further"));
  } else {
    t.init();
  }
  const std::string own_dir = default_run_dir(cfg, resume);  // a resumed run's own directory
  s.out_dir = o.out_dir.empty() ? own_dir : o.out_dir;
  // Every check that can fail before step 1 has passed: only now is the run directory claimed
  // (locked; a fresh run refuses one holding a run unless overwrite; a resume continues its own).
  throw_if_stopped("before training started");
  std::error_code e1, e2;
  const bool in_place =
      !resume.empty() && fs::weakly_canonical(s.out_dir, e1) == fs::weakly_canonical(own_dir, e2) && !e1 && !e2;
  if (in_place && o.overwrite)
    throw UsageError(cat("--overwrite: ", s.out_dir, " is the run being resumed; it would delete that run's history"));
  if (writer)
    s.run_dir = std::make_unique<RunDir>(s.out_dir, o.overwrite ? RunDirMode::overwrite
                                                    : in_place  ? RunDirMode::resume
                                                                : RunDirMode::fresh);
}

}  // namespace

std::unique_ptr<TrainingSession> open_training_session(const SessionOptions& o, Communicator* comm) {
  auto s = std::make_unique<TrainingSession>();
  if (!comm) {
    set_up(*s, o, comm);
    return s;
  }
  // Under mpirun every rank runs the set-up (every rank resumes from the same checkpoint) and the
  // ranks agree on its outcome: an error on any rank ends every rank with one message.
  std::string err;
  int code = 0;
  try {
    set_up(*s, o, comm);
  } catch (const UsageError& e) {
    err = e.what(), code = 2;
  } catch (const Stopped& e) {
    err = e.what(), code = 130;
  } catch (const Error& e) {
    err = e.what(), code = 1;
  } catch (const std::bad_alloc&) {
    err = "out of memory", code = 1;
  }
  comm->agree(err, code);
  return s;
}

}  // namespace cgan
