// `cgan_gpu sample`: images from a checkpoint, for labels, a label or tags.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cgan/data/class_folder.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/config/config.hpp"
#include "cgan/base/error.hpp"
#include "cgan/data/image.hpp"
#include "cgan/report/grid.hpp"
#include "cgan/train/sample.hpp"

#include "cli.hpp"

namespace cgan::cli {

int cmd_sample(Args& a) {
  std::string ckpt, labels, tags, label, out = "result.png", device = "auto", save_tensors, dump_dir;
  bool labels_given = false, tags_given = false, label_given = false, no_ema = false, interpolate = false;
  long long count = -1, seed = 1, rows = -1, steps = -1;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("sample");
    if (f == "--checkpoint")
      ckpt = a.value(f);
    else if (f == "--labels") {
      labels = a.value(f), labels_given = true;
      const size_t n = static_cast<size_t>(std::count(labels.begin(), labels.end(), ',')) + 1;
      if (n > kMaxSampleImages)
        throw Usage(cat("--labels: ", n, " labels given, at most ", kMaxSampleImages, " (one image each)"));
    } else if (f == "--tags")
      tags = a.value(f), tags_given = true;
    else if (f == "--label")
      label = a.value(f), label_given = true;  // a number or a class name: checked below
    else if (f == "--count")
      count = parse_count(f, a.value(f), 1, kMaxSampleImages);
    else if (f == "--seed")
      seed = parse_count(f, a.value(f), 0, (1LL << 62));
    else if (f == "--out")
      out = a.value(f);
    else if (f == "--save-tensors")
      save_tensors = a.value(f);
    else if (f == "--no-ema")
      no_ema = true;
    else if (f == "--interpolate")
      interpolate = true;
    else if (f == "--rows")
      rows = parse_count(f, a.value(f), 1, 1000);
    else if (f == "--steps")
      steps = parse_count(f, a.value(f), 2, 1000);
    else if (f == "--dump-dir")
      dump_dir = a.value(f);
    else if (f == "--device")
      device = a.value(f);
    else
      throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
  }
  if (ckpt.empty()) throw Usage("sample: --checkpoint CKPT is required");
  if (labels_given && label_given) throw Usage("sample: give either --labels or --label, not both");
  const SafeTensors ck = read_safetensors(ckpt);
  const CheckpointInfo info = read_checkpoint_info(ck, ckpt);
  const DataShape& shape = info.shape;
  const Config& cfg = info.cfg;
  const bool conditional = net_is_conditional(cfg.generator) && shape.num_classes > 0;
  SampleRequest req;
  req.seed = static_cast<uint64_t>(seed);
  req.save_tensors = save_tensors;
  req.ema = !no_ema;
  note_no_ema(no_ema, ck, ckpt);
  const bool tagged = shape.tag_dim > 0 && conditional;
  if ((rows > 0 || steps > 0) && !interpolate) throw Usage("sample: --rows and --steps go with --interpolate");
  if (interpolate || !dump_dir.empty()) {  // the grid of noise walks, or one PNG per image
    if (interpolate && !dump_dir.empty()) throw Usage("sample: give either --interpolate or --dump-dir, not both");
    if (labels_given)
      throw Usage(cat("sample: ", interpolate ? "--interpolate" : "--dump-dir", " takes --label N, not --labels"));
    if (tags_given && !tagged)
      throw Usage("sample: --tags is for models trained on tagged image sets; this one takes labels");
    if (tagged && label_given) throw Usage("sample: this model is conditioned on tags: give --tags, not --label");
    if (!conditional && label_given) throw Usage("sample: this model is unconditional: --label does not apply");
    if (tagged && !dump_dir.empty() && !tags_given)
      throw Usage("sample: this model is conditioned on tags: give --tags \"blue hair, yellow eyes\"");
    if (interpolate && count >= 0) throw Usage("sample: --interpolate takes --rows and --steps, not --count");
    auto be = make_backend(check_device(device), {cfg.precision});
    // --label: a class name or a number, as for a plain sample; -1 when not given
    const long long y = label_given ? label_from_text(label, shape.num_classes, shape.class_names, "--label") : -1;
    const SampleMode m{ck, ckpt, info, be.get(), conditional, y, count, rows, steps, tags, out, dump_dir};
    return interpolate ? sample_interpolate(m, req) : sample_dump(m, req);
  }
  if (tags_given && !tagged)
    throw Usage("sample: --tags is for models trained on tagged image sets; this one takes labels");
  if (tagged) {
    if (!tags_given) throw Usage("sample: this model is conditioned on tags: give --tags \"blue hair, yellow eyes\"");
    if (labels_given || label_given) throw Usage("sample: give --tags (and --count), not --labels/--label");
    const std::vector<float> t = tags_from_text(tags, shape.vocab);
    const int n = count > 0 ? static_cast<int>(count) : 16;
    for (int i = 0; i < n; ++i) {
      req.tags.insert(req.tags.end(), t.begin(), t.end());
      req.labels.push_back(static_cast<int32_t>(label_of_tags(t.data(), shape.vocab)));
    }
    req.cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
    req.rows = (n + req.cols - 1) / req.cols;
  } else if (conditional) {
    if (!labels_given && !label_given)
      throw Usage("sample: this model is conditional: give --labels LIST or --label N");
    if (labels_given) {
      if (count >= 0) throw Usage("sample: --count goes with --label, not --labels");
      req.labels = parse_label_list(labels, shape.num_classes, shape.class_names);
      req.rows = 1;
      req.cols = static_cast<int>(req.labels.size());
    } else {
      const int32_t y = label_from_text(label, shape.num_classes, shape.class_names, "--label");
      const int n = count > 0 ? static_cast<int>(count) : 16;
      req.labels.assign(n, y);
      req.cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
      req.rows = (n + req.cols - 1) / req.cols;
    }
  } else {
    if (labels_given || label_given) throw Usage("sample: this model is unconditional: give --count C only");
    req.count = count > 0 ? static_cast<int>(count) : 16;
    req.cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(req.count))));
    req.rows = (req.count + req.cols - 1) / req.cols;
  }
  auto be = make_backend(check_device(device), {cfg.precision});
  const Image img = sample_from_checkpoint(*be, ck, ckpt, req);
  write_png(out, img);
  std::fprintf(stderr, "cgan_gpu: wrote %s (%dx%d, %s generator)\n", out.c_str(), img.width, img.height,
               generator_kind(!no_ema, ck));
  return 0;
}

}  // namespace cgan::cli
