// cgan_gpu: the command line. Exit codes: 0 success; 1 bad input or a failed run (config, data
// file, checkpoint, I/O; the message names it); 2 bad command line; 3 a loss became non-finite;
// 130 stopped by SIGINT/SIGTERM after writing a checkpoint.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cgan/data/tags.hpp"
#include "cgan/backend/backend.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/eval/classifier.hpp"
#include "cgan/config/config.hpp"
#include "cgan/train/distributed.hpp"
#include "cgan/base/error.hpp"
#include "cgan/eval/evaluate.hpp"
#include "cgan/data/image.hpp"
#include "cgan/base/io.hpp"
#include "cgan/report/plot.hpp"
#include "cgan/backend/profile.hpp"
#include "cgan/report/progress.hpp"
#include "cgan/report/rundir.hpp"
#include "cgan/train/sample.hpp"
#include "cgan/base/stop.hpp"
#include "cgan/nn/state_dict.hpp"
#include "cgan/train/trainer.hpp"
#include "export_cmd.hpp"

namespace {
using namespace cgan;

namespace fs = std::filesystem;

struct Usage : Error {
  explicit Usage(const std::string& m) : Error(m) {}
};

// The process group when started by mpirun with more than one rank (docs/DISTRIBUTED.md), else null.
std::unique_ptr<Communicator> g_comm;

constexpr long long kMaxSampleImages = 10000;
std::string check_device(const std::string& device);  // "auto" | "cpu" | "cuda", else a Usage error  // --count and --labels: images in one sample picture

// The help text, one section per command: `cgan_gpu --help` prints them all, `cgan_gpu CMD --help`
// the usage lines and options of CMD.
const char* kHelpIntro = "cgan_gpu — train conditional GANs from JSON experiment configs\n\nUsage:\n";
struct CommandHelp {
  const char* name;
  const char* usage;    // the "Usage:" lines
  const char* options;  // its options section ("" for none)
};
const CommandHelp kCommandHelp[] = {
    {"train",
     R"(  cgan_gpu [train] --config FILE [options]      train an experiment
  cgan_gpu [train] --resume CKPT [options]      continue a run exactly where a checkpoint left it
)",
     R"(Training options:
  --config FILE        experiment file (configs/*.json; every key in configs/README.md)
  --set KEY=VALUE      override a config key, e.g. --set train.steps=2000 --set log.every=100
                       (VALUE is parsed as JSON, else taken as a string); repeatable
  --out DIR            run directory (default out/<config name>; with --resume, the run
                       directory the checkpoint is in). A fresh run refuses a directory that
                       already holds a run; one process at a time uses a run directory
  --overwrite          replace the run already in the run directory (its files are removed
                       once every check has passed, just before training starts)
  --resume CKPT        restore weights, optimizer state, step and data position from a
                       checkpoint; the config stored in it is used unless --config is given
  --device D           auto | cpu | cuda (default: the config's "device", itself default auto)
)"},
    {"sample",
     R"(  cgan_gpu sample --checkpoint CKPT --labels 3,1,4,1,5 [--out result.png]
  cgan_gpu sample --checkpoint CKPT --label 5 --count 16 [--out grid.png]
  cgan_gpu sample --checkpoint CKPT --tags "blue hair, yellow eyes" --count 16
)",
     R"(Sample options:
  --checkpoint CKPT    a checkpoints/step_N.safetensors file written by training
  --labels LIST        one image per listed label, in a row (e.g. 3,1,4,1,5; at most 10000)
  --label N --count C  a grid of C images of label N
  --tags TEXT          models of tagged image sets (anime): a grid of --count C images (default 16)
                       for the tag phrases named, separated by ',' (the run's vocab.txt lists them)
  --count C            unconditional models: C samples (at most 10000)
  --seed S             noise seed (default 1)
  --out FILE           PNG to write (default result.png)
  --save-tensors FILE  also write the noise, labels, condition vectors and generated values to a
                       safetensors file (tools/cgan_torch.py sample --noise FILE replays them)
  --no-ema             the raw generator, not the weight average a run with train.ema stores
                       (which is used by default)
  --device D           auto | cpu | cuda
)"},
    {"export", cgan::cli::kExportUsage, cgan::cli::kExportOptions},
    {"bench",
     R"(  cgan_gpu bench --config FILE [--steps N] [--batch B] [--repeats R] [--device D] [--per-op]
)",
     R"(Bench options (prints one JSON line: median ms per training iteration):
  --steps N            iterations per timed repeat (default 200)
  --batch B            batch size (default: the config's train.batch_size)
  --repeats R          timed repeats after a warm-up of N iterations (default 5)
  --set KEY=VALUE      as for training
  --per-op             eager mode (cuda_graphs off); after the timed repeats, one more repeat
                       with every op timed (steady clock on the CPU, CUDA events on the GPU):
                       Markdown tables of time per op kind, per layer and per phase with
                       their shares, then the JSON line with them under "per_op"
                       (docs/PROFILING.md)
  --json FILE          also write the JSON line to FILE
)"},
    {"classifier",
     R"(  cgan_gpu classifier --data mnist|fashion|anime [--size N] [--out FILE] [--steps N] [--config FILE]
)",
     R"(Classifier options (trains the evaluator's classifier on the real training set):
  --data KIND          mnist | fashion | anime (the spec's data.kind; default spec
                       configs/classifier_KIND.json); anime: the procedural faces' hair colour
  --size N             anime: image size N x N (default the spec's, 96)
  --config FILE        classifier spec (layers, steps, batch size, learning rate)
  --steps N            override the spec's training steps
  --out FILE           where to write it (default classifiers/KIND.safetensors; anime:
                       classifiers/anime_NxN.safetensors)
  --data-dir DIR       IDX folder (default data/KIND)
  --device D           auto | cpu | cuda
)"},
    {"eval",
     R"(  cgan_gpu eval --checkpoint CKPT [--classifier FILE] [--count N] [--out DIR] [--seed S]
)",
     R"(Eval options (scores a conditional generator; prints a table, writes metrics.json; anime
checkpoints: the colour probe's hair/eye accuracy, plus the classifier's figures when one exists):
  --checkpoint CKPT    a checkpoints/step_N.safetensors file written by training
  --classifier FILE    default classifiers/<data kind>.safetensors (anime: anime_HxW)
  --count N            generated images per label (default 1000)
  --seed S             noise seed (default 0)
  --out DIR            where metrics.json goes (default: the checkpoint's run directory)
  --data-dir DIR       IDX folder of the real test images (default: the checkpoint's data.dir)
  --no-ema             score the raw generator, not the weight average a run with train.ema
                       stores (which is used by default)
  --device D           auto | cpu | cuda
)"},
    {"plot",
     R"(  cgan_gpu plot RUN_DIR
)",
     R"(Plot (redraws a run directory's curves from its CSVs; training does it with every sample grid):
  RUN_DIR              writes RUN_DIR/losses.png from losses.csv and losses_avg.csv, and
                       RUN_DIR/metrics.png from metrics.csv when it has rows
)"},
};
const char* kHelpExit = R"(Exit codes: 0 success, 1 bad input or failed run (the message says which file or key),
2 bad command line, 3 a loss became NaN/inf (the last good checkpoint is kept),
130 stopped by Ctrl-C/SIGTERM (during training: after a checkpoint of the last step; before
training starts: with nothing written). Bad input and run directories: docs/RELIABILITY.md.
)";

std::string full_help() {
  std::string s = kHelpIntro;
  for (const CommandHelp& c : kCommandHelp) s += c.usage;
  s += "  cgan_gpu --help | --version | CMD --help\n";
  for (const CommandHelp& c : kCommandHelp) s += std::string("\n") + c.options;
  return s + "\n" + kHelpExit;
}

// `cgan_gpu CMD --help`: that command's usage and options, exit 0.
int print_command_help(const std::string& cmd) {
  for (const CommandHelp& c : kCommandHelp)
    if (cmd == c.name) {
      std::printf("%s%s\n%s", kHelpIntro, c.usage, c.options);
      return 0;
    }
  return 2;
}
bool is_help(const std::string& f) { return f == "--help" || f == "-h"; }

struct Args {
  std::vector<std::string> v;
  size_t i = 0;
  bool more() const { return i < v.size(); }
  std::string value(const std::string& flag) {
    if (i >= v.size()) throw Usage(cat(flag, ": missing value"));
    return v[i++];
  }
};

long long parse_count(const std::string& flag, const std::string& s, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end || errno || x < lo || x > hi)
    throw Usage(cat(flag, ": expected an integer in [", lo, ", ", hi, "], got '", s, "'"));
  return x;
}

// Where a run writes when --out is not given: a resumed run continues in the run directory its
// checkpoint came from (<dir>/checkpoints/step_N.safetensors -> <dir>), so the CSVs of that run
// are the ones continued; a fresh run (or a checkpoint kept elsewhere) uses out/<config name>.
std::string default_run_dir(const Config& cfg, const std::string& resume) {
  if (!resume.empty()) {
    const std::filesystem::path ck = std::filesystem::absolute(resume);
    if (ck.parent_path().filename() == "checkpoints" && !ck.parent_path().parent_path().empty())
      return ck.parent_path().parent_path().string();
  }
  return "out/" + cfg.name;
}

int cmd_train(Args& a) {
  std::string config_path, out_dir, resume, device;
  std::vector<std::string> sets;
  bool overwrite = false;
  const StopSignals signals;  // SIGINT/SIGTERM from here on: exit 130, see docs/RELIABILITY.md
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("train");
    if (f == "--config") config_path = a.value(f);
    else if (f == "--set") sets.push_back(a.value(f));
    else if (f == "--out") out_dir = a.value(f);
    else if (f == "--resume") resume = a.value(f);
    else if (f == "--device") device = a.value(f);
    else if (f == "--overwrite") overwrite = true;
    else throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
  }
  if (config_path.empty() && resume.empty()) throw Usage("train: give --config FILE or --resume CKPT (see --help)");
  // Under mpirun every rank runs the setup below (every rank resumes from the same checkpoint) and
  // the ranks agree on its outcome: an error on any rank ends every rank with one message. Only
  // rank 0 claims and writes the run directory.
  Communicator* comm = g_comm.get();
  const bool writer = !comm || comm->rank() == 0;
  SafeTensors ck;
  Config cfg;
  std::unique_ptr<Backend> be;
  HostDataset data;
  std::unique_ptr<Trainer> tp;
  std::unique_ptr<RunDir> rd;
  auto setup = [&] {
  if (!resume.empty()) ck = read_safetensors(resume);
  cfg = !config_path.empty() ? load_config(config_path, sets) : read_checkpoint_info(ck, resume, sets).cfg;
  if (!resume.empty() && !config_path.empty()) (void)read_checkpoint_info(ck, resume);  // its metadata, checked
  if (!device.empty()) cfg.device = check_device(device);
  BackendOptions bo{cfg.precision};
  if (comm) bo.cuda_device = comm->local_rank();  // one GPU per rank on each machine
  be = make_backend(cfg.device, bo);
  data = load_dataset(cfg.data, true);
  tp = std::make_unique<Trainer>(cfg, *be, data, comm);
  Trainer& t = *tp;
  t.prepare_eval();  // a missing classifier fails here, before the run directory exists
  if (!resume.empty()) {
    t.restore(ck, resume);
    if (t.steps_done() >= cfg.train.steps)
      throw Error(cat(resume, ": checkpoint is at step ", t.steps_done(), ", train.steps is ", cfg.train.steps,
                      "; raise it (e.g. --set train.steps=", cfg.train.steps * 2, ") to train further"));
  } else {
    t.init();
  }
  const std::string own_dir = default_run_dir(cfg, resume);  // a resumed run's own directory
  if (out_dir.empty()) out_dir = own_dir;
  // Every check that can fail before step 1 has passed: only now is the run directory claimed
  // (locked; a fresh run refuses one holding a run unless --overwrite; a resume continues its own).
  throw_if_stopped("before training started");
  std::error_code e1, e2;
  const bool in_place =
      !resume.empty() && fs::weakly_canonical(out_dir, e1) == fs::weakly_canonical(own_dir, e2) && !e1 && !e2;
  if (in_place && overwrite)
    throw Usage(cat("--overwrite: ", out_dir, " is the run being resumed; it would delete that run's history"));
  if (writer)
    rd = std::make_unique<RunDir>(out_dir, overwrite ? RunDirMode::overwrite
                                           : in_place ? RunDirMode::resume
                                                      : RunDirMode::fresh);
  };
  if (!comm) {
    setup();
  } else {
    std::string err;
    int code = 0;
    try {
      setup();
    } catch (const Usage& e) {
      err = e.what(), code = 2;
    } catch (const Stopped& e) {
      err = e.what(), code = 130;
    } catch (const Error& e) {
      err = e.what(), code = 1;
    } catch (const std::bad_alloc&) {
      err = "out of memory", code = 1;
    }
    comm->agree(err, code);
  }
  Trainer& t = *tp;
  if (writer) {
    std::fprintf(stderr, "cgan_gpu %s: %s on %s, %d samples, %s, run directory %s\n", CGAN_VERSION, cfg.name.c_str(),
                 be->name().c_str(), data.count,
                 resume.empty() ? "fresh start" : cat("resumed at step ", t.steps_done()).c_str(), out_dir.c_str());
    if (comm)
      std::fprintf(stderr, "data parallel: %d ranks x %d samples = batch %d; gradients averaged over %s%s\n",
                   comm->size(), cfg.train.batch_size / comm->size(), cfg.train.batch_size,
                   be->name() == "cpu" ? "MPI" : "NCCL",
                   cfg.distributed.sync_batchnorm ? "; batch norm synchronized" : "");
    std::fprintf(stderr, "%s\n%s\n", t.generator().summary().c_str(), t.discriminator().summary().c_str());
  }
  return t.run(rd.get());
}

// Which generator sample and eval use: the weight average (train.ema) unless --no-ema, when the
// checkpoint holds one. --no-ema on a checkpoint without an average changes nothing: a note, not an
// error, so one command line serves checkpoints with and without it.
const char* generator_kind(bool use_ema, const SafeTensors& ck) {
  return use_ema && checkpoint_has_ema(ck) ? "averaged (train.ema)" : "raw";
}
void note_no_ema(bool no_ema, const SafeTensors& ck, const std::string& ckpt) {
  if (no_ema && !checkpoint_has_ema(ck))
    std::fprintf(stderr,
                 "cgan_gpu: note: %s holds no averaged generator (trained without train.ema); --no-ema changes "
                 "nothing\n",
                 ckpt.c_str());
}

int cmd_sample(Args& a) {
  std::string ckpt, labels, tags, out = "result.png", device = "auto", save_tensors;
  bool labels_given = false, tags_given = false, no_ema = false;
  long long label = -1, count = -1, seed = 1;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("sample");
    if (f == "--checkpoint") ckpt = a.value(f);
    else if (f == "--labels") {
      labels = a.value(f), labels_given = true;
      const size_t n = static_cast<size_t>(std::count(labels.begin(), labels.end(), ',')) + 1;
      if (n > kMaxSampleImages)
        throw Usage(cat("--labels: ", n, " labels given, at most ", kMaxSampleImages, " (one image each)"));
    }
    else if (f == "--tags") tags = a.value(f), tags_given = true;
    else if (f == "--label") label = parse_count(f, a.value(f), 0, 1 << 20);
    else if (f == "--count") count = parse_count(f, a.value(f), 1, kMaxSampleImages);
    else if (f == "--seed") seed = parse_count(f, a.value(f), 0, (1LL << 62));
    else if (f == "--out") out = a.value(f);
    else if (f == "--save-tensors") save_tensors = a.value(f);
    else if (f == "--no-ema") no_ema = true;
    else if (f == "--device") device = a.value(f);
    else throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
  }
  if (ckpt.empty()) throw Usage("sample: --checkpoint CKPT is required");
  if (labels_given && label >= 0) throw Usage("sample: give either --labels or --label, not both");
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
  if (tags_given && !tagged)
    throw Usage("sample: --tags is for models trained on tagged image sets; this one takes labels");
  if (tagged) {
    if (!tags_given) throw Usage("sample: this model is conditioned on tags: give --tags \"blue hair, yellow eyes\"");
    if (labels_given || label >= 0) throw Usage("sample: give --tags (and --count), not --labels/--label");
    const std::vector<float> t = tags_from_text(tags, shape.vocab);
    const int n = count > 0 ? static_cast<int>(count) : 16;
    for (int i = 0; i < n; ++i) {
      req.tags.insert(req.tags.end(), t.begin(), t.end());
      req.labels.push_back(static_cast<int32_t>(label_of_tags(t.data(), shape.vocab)));
    }
    req.cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
    req.rows = (n + req.cols - 1) / req.cols;
  } else if (conditional) {
    if (!labels_given && label < 0) throw Usage("sample: this model is conditional: give --labels LIST or --label N");
    if (labels_given) {
      if (count >= 0) throw Usage("sample: --count goes with --label, not --labels");
      req.labels = parse_label_list(labels, shape.num_classes);
      req.rows = 1;
      req.cols = static_cast<int>(req.labels.size());
    } else {
      if (label >= shape.num_classes)
        throw Error(cat("--label: label ", label, " is outside this model's classes 0..", shape.num_classes - 1));
      const int n = count > 0 ? static_cast<int>(count) : 16;
      req.labels.assign(n, static_cast<int32_t>(label));
      req.cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
      req.rows = (n + req.cols - 1) / req.cols;
    }
  } else {
    if (labels_given || label >= 0) throw Usage("sample: this model is unconditional: give --count C only");
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
    if (f == "--config") config_path = a.value(f);
    else if (f == "--set") sets.push_back(a.value(f));
    else if (f == "--out") out_dir = a.value(f);
    else if (f == "--steps") steps = parse_count(f, a.value(f), 1, 1000000);
    else if (f == "--full") full = parse_count(f, a.value(f), 0, 1000000);
    else if (f == "--device") device = a.value(f);
    else throw Usage(cat("unknown option '", f, "' (see the comment above cmd_trace)"));
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
    st.metadata["checkpoint_format"] = kCheckpointFormatV1;  // the trace's weights and gradients: the engine's own layout
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

void make_parent_dir(const std::string& file);

int cmd_bench(Args& a) {
  std::string config_path, device, json_path;
  std::vector<std::string> sets;
  long long steps = 200, batch = 0, repeats = 5;
  bool per_op = false;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("bench");
    if (f == "--config") config_path = a.value(f);
    else if (f == "--per-op") per_op = true;
    else if (f == "--json") json_path = a.value(f);
    else if (f == "--set") sets.push_back(a.value(f));
    else if (f == "--steps") steps = parse_count(f, a.value(f), 1, 1000000);
    else if (f == "--batch") batch = parse_count(f, a.value(f), 1, 1 << 20);
    else if (f == "--repeats") repeats = parse_count(f, a.value(f), 1, 1000);
    else if (f == "--device") device = a.value(f);
    else throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
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
  const std::string json =
      cat("{\"config\": \"", cfg.name, "\", \"device\": \"", be->name(), "\", \"batch\": ", cfg.train.batch_size,
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

std::string check_device(const std::string& device) {
  if (device != "auto" && device != "cpu" && device != "cuda")
    throw Usage(cat("--device: expected auto, cpu or cuda, got '", device, "'"));
  return device;
}

void make_parent_dir(const std::string& file) {
  const std::filesystem::path parent = std::filesystem::path(file).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) throw Error(cat(file, ": cannot create directory ", parent.string(), ": ", ec.message()));
}

int cmd_classifier(Args& a) {
  std::string kind, config_path, out, data_dir, device = "auto";
  long long steps = 0, size = 0;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("classifier");
    if (f == "--data") kind = a.value(f);
    else if (f == "--size") size = parse_count(f, a.value(f), 16, 1024);
    else if (f == "--config") config_path = a.value(f);
    else if (f == "--steps") steps = parse_count(f, a.value(f), 1, 1000000000);
    else if (f == "--out") out = a.value(f);
    else if (f == "--data-dir") data_dir = a.value(f);
    else if (f == "--device") device = check_device(a.value(f));
    else throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
  }
  if (kind.empty() && config_path.empty()) throw Usage("classifier: give --data mnist|fashion|anime (or --config FILE)");
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
  j["data_kind"] = cfg.data.kind;
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
    check_classifier_matches(*clf, cfg.data.kind, shape, "the checkpoint " + ckpt);
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
    const HostDataset real = classifier_images("anime", "", false, clf->shape().lo, clf->shape().hi, shape.height,
                                               shape.width, 20000, "anime");
    const EvalResult e = evaluate(*clf, prepare_reference(*clf, real), probed, eval_options(n, shape));
    j["classifier_eval"] = e.to_json();
    j["classifier"] = clf_path;
    j["classifier_test_accuracy"] = clf->test_accuracy();
    clf_table = cat("classifier ", clf_path, " (hair colour, test accuracy ", clf->test_accuracy(), ") on ",
                    real.count, " real test faces:\n", e.table());
  } else {
    for (int h = 0; h < static_cast<int>(default_hair_tags().size()); ++h) probed(h, n);
    clf_table = cat("(no hair-colour classifier at ", clf_path, "; create one with: cgan_gpu classifier --data anime --size ",
                    shape.height, ")\n");
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
    if (f == "--checkpoint") ckpt = a.value(f);
    else if (f == "--classifier") clf_path = a.value(f);
    else if (f == "--count") count = parse_count(f, a.value(f), 2, 100000);
    else if (f == "--seed") seed = parse_count(f, a.value(f), 0, (1LL << 62));
    else if (f == "--out") out_dir = a.value(f);
    else if (f == "--data-dir") data_dir = a.value(f);
    else if (f == "--no-ema") no_ema = true;
    else if (f == "--device") device = check_device(a.value(f));
    else throw Usage(cat("unknown option '", f, "' (see cgan_gpu --help)"));
  }
  if (ckpt.empty()) throw Usage("eval: --checkpoint CKPT is required");
  const SafeTensors ck = read_safetensors(ckpt);
  const CheckpointInfo info = read_checkpoint_info(ck, ckpt);
  const Config& cfg = info.cfg;
  const DataShape& shape = info.shape;
  const bool anime = cfg.data.kind == "anime";
  if (!anime && cfg.data.kind != "mnist" && cfg.data.kind != "fashion")
    throw Error(cat(ckpt, ": data.kind is \"", cfg.data.kind,
                    "\"; the evaluator scores image models (mnist, fashion, anime)"));
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
  if (clf_path.empty()) clf_path = default_classifier_path(cfg.data.kind);
  auto be = make_backend(device, {cfg.precision});
  check_checkpoint_tensors(*be, info, ck, ckpt);  // the whole file, before the classifier and data are read
  std::unique_ptr<Classifier> clf = load_classifier(*be, clf_path);
  check_classifier_matches(*clf, cfg.data.kind, shape, "the checkpoint " + ckpt);
  const HostDataset real =
      classifier_images(cfg.data.kind, data_dir.empty() ? cfg.data.dir : data_dir, false, clf->shape().lo,
                        clf->shape().hi, 0, 0, 0, data_dir.empty() ? "data.dir" : "--data-dir");
  make_parent_dir(out);
  const int n = static_cast<int>(count);
  const std::unique_ptr<Model> G = load_generator(*be, info, ck, ckpt, !no_ema);
  const ImageSource src = generator_source(*be, cfg, *G, shape, n, static_cast<uint64_t>(seed));
  const EvalResult r = evaluate(*clf, prepare_reference(*clf, real), src, eval_options(n, shape));
  nlohmann::json j = r.to_json();
  j["generator"] = !no_ema && checkpoint_has_ema(ck) ? "ema" : "raw";
  j["classifier"] = clf_path;
  j["classifier_test_accuracy"] = clf->test_accuracy();
  j["real_images"] = real.count;
  const long long step = write_metrics(j, ck, ckpt, cfg, seed, out);
  std::printf("%s (step %lld, %s generator): %d generated images per label vs %d real test images; classifier %s "
              "(test accuracy %.4f)\n%s",
              ckpt.c_str(), step, generator_kind(!no_ema, ck), n, real.count, clf_path.c_str(), clf->test_accuracy(),
              r.table().c_str());
  std::fprintf(stderr, "cgan_gpu: wrote %s\n", out.c_str());
  return 0;
}

int cmd_plot(Args& a) {
  std::string dir;
  while (a.more()) {
    const std::string f = a.v[a.i++];
    if (is_help(f)) return print_command_help("plot");
    if (!f.empty() && f[0] == '-') throw Usage(cat("unknown option '", f, "' (see cgan_gpu plot --help)"));
    if (!dir.empty()) throw Usage(cat("plot: one run directory, got '", dir, "' and '", f, "'"));
    dir = f;
  }
  if (dir.empty()) throw Usage("plot: give a run directory (cgan_gpu plot RUN_DIR)");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(dir, ec);
  if (std::filesystem::is_regular_file(st)) throw Error(cat(dir, ": is a file, not a run directory"));
  if (std::filesystem::exists(st) && !std::filesystem::is_directory(st))
    throw Error(cat(dir, ": is not a directory (a FIFO, socket or device), not a run directory"));
  if (!std::filesystem::is_directory(st)) throw Error(cat(dir, ": not a run directory (no such directory)"));
  const std::vector<std::string> written = write_run_plots(dir);
  if (written.empty()) throw Error(cat(dir, ": nothing to plot (no rows in losses.csv or metrics.csv)"));
  for (const std::string& w : written) std::printf("wrote %s\n", w.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) a.v.emplace_back(argv[i]);
  try {
    if (a.v.empty()) throw Usage("no command (try cgan_gpu --help)");
    const std::string& first = a.v[0];
    if (first == "--help" || first == "-h" || first == "help") {
      std::fputs(full_help().c_str(), stdout);
      return 0;
    }
    if (first == "--version") {
      std::printf("cgan_gpu %s (backends: cpu%s)\n", CGAN_VERSION, cuda_compiled() ? ", cuda" : "");
      return 0;
    }
    // Started by mpirun (or another MPI launcher) with several ranks: data-parallel training.
    const LaunchInfo launch = detect_launch();
    if (launch.launched && launch.size > 1) g_comm = make_communicator(launch);
    // A command name is consumed; anything else (options, a config) goes to train, the default.
    static const struct {
      const char* name;
      int (*run)(Args&);
    } kCommands[] = {{"sample", cmd_sample}, {"bench", cmd_bench}, {"classifier", cmd_classifier},
                     {"eval", cmd_eval},     {"train", cmd_train},
                     {"trace", cmd_trace},  {"plot", cmd_plot}};
    if (first == "export") return cgan::cli::export_command({a.v.begin() + 1, a.v.end()});
    for (const auto& c : kCommands)
      if (first == c.name) {
        if (g_comm && first != "train" && first != "bench")
          throw Usage(cat(first, ": runs in one process; start it without mpirun (only train and bench run on several ranks)"));
        a.i = 1;
        return c.run(a);
      }
    return cmd_train(a);
  } catch (const JobError& e) {  // agreed by every rank of an mpirun job: said once, by rank 0
    if (!g_comm || g_comm->rank() == 0) std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return e.code;
  } catch (const Usage& e) {
    if (g_comm && g_comm->rank() != 0) return 2;  // every rank parsed the same command line: said once
    std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return 2;
  } catch (const Stopped& e) {
    std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return 130;
  } catch (const NonFiniteLoss& e) {  // under mpirun every rank sees the same (reduced) losses: said once
    if (!g_comm || g_comm->rank() == 0) std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return 3;
  } catch (const Error& e) {
    // Under mpirun one rank failed on its own (the others wait in the next all-reduce): it names
    // itself and ends the job (MPI_Abort), so no rank hangs.
    if (g_comm) g_comm->abort(e.what(), 1);
    std::fprintf(stderr, "cgan_gpu: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    if (g_comm) g_comm->abort("out of memory", 1);
    std::fprintf(stderr, "cgan_gpu: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    if (g_comm) g_comm->abort(cat("internal error: ", e.what()), 1);
    std::fprintf(stderr, "cgan_gpu: internal error: %s\n", e.what());
    return 1;
  }
}
