#include "cgan/train/trainer.hpp"

#include "eval_state.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>

#include "cgan/data/anime_faces.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/eval/classifier.hpp"
#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/base/error.hpp"
#include "cgan/eval/evaluate.hpp"
#include "cgan/data/image.hpp"
#include "cgan/report/plot.hpp"
#include "cgan/backend/profile.hpp"
#include "cgan/report/progress.hpp"
#include "cgan/report/rundir.hpp"
#include "cgan/train/sample.hpp"
#include "cgan/base/stop.hpp"
#include "cgan/base/streams.hpp"
#include "cgan/nn/state_dict.hpp"

namespace cgan {
namespace fs = std::filesystem;
using json = nlohmann::json;

Trainer::Trainer(const Config& cfg, Backend& be, const HostDataset& data, Communicator* comm)
    : cfg_(cfg), be_(be), comm_(comm) {
  shape_ = data_shape_of(data, cfg.data);
  count_ = data.count;
  if (cfg.train.batch_size > count_)
    throw Error(cat("train.batch_size: ", cfg.train.batch_size, " is larger than the dataset (", count_, " samples)"));
  shard_ = make_shard(cfg.train.batch_size, comm ? comm->rank() : 0, comm ? comm->size() : 1);
  const int B = shard_.batch;  // this rank's share of the global batch (all of it in one process)
  const int K = shape_.num_classes;
  const int T = shape_.cond_width();  // condition vector width (tags or one-hot)
  const int P = shape_.dim();
  const NetSpec& gs = cfg.generator;
  const NetSpec& ds = cfg.discriminator;
  const int Kg = condition_width(gs, shape_);
  const int Kd = condition_width(ds, shape_);
  if (cfg.loss.mismatched_pair() && K == 0)
    throw Error(cat(cfg.loss.kind == LossType::Kind::three_term ? "loss.kind: \"three_term\"" : "loss.mismatch",
                    " needs labelled data; data.kind \"", cfg.data.kind, "\" has none"));
  G_ = std::make_unique<Model>(be, gs, cfg.noise_dim, Kg, B, "generator");
  D_ = std::make_unique<Model>(be, ds, P, Kd, B, "discriminator");
  if (G_->out_dim() != P)
    throw Error(cat("generator.layers: the generator produces ", G_->out_dim(), " values per sample but data.kind \"",
                    cfg.data.kind, "\" samples have ", P));
  if (D_->out_dim() != 1)
    throw Error(cat("discriminator.layers: the discriminator must end with 1 output, it produces ", D_->out_dim()));
  const int rows = shape_.is_points() ? 1 : (K > 0 ? sample_rows() : 10);
  const int cols = shape_.is_points() ? std::max(2000, K) : cfg.log.samples_per_label;
  if (cfg.train.ema.enabled) ema_ = std::make_unique<WeightAverage>(be, *G_, gs, cfg.noise_dim, Kg, cfg.train.ema);
  // sample grids (and evaluation) show the averaged generator when there is one
  G_sample_ =
      std::make_unique<Model>(be, gs, cfg.noise_dim, Kg, rows * cols, "generator", ema_ ? &ema_->model() : G_.get());
  if (comm) {  // this rank's samples: dropout masks by global index; optionally batch norm over all ranks
    reduce_ = &comm->reducer(be);
    RankReduce* bn = cfg.distributed.sync_batchnorm ? reduce_ : nullptr;
    G_->set_shard(static_cast<uint64_t>(shard_.offset), bn);
    D_->set_shard(static_cast<uint64_t>(shard_.offset), bn);
  }

  // the dataset lives in backend memory; batches are gathered there
  x_all_ = Buffer<float>(be, static_cast<size_t>(count_) * P);
  be.upload(x_all_, data.x.data(), data.x.size());
  y_all_ = Buffer<int32_t>(be, count_);
  std::vector<int32_t> y = data.y;
  y.resize(count_, 0);
  be.upload_int(y_all_, y.data(), y.size());
  perm_ = Buffer<int32_t>(be, count_);
  x_real_ = Buffer<float>(be, static_cast<size_t>(B) * P);
  y_real_ = Buffer<int32_t>(be, B);
  y_fake_ = Buffer<int32_t>(be, B);
  z_ = Buffer<float>(be, static_cast<size_t>(B) * cfg.noise_dim);
  cond_real_ = Buffer<float>(be, static_cast<size_t>(B) * std::max(T, 1));
  cond_fake_ = Buffer<float>(be, static_cast<size_t>(B) * std::max(T, 1));
  cond_other_ = Buffer<float>(be, static_cast<size_t>(B) * std::max(T, 1));
  idx_rand_ = Buffer<int32_t>(be, B);
  y_other_ = Buffer<int32_t>(be, B);
  if (shape_.tag_dim > 0) {
    CGAN_CHECK(data.tags.size() == static_cast<size_t>(count_) * shape_.tag_dim, "dataset: tag table size mismatch");
    tags_all_ = Buffer<float>(be, data.tags.size());
    be.upload(tags_all_, data.tags.data(), data.tags.size());
  }
  gx_ = Buffer<float>(be, static_cast<size_t>(B) * P);
  if (cfg.train.augment.any()) {
    if (shape_.is_points())
      throw Error(
          cat("train.augment: DiffAugment transforms images; data.kind \"", cfg.data.kind, "\" has 2-D points"));
    aug_ = make_augment_spec(cfg.train.augment, shape_.channels, shape_.height, shape_.width, shape_.lo, shape_.hi);
    aug_x_ = Buffer<float>(be, static_cast<size_t>(B) * P);
    aug_g_ = Buffer<float>(be, static_cast<size_t>(B) * P);
    aug_params_ = Buffer<float>(be, static_cast<size_t>(B) * kAugmentParams);
  }
  stats_slots_ = static_cast<int>(std::min<int64_t>(cfg.log.flush_every, cfg.log.every));
  stats_ = Buffer<float>(be, static_cast<size_t>(stats_slots_) * kStatsPerStep);
  acc_step_ = Buffer<float>(be, kStatsPerStep);
  ctr_ = Buffer<int32_t>(be, kCtrCount);
  // the device counters are int32 (Philox stream = base + 256 * step)
  if (cfg.train.steps > std::numeric_limits<int32_t>::max() / 2)
    throw Error(cat("train.steps: at most ", std::numeric_limits<int32_t>::max() / 2, " steps are supported"));
  use_graphs_ = cfg.cuda_graphs && be.graphs_supported();

  // fixed sample noise and labels (row r shows label r)
  const int S = rows * cols;
  z_sample_ = Buffer<float>(be, static_cast<size_t>(S) * cfg.noise_dim);
  be.rand_normal(static_cast<size_t>(S) * cfg.noise_dim, cfg.train.seed, kSampleNoiseStream, 0, 0.f, 1.f, z_sample_);
  std::vector<int32_t> ys(S);
  for (int i = 0; i < S; ++i) ys[i] = K > 0 ? (shape_.is_points() ? i % K : i / cols) : 0;
  y_sample_ = Buffer<int32_t>(be, S);
  be.upload_int(y_sample_, ys.data(), S);
  cond_sample_ = Buffer<float>(be, static_cast<size_t>(S) * std::max(T, 1));
  if (shape_.tag_dim > 0) {
    const std::vector<float> c = sample_tags(ys);
    be.upload(cond_sample_, c.data(), c.size());
  } else if (K > 0) {
    be.one_hot(S, K, y_sample_, cond_sample_);
  }
}

// Tagged sets: grid row r shows the r-th hair phrase of the vocabulary (its label), paired with
// the eye phrases in turn along the rows (row r: eye phrase r mod #eyes), so every tag appears.
int Trainer::sample_rows() const {
  if (shape_.tag_dim == 0) return shape_.num_classes;
  return std::min(shape_.num_classes, hair_phrase_count(shape_.vocab));
}
std::vector<float> Trainer::sample_tags(const std::vector<int32_t>& rows_of) const {
  std::vector<float> c;
  for (int32_t r : rows_of) {
    const std::vector<float> t = tags_for_label(shape_.vocab, r, r);  // row r: eye phrase r mod #eyes
    c.insert(c.end(), t.begin(), t.end());
  }
  return c;
}

void Trainer::prepare_eval() {
  if (cfg_.eval.every <= 0 || eval_ || shard_.rank != 0) return;  // rank 0 evaluates (and writes metrics)
  auto e = std::make_unique<EvalState>();
  try {
    // the default classifier, when missing, is trained first (from configs/classifier_<kind>.json)
    train_missing_default_classifier(be_, cfg_.data, cfg_.eval.classifier);
    e->clf = load_classifier(be_, cfg_.eval.classifier, 500, classifier_command(cfg_.data, cfg_.eval.classifier));
    check_classifier_matches(*e->clf, cfg_.data.kind.name(), shape_, "this run's data");
  } catch (const Stopped&) {
    throw;  // Ctrl-C while the classifier trained: exit 130, nothing written
  } catch (const Error& err) {
    throw Error(cat("eval.classifier: ", err.what()));
  }
  HostDataset test;  // MNIST-style: the test set; a class folder: all its images
  try {
    test = reference_images(cfg_.data.kind.name(), cfg_.data.dir, e->clf->shape().lo, e->clf->shape().hi, shape_.height,
                            shape_.width, "data.dir");
  } catch (const Error& err) {
    throw Error(cat(err.what(), " (the evaluator compares with these real images)"));
  }
  e->real = prepare_reference(*e->clf, test);
  e->source = generator_source(be_, cfg_, ema_ ? ema_->model() : *G_, shape_, cfg_.eval.count, cfg_.eval.seed);
  eval_ = std::move(e);
}

Trainer::~Trainer() {  // the buffers free themselves
  eval_.reset();       // its generator view shares G's parameters
  if (graph_id_) be_.graph_drop(graph_id_);
}

void Trainer::init() {
  G_->init_params(cfg_.train.seed * 2 + 1);
  D_->init_params(cfg_.train.seed * 2 + 2);
  if (ema_) ema_->copy_from_source();
  step_ = 0;
  epoch_ = -1;
  pos_ = 0;
  g_t_ = d_t_ = 0;
  stats_used_ = 0;
  counters_dirty_ = true;
}

void Trainer::upload_counters() {
  const int32_t c[kCtrCount] = {static_cast<int32_t>(step_), static_cast<int32_t>(pos_), stats_used_, g_t_, d_t_};
  be_.upload_int(ctr_, c, kCtrCount);
  counters_dirty_ = false;
}

void Trainer::advance_counters(const int32_t* delta, bool device) {
  if (device) be_.add_ints(kCtrCount, ctr_, delta);
  step_ += delta[kCtrStep];
  pos_ += delta[kCtrPos];
  stats_used_ += delta[kCtrSlot];
  g_t_ += delta[kCtrGT];
  d_t_ += delta[kCtrDT];
}

void Trainer::reshuffle() {  // a new epoch: reshuffle, start at its beginning (the last partial batch is dropped)
  ++epoch_;
  pos_ = 0;
  be_.permutation(count_, cfg_.train.seed, kPermStream + static_cast<uint64_t>(epoch_), perm_);
  counters_dirty_ = true;
}

}  // namespace cgan
