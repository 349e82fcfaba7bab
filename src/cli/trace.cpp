// `cgan_gpu trace` (hidden): step traces for the PyTorch parity tests.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/base/error.hpp"
#include "cgan/nn/state_dict.hpp"
#include "cgan/train/trainer.hpp"

#include "cli.hpp"

namespace cgan::cli {

// Hidden (the PyTorch parity tests, debugging; docs/DECISIONS.md "Step traces"):
//   cgan_gpu trace --config FILE --out DIR [--steps N] [--full K] [--set K=V]... [--device D]
// initialises as training does, writes DIR/init.safetensors (the initial checkpoint), then runs N
// iterations (default 1), writing DIR/step_<n>.safetensors after each: the inputs it drew, its
// losses and, for the first K iterations (default all), the gradients and the weights after.
int cmd_trace(Args& a) {
  std::string config_path, out_dir, device;
  std::vector<std::string> sets;
  long long steps = 1, full = -1;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (f == "--config")
      config_path = a.value(f);
    else if (f == "--set")
      sets.push_back(a.value(f));
    else if (f == "--out")
      out_dir = a.value(f);
    else if (f == "--steps")
      steps = parse_count(f, a.value(f), 1, 1000000);
    else if (f == "--full")
      full = parse_count(f, a.value(f), 0, 1000000);
    else if (f == "--device")
      device = a.value(f);
    else
      throw Usage(cat("unknown option '", f, "' (see the comment above cmd_trace)"));
  }
  if (config_path.empty() || out_dir.empty()) throw Usage("trace: --config FILE and --out DIR are required");
  Config cfg = load_config(config_path, sets);
  if (!device.empty()) cfg.device = check_device(device);
  auto be = make_backend(cfg.device, {cfg.precision});
  HostDataset data = load_dataset(cfg.data, true);
  Trainer t(cfg, *be, data);
  t.init();
  std::filesystem::create_directories(out_dir);
  const SafeTensors init = t.snapshot();
  write_safetensors(out_dir + "/init.safetensors", init);
  for (long long k = 1; k <= steps; ++k) {
    SafeTensors st;
    st.metadata["format"] = "cgan_gpu.trace.v1";
    st.metadata["checkpoint_format"] =
        kCheckpointFormatV1;  // the trace's weights and gradients: the engine's own layout
    st.metadata["step"] = std::to_string(k);
    t.set_trace(&st, full < 0 || k <= full);
    t.step();
    t.set_trace(nullptr);
    t.take_rows();
    write_safetensors(cat(out_dir, "/step_", k, ".safetensors"), st);
  }
  std::fprintf(stderr, "cgan_gpu: traced %lld iterations of %s on %s into %s\n", steps, cfg.name.c_str(),
               be->name().c_str(), out_dir.c_str());
  return 0;
}

}  // namespace cgan::cli
