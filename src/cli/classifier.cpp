// `cgan_gpu classifier`: trains the evaluator's classifier on a real training set.
#include <cstdio>
#include <string>

#include "cgan/backend/backend.hpp"
#include "cgan/eval/classifier.hpp"
#include "cgan/report/progress.hpp"
#include "cgan/base/error.hpp"

#include "cli.hpp"

namespace cgan::cli {

int cmd_classifier(Args& a) {
  std::string kind, config_path, out, data_dir, device = "auto";
  long long steps = 0, size = 0;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("classifier");
    if (f == "--data")
      kind = a.value(f);
    else if (f == "--size")
      size = parse_count(f, a.value(f), 16, 1024);
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
    throw Usage("classifier: give --data mnist|fashion|anime (or --config FILE)");
  if (!kind.empty() && kind != "mnist" && kind != "fashion" && kind != "anime")
    throw Usage(cat("--data: expected mnist, fashion or anime, got '", kind, "'"));
  if (config_path.empty()) config_path = default_classifier_spec_path(kind);
  ClassifierSpec spec = load_classifier_spec(config_path);
  if (!kind.empty() && spec.data_kind != kind)
    throw Error(cat(config_path, ": data.kind is \"", spec.data_kind, "\" but --data is ", kind));
  kind = spec.data_kind;
  if (size > 0) {  // the spec again with data.size set, so its input shape follows
    if (kind != "anime") throw Usage("--size is for --data anime (MNIST-style images are 28x28)");
    nlohmann::json j = read_json_file(config_path, "classifier spec");
    j["data"]["size"] = {size, size};
    spec = parse_classifier_spec(j, config_path);
  }
  if (steps > 0) spec.steps = steps;
  if (out.empty()) out = default_classifier_path(kind, spec.height, spec.width);
  if (data_dir.empty()) data_dir = "data/" + kind;
  auto be = make_backend(device);
  const ClassifierTrained r = train_classifier_file(*be, spec, data_dir, "--data-dir", out);
  std::printf("test accuracy %.4f (%d %s test images), %lld steps in %s; wrote %s\n", r.test_accuracy, r.test_count,
              kind.c_str(), static_cast<long long>(spec.steps), format_duration(r.seconds).c_str(), out.c_str());
  return 0;
}

}  // namespace cgan::cli
