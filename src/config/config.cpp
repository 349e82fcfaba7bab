#include "cgan/config/config.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

#include "cgan/data/tags.hpp"  // the tag vocabulary
#include "cgan/base/error.hpp"
#include "cgan/base/io.hpp"
#include "cgan/config/json_obj.hpp"
#include "cgan/config/layer_syntax.hpp"

namespace cgan {
using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxJsonFileBytes = uint64_t(64) << 20;  // a config or spec is a few KB
constexpr int kMaxJsonDepth = 64;                           // a config nests 5 deep

// Appends v as compact JSON, stopping once `out` is past `limit` characters or `depth` levels:
// the cost is bounded by the excerpt, not by the value (which may nest 100,000 deep).
void excerpt_into(const json& v, std::string& out, size_t limit, int depth) {
  if (out.size() > limit) return;
  if (depth <= 0 && (v.is_object() || v.is_array()) && !v.empty()) {
    out += v.is_object() ? "{...}" : "[...]";
    return;
  }
  if (v.is_object() || v.is_array()) {
    out += v.is_object() ? '{' : '[';
    bool first = true;
    for (auto it = v.begin(); it != v.end() && out.size() <= limit; ++it) {
      if (!first) out += ',';
      first = false;
      if (v.is_object()) out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace) + ":";
      excerpt_into(it.value(), out, limit, depth - 1);
    }
    out += v.is_object() ? '}' : ']';
    return;
  }
  out += v.dump(-1, ' ', false, json::error_handler_t::replace);
}

using cfg::describe;
using cfg::int_pair;
using cfg::join_path;
using cfg::Obj;

const std::vector<std::string> kConditionModes = {"none",           "concat_onehot", "embed_concat",
                                                  "embed_multiply", "label_plane",   "projection"};

// A layer: one key naming its kind (a registered unit, cgan/config/layer_syntax.hpp); a kind that
// takes spectral normalization may add "spectral_norm": true/false beside it (default: the
// network's `spectral_norm`, sn_default), or inside its object where its unit reads it there.
LayerSpec parse_layer(const json& j, const std::string& p, bool sn_default) {
  const bool sn_key = j.is_object() && j.size() == 2 && j.contains("spectral_norm");
  if (!j.is_object() || (j.size() != 1 && !sn_key))
    throw Error(cat(p, ": expected an object with one key naming the layer (", layer_kind_list(),
                    ") and, for linear and conv2d, optionally \"spectral_norm\", got ", describe(j)));
  auto first = j.begin();
  if (sn_key && first.key() == "spectral_norm") ++first;
  const std::string type = first.key();
  const json& v = first.value();
  const std::string vp = p + "." + type;
  const LayerSyntax* unit = find_layer_syntax(type);
  if (!unit) throw Error(cat(p, ": unknown layer type \"", type, "\" (expected one of ", layer_kind_list(), ")"));
  LayerSpec l;
  l.kind = unit->name();
  l.spectral_norm = sn_default && unit->takes_spectral_norm();
  const json* sn = sn_key ? &j.at("spectral_norm") : nullptr;
  if (sn && !unit->takes_spectral_norm())
    throw Error(
        cat(p, ".spectral_norm: only linear and conv2d layers take spectral normalization (this is a ", type, ")"));
  const json* sn_inner = nullptr;
  unit->parse(v, vp, l, &sn_inner);
  if (sn_inner) {
    if (sn) throw Error(cat(vp, ".spectral_norm: given twice (also beside \"", type, "\"); keep one"));
    sn = sn_inner;
  }
  if (sn) {
    const std::string sp = j.contains("spectral_norm") ? p + ".spectral_norm" : vp + ".spectral_norm";
    if (!sn->is_boolean()) throw Error(cat(sp, ": expected true or false, got ", describe(*sn)));
    l.spectral_norm = sn->get<bool>();
  }
  return l;
}

// The shape of one sample as it flows through a network's layers, checked where the config alone
// decides it (the input width is the data's, so a reshape of the input is checked by the model).
void check_shapes(const std::vector<LayerSpec>& layers, const std::string& p) {
  ConfigShape s;
  for (size_t i = 0; i < layers.size(); ++i)
    layer_syntax(layers[i].kind).check_shape(layers[i], s, cat(p, "[", i, "].", layers[i].kind));
}

