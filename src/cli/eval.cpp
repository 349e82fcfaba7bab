// `cgan_gpu eval`: scores a checkpoint's generator with the classifier (metrics.json).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/eval/classifier.hpp"
#include "cgan/config/config.hpp"
#include "cgan/base/error.hpp"
#include "cgan/eval/evaluate.hpp"
#include "cgan/data/class_folder.hpp"
#include "cgan/data/image.hpp"
#include "cgan/base/io.hpp"
#include "cgan/nn/state_dict.hpp"

#include "cli.hpp"

namespace cgan::cli {

std::string default_eval_dir(const std::string& ckpt) {
  const std::filesystem::path p = std::filesystem::absolute(ckpt).parent_path();
  return (p.filename() == "checkpoints" ? p.parent_path() : p).string();
}

// metrics.json with what every evaluation records about its inputs; returns the checkpoint's step.
long long write_metrics(nlohmann::json j, const SafeTensors& ck, const std::string& ckpt, const Config& cfg,
                        long long seed, const std::string& out) {
  auto step = ck.metadata.find("step");
  const long long s = step == ck.metadata.end() ? -1 : std::atoll(step->second.c_str());
  j["checkpoint"] = ckpt;
  j["step"] = s;
  j["data_kind"] = cfg.data.kind.name();
  j["seed"] = seed;
  write_file_atomic(out, j.dump(2) + "\n");
  return s;
}

// Procedural anime faces: attribute accuracy through the colour probe and, when a hair-colour
// classifier for the image size exists (cgan_gpu classifier --data anime --size N), the classifier
// figures as for MNIST (conditional accuracy on the hair label, FD, diversity) on the same images.
int eval_anime(Backend& be, const SafeTensors& ck, const std::string& ckpt, const Config& cfg, const DataShape& shape,
               long long count, long long seed, const std::string& out, std::string clf_path, bool use_ema) {
  const int n = static_cast<int>(std::min<long long>(count, 2000));
  const std::unique_ptr<Model> G = load_generator(be, {cfg, shape}, ck, ckpt, use_ema);
  const bool clf_given = !clf_path.empty();
  if (!clf_given) clf_path = default_classifier_path("anime", shape.height, shape.width);
  std::unique_ptr<Classifier> clf;
  if (clf_given || std::filesystem::exists(clf_path)) {  // checked before any image is generated
    clf = load_classifier(be, clf_path);
    check_classifier_matches(*clf, cfg.data.kind.name(), shape, "the checkpoint " + ckpt);
  }
  AnimeAttributeTally tally(shape);
  const ImageSource src = generator_source(be, cfg, *G, shape, n, static_cast<uint64_t>(seed));
  const ImageSource probed = [&](int hair, int m) {  // every image goes through the probe once
    std::vector<float> x = src(hair, m);
    tally.add(hair, x);
    return x;
  };
  nlohmann::json j;
  std::string clf_table;
  if (clf) {
    const HostDataset real =
        reference_images("anime", "", clf->shape().lo, clf->shape().hi, shape.height, shape.width, "anime");
    const EvalResult e = evaluate(*clf, prepare_reference(*clf, real), probed, eval_options(n, shape));
    j["classifier_eval"] = e.to_json();
    j["classifier"] = clf_path;
    j["classifier_test_accuracy"] = clf->test_accuracy();
    clf_table = cat("classifier ", clf_path, " (hair colour, test accuracy ", clf->test_accuracy(), ") on ", real.count,
                    " real test faces:\n", e.table());
  } else {
    for (int h = 0; h < static_cast<int>(default_hair_tags().size()); ++h) probed(h, n);
    clf_table = cat("(no hair-colour classifier at ", clf_path,
                    "; create one with: cgan_gpu classifier --data anime --size ", shape.height, ")\n");
  }
  const AnimeEvalResult r = tally.result();
  j.update(r.to_json());
  j["generator"] = use_ema && checkpoint_has_ema(ck) ? "ema" : "raw";
  const long long step = write_metrics(j, ck, ckpt, cfg, seed, out);
  std::printf("%s (step %lld, %s generator): %d generated images per hair colour, colour probe\n%s%s", ckpt.c_str(),
              step, generator_kind(use_ema, ck), n, r.table().c_str(), clf_table.c_str());
  std::fprintf(stderr, "cgan_gpu: wrote %s\n", out.c_str());
  return 0;
}

int cmd_eval(Args& a) {
  std::string ckpt, clf_path, out_dir, data_dir, device = "auto";
  long long count = 1000, seed = 0;
  bool no_ema = false;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("eval");
    if (f == "--checkpoint")
      ckpt = a.value(f);
    else if (f == "--classifier")
      clf_path = a.value(f);
    else if (f == "--count")
      count = parse_count(f, a.value(f), 2, 100000);
    else if (f == "--seed")
      seed = parse_count(f, a.value(f), 0, (1LL << 62));
    else if (f == "--out")
      out_dir = a.value(f);
    else if (f == "--data-dir")
      data_dir = a.value(f);
    else if (f == "--no-ema")
      no_ema = true;
    else if (f == "--device")
      device = check_device(a.value(f));
    else
      throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
  }
  if (ckpt.empty()) throw Usage("eval: --checkpoint CKPT is required");
  const SafeTensors ck = read_safetensors(ckpt);
  const CheckpointInfo info = read_checkpoint_info(ck, ckpt);
  const Config& cfg = info.cfg;
  const DataShape& shape = info.shape;
  const bool anime = cfg.data.kind == DataKind::Kind::anime;
  if (!anime && !cfg.data.idx() && cfg.data.kind != DataKind::Kind::image_folder)
    throw Error(cat(ckpt, ": data.kind is \"", cfg.data.kind,
                    "\"; the evaluator scores image models (mnist, fashion, anime, image_folder)"));
  if (!net_is_conditional(cfg.generator) || shape.num_classes == 0)
    throw Error(cat(ckpt, ": the generator is unconditional; the evaluator scores conditional generators"));
  if (out_dir.empty()) out_dir = default_eval_dir(ckpt);
  const std::string out = out_dir + "/metrics.json";
  note_no_ema(no_ema, ck, ckpt);
  if (anime) {
    make_parent_dir(out);
    auto be = make_backend(device, {cfg.precision});
    return eval_anime(*be, ck, ckpt, cfg, shape, count, seed, out, clf_path, !no_ema);
  }
  // MNIST-style sets and class folders: the classifier's figures against the real reference images
  DataSpec data = cfg.data;  // --data-dir: the real images (and the default classifier) from elsewhere
  if (!data_dir.empty()) data.dir = data_dir;
  if (clf_path.empty()) clf_path = default_classifier_path(data);
  auto be = make_backend(device, {cfg.precision});
  check_checkpoint_tensors(*be, info, ck, ckpt);  // the whole file, before the classifier and data are read
  std::unique_ptr<Classifier> clf = load_classifier(*be, clf_path, 500, classifier_command(data, clf_path));
  check_classifier_matches(*clf, cfg.data.kind.name(), shape, "the checkpoint " + ckpt);
  if (cfg.data.kind == DataKind::Kind::image_folder && class_folder_names(data.dir) != shape.class_names)
    throw Error(cat(data_dir.empty() ? "data.dir" : "--data-dir", ": ", data.dir,
                    ": its class folders are not the checkpoint's classes (metadata 'class_names')"));
  const HostDataset real = reference_images(cfg.data.kind.name(), data.dir, clf->shape().lo, clf->shape().hi,
                                            shape.height, shape.width, data_dir.empty() ? "data.dir" : "--data-dir");
  make_parent_dir(out);
  const int n = static_cast<int>(count);
  const std::unique_ptr<Model> G = load_generator(*be, info, ck, ckpt, !no_ema);
  const ImageSource src = generator_source(*be, cfg, *G, shape, n, static_cast<uint64_t>(seed));
  const EvalResult r = evaluate(*clf, prepare_reference(*clf, real), src, eval_options(n, shape));
  nlohmann::json j = r.to_json(shape.class_names);
  j["generator"] = !no_ema && checkpoint_has_ema(ck) ? "ema" : "raw";
  j["classifier"] = clf_path;
  j["classifier_test_accuracy"] = clf->test_accuracy();
  j["real_images"] = real.count;
  const long long step = write_metrics(j, ck, ckpt, cfg, seed, out);
  std::printf(
      "%s (step %lld, %s generator): %d generated images per label vs %d real %s; classifier %s "
      "(test accuracy %.4f)\n%s",
      ckpt.c_str(), step, generator_kind(!no_ema, ck), n, real.count,
      cfg.data.idx() ? "test images" : "images (the whole class folder)", clf_path.c_str(), clf->test_accuracy(),
      r.table(shape.class_names).c_str());
  std::fprintf(stderr, "cgan_gpu: wrote %s\n", out.c_str());
  return 0;
}

}  // namespace cgan::cli
