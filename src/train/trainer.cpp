#include "cgan/train/trainer.hpp"

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
#include "cgan/eval/metrics_tb.hpp"
#include "cgan/report/rundir.hpp"
#include "cgan/train/sample.hpp"
#include "cgan/base/stop.hpp"
#include "cgan/nn/state_dict.hpp"

namespace cgan {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Philox stream of one random draw: (step, sub-step, purpose) -> unique 64-bit stream id.
enum Purpose : uint64_t {
  kNoiseD = 1, kLabelsD, kDropGinD, kDropDReal, kDropDFake, kNoiseG, kLabelsG, kDropGinG, kDropDinG,
  kOtherD, kNoiseMisD, kDropGinMisD, kDropDMis  // three_term's mismatched pair
};
uint64_t stream_of(int64_t step, int sub, Purpose p) {
  return (static_cast<uint64_t>(step) * 16 + static_cast<uint64_t>(sub)) * 16 + p;
}
constexpr uint64_t kPermStream = 0x5045524dULL << 32;    // + epoch
// DiffAugment's draws: a stream space of their own, kAugStream + stream_of(step, sub, which), kept
// apart from the purposes above (and from their dropout sub-streams) by its high bits.
constexpr uint64_t kAugStream = 0x4155474dULL << 32;  // "AUGM"
enum AugWhich : uint64_t { kAugReal = 1, kAugFake, kAugMis, kAugG };  // D's real, fake, mismatched input; G step
constexpr int kStatsPerStep = 12;  // D real (loss, sum D, correct), D fake (...), G (...), D mismatched (...)

// Device counters (ctr_[k]) the step's ops read when they run, so that one captured CUDA graph
// serves every iteration: the Philox streams (step), the batch window of the permutation (pos),
// the statistics slot and the Adam steps. add_ints advances them on the device; the host mirror
// (step_, pos_, stats_used_, g_t_, d_t_) advances alike and is uploaded whenever the host changes
// them otherwise (start, resume, a new epoch, statistics taken).
enum : int { kCtrStep = 0, kCtrPos, kCtrSlot, kCtrGT, kCtrDT, kCtrCount };
constexpr int kWarmupSteps = 2;  // eager iterations before the capture (cuBLAS/module set-up)

}  // namespace

// The evaluator's state during training (config "eval"): classifier, real test features, and a
// generator view sharing G's parameters.
struct Trainer::EvalState {
  std::unique_ptr<Classifier> clf;
  RealReference real;
  ImageSource source;
};