NetSpec parse_net(const json& j, const std::string& p, int* noise_dim) {
  Obj o(j, p);
  NetSpec n;
  if (noise_dim) *noise_dim = static_cast<int>(o.integer("noise_dim", 100, 1, 1 << 20));
  if (const json* c = o.get("condition")) {
    Obj co(*c, o.at("condition"));
    n.condition.mode = co.string("mode", "concat_onehot", kConditionModes);
    n.condition.embed_dim = static_cast<int>(co.integer("embed_dim", 0, 0, 1 << 20));
    co.finish();
    const bool sized = n.condition.mode.sized();
    if (n.condition.embed_dim != 0 && !sized)
      throw Error(cat(co.at("embed_dim"), ": only used with modes \"embed_concat\" and \"label_plane\" (mode is \"",
                      n.condition.mode, "\")"));
    if (n.condition.mode == ConditionMode::label_plane && n.condition.embed_dim == 0)
      throw Error(cat(co.at("embed_dim"), ": mode \"label_plane\" needs the plane size H*W (e.g. 9216 for 96x96)"));
  }
  const json* layers = o.get("layers");
  if (!layers) throw Error(cat(o.at("layers"), ": missing (a list of layers is required)"));
  if (!layers->is_array() || layers->empty())
    throw Error(cat(o.at("layers"), ": expected a non-empty list of layers, got ", describe(*layers)));
  const bool sn_all = o.boolean("spectral_norm", false);  // every linear / conv2d unless it says otherwise
  for (size_t i = 0; i < layers->size(); ++i)
    n.layers.push_back(parse_layer((*layers)[i], cat(o.at("layers"), "[", i, "]"), sn_all));
  if (!layer_syntax(n.layers.front().kind).can_start())
    throw Error(cat(o.at("layers"), "[0]: the first layer must be linear or reshape"));
  check_shapes(n.layers, o.at("layers"));
  o.finish();
  return n;
}

AdamSpec parse_adam(const json* j, const std::string& p) {
  AdamSpec a;
  if (!j) return a;
  Obj o(*j, p);
  a.lr = static_cast<float>(o.number("lr", a.lr, 0.0, 10.0, true, false));
  a.beta1 = static_cast<float>(o.number("beta1", a.beta1, 0.0, 1.0, false, true));
  a.beta2 = static_cast<float>(o.number("beta2", a.beta2, 0.0, 1.0, false, true));
  a.eps = static_cast<float>(o.number("eps", a.eps, 0.0, 1.0, true, false));
  o.finish();
  return a;
}

// train.augment: a policy string ("color,translation,cutout"), a list of the transforms' names, or an
// object {"policy": one of those, "translation": ratio, "cutout": ratio}.
AugmentPolicy parse_augment(const json* j, const std::string& p) {
  AugmentPolicy a;
  if (!j) return a;
  const json* pol = j;
  std::string where = p;
  std::unique_ptr<Obj> o;
  if (j->is_object()) {
    o = std::make_unique<Obj>(*j, p);
    pol = o->get("policy");
    where = o->at("policy");
    if (!pol) throw Error(cat(where, ": missing (e.g. \"color,translation,cutout\")"));
  }
  static const char* const kOrder[] = {"color", "translation", "cutout"};
  const std::string want = "a policy such as \"color,translation,cutout\" (a string, or a list of names)";
  std::vector<std::string> names;
  if (pol->is_string()) {
    const std::string text = pol->get<std::string>();
    std::string item;
    std::istringstream in(text);
    while (std::getline(in, item, ',')) {
      const size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
      names.push_back(b == std::string::npos ? std::string() : item.substr(b, e - b + 1));
    }
    if (!text.empty() && text.back() == ',') names.push_back("");
    if (text.find_first_not_of(" \t") == std::string::npos) names.clear();  // "" or blanks: off
  } else if (pol->is_array()) {
    for (size_t i = 0; i < pol->size(); ++i) {
      if (!(*pol)[i].is_string())
        throw Error(
            cat(where, "[", i, "]: expected \"color\", \"translation\" or \"cutout\", got ", describe((*pol)[i])));
      names.push_back((*pol)[i].get<std::string>());
    }
  } else {
    throw Error(cat(where, ": expected ", want, ", got ", describe(*pol)));
  }
  bool* flag[] = {&a.color, &a.translation, &a.cutout};
  int last = -1;
  for (const std::string& name : names) {
    int k = -1;
    for (int i = 0; i < 3; ++i)
      if (name == kOrder[i]) k = i;
    if (k < 0)
      throw Error(
          cat(where, ": unknown transform ", describe(json(name)), " (known: \"color\", \"translation\", \"cutout\")"));
    if (*flag[k]) throw Error(cat(where, ": \"", name, "\" appears twice"));
    if (k < last)
      throw Error(cat(where, ": \"", name, "\" after \"", kOrder[last],
                      "\": DiffAugment applies color, translation, cutout in this order; list them so"));
    *flag[k] = true;
    last = k;
  }
  if (o) {
    for (int k = 1; k < 3; ++k)
      if (o->has(kOrder[k]) && !*flag[k])
        throw Error(cat(o->at(kOrder[k]), ": only used when the policy has \"", kOrder[k], "\""));
    a.translation_ratio = static_cast<float>(o->number("translation", a.translation_ratio, 0.0, 1.0, true));
    a.cutout_ratio = static_cast<float>(o->number("cutout", a.cutout_ratio, 0.0, 1.0, true));
    o->finish();
  }
  return a;
}

