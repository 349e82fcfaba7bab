// `cgan_gpu classifier`: trains the evaluator's classifier on a real training set.
#include <cstdio>
#include <string>
#include <utility>

#include "cgan/backend/backend.hpp"
#include "cgan/eval/classifier.hpp"
#include "cgan/report/progress.hpp"
#include "cgan/base/error.hpp"

#include "cli.hpp"

namespace cgan::cli {

namespace {

// --size N or HxW (sides 16..1024 for anime, 1..4096 for a class folder)
std::pair<int, int> parse_size(const std::string& v, int lo, int hi) {
  const size_t x = v.find('x');
  if (x == std::string::npos) {
    const int n = static_cast<int>(parse_count("--size", v, lo, hi));
    return {n, n};
  }
  return {static_cast<int>(parse_count("--size", v.substr(0, x), lo, hi)),
          static_cast<int>(parse_count("--size", v.substr(x + 1), lo, hi))};
}

}  // namespace

int cmd_classifier(Args& a) {
  std::string kind, config_path, out, data_dir, device = "auto", size;
  long long steps = 0;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("classifier");
    if (f == "--data")
      kind = a.value(f);
    else if (f == "--size")
      size = a.value(f);
    else if (f == "--config")
      config_path = a.value(f);
    else if (f == "--steps")
      steps = parse_count(f, a.value(f), 1, 1000000000);
    else if (f == "--out")
      out = a.value(f);
    else if (f == "--data-dir")
      data_dir = a.value(f);
    else if (f == "--device")
      device = check_device(a.value(f));
    else
      throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
  }
  if (kind.empty() && config_path.empty())
    throw Usage("classifier: give --data mnist|fashion|anime|image_folder (or --config FILE)");
  if (!kind.empty() && kind != "mnist" && kind != "fashion" && kind != "anime" && kind != "image_folder")
    throw Usage(cat("--data: expected mnist, fashion, anime or image_folder, got '", kind, "'"));
  if (config_path.empty()) config_path = default_classifier_spec_path(kind);
  nlohmann::json j =
      read_json_file(config_path, "classifier spec", " (run from the repository root or give --config FILE)");
  const std::string file_kind = j.is_object() && j.contains("data") && j["data"].is_object() &&
                                        j["data"].contains("kind") && j["data"]["kind"].is_string()
                                    ? j["data"]["kind"].get<std::string>()
                                    : std::string();
  if (!kind.empty() && !file_kind.empty() && file_kind != kind)
    throw Error(cat(config_path, ": data.kind is \"", file_kind, "\" but --data is ", kind));
  if (kind.empty()) kind = file_kind;
  const bool folder = kind == "image_folder";
  if (!size.empty()) {  // the spec again with data.size set, so its input shape follows
    if (kind != "anime" && !folder)
      throw Usage("--size is for --data anime and image_folder (MNIST-style images are 28x28)");
    const auto [h, w] = folder ? parse_size(size, 1, 4096) : parse_size(size, 16, 1024);
    j["data"]["size"] = {h, w};
  }
  if (folder) {  // the class folders come from --data-dir, which the shipped spec leaves out
    if (!data_dir.empty())
      j["data"]["dir"] = data_dir;
    else if (!j["data"].contains("dir"))
      throw Usage("classifier: --data image_folder needs --data-dir DIR (the folder of class folders)");
    if (!j["data"].contains("size")) throw Usage("classifier: --data image_folder needs --size N (or HxW)");
  }
  ClassifierSpec spec = parse_classifier_spec(j, config_path);
  if (steps > 0) spec.steps = steps;
  if (out.empty()) out = default_classifier_path(kind, spec.height, spec.width, spec.dir);
  if (data_dir.empty()) data_dir = folder ? spec.dir : "data/" + kind;
  auto be = make_backend(device);
  const ClassifierTrained r = train_classifier_file(*be, spec, data_dir, "--data-dir", out);
  std::printf("test accuracy %.4f (%d %s test images), %lld steps in %s; wrote %s\n", r.test_accuracy, r.test_count,
              kind.c_str(), static_cast<long long>(spec.steps), format_duration(r.seconds).c_str(), out.c_str());
  return 0;
}

}  // namespace cgan::cli
