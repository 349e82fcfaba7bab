#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/eval/classifier.hpp"

#include "cgan/data/anime_faces.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/base/streams.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "cgan/base/error.hpp"
#include "cgan/report/progress.hpp"
#include "cgan/nn/state_dict.hpp"
#include "cgan/base/stop.hpp"

namespace cgan {
using json = nlohmann::json;

namespace {

std::string describe(const json& v) { return describe_json(v); }

void only_keys(const json& o, const std::string& where, const std::set<std::string>& keys) {
  if (!o.is_object())
    throw Error(cat(where.empty() ? "classifier spec" : where, ": expected an object, got ", describe(o)));
  for (auto it = o.begin(); it != o.end(); ++it)
    if (!keys.count(it.key())) throw Error(cat(where.empty() ? "" : where + ".", it.key(), ": unknown key"));
}

double number(const json& o, const std::string& key, const std::string& where, double def, double lo, double hi,
              bool integer) {
  auto it = o.find(key);
  if (it == o.end()) return def;
  const std::string p = where.empty() ? key : where + "." + key;
  if (!it->is_number()) throw Error(cat(p, ": expected a number, got ", describe(*it)));
  const double v = it->get<double>();
  if (integer && std::floor(v) != v) throw Error(cat(p, ": expected an integer, got ", describe(*it)));
  if (!(v >= lo && v <= hi)) throw Error(cat(p, ": expected a value in [", lo, ", ", hi, "], got ", describe(*it)));
  return v;
}

std::string meta(const SafeTensors& f, const std::string& key, const std::string& path) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) throw Error(cat(path, ": metadata '", key, "' is missing"));
  return it->second;
}

}  // namespace

json ClassifierSpec::to_json() const {
  json j = net_spec_to_json(net);
  json d = {{"kind", data_kind}, {"range", {lo, hi}}};
  if (data_kind == "anime") d["size"] = {height, width}, d["count"] = count;
  if (data_kind == "image_folder") d["size"] = {height, width}, d["dir"] = dir, d["test_fraction"] = test_fraction;
  return {{"description", description},
          {"data", d},
          {"layers", j["layers"]},
          {"train",
           {{"steps", steps},
            {"batch_size", batch_size},
            {"lr", adam.lr},
            {"beta1", adam.beta1},
            {"beta2", adam.beta2},
            {"seed", seed}}}};
}