json augment_to_json(const AugmentPolicy& a) {
  json j = {{"policy", a.policy()}};
  if (a.translation) j["translation"] = a.translation_ratio;
  if (a.cutout) j["cutout"] = a.cutout_ratio;
  return j;
}

// A layer in the config's syntax; a spectrally normalised linear / conv2d says so beside its kind.
json layer_to_json(const LayerSpec& l) {
  const LayerSyntax& unit = layer_syntax(l.kind);
  json j = {{l.kind, unit.to_json(l)}};
  if (l.spectral_norm && unit.takes_spectral_norm()) j["spectral_norm"] = true;
  return j;
}

json net_to_json(const NetSpec& n) {
  json c = {{"mode", n.condition.mode.name()}};
  if (n.condition.mode.sized()) c["embed_dim"] = n.condition.embed_dim;
  json layers = json::array();
  for (auto& l : n.layers) layers.push_back(layer_to_json(l));
  return {{"condition", c}, {"layers", layers}};
}

json adam_to_json(const AdamSpec& a) { return {{"lr", a.lr}, {"beta1", a.beta1}, {"beta2", a.beta2}, {"eps", a.eps}}; }

}  // namespace

std::string AugmentPolicy::policy() const {
  std::string s;
  for (const auto& [on, name] :
       {std::pair<bool, const char*>{color, "color"}, {translation, "translation"}, {cutout, "cutout"}})
    if (on) s += (s.empty() ? "" : ",") + std::string(name);
  return s;
}

NetSpec parse_net_spec(const json& j, const std::string& path) { return parse_net(j, path, nullptr); }
json net_spec_to_json(const NetSpec& n) { return net_to_json(n); }