HostDataset load_dataset(const DataSpec& d, bool train) {
  if (d.kind == "mnist" || d.kind == "fashion") {
    try {
      return load_mnist_dir(d.dir, train, d.lo, d.hi);
    } catch (const Error& e) {
      throw Error(cat("data.dir: ", e.what()));  // the config key the bad or missing file came from
    }
  }
  if (d.kind == "anime")
    return make_anime_faces(d.count, d.height, d.width, d.seed + (train ? 0 : 1), d.lo, d.hi);
  if (d.kind == "images") {  // one folder: the same set for train and test
    ImageFolderSpec s;
    s.dir = d.dir;
    s.tags = d.tags;
    s.height = d.height;
    s.width = d.width;
    s.lo = d.lo;
    s.hi = d.hi;
    s.strict = d.strict;
    s.vocab = d.vocabulary;
    if (!d.vocabulary_file.empty()) {
      try {
        s.vocab = read_vocabulary(d.vocabulary_file);
      } catch (const Error& e) {
        throw Error(cat("data.vocabulary: ", e.what()));
      }
    }
    return load_image_folder(s, std::cerr);
  }
  if (d.kind == "gaussian")
    return make_gaussian(d.count, d.mean_x, d.mean_y, d.std_x, d.std_y, d.seed + (train ? 0 : 1));
  return make_mixture(d.count, d.modes, d.radius, d.stddev, d.seed + (train ? 0 : 1));
}

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
    throw Error(cat(cfg.loss.kind == "three_term" ? "loss.kind: \"three_term\"" : "loss.mismatch",
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
  G_sample_ = std::make_unique<Model>(be, gs, cfg.noise_dim, Kg, rows * cols, "generator",
                                      ema_ ? &ema_->model() : G_.get());
  if (comm) {  // this rank's samples: dropout masks by global index; optionally batch norm over all ranks
    reduce_ = &comm->reducer(be);
    RankReduce* bn = cfg.distributed.sync_batchnorm ? reduce_ : nullptr;
    G_->set_shard(static_cast<uint64_t>(shard_.offset), bn);
    D_->set_shard(static_cast<uint64_t>(shard_.offset), bn);
  }

  // the dataset lives in backend memory; batches are gathered there
  x_all_ = be.alloc(static_cast<size_t>(count_) * P);
  be.upload(x_all_, data.x.data(), data.x.size());
  y_all_ = be.alloc_int(count_);
  std::vector<int32_t> y = data.y;
  y.resize(count_, 0);
  be.upload_int(y_all_, y.data(), y.size());
  perm_ = be.alloc_int(count_);
  x_real_ = be.alloc(static_cast<size_t>(B) * P);
  y_real_ = be.alloc_int(B);
  y_fake_ = be.alloc_int(B);
  z_ = be.alloc(static_cast<size_t>(B) * cfg.noise_dim);
  cond_real_ = be.alloc(static_cast<size_t>(B) * std::max(T, 1));
  cond_fake_ = be.alloc(static_cast<size_t>(B) * std::max(T, 1));
  cond_other_ = be.alloc(static_cast<size_t>(B) * std::max(T, 1));
  idx_rand_ = be.alloc_int(B);
  y_other_ = be.alloc_int(B);
  if (shape_.tag_dim > 0) {
    CGAN_CHECK(data.tags.size() == static_cast<size_t>(count_) * shape_.tag_dim, "dataset: tag table size mismatch");
    tags_all_ = be.alloc(data.tags.size());
    be.upload(tags_all_, data.tags.data(), data.tags.size());
  }
  gx_ = be.alloc(static_cast<size_t>(B) * P);
  if (cfg.train.augment.any()) {
    if (shape_.is_points())
      throw Error(cat("train.augment: DiffAugment transforms images; data.kind \"", cfg.data.kind, "\" has 2-D points"));
    aug_ = make_augment_spec(cfg.train.augment, shape_.channels, shape_.height, shape_.width, shape_.lo, shape_.hi);
    aug_x_ = be.alloc(static_cast<size_t>(B) * P);
    aug_g_ = be.alloc(static_cast<size_t>(B) * P);
    aug_params_ = be.alloc(static_cast<size_t>(B) * kAugmentParams);
  }
  stats_slots_ = static_cast<int>(std::min<int64_t>(cfg.log.flush_every, cfg.log.every));
  stats_ = be.alloc(static_cast<size_t>(stats_slots_) * kStatsPerStep);
  acc_step_ = be.alloc(kStatsPerStep);
  ctr_ = be.alloc_int(kCtrCount);
  // the device counters are int32 (Philox stream = base + 256 * step)
  if (cfg.train.steps > std::numeric_limits<int32_t>::max() / 2)
    throw Error(cat("train.steps: at most ", std::numeric_limits<int32_t>::max() / 2, " steps are supported"));
  use_graphs_ = cfg.cuda_graphs && be.graphs_supported();

  // fixed sample noise and labels (row r shows label r)
  const int S = rows * cols;
  z_sample_ = be.alloc(static_cast<size_t>(S) * cfg.noise_dim);
  be.rand_normal(static_cast<size_t>(S) * cfg.noise_dim, cfg.train.seed, kSampleNoiseStream, 0, 0.f, 1.f, z_sample_);
  std::vector<int32_t> ys(S);
  for (int i = 0; i < S; ++i) ys[i] = K > 0 ? (shape_.is_points() ? i % K : i / cols) : 0;
  y_sample_ = be.alloc_int(S);
  be.upload_int(y_sample_, ys.data(), S);
  cond_sample_ = be.alloc(static_cast<size_t>(S) * std::max(T, 1));
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
    train_missing_default_classifier(be_, cfg_.data.kind, cfg_.eval.classifier, cfg_.data.dir);
    e->clf = load_classifier(be_, cfg_.eval.classifier);
    check_classifier_matches(*e->clf, cfg_.data.kind, shape_, "this run's data");
  } catch (const Stopped&) {
    throw;  // Ctrl-C while the classifier trained: exit 130, nothing written
  } catch (const Error& err) {
    throw Error(cat("eval.classifier: ", err.what()));
  }
  HostDataset test;
  try {
    test = load_mnist_dir(cfg_.data.dir, false, e->clf->shape().lo, e->clf->shape().hi);
  } catch (const Error& err) {
    throw Error(cat("data.dir: ", err.what(), " (the evaluator compares with the test set)"));
  }
  e->real = prepare_reference(*e->clf, test);
  e->source = generator_source(be_, cfg_, ema_ ? ema_->model() : *G_, shape_, cfg_.eval.count, cfg_.eval.seed);
  eval_ = std::move(e);
}

