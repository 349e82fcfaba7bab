// Training checkpoints: a Trainer's snapshot (weights, Adam state, step, data position) and its restore.
#include <cstdio>
#include <string>

#include "cgan/base/error.hpp"
#include "cgan/base/streams.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/nn/state_dict.hpp"
#include "cgan/train/trainer.hpp"

namespace cgan {

// Training-mode forwards of G (generator = true) or D in one iteration, as enqueue_step makes
// them: PyTorch's batch norm counts each in num_batches_tracked.
static int64_t train_forwards_per_step(const Config& cfg, bool generator) {
  const bool three = cfg.loss.mismatched_pair();
  const int64_t d = cfg.train.d_steps;
  if (generator) return d * (1 + (three && cfg.loss.mismatch == Mismatch::Kind::fake_other_tags ? 1 : 0)) + 1;
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
  if (!shape_.class_names.empty()) st.metadata["class_names"] = class_names_text(shape_.class_names);  // as classes.txt
  return st;
}

void Trainer::restore(const SafeTensors& ck, const std::string& path) {
  const DataShape s = data_shape_from_metadata(ck, path);
  if (s.channels != shape_.channels || s.height != shape_.height || s.width != shape_.width ||
      s.num_classes != shape_.num_classes || s.tag_dim != shape_.tag_dim)
    throw Error(cat(path, ": the checkpoint was trained on data of shape ", s.channels, "x", s.height, "x", s.width,
                    " with ", s.num_classes, " classes", s.tag_dim ? cat(" and ", s.tag_dim, " tags") : std::string(),
                    "; this run's data is ", shape_.channels, "x", shape_.height, "x", shape_.width, " with ",
                    shape_.num_classes, " classes",
                    shape_.tag_dim ? cat(" and ", shape_.tag_dim, " tags") : std::string()));
  if (s.class_names != shape_.class_names)
    throw Error(
        cat(path, ": the checkpoint's class names (metadata 'class_names') differ from this run's class folders"));
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

}  // namespace cgan