Config parse_config(const json& j, const std::string& name_hint) {
  Obj o(j, "");
  Config c;
  c.name = o.string("name", name_hint);
  if (c.name.empty() || c.name.find('/') != std::string::npos || c.name == "." || c.name == ".." || !valid_utf8(c.name))
    throw Error(cat("name: expected a non-empty UTF-8 name without '/', got ", describe(c.name)));
  c.description = o.string("description", "");
  c.device = o.string("device", "auto", {"auto", "cpu", "cuda"});
  c.precision = o.string("precision", "tf32", {"fp32", "tf32", "bf16"});
  c.cuda_graphs = o.boolean("cuda_graphs", true);

  // data
  {
    const json empty = json::object();
    const json* dj = o.get("data");
    Obj d(dj ? *dj : empty, "data");
    DataSpec& ds = c.data;
    ds.kind = d.string("kind", "mnist", DataKind::choices());
    const bool idx = ds.idx();
    const bool anime = ds.kind == DataKind::Kind::anime, folder = ds.kind == DataKind::Kind::images,
               classes = ds.kind == DataKind::Kind::image_folder;
    if (anime || folder || classes) ds.lo = -1.f, ds.hi = 1.f;
    if (idx || anime || folder || classes) {
      if (const json* r = d.get("range")) {
        if (!r->is_array() || r->size() != 2 || !(*r)[0].is_number() || !(*r)[1].is_number() ||
            !((*r)[0].get<double>() < (*r)[1].get<double>()))
          throw Error(cat("data.range: expected [lo, hi] with lo < hi, got ", describe(*r)));
        ds.lo = (*r)[0].get<float>();
        ds.hi = (*r)[1].get<float>();
      }
    }
    if (classes) {  // data.size: [height, width] or one int for both
      if (const json* v = d.get("size")) {
        if (v->is_number_integer())
          ds.height = ds.width = static_cast<int>(Obj::as_integer(*v, "data.size", 1, 4096));
        else if (!v->is_array() || v->size() != 2)
          throw Error(cat("data.size: expected [height, width] or one integer, got ", describe(*v)));
        else {
          ds.height = static_cast<int>(Obj::as_integer((*v)[0], "data.size[0]", 1, 4096));
          ds.width = static_cast<int>(Obj::as_integer((*v)[1], "data.size[1]", 1, 4096));
        }
      }
      if (!d.has("dir"))
        throw Error("data.dir: missing (data.kind \"image_folder\" needs the folder of class folders)");
      ds.dir = d.string("dir", "");
      if (ds.dir.empty()) throw Error("data.dir: expected the folder of class folders, got \"\"");
      ds.strict = d.boolean("strict", false);
    }
    if (anime || folder) {
      if (const json* v = d.get("size")) {
        const int lo = anime ? 16 : 1, hi = anime ? 1024 : 4096;
        if (!v->is_array() || v->size() != 2)
          throw Error(cat("data.size: expected [height, width], got ", describe(*v)));
        ds.height = static_cast<int>(Obj::as_integer((*v)[0], "data.size[0]", lo, hi));
        ds.width = static_cast<int>(Obj::as_integer((*v)[1], "data.size[1]", lo, hi));
      }
    }
    if (idx) {
      ds.dir = d.string("dir", ds.kind == DataKind::Kind::mnist ? "data/mnist" : "data/fashion");
    } else if (classes) {
      // parsed above
    } else if (folder) {
      if (!d.has("dir")) throw Error("data.dir: missing (data.kind \"images\" needs the folder of images)");
      ds.dir = d.string("dir", "");
      if (ds.dir.empty()) throw Error("data.dir: expected the folder of images, got \"\"");
      ds.tags = d.string("tags", "");
      ds.strict = d.boolean("strict", false);
      if (const json* v = d.get("vocabulary")) {
        if (v->is_string()) {
          ds.vocabulary_file = v->get<std::string>();
          if (ds.vocabulary_file.empty())
            throw Error("data.vocabulary: expected a list of tag phrases or a file name, got \"\"");
        } else if (v->is_array()) {
          std::vector<std::string> phrases;
          for (size_t i = 0; i < v->size(); ++i) {
            if (!(*v)[i].is_string())
              throw Error(cat("data.vocabulary[", i, "]: expected a tag phrase (string), got ", describe((*v)[i])));
            phrases.push_back((*v)[i].get<std::string>());
          }
          ds.vocabulary = check_vocabulary(phrases, "data.vocabulary");
        } else {
          throw Error(cat("data.vocabulary: expected a list of tag phrases or a file name, got ", describe(*v)));
        }
      }
    } else {
      ds.count = static_cast<int>(d.integer("count", ds.count, 1, 1 << 26));
      ds.seed = static_cast<uint64_t>(d.integer("seed", 0, 0));
      if (ds.kind == DataKind::Kind::gaussian) {
        auto pair = [&](const char* key, float& a, float& b, bool positive) {
          if (const json* v = d.get(key)) {
            if (!v->is_array() || v->size() != 2 || !(*v)[0].is_number() || !(*v)[1].is_number() ||
                (positive && !((*v)[0].get<double>() > 0 && (*v)[1].get<double>() > 0)))
              throw Error(
                  cat(d.at(key), ": expected [x, y]", positive ? " of positive numbers" : "", ", got ", describe(*v)));
            a = (*v)[0].get<float>();
            b = (*v)[1].get<float>();
          }
        };
        pair("mean", ds.mean_x, ds.mean_y, false);
        pair("std", ds.std_x, ds.std_y, true);
      } else if (ds.kind == DataKind::Kind::mixture) {
        ds.modes = static_cast<int>(d.integer("modes", ds.modes, 2, 1000));
        ds.radius = static_cast<float>(d.number("radius", ds.radius, 0.0, 1e6, true));
        ds.stddev = static_cast<float>(d.number("stddev", ds.stddev, 0.0, 1e6, true));
      }
    }
    d.finish();
  }

  // networks
  {
    const json* g = o.get("generator");
    if (!g) throw Error("generator: missing (the generator's layers are required)");
    c.generator = parse_net(*g, "generator", &c.noise_dim);
    const json* dj = o.get("discriminator");
    if (!dj) throw Error("discriminator: missing (the discriminator's layers are required)");
    c.discriminator = parse_net(*dj, "discriminator", nullptr);
    c.generator.bf16 = c.discriminator.bf16 = c.precision == "bf16";
  }

  // loss
  {
    const json empty = json::object();
    const json* lj = o.get("loss");
    Obj l(lj ? *lj : empty, "loss");
    c.loss.kind = l.string("kind", "log", LossType::choices());
    const bool three = c.loss.kind == LossType::Kind::three_term;
    c.loss.mismatch = l.string("mismatch", three ? "real_other_tags" : "none", Mismatch::choices());
    if (three && c.loss.mismatch == Mismatch::Kind::none)
      throw Error(cat(l.at("mismatch"),
                      ": loss.kind \"three_term\" is the log loss with the mismatched pair; "
                      "for no mismatched pair use loss.kind \"log\""));
    c.loss.d_weight =
        static_cast<float>(l.number("d_weight", c.loss.kind == LossType::Kind::squared ? 0.5 : 1.0, 0.0, 1e3, true));
    c.loss.real_target = static_cast<float>(l.number("real_target", 1.0, 0.0, 1.0, true));
    if (c.loss.kind == LossType::Kind::hinge && c.loss.real_target != 1.f)
      throw Error(cat(l.at("real_target"),
                      ": loss.kind \"hinge\" has fixed margins (relu(1 - D(x))); "
                      "real_target is for log and squared"));
    l.finish();
  }

  // optimizers
  {
    const json empty = json::object();
    const json* oj = o.get("optim");
    Obj op(oj ? *oj : empty, "optim");
    c.g_optim = parse_adam(op.get("generator"), "optim.generator");
    c.d_optim = parse_adam(op.get("discriminator"), "optim.discriminator");
    op.finish();
  }

  // train
  {
    const json empty = json::object();
    const json* tj = o.get("train");
    Obj t(tj ? *tj : empty, "train");
    c.train.steps = t.integer("steps", c.train.steps, 1);
    c.train.batch_size = static_cast<int>(t.integer("batch_size", c.train.batch_size, 1, 1 << 20));
    c.train.seed = static_cast<uint64_t>(t.integer("seed", 1, 0));
    c.train.d_steps = static_cast<int>(t.integer("d_steps", 1, 1, 100));
    c.train.fake_labels = t.string("fake_labels", "data", FakeLabels::choices());
    if (const json* ej = t.get("ema"); ej && !(ej->is_boolean() && !ej->get<bool>())) {
      if (!ej->is_object() && !ej->is_boolean())
        throw Error(cat(t.at("ema"),
                        ": expected an object such as {\"decay\": 0.999, \"start\": 1000}, true (the "
                        "defaults) or false, got ",
                        describe(*ej)));
      const json none = json::object();
      Obj e(ej->is_object() ? *ej : none, t.at("ema"));
      c.train.ema.enabled = true;
      c.train.ema.decay = static_cast<float>(e.number("decay", c.train.ema.decay, 0.0, 1.0, true, true));
      c.train.ema.start = e.integer("start", c.train.ema.start, 0, std::numeric_limits<int32_t>::max());
      e.finish();
    }
    c.train.augment = parse_augment(t.get("augment"), t.at("augment"));
    t.finish();
  }

  // log
  {
    const json empty = json::object();
    const json* lj = o.get("log");
    Obj l(lj ? *lj : empty, "log");
    c.log.every = l.integer("every", c.log.every, 1);
    c.log.flush_every = l.integer("flush_every", c.log.flush_every, 1, 100000);
    c.log.sample_every = l.integer("sample_every", c.log.sample_every, 0);
    c.log.checkpoint_every = l.integer("checkpoint_every", c.log.checkpoint_every, 0);
    c.log.keep_checkpoints = l.integer("keep_checkpoints", 0, 1);  // absent: keep every checkpoint
    c.log.avg_window = static_cast<int>(l.integer("avg_window", c.log.avg_window, 1, 1000000));
    c.log.samples_per_label = static_cast<int>(l.integer("samples_per_label", c.log.samples_per_label, 1, 100));
    c.log.progress = l.string("progress", "auto", {"auto", "plain", "none"});
    c.log.tensorboard = l.boolean("tensorboard", c.log.tensorboard);
    l.finish();
  }
  // eval
  {
    const json empty = json::object();
    const json* ej = o.get("eval");
    Obj e(ej ? *ej : empty, "eval");
    c.eval.every = e.integer("every", 0, 0);
    const bool images = c.data.idx() || c.data.kind == DataKind::Kind::image_folder;
    c.eval.classifier = e.string("classifier", images ? default_classifier_path(c.data) : "");
    c.eval.count = static_cast<int>(e.integer("count", c.eval.count, 2, 100000));
    c.eval.seed = static_cast<uint64_t>(e.integer("seed", 0, 0));
    e.finish();
    if (c.eval.every > 0 && (!images || !net_is_conditional(c.generator)))
      throw Error(
          "eval.every: the evaluator scores conditional generators of labelled images (data.kind mnist, "
          "fashion or image_folder, generator.condition.mode not \"none\")");
  }
  // distributed (data-parallel training under mpirun, docs/DISTRIBUTED.md)
  {
    const json empty = json::object();
    const json* dj = o.get("distributed");
    Obj d(dj ? *dj : empty, "distributed");
    c.distributed.sync_batchnorm = d.boolean("sync_batchnorm", false);
    d.finish();
    if (c.distributed.sync_batchnorm && has_conditional_bn(c.generator))
      throw Error(
          "distributed.sync_batchnorm: synchronized statistics are not implemented for conditional batch "
          "norm ({\"batchnorm\": {\"conditional\": true}} in the generator); leave it false (per-rank "
          "statistics)");
  }
  o.finish();

  // cross-key rules
  const bool points = c.data.points();
  const bool conditional_data = c.data.kind != DataKind::Kind::gaussian;
  for (const auto* np : {&c.generator, &c.discriminator}) {
    const std::string who = np == &c.generator ? "generator" : "discriminator";
    if (np->condition.mode != ConditionMode::none && !conditional_data)
      throw Error(cat(who, ".condition.mode: data.kind \"gaussian\" has no labels; use \"none\""));
  }
  if (c.train.augment.any() && points)
    throw Error(cat("train.augment: DiffAugment transforms images; data.kind \"", c.data.kind, "\" has 2-D points"));
  if (c.train.batch_size > c.data.count && (points || c.data.kind == DataKind::Kind::anime))
    throw Error(cat("train.batch_size: ", c.train.batch_size, " is larger than data.count ", c.data.count));
  const LayerSpec* dlast = nullptr;
  for (auto& l : c.discriminator.layers)
    if (l.kind != LayerKind::dropout) dlast = &l;
  if (c.loss.kind != LossType::Kind::squared && dlast && dlast->kind == LayerKind::sigmoid)
    throw Error(cat("discriminator.layers[", c.discriminator.layers.size() - 1, "]: loss.kind \"", c.loss.kind,
                    c.loss.kind == LossType::Kind::hinge
                        ? "\" scores D's raw output (a critic with margins at -1 and +1)"
                        : "\" applies the sigmoid itself (numerically stable BCE on the logit)",
                    "; end the discriminator with {\"linear\": 1}"));
  if (c.loss.kind == LossType::Kind::three_term &&
      (!net_is_conditional(c.generator) || !net_is_conditional(c.discriminator)))
    throw Error(
        "loss.kind: \"three_term\" scores mismatched image/label pairs, so the generator and the "
        "discriminator must both be conditional");
  if (c.loss.kind != LossType::Kind::three_term && c.loss.mismatched_pair() &&
      (!net_is_conditional(c.generator) || !net_is_conditional(c.discriminator)))
    throw Error(
        "loss.mismatch: the mismatched pair scores image/label pairs, so the generator and the "
        "discriminator must both be conditional");
  // projection (docs/DECISIONS.md "Projection discriminator and conditional batch norm")
  if (c.generator.condition.mode == ConditionMode::projection)
    throw Error(
        "generator.condition.mode: \"projection\" is a discriminator's mode (it adds <embed(y), phi(x)> to "
        "D's output); condition the generator with concat_onehot, embed_concat, embed_multiply or "
        "{\"batchnorm\": {\"conditional\": true}} layers");
  if (c.discriminator.condition.mode == ConditionMode::projection) {
    const LayerSpec& last = c.discriminator.layers.back();
    if (last.kind != LayerKind::linear || last.out != 1)
      throw Error(cat("discriminator.layers[", c.discriminator.layers.size() - 1,
                      "]: condition.mode \"projection\" needs the discriminator to end with {\"linear\": 1} (psi; "
                      "its input is phi(x), which the label's embedding is projected on), got ",
                      describe(layer_to_json(last))));
  }
  return c;
}

