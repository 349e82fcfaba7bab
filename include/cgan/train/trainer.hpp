// Trainer: D step(s) then a G step per iteration, logging, samples, checkpoints, clean stop.
// Randomness is keyed on (train.seed, step, purpose) with Philox, so a run resumed from a checkpoint
// continues exactly as the uninterrupted run would have.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/backend/augment.hpp"
#include "cgan/backend/backend.hpp"
#include "cgan/backend/buffer.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/train/datasets.hpp"
#include "cgan/train/distributed.hpp"
#include "cgan/train/tracer.hpp"
#include "cgan/base/error.hpp"
#include "cgan/nn/model.hpp"
#include "cgan/report/rundir.hpp"

namespace cgan {

// Thrown when a loss becomes NaN or infinite; the message names the step.
struct NonFiniteLoss : Error {
  explicit NonFiniteLoss(const std::string& m) : Error(m) {}
};

class WeightAverage;  // cgan/nn/ema.hpp

class Trainer {
 public:
  // comm: the process group of a job started by mpirun (cgan/train/distributed.hpp), or nullptr for a
  // single process. With one, the models are built for this rank's share of train.batch_size
  // (make_shard: an indivisible size is an error naming train.batch_size), each draw of an
  // iteration takes the numbers of this rank's global sample indices, and the gradients of G and D
  // are averaged across ranks before each Adam step.
  Trainer(const Config& cfg, Backend& be, const HostDataset& data, Communicator* comm = nullptr);
  ~Trainer();

  // Fresh weights from train.seed.
  void init();
  // Restores weights, Adam state, BN statistics, step and data position from a checkpoint.
  void restore(const SafeTensors& ck, const std::string& path);
  SafeTensors snapshot() const;

  // Runs from the current step to cfg.train.steps, writing into the claimed run directory. Returns
  // the process exit code: 0 done, 130 stopped (stop_requested(), cgan/base/stop.hpp: SIGINT/SIGTERM
  // while a StopSignals exists) after the step in which the stop came, a checkpoint written first.
  int run(const RunDir& rd);
  // The same on every rank of a job: only the rank given a run directory (rank 0) writes (CSVs,
  // samples, checkpoints, metrics); the others pass nullptr. Every rank stops after the same step
  // (the stop flag is agreed each step), and a checkpoint first checks that the ranks' weights agree.
  int run(const RunDir* rd);

  // One iteration (D step(s) + G step). Exposed for tests. On a backend with CUDA graphs (and
  // cuda_graphs on), iterations after the warm-up replay one captured graph; the step, batch
  // position, statistics slot and Adam steps it needs are read from device counters.
  void step();
  // Whether iterations are now replayed from a captured CUDA graph.
  bool graph_active() const { return graph_id_ != 0; }
  int64_t steps_done() const { return step_; }
  // Downloads the loss rows recorded since the last call (run() checks them for NaN/inf).
  std::vector<LossRow> take_rows();

  // Test/debug facility (the hidden `cgan_gpu trace` command behind the PyTorch parity tests):
  // while `trace` is set, step() runs eagerly (no CUDA graph) and appends to *trace what the
  // iteration drew (real batch, labels, condition vectors, noise, mismatched pairs, every dropout
  // mask), its losses and, when `weights`, each model's gradients before its Adam update and the
  // parameters and state after it. Tensor names: docs/DECISIONS.md ("Step traces"). nullptr stops.
  void set_trace(SafeTensors* trace, bool weights = true) {
    tracer_ = trace ? make_tensor_tracer(be_, trace, weights) : std::make_unique<StepTracer>();
  }

  // With "eval" in the config: loads the classifier and the real test images and prepares their
  // features (a missing classifier is a one-line error saying how to create it). run() calls it;
  // calling it first reports those errors before anything is written. No-op otherwise or when done.
  void prepare_eval();