ClassifierSpec parse_classifier_spec(const json& j, const std::string& path) {
  try {
    only_keys(j, "", {"description", "data", "layers", "train"});
    ClassifierSpec s;
    if (auto it = j.find("description"); it != j.end()) {
      if (!it->is_string()) throw Error(cat("description: expected a string, got ", describe(*it)));
      s.description = it->get<std::string>();
    }
    auto d = j.find("data");
    if (d == j.end()) throw Error("data: missing (e.g. {\"kind\": \"mnist\"})");
    auto k = d->find("kind");
    if (k == d->end() || !k->is_string() || (*k != "mnist" && *k != "fashion" && *k != "anime" && *k != "image_folder"))
      throw Error(cat("data.kind: expected \"mnist\", \"fashion\", \"anime\" or \"image_folder\", got ",
                      k == d->end() ? "nothing" : describe(*k)));
    s.data_kind = k->get<std::string>();
    int classes = s.data_kind == "anime" ? static_cast<int>(default_hair_tags().size()) : 10;
    if (s.data_kind == "image_folder") {
      only_keys(*d, "data", {"kind", "range", "size", "dir", "test_fraction"});
      s.channels = 3, s.lo = -1.f, s.hi = 1.f;
      auto dir = d->find("dir");
      if (dir == d->end())
        throw Error("data.dir: missing (the folder of class folders; cgan_gpu classifier --data-dir DIR fills it in)");
      if (!dir->is_string() || dir->get<std::string>().empty())
        throw Error(cat("data.dir: expected the folder of class folders, got ", describe(*dir)));
      s.dir = dir->get<std::string>();
      auto z = d->find("size");
      if (z == d->end()) throw Error("data.size: missing (N or [H, W]; cgan_gpu classifier --size N fills it in)");
      const bool one = z->is_number_integer(),
                 two = z->is_array() && z->size() == 2 && (*z)[0].is_number_integer() && (*z)[1].is_number_integer();
      if (!one && !two) throw Error(cat("data.size: expected N or [H, W], got ", describe(*z)));
      s.height = one ? z->get<int>() : (*z)[0].get<int>();
      s.width = one ? z->get<int>() : (*z)[1].get<int>();
      if (s.height < 1 || s.width < 1 || s.height > 4096 || s.width > 4096)
        throw Error(cat("data.size: expected sides 1..4096, got ", describe(*z)));
      s.test_fraction = number(*d, "test_fraction", "data", s.test_fraction, 0.01, 0.5, false);
      s.class_names = class_folder_names(s.dir);
      classes = static_cast<int>(s.class_names.size());
    } else if (s.data_kind == "anime") {
      only_keys(*d, "data", {"kind", "range", "size", "count"});
      s.channels = 3, s.height = s.width = 96, s.lo = -1.f, s.hi = 1.f;
      if (auto z = d->find("size"); z != d->end()) {
        if (!z->is_array() || z->size() != 2 || !(*z)[0].is_number_integer() || !(*z)[1].is_number_integer() ||
            (*z)[0].get<int>() < 16 || (*z)[1].get<int>() < 16 || (*z)[0].get<int>() > 1024 ||
            (*z)[1].get<int>() > 1024)
          throw Error(cat("data.size: expected [H, W] with sides 16..1024, got ", describe(*z)));
        s.height = (*z)[0].get<int>();
        s.width = (*z)[1].get<int>();
      }
      s.count = static_cast<int>(number(*d, "count", "data", s.count, 100, 1e6, true));
    } else {
      only_keys(*d, "data", {"kind", "range"});
    }
    if (auto r = d->find("range"); r != d->end()) {
      if (!r->is_array() || r->size() != 2 || !(*r)[0].is_number() || !(*r)[1].is_number() ||
          !((*r)[0].get<double>() < (*r)[1].get<double>()))
        throw Error(cat("data.range: expected [lo, hi] with lo < hi, got ", describe(*r)));
      s.lo = (*r)[0].get<float>();
      s.hi = (*r)[1].get<float>();
    }
    auto l = j.find("layers");
    if (l == j.end()) throw Error("layers: missing (a list of layers is required)");
    json layers = *l;
    if (layers.is_array())  // {"linear": "classes"}: one output per label of the data
      for (json& layer : layers)
        if (layer.is_object() && layer.size() == 1 && layer.contains("linear") && layer["linear"] == "classes")
          layer["linear"] = classes;
    if (layers.is_array() && !layers.empty() && layers[0].is_object() &&
        (layers[0].contains("conv2d") || layers[0].contains("avgpool2d") || layers[0].contains("maxpool2d")))
      layers.insert(layers.begin(), json{{"reshape", {s.channels, s.height, s.width}}});  // the data's image shape
    s.net = parse_net_spec(json{{"condition", {{"mode", "none"}}}, {"layers", layers}}, "");
    s.net.condition.mode = "none";
    feature_layer_of(s.net);  // throws when there is no feature layer
    if (auto t = j.find("train"); t != j.end()) {
      only_keys(*t, "train", {"steps", "batch_size", "lr", "beta1", "beta2", "seed"});
      s.steps = static_cast<int64_t>(number(*t, "steps", "train", static_cast<double>(s.steps), 1, 1e9, true));
      s.batch_size = static_cast<int>(number(*t, "batch_size", "train", s.batch_size, 1, 65536, true));
      s.adam.lr = static_cast<float>(number(*t, "lr", "train", s.adam.lr, 1e-9, 10, false));
      s.adam.beta1 = static_cast<float>(number(*t, "beta1", "train", s.adam.beta1, 0, 0.999999, false));
      s.adam.beta2 = static_cast<float>(number(*t, "beta2", "train", s.adam.beta2, 0, 0.999999, false));
      s.seed = static_cast<uint64_t>(number(*t, "seed", "train", 1, 0, 9e15, true));
    }
    return s;
  } catch (const Error& e) {
    throw Error(cat(path, ": ", e.what()));
  }
}

