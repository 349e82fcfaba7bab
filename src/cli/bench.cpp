// `cgan_gpu bench`: median time per training iteration (and per op with --per-op).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cgan/backend/backend.hpp"
#include "cgan/config/config.hpp"
#include "cgan/train/distributed.hpp"
#include "cgan/base/error.hpp"
#include "cgan/base/io.hpp"
#include "cgan/backend/profile.hpp"
#include "cgan/nn/model.hpp"
#include "cgan/report/conv_probe.hpp"
#include "cgan/train/trainer.hpp"

#include "cli.hpp"

namespace cgan::cli {

namespace {

// --conv-probe: every conv of G and D through Backend::conv_probe; the table to stdout, every
// measured row to --json FILE.
int probe_convolutions(Backend& be, const Config& cfg, Trainer& t, const std::string& json_path) {
  std::vector<ConvProbeEntry> entries;
  for (Model* m : {&t.generator(), &t.discriminator()})
    for (const auto& [layer, shape] : m->conv_shapes()) {
      entries.push_back({m->name(), layer, shape, be.conv_probe(shape)});
      std::fprintf(stderr, "cgan_gpu bench: probed %s layer %d (%zu algorithms)\n", m->name().c_str(), layer,
                   entries.back().rows.size());
    }
  if (entries.empty()) throw Error(cat("--conv-probe: config ", cfg.name, " has no conv2d layer"));
  std::printf("Convolution probe: %s on %s, batch %d (cudnnFind times; deterministic = bit-identical run to run)\n\n%s",
              cfg.name.c_str(), be.name().c_str(), cfg.train.batch_size, conv_probe_table(entries).c_str());
  if (!json_path.empty()) {
    make_parent_dir(json_path);
    const nlohmann::json j = {{"config", cfg.name},
                              {"device", be.name()},
                              {"batch", cfg.train.batch_size},
                              {"convs", conv_probe_json(entries)}};
    write_file_atomic(json_path, j.dump(1) + "\n");
  }
  return 0;
}

}  // namespace

int cmd_bench(Args& a) {
  std::string config_path, device, json_path;
  std::vector<std::string> sets;
  long long steps = 200, batch = 0, repeats = 5;
  bool per_op = false, conv_probe = false;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("bench");
    if (f == "--config")
      config_path = a.value(f);
    else if (f == "--per-op")
      per_op = true;
    else if (f == "--conv-probe")
      conv_probe = true;
    else if (f == "--json")
      json_path = a.value(f);
    else if (f == "--set")
      sets.push_back(a.value(f));
    else if (f == "--steps")
      steps = parse_count(f, a.value(f), 1, 1000000);
    else if (f == "--batch")
      batch = parse_count(f, a.value(f), 1, 1 << 20);
    else if (f == "--repeats")
      repeats = parse_count(f, a.value(f), 1, 1000);
    else if (f == "--device")
      device = a.value(f);
    else
      throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
  }
  if (config_path.empty()) throw Usage("bench: --config FILE is required");
  if (batch > 0) sets.push_back(cat("train.batch_size=", batch));
  sets.push_back("train.steps=1000000000");
  sets.push_back(cat("log.flush_every=", std::min<long long>(steps, 100000)));
  sets.push_back(cat("log.every=", steps));
  if (per_op) sets.push_back("cuda_graphs=false");  // ops inside a captured graph cannot be timed one by one
  Config cfg = load_config(config_path, sets);
  if (!device.empty()) cfg.device = check_device(device);
  auto be = make_backend(cfg.device, {cfg.precision});
  const HostDataset data = load_dataset(cfg.data, true);
  Trainer t(cfg, *be, data, g_comm.get());  // under mpirun: the ranks share the batch, as in training
  if (conv_probe) return probe_convolutions(*be, cfg, t, json_path);
  t.init();
  auto run = [&] {
    for (long long i = 0; i < steps; ++i) t.step();
    t.take_rows();  // the scalars a logging step would read
  };
  be->time_ms(run);  // warm-up
  std::vector<double> ms;
  for (long long r = 0; r < repeats; ++r) ms.push_back(be->time_ms(run) / static_cast<double>(steps));
  std::sort(ms.begin(), ms.end());
  const double mem = be->device_memory_mib();  // nothing is allocated inside a step: this is the peak
  std::string per_op_json;
  if (per_op) {
    OpProfile prof(*be);
    run();  // a profiled warm-up: the event pool and the range names exist before the timed repeat
    prof.reset();
    const double wall = be->time_ms(run);
    prof.collect();
    std::printf("Per-op profile: %s on %s, batch %d, eager (no CUDA graph)\n\n%s\n", cfg.name.c_str(),
                be->name().c_str(), cfg.train.batch_size, prof.table(steps, wall).c_str());
    per_op_json = cat(", \"per_op\": ", prof.json(steps, wall));
  }
  auto ms4 = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.4f", v);
    return std::string(b);
  };
  const std::string json = cat(
      "{\"config\": \"", cfg.name, "\", \"device\": \"", be->name(), "\", \"batch\": ", cfg.train.batch_size,
      ", \"steps\": ", steps, ", \"repeats\": ", repeats, ", \"ms_per_iter\": ", ms4(ms[ms.size() / 2]),
      ", \"min_ms\": ", ms4(ms.front()), ", \"max_ms\": ", ms4(ms.back()),
      ", \"cuda_graph\": ", t.graph_active() ? "true" : "false",
      ", \"device_mem_mib\": ", mem < 0 ? std::string("null") : cat(static_cast<long long>(mem)), per_op_json, "}\n");
  if (g_comm && g_comm->rank() != 0) return 0;  // rank 0 reports
  std::fputs(json.c_str(), stdout);
  if (!json_path.empty()) {
    make_parent_dir(json_path);
    write_file_atomic(json_path, json);
  }
  return 0;
}

}  // namespace cgan::cli
