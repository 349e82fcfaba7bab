// The GAN step: one iteration (D step(s), then a G step), enqueued eagerly or replayed from a CUDA graph.
#include <array>
#include <string>

#include "cgan/backend/profile.hpp"
#include "cgan/base/error.hpp"
#include "cgan/base/streams.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/train/tracer.hpp"
#include "cgan/train/trainer.hpp"

namespace cgan {

// What one D sub-step and the end of an iteration add to the counters (kCtr* order).
namespace {
std::array<int32_t, Trainer::kCtrCount> batch_delta(int B) { return {0, B, 0, 0, 1}; }  // pos += B, D's Adam step
constexpr std::array<int32_t, Trainer::kCtrCount> kStepDelta = {1, 0, 1, 1, 0};         // step, slot, G's Adam step
}  // namespace

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
  const bool graph = use_graphs_ && !tracer_->active() && !mid_step_reshuffle && eager_steps_ >= kWarmupSteps;
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
  const int B = shard_.batch;                                // this rank's samples: [s0, s0 + B) of the global batch
  const uint64_t s0 = static_cast<uint64_t>(shard_.offset);  // every draw below is keyed by global index
  const int K = shape_.num_classes;
  const int P = shape_.dim();
  const uint64_t seed = cfg_.train.seed;
  const LossType base_loss = cfg_.loss.base_kind();
  const LossKind lk = base_loss == LossType::Kind::squared ? LossKind::squared
                      : base_loss == LossType::Kind::hinge ? LossKind::hinge
                                                           : LossKind::log;
  const LossKind lk_g = base_loss == LossType::Kind::hinge ? LossKind::linear : lk;  // G's term: hinge's is -D(G(z))
  const bool random_labels = cfg_.train.fake_labels == FakeLabels::Kind::random && K > 0;
  const bool onehot = G_->uses_onehot() || D_->uses_onehot();  // the networks read condition vectors
  const bool tags = !tags_all_.empty();
  const int T = shape_.cond_width();
  const bool three_term = cfg_.loss.mismatched_pair();  // three_term, or any loss with loss.mismatch
  // stream_of(step, sub, purpose) with the step read from the device counter
  auto rng = [&](int sub, Purpose p) { return RngStream(stream_of(0, sub, p), ctr_ + kCtrStep, 256); };
  // the labels (and tag vectors) of B random training samples
  auto draw_other = [&](RngStream s, int32_t* y_out, float* cond_out) {
    be_.rand_below(B, seed, s, s0, count_, idx_rand_);
    be_.gather_int(B, count_, y_all_, idx_rand_, y_out);
    if (!onehot) return;
    if (tags)
      be_.gather_rows(B, T, count_, tags_all_, idx_rand_, cond_out);
    else
      be_.one_hot(B, K, y_out, cond_out);
  };
  // train.augment: what D sees of image x (D's input `which` of D sub-step `sub`), drawn per sample
  // from (seed, step, sub, which, sample index), the index global (s0: this rank's first sample).
  const bool augment = !aug_x_.empty();
  auto aug = [&](const float* x, int sub, AugWhich which, const std::string& tp, const char* name,
                 const char* params_name) -> const float* {
    if (!augment) return x;
    be_.augment_forward(aug_, B, seed,
                        RngStream(kAugStream + stream_of(0, sub, static_cast<Purpose>(which)), ctr_ + kCtrStep, 256),
                        s0, x, aug_x_, aug_params_);
    tracer_->buf(tp, name, aug_x_, {B, P});
    tracer_->buf(tp, params_name, aug_params_, {B, kAugmentParams});
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
      be_.rand_normal(static_cast<size_t>(B) * cfg_.noise_dim, seed, rng(sub, kNoiseD), s0 * cfg_.noise_dim, 0.f, 1.f,
                      z_);
    }
    const std::string tp = cat("d", sub, ".");  // trace names of this D sub-step
    tracer_->buf(tp, "x_real", x_real_, {B, P});
    tracer_->ints(tp, "y_real", y_real_, B);
    if (onehot) tracer_->buf(tp, "cond_real", cond_real_, {B, T});
    if (random_labels) tracer_->ints(tp, "y_fake", y_fake_, B);
    if (random_labels && onehot) tracer_->buf(tp, "cond_fake", cond_fake_, {B, T});
    tracer_->buf(tp, "z", z_, {B, cfg_.noise_dim});
    const int32_t* yf = random_labels ? y_fake_ : y_real_;
    const float* cf = random_labels ? cond_fake_ : cond_real_;
    ProfileRange r("d_step");
    D_->zero_grads();
    const float* fake = G_->forward(z_, yf, cf, true, seed, rng(sub, kDropGinD));
    tracer_->masks(tp, "gen.", *G_, cfg_.generator);
    // the log keeps the last D sub-step's statistics
    float* a = acc_step_;
    if (sub > 0) {
      be_.fill(a, 6, 0.f);
      be_.fill(a + 9, 3, 0.f);
    }
    const float* out_r = D_->forward(aug(x_real_, sub, kAugReal, tp, "aug.real", "aug.real.params"), y_real_,
                                     cond_real_, true, seed, rng(sub, kDropDReal));
    tracer_->masks(tp, "real.", *D_, cfg_.discriminator);
    be_.loss_fused(lk, B, out_r, cfg_.loss.real_target, cfg_.loss.d_weight, D_->grad_out_buffer(), a);
    D_->backward(D_->grad_out_buffer(), nullptr);
    const float* out_f = D_->forward(aug(fake, sub, kAugFake, tp, "aug.fake", "aug.fake.params"), yf, cf, true, seed,
                                     rng(sub, kDropDFake));
    tracer_->masks(tp, "fake.", *D_, cfg_.discriminator);
    be_.loss_fused(lk, B, out_f, 0.f, cfg_.loss.d_weight, D_->grad_out_buffer(), a + 3);
    D_->backward(D_->grad_out_buffer(), nullptr);
    if (three_term) {  // the mismatched pair -> 0
      draw_other(rng(sub, kOtherD), y_other_, cond_other_);
      tracer_->ints(tp, "y_other", y_other_, B);
      if (onehot) tracer_->buf(tp, "cond_other", cond_other_, {B, T});
      const float* out_m = nullptr;
      if (cfg_.loss.mismatch == Mismatch::Kind::real_other_tags) {
        out_m = D_->forward(aug(x_real_, sub, kAugMis, tp, "aug.mis", "aug.mis.params"), y_other_, cond_other_, true,
                            seed, rng(sub, kDropDMis));
      } else {  // fake_other_tags: a fake made from other tags, scored with the batch's own
        be_.rand_normal(static_cast<size_t>(B) * cfg_.noise_dim, seed, rng(sub, kNoiseMisD), s0 * cfg_.noise_dim, 0.f,
                        1.f, z_);
        const float* fake2 = G_->forward(z_, y_other_, cond_other_, true, seed, rng(sub, kDropGinMisD));
        tracer_->buf(tp, "z_mis", z_, {B, cfg_.noise_dim});
        tracer_->masks(tp, "gen_mis.", *G_, cfg_.generator);
        out_m = D_->forward(aug(fake2, sub, kAugMis, tp, "aug.mis", "aug.mis.params"), y_real_, cond_real_, true, seed,
                            rng(sub, kDropDMis));
      }
      tracer_->masks(tp, "mis.", *D_, cfg_.discriminator);
      be_.loss_fused(lk, B, out_m, 0.f, cfg_.loss.d_weight, D_->grad_out_buffer(), a + 9);
      D_->backward(D_->grad_out_buffer(), nullptr);
    }
    if (reduce_) reduce_->mean(D_->grads(), D_->param_count());  // one all-reduce: the global batch's gradient
    tracer_->buf(tp, "losses", acc_step_, {kStatsPerStep});      // [0] real, [3] fake, [9] mismatched
    tracer_->grads(tp, "grad.discriminator.", *D_);
    ProfileRange o("optimizer");
    advance_counters(batch_delta(shard_.global_batch).data(), true);
    D_->adam_step(cfg_.d_optim, 0, ctr_ + kCtrDT);
    tracer_->params(tp, "after.discriminator.", *D_);
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
    const std::string g = "g.";  // trace names of the G step
    if (random_labels) tracer_->ints(g, "y_fake", y_fake_, B);
    if (random_labels && onehot) tracer_->buf(g, "cond_fake", cond_fake_, {B, T});
    tracer_->buf(g, "z", z_, {B, cfg_.noise_dim});
    G_->zero_grads();
    const float* fake = G_->forward(z_, yf, cf, true, seed, rng(0, kDropGinG));
    tracer_->masks(g, "gen.", *G_, cfg_.generator);
    const float* out =
        D_->forward(aug(fake, 0, kAugG, g, "aug.fake", "aug.fake.params"), yf, cf, true, seed, rng(0, kDropDinG));
    tracer_->masks(g, "disc.", *D_, cfg_.discriminator);
    be_.loss_fused(lk_g, B, out, 1.f, 1.f, D_->grad_out_buffer(), acc_step_ + 6);
    D_->backward(D_->grad_out_buffer(), gx_, /*param_grads=*/false);
    if (augment) {  // dL/d(fake) through the augmentation
      be_.augment_backward(aug_, B, aug_params_, gx_, aug_g_);
      tracer_->buf(g, "aug.grad", aug_g_, {B, P});
    }
    G_->backward(augment ? aug_g_ : gx_, nullptr);
    if (reduce_) reduce_->mean(G_->grads(), G_->param_count());
    tracer_->buf(g, "losses", acc_step_, {kStatsPerStep});  // [6] the generator's loss
    tracer_->grads(g, "grad.generator.", *G_);
    be_.copy_to_slot(kStatsPerStep, acc_step_, stats_, ctr_ + kCtrSlot, stats_slots_);
    ProfileRange o("optimizer");
    advance_counters(kStepDelta.data(), true);
    G_->adam_step(cfg_.g_optim, 0, ctr_ + kCtrGT);
    if (ema_) ema_->update(0, ctr_ + kCtrGT);  // after G's step g_t (the counter just advanced)
  }
  // the iteration's end state (batch-norm statistics included)
  tracer_->params("", "after.generator.", *G_);
  tracer_->params("", "after.discriminator.", *D_);
  if (ema_) tracer_->params("", "after.generator_ema.", ema_->model());
}

}  // namespace cgan