ClassifierSpec load_classifier_spec(const std::string& path) {
  const json j = read_json_file(path, "classifier spec", " (run from the repository root or give --config FILE)");
  return parse_classifier_spec(j, path);
}

ClassifierSpec load_classifier_spec_for(const std::string& path, const DataSpec& data) {
  json j = read_json_file(path, "classifier spec", " (run from the repository root or give --config FILE)");
  const std::string kind = data.kind.name();
  if (!j.is_object() || !j.contains("data") || !j["data"].is_object() || j["data"].value("kind", "") != kind)
    throw Error(cat(path, ": data.kind is not \"", kind, "\" (a classifier spec for the run's data is needed)"));
  if (data.kind == DataKind::Kind::anime || data.kind == DataKind::Kind::image_folder)
    j["data"]["size"] = {data.height, data.width};
  if (data.kind == DataKind::Kind::image_folder) j["data"]["dir"] = data.dir;
  return parse_classifier_spec(j, path);
}

std::string default_classifier_spec_path(const std::string& kind) { return "configs/classifier_" + kind + ".json"; }
HostDataset classifier_images(const std::string& kind, const std::string& dir, bool train, float lo, float hi,
                              int height, int width, int count, const std::string& key) {
  if (kind == "anime")  // test set: 5000 faces of another seed (fewer for a small training count)
    return make_anime_faces(train ? count : std::max(1000, std::min(5000, count / 4)), height, width, train ? 0 : 1, lo,
                            hi);
  try {
    return load_mnist_dir(dir, train, lo, hi);
  } catch (const Error& e) {
    throw Error(cat(key, ": ", e.what()));
  }
}

HostDataset reference_images(const std::string& kind, const std::string& dir, float lo, float hi, int height, int width,
                             const std::string& key) {
  if (kind != "image_folder") return classifier_images(kind, dir, false, lo, hi, height, width, 20000, key);
  ClassFolderSpec s;
  s.dir = dir, s.height = height, s.width = width, s.lo = lo, s.hi = hi;
  try {
    return load_class_folder(s, std::cerr);
  } catch (const Error& e) {
    const std::string m = e.what();  // "data.dir: ..." -> "<key>: ..."
    throw Error(m.rfind("data.dir: ", 0) == 0 ? cat(key, ": ", m.substr(10)) : m);
  }
}

int feature_layer_of(const NetSpec& net) {
  int last = -1;
  for (size_t i = 0; i < net.layers.size(); ++i)
    if (net.layers[i].kind == LayerKind::linear) last = static_cast<int>(i);
  if (last < 1)
    throw Error(
        "layers: a classifier needs a layer before its last linear layer (its output is the feature "
        "vector the evaluator measures)");
  return last - 1;
}

// ---------------------------------------------------------------- Classifier

Classifier::Classifier(Backend& be, const SafeTensors& f, const std::string& path, int batch) : be_(be), path_(path) {
  auto fmt = f.metadata.find("format");
  if (fmt == f.metadata.end() || fmt->second != kClassifierFormat)
    throw Error(cat(path, ": not a cgan_gpu classifier (metadata 'format' is ",
                    fmt == f.metadata.end() ? std::string("missing") : "'" + fmt->second + "'",
                    "; create one with: cgan_gpu classifier --data mnist)"));
  data_kind_ = meta(f, "data_kind", path);
  shape_ = data_shape_from_metadata(f, path);
  CGAN_CHECK(shape_.num_classes >= 2, path, ": metadata 'num_classes' must be at least 2");
  NetSpec net;
  try {
    net = parse_net_spec(json::parse(meta(f, "network", path)), "network");
    net.condition.mode = "none";
    feature_layer_ = feature_layer_of(net);
  } catch (const json::exception&) {
    throw Error(cat(path, ": metadata 'network' is not valid JSON"));
  } catch (const Error& e) {
    if (std::string(e.what()).rfind(path, 0) == 0) throw;
    throw Error(cat(path, ": metadata 'network': ", e.what()));
  }
  const std::string acc = meta(f, "test_accuracy", path);
  char* end = nullptr;
  test_accuracy_ = std::strtod(acc.c_str(), &end);
  if (acc.empty() || *end) throw Error(cat(path, ": metadata 'test_accuracy' is not a number: '", acc, "'"));
  model_ = std::make_unique<Model>(be, net, shape_.dim(), 0, batch, "classifier");
  if (model_->out_dim() != shape_.num_classes)
    throw Error(cat(path, ": the network ends with ", model_->out_dim(), " outputs but the data has ",
                    shape_.num_classes, " labels"));
  load_model_params(*model_, f, "classifier", path, TensorLayout::v1);
  x_ = Buffer<float>(be, static_cast<size_t>(batch) * shape_.dim());
  // the feature width, from the spec (a forward would tell too)
  int w = shape_.dim();
  for (int i = 0; i <= feature_layer_; ++i)
    if (net.layers[i].kind == LayerKind::linear) w = net.layers[i].out;
  feature_dim_ = w;
}

