// The run loop: steps to train.steps, logging losses, sample grids, metrics, checkpoints, a clean stop.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "cgan/base/error.hpp"
#include "cgan/base/stop.hpp"
#include "cgan/base/io.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/data/image.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/eval/classifier.hpp"
#include "cgan/eval/evaluate.hpp"
#include "cgan/eval/metrics_tb.hpp"
#include "cgan/report/grid.hpp"
#include "cgan/report/plot.hpp"
#include "cgan/report/progress.hpp"
#include "cgan/report/rundir.hpp"
#include "cgan/train/checkpoint_retention.hpp"
#include "cgan/train/trainer.hpp"
#include "eval_state.hpp"

namespace cgan {

std::vector<LossRow> Trainer::take_rows() {
  std::vector<LossRow> rows;
  if (stats_used_ == 0) return rows;
  std::vector<float> h(static_cast<size_t>(stats_used_) * kStatsPerStep);
  be_.download(h.data(), stats_, h.size());
  if (comm_ && comm_->size() > 1) {  // every rank's statistics: sums add up, the mean losses average
    std::vector<double> d(h.begin(), h.end());
    comm_->sum_host(d.data(), d.size());
    for (size_t i = 0; i < d.size(); ++i) {
      const size_t k = i % kStatsPerStep;
      const bool loss = k == 0 || k == 3 || k == 6 || k == 9;
      h[i] = static_cast<float>(loss ? d[i] / comm_->size() : d[i]);
    }
  }
  const float B = static_cast<float>(cfg_.train.batch_size);
  for (int i = 0; i < stats_used_; ++i) {
    const float* a = &h[static_cast<size_t>(i) * kStatsPerStep];
    LossRow r;
    r.step = step_ - stats_used_ + i + 1;
    r.d_loss = a[0] + a[3] + a[9];  // a[9]: three_term's mismatched pair (0 otherwise)
    r.g_loss = a[6];
    r.d_real = a[1] / B;
    r.d_fake = a[4] / B;
    r.d_acc = (a[2] + a[5]) / (2.f * B);
    rows.push_back(r);
  }
  stats_used_ = 0;
  counters_dirty_ = true;  // the device slot counter restarts at 0 (uploaded by the next step)
  return rows;
}

void Trainer::write_samples(const std::string& path) {
  Model& S = *G_sample_;
  const float* out = S.forward(z_sample_, y_sample_, cond_sample_, false);
  std::vector<float> h(static_cast<size_t>(S.batch()) * S.out_dim());
  be_.download(h.data(), out, h.size());
  std::vector<int32_t> labels(S.batch());
  be_.download_int(labels.data(), y_sample_, labels.size());
  const int rows = shape_.num_classes > 0 ? sample_rows() : 10;
  write_png(path, render_samples(h, labels, shape_, rows, cfg_.log.samples_per_label));
}

// ---------------------------------------------------------------- the loop

int Trainer::run(const RunDir& rd) { return run(&rd); }

// Under mpirun every rank runs this loop; rd is given to rank 0 alone, which writes everything.
int Trainer::run(const RunDir* rd) {
  prepare_eval();
  if (rd) rd->write_config(cfg_.to_json());
  std::unique_ptr<TbLog> tb;  // tb/: TensorBoard event files (log.tensorboard)
  if (rd && cfg_.log.tensorboard) tb = std::make_unique<TbLog>(*rd, step_);
  if (rd && shape_.tag_dim > 0) write_vocabulary(rd->file("vocab.txt"), shape_.vocab);  // for `sample --tags`
  if (rd && !shape_.class_names.empty())                                                // for `sample --label NAME`
    write_file_atomic(rd->file("classes.txt"), class_names_text(shape_.class_names));
  std::unique_ptr<LossLog> losses;
  if (rd) losses = std::make_unique<LossLog>(*rd, cfg_.log.avg_window, step_);
  std::unique_ptr<MetricsLog> metrics;
  if (eval_ && rd) metrics = std::make_unique<MetricsLog>(rd->file("metrics.csv"), step_);

  const int64_t total = cfg_.train.steps;
  Progress progress(rd ? cfg_.log.progress : std::string("none"), total, step_);
  LossRow last;
  CheckpointRetention retention(cfg_.log.keep_checkpoints, total);  // log.keep_checkpoints
  auto flush = [&]() {
    auto rows = take_rows();
    for (size_t i = 0; i < rows.size(); ++i) {
      const LossRow& r = rows[i];
      if (std::isfinite(r.d_loss) && std::isfinite(r.g_loss)) continue;
      rows.resize(i + 1);  // the history up to and including the step that failed
      if (losses) losses->append(rows);
      if (tb) tb->losses(rows);
      progress.finish();
      throw NonFiniteLoss(cat("step ", r.step, ": loss is not finite (d_loss ", r.d_loss, ", g_loss ", r.g_loss,
                              "); stopped, the last checkpoint written before it is kept"));
    }
    if (!rows.empty()) last = rows.back();
    if (losses) losses->append(rows);
    if (tb) tb->losses(rows);
  };
  auto checkpoint = [&]() {
    flush();
    if (comm_ && comm_->size() > 1) {       // the ranks must hold the same weights (rank 0's are written)
      uint64_t h = 1469598103934665603ULL;  // FNV-1a over the parameter bytes of G and D
      for (const Model* m : {G_.get(), D_.get()}) {
        std::vector<float> p(m->param_count());
        if (!p.empty()) be_.download(p.data(), m->params(), p.size());
        const auto* b = reinterpret_cast<const unsigned char*>(p.data());
        for (size_t i = 0; i < p.size() * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ULL;
      }
      if (!comm_->all_equal(h))
        throw Error(cat("step ", step_, ": the ranks' weights differ (rank ", comm_->rank(),
                        "'s parameter hash is not every rank's); the all-reduce did not give every rank the same "
                        "gradients"));
    }
    if (!rd) return std::string();
    const std::string p = rd->checkpoint_path(step_);
    write_checkpoint(p);  // renamed into place and fsynced: only now may older ones go
    retention.written(step_, p);
    return p;
  };
  // losses.png and metrics.png, redrawn from the CSVs with every sample grid and at a stop; a
  // picture that cannot be drawn is a warning (once), not the end of the run
  bool plot_warned = false;
  // (the caller has flushed the loss rows: under mpirun that is a collective every rank joins)
  auto plots = [&]() {
    if (!rd) return;
    try {
      write_run_plots(rd->path());
    } catch (const Error& e) {
      if (!plot_warned) std::fprintf(stderr, "cgan_gpu: warning: curves not drawn: %s\n", e.what());
      plot_warned = true;
    }
  };

  while (step_ < total) {
    step();
    const bool last_step = step_ == total;
    const bool log_now = step_ % cfg_.log.every == 0 || last_step;
    if (stats_used_ == stats_slots_ || log_now) flush();
    const int64_t epoch = epoch_ < 0 ? 1 : epoch_ + 1;  // shown 1-based
    if (eval_ && metrics && (step_ % cfg_.eval.every == 0 || last_step)) {
      const EvalResult r = evaluate(*eval_->clf, eval_->real, eval_->source, eval_options(cfg_.eval.count, shape_));
      metrics->append(step_, r);
      if (tb) log_metrics(*tb, step_, r);
      progress.set_eval(r.cond_acc);
    }
    if (tb && log_now) tb->scalar(step_, "speed/it_per_s", static_cast<float>(progress.rate(step_)));
    if (log_now)
      progress.log(step_, epoch, last);
    else
      progress.tick(step_, epoch, last);
    const bool sample_now = last_step || (cfg_.log.sample_every > 0 && step_ % cfg_.log.sample_every == 0);
    if (sample_now) flush();  // every rank: the curves are drawn from complete CSVs
    if (rd && sample_now) {
      write_samples(rd->sample_path(step_));
      if (tb) tb->image(step_, "samples", rd->sample_path(step_));
      plots();
    }
    if ((cfg_.log.checkpoint_every > 0 && step_ % cfg_.log.checkpoint_every == 0) || last_step) checkpoint();
    int sig = stop_requested();
    if (comm_ && comm_->size() > 1) sig = comm_->max_host(sig);  // every rank stops after the same step
    if (sig) {
      const std::string p = checkpoint();
      plots();
      progress.finish();
      if (rd)
        std::fprintf(stderr, "cgan_gpu: stopped by %s after step %lld; checkpoint %s (resume with --resume %s)\n",
                     signal_name(sig).c_str(), static_cast<long long>(step_), p.c_str(), p.c_str());
      return 130;
    }
  }
  progress.finish();
  return 0;
}

}  // namespace cgan