Trainer::~Trainer() {
  eval_.reset();  // its generator view shares G's parameters
  if (graph_id_) be_.graph_drop(graph_id_);
  for (void* p : std::initializer_list<void*>{x_all_, x_real_, z_, cond_real_, cond_fake_, gx_, stats_, z_sample_,
                                              cond_sample_, y_all_, perm_, y_real_, y_fake_, y_sample_, acc_step_, ctr_,
                                              tags_all_, cond_other_, idx_rand_, y_other_, aug_x_, aug_g_, aug_params_})
    be_.free(p);
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

// What one D sub-step and the end of an iteration add to the counters (kCtr* order).
static std::array<int32_t, kCtrCount> batch_delta(int B) { return {0, B, 0, 0, 1}; }  // pos += B, D's Adam step
constexpr std::array<int32_t, kCtrCount> kStepDelta = {1, 0, 1, 1, 0};       // step, slot, G's Adam step

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

void Trainer::step() {
  const int B = cfg_.train.batch_size;
  const int d = cfg_.train.d_steps;
  CGAN_CHECK(stats_used_ < stats_slots_, "loss statistics of ", stats_slots_,
             " steps are waiting: call take_rows() at least that often");
  if (epoch_ < 0 || pos_ + B > count_) reshuffle();
  // an epoch that ends between D sub-steps (d_steps > 1) needs the host inside the iteration
  bool mid_step_reshuffle = false;
  for (int sub = 1; sub < d; ++sub) mid_step_reshuffle |= pos_ + static_cast<int64_t>(sub + 1) * B > count_;
  if (counters_dirty_) upload_counters();
  const bool graph = use_graphs_ && !trace_ && !mid_step_reshuffle && eager_steps_ >= kWarmupSteps;
  if (graph && graph_id_) {
    be_.graph_launch(graph_id_);
    for (int sub = 0; sub < d; ++sub) advance_counters(batch_delta(B).data(), false);  // what its add_ints do
    advance_counters(kStepDelta.data(), false);
  } else if (graph) {
    be_.graph_begin();
    try {
      enqueue_step(false);  // advances the mirror once, as the launch below advances the counters
    } catch (...) {
      be_.graph_abort();
      throw;
    }
    graph_id_ = be_.graph_end();
    be_.graph_launch(graph_id_);
  } else {
    enqueue_step(mid_step_reshuffle);
    ++eager_steps_;
  }
}

void Trainer::enqueue_step(bool may_reshuffle) {
  const int B = shard_.batch;  // this rank's samples: [s0, s0 + B) of the global batch
  const uint64_t s0 = static_cast<uint64_t>(shard_.offset);  // every draw below is keyed by global index
  const int K = shape_.num_classes;
  const int P = shape_.dim();
  const uint64_t seed = cfg_.train.seed;
  const std::string base_loss = cfg_.loss.base_kind();
  const LossKind lk = base_loss == "squared" ? LossKind::squared : base_loss == "hinge" ? LossKind::hinge : LossKind::log;
  const LossKind lk_g = base_loss == "hinge" ? LossKind::linear : lk;  // G's term: hinge's is -D(G(z))
  const bool random_labels = cfg_.train.fake_labels == "random" && K > 0;
  const bool onehot = G_->uses_onehot() || D_->uses_onehot();  // the networks read condition vectors
  const bool tags = tags_all_ != nullptr;
  const int T = shape_.cond_width();
  const bool three_term = cfg_.loss.mismatched_pair();  // three_term, or any loss with loss.mismatch
  // stream_of(step, sub, purpose) with the step read from the device counter
  auto rng = [&](int sub, Purpose p) { return RngStream(stream_of(0, sub, p), ctr_ + kCtrStep, 256); };
  // the labels (and tag vectors) of B random training samples
  auto draw_other = [&](RngStream s, int32_t* y_out, float* cond_out) {
    be_.rand_below(B, seed, s, s0, count_, idx_rand_);
    be_.gather_int(B, count_, y_all_, idx_rand_, y_out);
    if (!onehot) return;
    if (tags) be_.gather_rows(B, T, count_, tags_all_, idx_rand_, cond_out);
    else be_.one_hot(B, K, y_out, cond_out);
  };
  // train.augment: what D sees of image x (D's input `which` of D sub-step `sub`), drawn per sample
  // from (seed, step, sub, which, sample index), the index global (s0: this rank's first sample).
  const bool augment = aug_x_ != nullptr;
  auto aug = [&](const float* x, int sub, AugWhich which, const std::string& trace_name) -> const float* {
    if (!augment) return x;
    be_.augment_forward(aug_, B, seed, RngStream(kAugStream + stream_of(0, sub, static_cast<Purpose>(which)),
                                                 ctr_ + kCtrStep, 256),
                        s0, x, aug_x_, aug_params_);
    if (trace_) {
      trace_buf(trace_name, aug_x_, {B, P});
      trace_buf(trace_name + ".params", aug_params_, {B, kAugmentParams});
    }
    return aug_x_;
  };
  be_.fill(acc_step_, kStatsPerStep, 0.f);

  for (int sub = 0; sub < cfg_.train.d_steps; ++sub) {
    {
      ProfileRange r("data");
      if (may_reshuffle && sub > 0 && pos_ + B > count_) {
        reshuffle();
        upload_counters();
      }
      be_.gather_rows(B, P, count_, x_all_, perm_ + s0, x_real_, ctr_ + kCtrPos);  // perm[pos + s0, pos + s0 + B)
      be_.gather_int(B, count_, y_all_, perm_ + s0, y_real_, ctr_ + kCtrPos);
      if (tags) {
        if (onehot) be_.gather_rows(B, T, count_, tags_all_, perm_ + s0, cond_real_, ctr_ + kCtrPos);
        if (random_labels) draw_other(rng(sub, kLabelsD), y_fake_, cond_fake_);  // another sample's tags
      } else {
        if (random_labels) be_.rand_below(B, seed, rng(sub, kLabelsD), s0, K, y_fake_);
        if (onehot && K > 0) {
          be_.one_hot(B, K, y_real_, cond_real_);
          if (random_labels) be_.one_hot(B, K, y_fake_, cond_fake_);
        }
      }
      be_.rand_normal(static_cast<size_t>(B) * cfg_.noise_dim, seed, rng(sub, kNoiseD), s0 * cfg_.noise_dim, 0.f, 1.f, z_);
    }
    const std::string tp = trace_ ? cat("d", sub, ".") : std::string();  // trace names of this D sub-step
    if (trace_) {
      trace_buf(tp + "x_real", x_real_, {B, P});
      trace_ints(tp + "y_real", y_real_, B);
      if (onehot) trace_buf(tp + "cond_real", cond_real_, {B, T});
      if (random_labels) trace_ints(tp + "y_fake", y_fake_, B);
      if (random_labels && onehot) trace_buf(tp + "cond_fake", cond_fake_, {B, T});
      trace_buf(tp + "z", z_, {B, cfg_.noise_dim});
    }
    const int32_t* yf = random_labels ? y_fake_ : y_real_;
    const float* cf = random_labels ? cond_fake_ : cond_real_;
    ProfileRange r("d_step");
    D_->zero_grads();
    const float* fake = G_->forward(z_, yf, cf, true, seed, rng(sub, kDropGinD));
    if (trace_) trace_masks(tp + "gen.", *G_, cfg_.generator);
    // the log keeps the last D sub-step's statistics
    float* a = acc_step_;
    if (sub > 0) {
      be_.fill(a, 6, 0.f);
      be_.fill(a + 9, 3, 0.f);
    }
    const float* out_r =
        D_->forward(aug(x_real_, sub, kAugReal, tp + "aug.real"), y_real_, cond_real_, true, seed, rng(sub, kDropDReal));
    if (trace_) trace_masks(tp + "real.", *D_, cfg_.discriminator);
    be_.loss_fused(lk, B, out_r, cfg_.loss.real_target, cfg_.loss.d_weight, D_->grad_out_buffer(), a);
    D_->backward(D_->grad_out_buffer(), nullptr);
    const float* out_f = D_->forward(aug(fake, sub, kAugFake, tp + "aug.fake"), yf, cf, true, seed, rng(sub, kDropDFake));
    if (trace_) trace_masks(tp + "fake.", *D_, cfg_.discriminator);
    be_.loss_fused(lk, B, out_f, 0.f, cfg_.loss.d_weight, D_->grad_out_buffer(), a + 3);
    D_->backward(D_->grad_out_buffer(), nullptr);
    if (three_term) {  // the mismatched pair -> 0
      draw_other(rng(sub, kOtherD), y_other_, cond_other_);
      if (trace_) {
        trace_ints(tp + "y_other", y_other_, B);
        if (onehot) trace_buf(tp + "cond_other", cond_other_, {B, T});
      }
      const float* out_m = nullptr;
      if (cfg_.loss.mismatch == "real_other_tags") {
        out_m = D_->forward(aug(x_real_, sub, kAugMis, tp + "aug.mis"), y_other_, cond_other_, true, seed,
                            rng(sub, kDropDMis));
      } else {  // fake_other_tags: a fake made from other tags, scored with the batch's own
        be_.rand_normal(static_cast<size_t>(B) * cfg_.noise_dim, seed, rng(sub, kNoiseMisD), s0 * cfg_.noise_dim, 0.f, 1.f, z_);
        const float* fake2 = G_->forward(z_, y_other_, cond_other_, true, seed, rng(sub, kDropGinMisD));
        if (trace_) {
          trace_buf(tp + "z_mis", z_, {B, cfg_.noise_dim});
          trace_masks(tp + "gen_mis.", *G_, cfg_.generator);
        }
        out_m = D_->forward(aug(fake2, sub, kAugMis, tp + "aug.mis"), y_real_, cond_real_, true, seed,
                            rng(sub, kDropDMis));
      }
      if (trace_) trace_masks(tp + "mis.", *D_, cfg_.discriminator);
      be_.loss_fused(lk, B, out_m, 0.f, cfg_.loss.d_weight, D_->grad_out_buffer(), a + 9);
      D_->backward(D_->grad_out_buffer(), nullptr);
    }
    if (reduce_) reduce_->mean(D_->grads(), D_->param_count());  // one all-reduce: the global batch's gradient
    if (trace_) {
      trace_buf(tp + "losses", acc_step_, {kStatsPerStep});  // [0] real, [3] fake, [9] mismatched
      if (trace_weights_) trace_grads(tp + "grad.discriminator.", *D_);
    }
    ProfileRange o("optimizer");
    advance_counters(batch_delta(shard_.global_batch).data(), true);
    D_->adam_step(cfg_.d_optim, 0, ctr_ + kCtrDT);
    if (trace_ && trace_weights_) trace_params(tp + "after.discriminator.", *D_);
  }

  {
    ProfileRange r("g_step");
    if (random_labels && tags) {
      draw_other(rng(0, kLabelsG), y_fake_, cond_fake_);
    } else if (random_labels) {
      be_.rand_below(B, seed, rng(0, kLabelsG), s0, K, y_fake_);
      if (onehot) be_.one_hot(B, K, y_fake_, cond_fake_);
    }
    const int32_t* yf = random_labels ? y_fake_ : y_real_;
    const float* cf = random_labels ? cond_fake_ : cond_real_;
    be_.rand_normal(static_cast<size_t>(B) * cfg_.noise_dim, seed, rng(0, kNoiseG), s0 * cfg_.noise_dim, 0.f, 1.f, z_);
    if (trace_) {
      if (random_labels) trace_ints("g.y_fake", y_fake_, B);
      if (random_labels && onehot) trace_buf("g.cond_fake", cond_fake_, {B, T});
      trace_buf("g.z", z_, {B, cfg_.noise_dim});
    }
    G_->zero_grads();
    const float* fake = G_->forward(z_, yf, cf, true, seed, rng(0, kDropGinG));
    if (trace_) trace_masks("g.gen.", *G_, cfg_.generator);
    const float* out = D_->forward(aug(fake, 0, kAugG, "g.aug.fake"), yf, cf, true, seed, rng(0, kDropDinG));
    if (trace_) trace_masks("g.disc.", *D_, cfg_.discriminator);
    be_.loss_fused(lk_g, B, out, 1.f, 1.f, D_->grad_out_buffer(), acc_step_ + 6);
    D_->backward(D_->grad_out_buffer(), gx_, /*param_grads=*/false);
    if (augment) {  // dL/d(fake) through the augmentation
      be_.augment_backward(aug_, B, aug_params_, gx_, aug_g_);
      if (trace_) trace_buf("g.aug.grad", aug_g_, {B, P});
    }
    G_->backward(augment ? aug_g_ : gx_, nullptr);
    if (reduce_) reduce_->mean(G_->grads(), G_->param_count());
    if (trace_) {
      trace_buf("g.losses", acc_step_, {kStatsPerStep});  // [6] the generator's loss
      if (trace_weights_) trace_grads("g.grad.generator.", *G_);
    }
    be_.copy_to_slot(kStatsPerStep, acc_step_, stats_, ctr_ + kCtrSlot, stats_slots_);
    ProfileRange o("optimizer");
    advance_counters(kStepDelta.data(), true);
    G_->adam_step(cfg_.g_optim, 0, ctr_ + kCtrGT);
    if (ema_) ema_->update(0, ctr_ + kCtrGT);  // after G's step g_t (the counter just advanced)
  }
  if (trace_ && trace_weights_) {  // the iteration's end state (batch-norm statistics included)
    trace_params("after.generator.", *G_);
    trace_params("after.discriminator.", *D_);
    if (ema_) trace_params("after.generator_ema.", ema_->model());
  }
}

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

// ---------------------------------------------------------------- checkpoints

static void put_buffer(SafeTensors& st, Backend& be, const std::string& name, const float* p, size_t n,
                       std::vector<int64_t> shape) {
  NamedTensor t;
  t.name = name;
  t.shape = std::move(shape);
  t.data.resize(n);
  if (n) be.download(t.data.data(), p, n);
  st.tensors.push_back(std::move(t));
}

// A model's tensors named by its slots: `params` is a parameter-shaped backend buffer (the
// parameters, or their gradients); the state slots are written only when `with_state`.
static void put_slots(SafeTensors& st, Backend& be, const Model& m, const std::string& prefix, const float* params,
                      bool with_state) {
  std::vector<float> p(m.param_count()), s(with_state ? m.state_count() : 0);
  if (!p.empty()) be.download(p.data(), params, p.size());
  if (!s.empty()) be.download(s.data(), m.state(), s.size());
  for (auto& sl : m.slots()) {
    if (sl.state && !with_state) continue;
    NamedTensor t;
    t.name = prefix + sl.name;
    t.shape = sl.shape;
    const float* src = (sl.state ? s.data() : p.data()) + sl.offset;
    t.data.assign(src, src + sl.count);
    st.tensors.push_back(std::move(t));
  }
}

void Trainer::trace_buf(const std::string& name, const float* p, std::vector<int64_t> shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  put_buffer(*trace_, be_, name, p, n, std::move(shape));
}

void Trainer::trace_ints(const std::string& name, const int32_t* p, int64_t n) {
  std::vector<int32_t> h(static_cast<size_t>(n));
  if (n) be_.download_int(h.data(), p, h.size());
  trace_->tensors.push_back(NamedTensor{name, {n}, std::vector<float>(h.begin(), h.end())});
}

void Trainer::trace_masks(const std::string& prefix, const Model& m, const NetSpec& spec) {
  for (int i = 0; i < m.layer_count(); ++i) {
    if (spec.layers[static_cast<size_t>(i)].kind != LayerKind::dropout) continue;
    int width = 0;
    m.output_of(i, &width);  // the dropout's output width
    if (const float* mask = m.dropout_mask(i)) trace_buf(cat(prefix, "mask.", i), mask, {m.batch(), width});
  }
}

void Trainer::trace_grads(const std::string& prefix, const Model& m) { put_slots(*trace_, be_, m, prefix, m.grads(), false); }

void Trainer::trace_params(const std::string& prefix, const Model& m) { put_slots(*trace_, be_, m, prefix, m.params(), true); }

// Training-mode forwards of G (generator = true) or D in one iteration, as enqueue_step makes
// them: PyTorch's batch norm counts each in num_batches_tracked.
static int64_t train_forwards_per_step(const Config& cfg, bool generator) {
  const bool three = cfg.loss.mismatched_pair();
  const int64_t d = cfg.train.d_steps;
  if (generator) return d * (1 + (three && cfg.loss.mismatch == "fake_other_tags" ? 1 : 0)) + 1;
  return d * (2 + (three ? 1 : 0)) + 1;
}

SafeTensors Trainer::snapshot() const {
  SafeTensors st;
  put_model_params(st, be_, *G_, "generator", TensorLayout::torch, step_ * train_forwards_per_step(cfg_, true));
  put_model_params(st, be_, *D_, "discriminator", TensorLayout::torch, step_ * train_forwards_per_step(cfg_, false));
  if (ema_) ema_->put(st, step_ * train_forwards_per_step(cfg_, true));
  put_adam_state(st, be_, *G_, "generator");
  put_adam_state(st, be_, *D_, "discriminator");
  st.metadata["format"] = kCheckpointFormat;
  st.metadata["config"] = cfg_.to_json().dump();
  st.metadata["step"] = std::to_string(step_);
  st.metadata["epoch"] = std::to_string(epoch_);
  st.metadata["epoch_pos"] = std::to_string(pos_);
  st.metadata["adam_t"] = cat(g_t_, ",", d_t_);
  st.metadata["rng"] = cat("philox4x32-10 seed=", cfg_.train.seed, " counters keyed by step");
  st.metadata["data_shape"] = cat(shape_.channels, ",", shape_.height, ",", shape_.width);
  st.metadata["num_classes"] = std::to_string(shape_.num_classes);
  st.metadata["data_range"] = cat(shape_.lo, ",", shape_.hi);
  if (shape_.tag_dim > 0) {
    st.metadata["tag_dim"] = std::to_string(shape_.tag_dim);
    st.metadata["vocabulary"] = vocabulary_text(shape_.vocab);  // as vocab.txt
  }
  return st;
}

void Trainer::restore(const SafeTensors& ck, const std::string& path) {
  const DataShape s = data_shape_from_metadata(ck, path);
  if (s.channels != shape_.channels || s.height != shape_.height || s.width != shape_.width ||
      s.num_classes != shape_.num_classes || s.tag_dim != shape_.tag_dim)
    throw Error(cat(path, ": the checkpoint was trained on data of shape ", s.channels, "x", s.height, "x", s.width,
                    " with ", s.num_classes, " classes", s.tag_dim ? cat(" and ", s.tag_dim, " tags") : std::string(),
                    "; this run's data is ", shape_.channels, "x", shape_.height, "x", shape_.width, " with ",
                    shape_.num_classes, " classes", shape_.tag_dim ? cat(" and ", shape_.tag_dim, " tags") : std::string()));
  const TensorLayout layout = checkpoint_layout(ck, path);  // v1 files still resume
  for (Model* m : {G_.get(), D_.get()}) {
    const std::string net = m == G_.get() ? "generator" : "discriminator";
    load_model_params(*m, ck, net, path, layout);
    load_adam_state(*m, be_, ck, net, path, layout);
    if (m->param_count()) m->zero_grads();
  }
  if (ema_ && checkpoint_has_ema(ck)) {
    ema_->load(ck, path);
  } else if (ema_) {  // a checkpoint of a run without train.ema (or of format v1): the average starts here
    ema_->copy_from_source();
    std::fprintf(stderr, "cgan_gpu: note: %s holds no averaged generator; train.ema starts from its generator\n",
                 path.c_str());
  }
  step_ = checkpoint_meta_int(ck, "step", path);
  epoch_ = checkpoint_meta_int(ck, "epoch", path);
  pos_ = checkpoint_meta_int(ck, "epoch_pos", path);
  const std::string& t = ck.metadata.count("adam_t") ? ck.metadata.at("adam_t") : std::string();
  if (std::sscanf(t.c_str(), "%d,%d", &g_t_, &d_t_) != 2)
    throw Error(cat(path, ": metadata 'adam_t' is missing or malformed"));
  if (step_ < 0 || epoch_ < -1 || pos_ < 0 || pos_ > count_)
    throw Error(cat(path, ": metadata step/epoch position out of range"));
  if (epoch_ >= 0)  // the current epoch's permutation is a pure function of (seed, epoch)
    be_.permutation(count_, cfg_.train.seed, kPermStream + static_cast<uint64_t>(epoch_), perm_);
  stats_used_ = 0;
  counters_dirty_ = true;
}

void Trainer::write_checkpoint(const std::string& path) const { write_safetensors(path, snapshot()); }

// ---------------------------------------------------------------- samples

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
  std::unique_ptr<LossLog> losses;
  if (rd) losses = std::make_unique<LossLog>(*rd, cfg_.log.avg_window, step_);
  std::unique_ptr<MetricsLog> metrics;
  if (eval_ && rd) metrics = std::make_unique<MetricsLog>(rd->file("metrics.csv"), step_);

  const int64_t total = cfg_.train.steps;
  Progress progress(rd ? cfg_.log.progress : std::string("none"), total, step_);
  LossRow last;
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
    if (comm_ && comm_->size() > 1) {  // the ranks must hold the same weights (rank 0's are written)
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
    write_checkpoint(p);
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
    if (log_now) progress.log(step_, epoch, last);
    else progress.tick(step_, epoch, last);
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