bool has_conditional_bn(const NetSpec& n) {
  for (const LayerSpec& l : n.layers)
    if (l.kind == LayerKind::batchnorm && l.conditional) return true;
  return false;
}

bool net_is_conditional(const NetSpec& n) { return n.condition.mode != ConditionMode::none || has_conditional_bn(n); }

// "mismatch" only when there is a mismatched pair and "real_target" not for hinge (which refuses it),
// so configs without them read as they were written.
static json loss_to_json(const LossSpec& loss) {
  json j = {{"kind", loss.kind.name()}};
  if (loss.mismatched_pair()) j["mismatch"] = loss.mismatch.name();
  j["d_weight"] = loss.d_weight;
  if (loss.kind != LossType::Kind::hinge) j["real_target"] = loss.real_target;
  return j;
}

static json train_to_json(const TrainSpec& train) {
  json j = {{"steps", train.steps},
            {"batch_size", train.batch_size},
            {"seed", train.seed},
            {"d_steps", train.d_steps},
            {"fake_labels", train.fake_labels.name()}};
  if (train.ema.enabled) j["ema"] = {{"decay", train.ema.decay}, {"start", train.ema.start}};
  return j;
}

json Config::to_json() const {
  json d = {{"kind", data.kind.name()}};
  if (data.idx()) {
    d["dir"] = data.dir;
    d["range"] = {data.lo, data.hi};
  } else if (data.kind == DataKind::Kind::images) {
    d["dir"] = data.dir;
    d["tags"] = data.tags;
    d["size"] = {data.height, data.width};
    d["range"] = {data.lo, data.hi};
    d["strict"] = data.strict;
    if (!data.vocabulary_file.empty())
      d["vocabulary"] = data.vocabulary_file;
    else
      d["vocabulary"] = data.vocabulary.empty() ? default_vocabulary() : data.vocabulary;
  } else if (data.kind == DataKind::Kind::image_folder) {
    d["dir"] = data.dir;
    d["size"] = {data.height, data.width};
    d["range"] = {data.lo, data.hi};
    d["strict"] = data.strict;
  } else if (data.kind == DataKind::Kind::anime) {
    d["count"] = data.count;
    d["seed"] = data.seed;
    d["size"] = {data.height, data.width};
    d["range"] = {data.lo, data.hi};
  } else {
    d["count"] = data.count;
    d["seed"] = data.seed;
    if (data.kind == DataKind::Kind::gaussian) {
      d["mean"] = {data.mean_x, data.mean_y};
      d["std"] = {data.std_x, data.std_y};
    } else {
      d["modes"] = data.modes;
      d["radius"] = data.radius;
      d["stddev"] = data.stddev;
    }
  }
  json g = net_to_json(generator);
  g["noise_dim"] = noise_dim;
  json out = {
      {"name", name},
      {"description", description},
      {"device", device},
      {"precision", precision},
      {"cuda_graphs", cuda_graphs},
      {"data", d},
      {"generator", g},
      {"discriminator", net_to_json(discriminator)},
      {"loss", loss_to_json(loss)},
      {"optim", {{"generator", adam_to_json(g_optim)}, {"discriminator", adam_to_json(d_optim)}}},
      {"train", train_to_json(train)},
      {"log",
       {{"every", log.every},
        {"flush_every", log.flush_every},
        {"sample_every", log.sample_every},
        {"checkpoint_every", log.checkpoint_every},
        {"avg_window", log.avg_window},
        {"samples_per_label", log.samples_per_label},
        {"progress", log.progress}}},
      {"eval", {{"every", eval.every}, {"classifier", eval.classifier}, {"count", eval.count}, {"seed", eval.seed}}},
  };
  // train.augment only when on: a run without it stores the config text it stored before the key
  if (train.augment.any()) out["train"]["augment"] = augment_to_json(train.augment);
  // only when set: the config of a single-process run (and of every checkpoint written before the
  // key existed) reads as before
  if (log.keep_checkpoints > 0)
    out["log"]["keep_checkpoints"] = log.keep_checkpoints;  // only when set: older configs store the same text
  if (distributed.sync_batchnorm) out["distributed"] = {{"sync_batchnorm", true}};
  // log.tensorboard only when off, for the same reason
  if (!log.tensorboard) out["log"]["tensorboard"] = false;
  return out;
}