  Model& generator() { return *G_; }
  Model& discriminator() { return *D_; }
  // train.ema's average of the generator's weights (nullptr without train.ema).
  WeightAverage* weight_average() { return ema_.get(); }

  // The step's layout. Loss statistics per iteration: D real (loss, sum D, correct), D fake (...),
  // G (...), D mismatched (...).
  static constexpr int kStatsPerStep = 12;
  // Device counters (ctr_[k]) the step's ops read when they run, so that one captured CUDA graph
  // serves every iteration: the Philox streams (step), the batch window of the permutation (pos),
  // the statistics slot and the Adam steps. add_ints advances them on the device; the host mirror
  // (step_, pos_, stats_used_, g_t_, d_t_) advances alike and is uploaded whenever the host changes
  // them otherwise (start, resume, a new epoch, statistics taken).
  enum : int { kCtrStep = 0, kCtrPos, kCtrSlot, kCtrGT, kCtrDT, kCtrCount };
  static constexpr int kWarmupSteps = 2;  // eager iterations before the capture (cuBLAS/module set-up)

 private:
  int sample_rows() const;
  std::vector<float> sample_tags(const std::vector<int32_t>& rows_of) const;
  void reshuffle();
  void upload_counters();
  // Adds delta (one entry per device counter) to the host mirror and, when `device`, enqueues the
  // same add on the device counters.
  void advance_counters(const int32_t* delta, bool device);
  void enqueue_step(bool may_reshuffle);
  void write_samples(const std::string& path);
  void write_checkpoint(const std::string& path) const;

  struct EvalState;
  std::unique_ptr<EvalState> eval_;
  Config cfg_;
  Backend& be_;
  DataShape shape_;
  int count_ = 0;
  std::unique_ptr<Model> G_, D_;
  std::unique_ptr<WeightAverage> ema_;  // train.ema (before G_sample_, which may be a view of it)
  std::unique_ptr<Model> G_sample_;
  // backend buffers (owned: freed with the Trainer)
  Buffer<float> x_all_, x_real_, z_, cond_real_, cond_fake_, gx_, stats_, z_sample_, cond_sample_;
  Buffer<int32_t> y_all_, perm_, y_real_, y_fake_, y_sample_;
  // tagged sets: every sample's tag vector; random draws of other samples (random fake labels,
  // the three_term loss's mismatched pairs) with their labels and tags
  Buffer<float> tags_all_, cond_other_;
  Buffer<int32_t> idx_rand_, y_other_;
  // train.augment (DiffAugment): the op's spec, the augmented D input, dL/d(G's output) through the
  // augmentation, and the draws of the last augment_forward (what its backward reads)
  AugmentSpec aug_;
  Buffer<float> aug_x_, aug_g_, aug_params_;
  // Device counters read by the step's ops (see trainer.cpp: kCtr*) and their host mirror below,
  // which the host advances exactly as the enqueued add_ints do.
  Buffer<int32_t> ctr_;
  Buffer<float> acc_step_;  // this iteration's loss statistics, copied to stats_[slot] at the end
  int stats_slots_ = 1, stats_used_ = 0;
  int64_t step_ = 0, epoch_ = -1, pos_ = 0;
  int g_t_ = 0, d_t_ = 0;
  bool counters_dirty_ = true;  // the device counters must be uploaded from the mirror
  bool use_graphs_ = false;
  int graph_id_ = 0;  // this Trainer's captured iteration on the backend (Backend::graph_end), 0: none
  std::unique_ptr<StepTracer> tracer_ = std::make_unique<StepTracer>();  // set_trace; the null tracer otherwise
  int eager_steps_ = 0;
  // data parallelism (cgan/train/distributed.hpp): none in a single process (shard_ = the whole batch)
  Communicator* comm_ = nullptr;
  RankReduce* reduce_ = nullptr;  // the gradient mean (and synchronized batch norm)
  Shard shard_;
};

}  // namespace cgan
