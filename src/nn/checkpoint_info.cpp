// Checkpoint metadata: data shape, stored config and generator (include/cgan/nn/checkpoint_info.hpp).
#include "cgan/nn/checkpoint_info.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cgan/base/error.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/nn/state_dict.hpp"

namespace cgan {
using json = nlohmann::json;

int condition_width(const NetSpec& net, const DataShape& shape) {
  const ConditionMode m = net.condition.mode;
  // conditional batch norm maps the condition vector (one-hot or tags) to gains and biases
  const bool cbn = has_conditional_bn(net);
  if (m == ConditionMode::none) return cbn ? shape.cond_width() : 0;
  if (m == ConditionMode::embed_concat || m == ConditionMode::embed_multiply) {
    if (cbn && shape.tag_dim > 0)
      throw Error(cat("condition.mode \"", m,
                      "\" embeds one label per sample but conditional batch norm reads "
                      "the tag vectors of this tagged data set; use \"concat_onehot\" or \"none\" with it"));
    return shape.num_classes;
  }
  return shape.cond_width();
}

DataShape data_shape_of(const HostDataset& d, const DataSpec& spec) {
  DataShape s;
  s.channels = d.channels;
  s.height = d.height;
  s.width = d.width;
  s.num_classes = d.num_classes;
  const bool images = !spec.points();
  s.lo = images ? spec.lo : 0.f;
  s.hi = images ? spec.hi : 1.f;
  s.tag_dim = d.tag_dim;
  s.vocab = d.vocab;
  s.class_names = d.class_names;
  return s;
}

int64_t checkpoint_meta_int(const SafeTensors& ck, const std::string& key, const std::string& path) {
  auto it = ck.metadata.find(key);
  if (it == ck.metadata.end()) throw Error(cat(path, ": metadata '", key, "' is missing (not a cgan_gpu checkpoint?)"));
  try {
    size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw Error(cat(path, ": metadata '", key, "' is not an integer: '", it->second, "'"));
  }
}

DataShape data_shape_from_metadata(const SafeTensors& ck, const std::string& path) {
  DataShape s;
  auto get = [&](const char* k) -> const std::string& {
    auto it = ck.metadata.find(k);
    if (it == ck.metadata.end()) throw Error(cat(path, ": metadata '", k, "' is missing (not a cgan_gpu checkpoint?)"));
    return it->second;
  };
  const std::string& ds = get("data_shape");
  char tail = 0;
  if (std::sscanf(ds.c_str(), "%d,%d,%d%c", &s.channels, &s.height, &s.width, &tail) != 3 || s.channels <= 0 ||
      s.height <= 0 || s.width <= 0 || s.channels > 4 || s.height > 65535 || s.width > 65535)
    throw Error(cat(path,
                    ": metadata 'data_shape' is malformed (expected C,H,W with C in 1..4 and H, W in 1..65535, got ",
                    describe_json(ds), ")"));
  const int64_t k = checkpoint_meta_int(ck, "num_classes", path);
  if (k < 0 || k > 65536) throw Error(cat(path, ": metadata 'num_classes' is ", k, ", outside 0..65536"));
  s.num_classes = static_cast<int>(k);
  if (std::sscanf(get("data_range").c_str(), "%f,%f", &s.lo, &s.hi) != 2 || !(s.lo < s.hi))
    throw Error(cat(path, ": metadata 'data_range' is malformed"));
  if (ck.metadata.count("tag_dim")) {  // tagged sets
    const int64_t t = checkpoint_meta_int(ck, "tag_dim", path);
    if (t <= 0 || t > 65536) throw Error(cat(path, ": metadata 'tag_dim' is ", t, ", outside 1..65536"));
    s.tag_dim = static_cast<int>(t);
    s.vocab = vocabulary_from_text(get("vocabulary"), cat(path, ": metadata 'vocabulary'"));
    if (s.tag_dim <= 0 || static_cast<int>(s.vocab.size()) != s.tag_dim)
      throw Error(cat(path, ": metadata 'vocabulary' does not hold tag_dim (", s.tag_dim, ") phrases"));
  }
  if (auto it = ck.metadata.find("class_names"); it != ck.metadata.end()) {  // class-folder sets
    s.class_names = class_names_from_text(it->second, cat(path, ": metadata 'class_names'"));
    if (static_cast<int>(s.class_names.size()) != s.num_classes)
      throw Error(cat(path, ": metadata 'class_names' holds ", s.class_names.size(), " names but 'num_classes' is ",
                      s.num_classes));
  }
  return s;
}

// Every metadata field a reader relies on, checked against what the stored config's data.kind
// produces (data_of_kind), so that no later stage (a scatter plot, a label table, a grid) meets a
// shape that contradicts the tensors it was trained with. The tensors themselves are checked
// against the models' own parameter slots where the models are built (load_model_params).
CheckpointInfo read_checkpoint_info(const SafeTensors& ck, const std::string& path,
                                    const std::vector<std::string>& overrides) {
  CheckpointInfo info;
  info.cfg = config_from_checkpoint(ck, path, overrides);
  info.shape = data_shape_from_metadata(ck, path);
  const Config& cfg = info.cfg;
  const DataShape& s = info.shape;
  const DataSpec& d = cfg.data;
  const std::string kind = cat("data.kind \"", d.kind, "\"");
  auto bad = [&](const std::string& key, const std::string& have, const std::string& want) {
    return Error(cat(path, ": metadata '", key, "' is ", have, " but the stored config's ", kind, " ", want));
  };
  const std::string shape_text = cat(s.channels, ",", s.height, ",", s.width);
  const bool points = d.points();
  if (points && !(s.channels == 1 && s.height == 1 && s.width == 2))
    throw bad("data_shape", shape_text, "has 2-D points (1,1,2)");
  if (!points && s.is_points()) throw bad("data_shape", shape_text, "has images (H > 1)");
  if (d.idx() && s.channels != 1) throw bad("data_shape", shape_text, "has grey images (C = 1)");
  const bool class_folder = d.kind == DataKind::Kind::image_folder;
  if ((d.kind == DataKind::Kind::anime || d.kind == DataKind::Kind::images || class_folder) &&
      (s.channels != 3 || s.height != d.height || s.width != d.width))
    throw bad("data_shape", shape_text, cat("has ", 3, "x", d.height, "x", d.width, " images (data.size)"));
  const float lo = points ? 0.f : d.lo, hi = points ? 1.f : d.hi;
  auto near = [](float a, float b) { return std::fabs(a - b) <= 1e-5f * std::max(1.f, std::fabs(b)); };
  if (!near(s.lo, lo) || !near(s.hi, hi)) throw bad("data_range", cat(s.lo, ",", s.hi), cat("has ", lo, ",", hi));
  const bool tagged = d.kind == DataKind::Kind::anime || d.kind == DataKind::Kind::images;
  if (tagged != (s.tag_dim > 0))
    throw bad("tag_dim", ck.metadata.count("tag_dim") ? cat(s.tag_dim) : std::string("missing"),
              tagged ? "has tags" : "has no tags");
  if (class_folder != !s.class_names.empty())
    throw bad("class_names", class_folder ? std::string("missing") : std::string("present"),
              class_folder ? "names its classes" : "has no class names");
  int want_lo = 0, want_hi = 0;  // the class count the kind produces
  if (class_folder)
    want_lo = want_hi = static_cast<int>(s.class_names.size());  // checked above
  else if (d.kind == DataKind::Kind::gaussian)
    want_lo = want_hi = 0;
  else if (d.kind == DataKind::Kind::mixture)
    want_lo = want_hi = d.modes;
  else if (d.idx())
    want_lo = want_hi = 10;
  else {  // hair colours; an image folder adds one class for faces without a hair phrase
    want_lo = hair_phrase_count(s.vocab);
    want_hi = want_lo + (d.kind == DataKind::Kind::images ? 1 : 0);
  }
  if (s.num_classes < want_lo || s.num_classes > want_hi)
    throw bad(
        "num_classes", cat(s.num_classes),
        want_lo == want_hi ? cat("has ", want_lo, " classes") : cat("has ", want_lo, " or ", want_hi, " classes"));
  return info;
}

std::unique_ptr<Model> load_generator(Backend& be, const CheckpointInfo& info, const SafeTensors& ck,
                                      const std::string& path, bool use_ema) {
  const Config& cfg = info.cfg;
  auto G = std::make_unique<Model>(be, cfg.generator, cfg.noise_dim, condition_width(cfg.generator, info.shape), 1,
                                   "generator");
  if (G->out_dim() != info.shape.dim())
    throw Error(cat(path, ": the generator produces ", G->out_dim(), " values per sample but metadata 'data_shape' (",
                    info.shape.channels, ",", info.shape.height, ",", info.shape.width, ") holds ", info.shape.dim()));
  const TensorLayout layout = checkpoint_layout(ck, path);
  check_checkpoint_tensors(be, info, ck, path, G.get());
  const bool ema = use_ema && checkpoint_has_ema(ck);  // train.ema's average, when the checkpoint has one
  load_model_params(*G, ck, ema ? kEmaNet : "generator", path, layout);
  return G;
}

void check_checkpoint_tensors(Backend& be, const CheckpointInfo& info, const SafeTensors& ck, const std::string& path,
                              const Model* generator) {
  const Config& cfg = info.cfg;
  const TensorLayout layout = checkpoint_layout(ck, path);
  std::unique_ptr<Model> own;
  if (!generator) {
    own = std::make_unique<Model>(be, cfg.generator, cfg.noise_dim, condition_width(cfg.generator, info.shape), 1,
                                  "generator");
    generator = own.get();
  }
  check_known_tensors(*generator, ck, "generator", path, layout, true);
  if (layout == TensorLayout::torch) check_known_tensors(*generator, ck, kEmaNet, path, layout, false);
  const Model D(be, cfg.discriminator, info.shape.dim(), condition_width(cfg.discriminator, info.shape), 1,
                "discriminator");
  check_known_tensors(D, ck, "discriminator", path, layout, true);
}

Config config_from_checkpoint(const SafeTensors& ck, const std::string& path,
                              const std::vector<std::string>& overrides) {
  auto it = ck.metadata.find("config");
  if (it == ck.metadata.end()) throw Error(cat(path, ": metadata 'config' is missing (not a cgan_gpu checkpoint?)"));
  json j;
  try {
    j = parse_json_text(it->second, "metadata 'config'");
  } catch (const Error& e) {
    throw Error(cat(path, ": ", e.what()));
  }
  for (auto& o : overrides) apply_override(j, o);
  try {
    return parse_config(j);
  } catch (const Error& e) {
    throw Error(cat(path, ": config: ", e.what()));
  }
}

}  // namespace cgan