std::string describe_json(const json& v, size_t max_chars) {
  std::string s;
  excerpt_into(v, s, max_chars, 8);
  if (s.size() > max_chars) s = s.substr(0, max_chars > 3 ? max_chars - 3 : 0) + "...";
  return s;
}

namespace {
// Thrown out of the parser callback: a duplicate key or absurd nesting (not a syntax error).
struct JsonShapeProblem {
  std::string what;
};
}  // namespace

json parse_json_text(const std::string& text, const std::string& where) {
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string key;   // object: the key whose value is being read
    size_t index = 0;  // array: the element being read
  };
  std::vector<Frame> st;
  auto key_path = [&](const std::string& last) {
    std::string p;
    for (size_t i = 0; i + 1 < st.size(); ++i)
      p += st[i].object ? (p.empty() ? "" : ".") + st[i].key : cat("[", st[i].index, "]");
    return p + (p.empty() ? "" : ".") + last;
  };
  auto element_done = [&] {
    if (!st.empty() && !st.back().object) ++st.back().index;
  };
  try {
    return json::parse(text, [&](int depth, json::parse_event_t ev, json& v) {
      using E = json::parse_event_t;
      if (depth > kMaxJsonDepth) throw JsonShapeProblem{cat("nests deeper than ", kMaxJsonDepth, " levels")};
      switch (ev) {
        case E::object_start: st.push_back({true, {}, {}, 0}); break;
        case E::array_start: st.push_back({false, {}, {}, 0}); break;
        case E::key: {
          const std::string k = v.get<std::string>();
          if (!st.back().keys.insert(k).second)
            throw JsonShapeProblem{cat("key \"", key_path(k), "\" appears twice (keys must be unique)")};
          st.back().key = k;
          break;
        }
        case E::object_end:
        case E::array_end:
          st.pop_back();
          element_done();
          break;
        case E::value: element_done(); break;
      }
      return true;
    });
  } catch (const JsonShapeProblem& p) {
    throw JsonStructureError(cat(where, ": ", p.what));
  } catch (const json::parse_error& e) {
    std::string msg = e.what();
    const auto at = msg.find("parse error");
    throw Error(cat(where, ": not valid JSON: ", at == std::string::npos ? msg : msg.substr(at)));
  }
}