Classifier::~Classifier() = default;

void Classifier::run(const float* x, int64_t n, std::vector<float>* logits, std::vector<float>* features) {
  const int B = model_->batch(), P = shape_.dim(), K = shape_.num_classes;
  if (logits) logits->assign(static_cast<size_t>(n) * K, 0.f);
  if (features) features->assign(static_cast<size_t>(n) * feature_dim_, 0.f);
  for (int64_t off = 0; off < n; off += B) {
    const int m = static_cast<int>(std::min<int64_t>(B, n - off));
    be_.upload(x_, x + off * P, static_cast<size_t>(m) * P);
    if (m < B) be_.fill(x_ + static_cast<size_t>(m) * P, static_cast<size_t>(B - m) * P, 0.f);
    const float* out = model_->forward(x_, nullptr, nullptr, false);
    if (logits) be_.download(logits->data() + off * K, out, static_cast<size_t>(m) * K);
    if (features) {
      int w = 0;
      const float* h = model_->output_of(feature_layer_, &w);
      CGAN_CHECK(w == feature_dim_, path_, ": feature width ", w, " differs from the expected ", feature_dim_);
      be_.download(features->data() + off * feature_dim_, h, static_cast<size_t>(m) * w);
    }
  }
}

std::string classifier_command(const DataSpec& data, const std::string& out) {
  std::string c = cat("cgan_gpu classifier --data ", data.kind.name());
  if (data.kind == DataKind::Kind::image_folder) c += cat(" --data-dir ", data.dir);
  if (data.kind == DataKind::Kind::anime || data.kind == DataKind::Kind::image_folder)
    c += data.height == data.width ? cat(" --size ", data.height) : cat(" --size ", data.height, "x", data.width);
  return cat(c, " --out ", out);
}

std::unique_ptr<Classifier> load_classifier(Backend& be, const std::string& path, int batch, const std::string& make) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    std::string kind = "mnist";
    if (path.find("fashion") != std::string::npos) kind = "fashion";
    throw Error(cat(path, ": classifier file not found; create it with: ",
                    make.empty() ? cat("cgan_gpu classifier --data ", kind, " --out ", path) : make));
  }
  const SafeTensors f = read_safetensors(path);
  return std::make_unique<Classifier>(be, f, path, batch);
}

void check_classifier_matches(const Classifier& clf, const std::string& data_kind, const DataShape& s,
                              const std::string& what) {
  const DataShape& c = clf.shape();
  if (clf.data_kind() != data_kind || c.channels != s.channels || c.height != s.height || c.width != s.width ||
      c.num_classes != s.num_classes)
    throw Error(cat(clf.path(), ": classifier for ", clf.data_kind(), " images ", c.channels, "x", c.height, "x",
                    c.width, " with ", c.num_classes, " labels does not match ", what, " (", data_kind, " ", s.channels,
                    "x", s.height, "x", s.width, " with ", s.num_classes, " labels)"));
  if (c.class_names != s.class_names) {
    size_t k = 0;
    while (k < c.class_names.size() && k < s.class_names.size() && c.class_names[k] == s.class_names[k]) ++k;
    auto name = [&](const std::vector<std::string>& v) { return k < v.size() ? "\"" + v[k] + "\"" : "none"; };
    throw Error(cat(clf.path(), ": the classifier's classes differ from those of ", what, " (label ", k, " is ",
                    name(c.class_names), " for the classifier, ", name(s.class_names), " for the other)"));
  }
}