void apply_override(json& j, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(cat("--set ", describe_json(json(assignment)), ": expected key.path=value"));
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  if (!valid_utf8(path)) throw Error("--set: the key is not valid UTF-8");
  if (!valid_utf8(text)) throw Error(cat("--set ", path, ": the value is not valid UTF-8"));
  json value;
  try {
    value = parse_json_text(text, cat("--set ", path));
  } catch (const JsonStructureError&) {
    throw;  // JSON, but nested too deep or with a repeated key
  } catch (const Error&) {
    value = text;  // not JSON: a plain string
  }
  json* cur = &j;
  std::string done;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '[') {
      const auto close = path.find(']', i);
      if (close == std::string::npos) throw Error(cat("--set ", path, ": missing ']'"));
      const std::string num = path.substr(i + 1, close - i - 1);
      if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos)
        throw Error(cat("--set ", path, ": bad index [", num, "]"));
      if (num.size() > 9) throw Error(cat("--set ", path, ": index [", num, "] is too large"));
      const size_t idx = std::stoul(num);
      if (!cur->is_array() || idx >= cur->size())
        throw Error(cat("--set ", path, ": ", done.empty() ? "config" : done, " has no element [", idx, "]"));
      cur = &(*cur)[idx];
      done += "[" + num + "]";
      i = close + 1;
      if (i < path.size() && path[i] == '.') ++i;
      continue;
    }
    size_t end = path.find_first_of(".[", i);
    if (end == std::string::npos) end = path.size();
    const std::string key = path.substr(i, end - i);
    if (key.empty()) throw Error(cat("--set ", path, ": empty key"));
    if (cur->is_null()) *cur = json::object();
    if (!cur->is_object()) throw Error(cat("--set ", path, ": ", done.empty() ? "config" : done, " is not an object"));
    cur = &(*cur)[key];
    done += (done.empty() ? "" : ".") + key;
    i = end;
    if (i < path.size() && path[i] == '.') ++i;
  }
  *cur = value;
}