double accuracy_of(const std::vector<float>& logits, const std::vector<int32_t>& labels, int K) {
  if (labels.empty()) return 0;
  int64_t hit = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* r = logits.data() + i * K;
    int arg = 0;
    for (int k = 1; k < K; ++k)
      if (r[k] > r[arg]) arg = k;
    hit += arg == labels[i];
  }
  return static_cast<double>(hit) / static_cast<double>(labels.size());
}

// ---------------------------------------------------------------- training

SafeTensors train_classifier(Backend& be, const ClassifierSpec& spec, const HostDataset& train, const HostDataset& test,
                             double* test_accuracy, const std::function<void(int64_t, double, double)>& progress,
                             int64_t report_every) {
  const int B = spec.batch_size, P = train.dim(), K = train.num_classes;
  CGAN_CHECK(K >= 2, "classifier: the training set has no labels");
  CGAN_CHECK(B <= train.count, "classifier: train.batch_size ", B, " is larger than the training set (", train.count,
             " images)");
  CGAN_CHECK(test.dim() == P && test.num_classes == K, "classifier: test set shape differs from the training set");
  Model m(be, spec.net, P, 0, B, "classifier");
  if (m.out_dim() != K)
    throw Error(cat("classifier layers: the network ends with ", m.out_dim(), " outputs but ", spec.data_kind, " has ",
                    K, " labels (end with {\"linear\": ", K, "})"));
  m.init_params(spec.seed * 2 + 7);

  const Buffer<float> x_all(be, train.x.size());
  const Buffer<int32_t> y_all(be, train.count);
  const Buffer<int32_t> perm(be, train.count);
  const Buffer<float> xb(be, static_cast<size_t>(B) * P);
  const Buffer<int32_t> yb(be, B);
  const Buffer<float> acc(be, 2);
  be.upload(x_all, train.x.data(), train.x.size());
  be.upload_int(y_all, train.y.data(), train.y.size());

  int64_t epoch = -1, pos = 0, since = 0;
  for (int64_t step = 0; step < spec.steps; ++step) {
    if (epoch < 0 || pos + B > train.count) {
      ++epoch;
      pos = 0;
      be.permutation(train.count, spec.seed, kClassifierPermStream + static_cast<uint64_t>(epoch), perm);
    }
    be.gather_rows(B, P, train.count, x_all, perm + pos, xb);
    be.gather_int(B, train.count, y_all, perm + pos, yb);
    pos += B;
    throw_if_stopped("while training the classifier");
    m.zero_grads();
    const float* out =
        m.forward(xb, nullptr, nullptr, true, spec.seed, kClassifierDropStream + static_cast<uint64_t>(step));
    be.softmax_xent(B, K, out, yb, 1.f, m.grad_out_buffer(), acc);
    m.backward(m.grad_out_buffer(), nullptr);
    m.adam_step(spec.adam, static_cast<int>(std::min<int64_t>(step + 1, 1 << 30)));
    ++since;
    if (progress && ((step + 1) % report_every == 0 || step + 1 == spec.steps)) {
      float h[2];
      be.download(h, acc, 2);
      be.fill(acc, 2, 0.f);
      progress(step + 1, h[0] / static_cast<double>(since), h[1] / (static_cast<double>(since) * B));
      since = 0;
    }
  }

  SafeTensors st;
  put_model_params(st, be, m, "classifier", TensorLayout::v1);
  st.metadata["format"] = kClassifierFormat;
  st.metadata["network"] = net_spec_to_json(spec.net).dump();
  st.metadata["spec"] = spec.to_json().dump();
  st.metadata["data_kind"] = spec.data_kind;
  st.metadata["data_shape"] = cat(train.channels, ",", train.height, ",", train.width);
  st.metadata["num_classes"] = std::to_string(K);
  st.metadata["data_range"] = cat(spec.lo, ",", spec.hi);
  st.metadata["steps"] = std::to_string(spec.steps);
  st.metadata["feature_layer"] = std::to_string(feature_layer_of(spec.net));
  if (!train.class_names.empty()) st.metadata["class_names"] = class_names_text(train.class_names);  // as classes.txt
  if (!spec.dir.empty()) st.metadata["data_dir"] = spec.dir;
  st.metadata["test_accuracy"] = "0";

  // test accuracy, through the same loading path the evaluator uses
  Classifier c(be, st, "classifier", std::min(500, std::max(test.count, 1)));
  std::vector<float> logits;
  c.run(test.x.data(), test.count, &logits, nullptr);
  const double a = accuracy_of(logits, test.y, K);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", a);
  st.metadata["test_accuracy"] = buf;
  st.metadata["test_count"] = std::to_string(test.count);
  if (test_accuracy) *test_accuracy = a;
  return st;
}