json read_json_file(const std::string& path, const std::string& what, const std::string& open_hint) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(cat(path, ": cannot open ", what, open_hint));
  return parse_json_text(read_regular_file(path, what, kMaxJsonFileBytes), path);
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  json j = read_json_file(path, "config file");
  for (auto& o : overrides) apply_override(j, o);
  std::string stem = path;
  if (auto s = stem.find_last_of('/'); s != std::string::npos) stem = stem.substr(s + 1);
  if (auto d = stem.rfind(".json"); d != std::string::npos && d + 5 == stem.size()) stem = stem.substr(0, d);
  return parse_config(j, stem);
}

std::string default_classifier_path(const std::string& kind, int height, int width, const std::string& dir) {
  if (kind == "anime") return cat("classifiers/anime_", height, "x", width, ".safetensors");
  if (kind == "image_folder") {
    const std::filesystem::path p(dir);
    std::string name = (p.has_filename() ? p : p.parent_path()).filename().string();  // "data/shapes/" -> shapes
    if (name.empty() || name == "." || name == "..") name = "image_folder";
    return cat("classifiers/", name, "_", height, "x", width, ".safetensors");
  }
  return "classifiers/" + kind + ".safetensors";
}

std::string default_classifier_path(const DataSpec& data) {
  return default_classifier_path(data.kind.name(), data.height, data.width, data.dir);
}

}  // namespace cgan