// ---------------------------------------------------------------- a classifier file, trained

ClassifierTrained train_classifier_file(Backend& be, const ClassifierSpec& spec, const std::string& data_dir,
                                        const std::string& dir_key, const std::string& out) {
  const std::string& kind = spec.data_kind;
  HostDataset train, test;
  if (kind == "image_folder") {  // one folder, split: floor(n f) of each class held out
    const HostDataset all = reference_images(kind, spec.dir, spec.lo, spec.hi, spec.height, spec.width, dir_key);
    if (all.class_names != spec.class_names)
      throw Error(cat(dir_key, ": ", spec.dir, ": the class folders changed while the spec was read"));
    train = class_folder_split(all, spec.test_fraction, false);
    test = class_folder_split(all, spec.test_fraction, true);
  } else {
    train = classifier_images(kind, data_dir, true, spec.lo, spec.hi, spec.height, spec.width, spec.count, dir_key);
    test = classifier_images(kind, data_dir, false, spec.lo, spec.hi, spec.height, spec.width, spec.count, dir_key);
  }
  const std::filesystem::path parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw Error(cat(out, ": cannot create directory ", parent.string(), ": ", ec.message()));
  }
  std::fprintf(stderr, "cgan_gpu classifier: %s on %s, %d training images, %lld steps at batch %d\n", kind.c_str(),
               be.name().c_str(), train.count, static_cast<long long>(spec.steps), spec.batch_size);
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  ClassifierTrained r;
  SafeTensors st = train_classifier(
      be, spec, train, test, &r.test_accuracy,
      [&](int64_t step, double loss, double train_acc) {
        std::fprintf(stderr, "step %lld/%lld | loss %.4f | train acc %.4f | %s\n", static_cast<long long>(step),
                     static_cast<long long>(spec.steps), loss, train_acc, format_duration(seconds()).c_str());
      },
      std::max<int64_t>(1, std::min<int64_t>(500, spec.steps / 4)));
  r.seconds = seconds();
  r.test_count = test.count;
  st.metadata["train_seconds"] = cat(r.seconds);
  write_safetensors(out, st);  // a temporary name, then renamed
  return r;
}

bool train_missing_default_classifier(Backend& be, const DataSpec& data, const std::string& path) {
  const std::string kind = data.kind.name();
  std::error_code ec;
  if (path != default_classifier_path(data) || std::filesystem::exists(path, ec)) return false;
  const std::string spec_path = default_classifier_spec_path(kind);
  if (!std::filesystem::exists(spec_path, ec))
    throw Error(cat(path, ": classifier file not found, and ", spec_path,
                    ", the spec to train it from, is missing (run from the repository root, or create it with: ",
                    classifier_command(data, path), " --config SPEC)"));
  const ClassifierSpec spec = load_classifier_spec_for(spec_path, data);
  std::fprintf(stderr,
               "cgan_gpu: the evaluator's classifier %s does not exist yet: training it first from %s (%lld steps; "
               "once: later runs reuse it; --set eval.every=0 trains without evaluation)\n",
               path.c_str(), spec_path.c_str(), static_cast<long long>(spec.steps));
  const ClassifierTrained r = train_classifier_file(be, spec, data.dir, "data.dir", path);
  std::fprintf(stderr, "cgan_gpu: classifier test accuracy %.4f (%d %s test images), %lld steps in %s; wrote %s\n",
               r.test_accuracy, r.test_count, kind.c_str(), static_cast<long long>(spec.steps),
               format_duration(r.seconds).c_str(), path.c_str());
  return true;
}

}  // namespace cgan
