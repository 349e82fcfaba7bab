// The help text: one section per command (`cgan_gpu --help`, `cgan_gpu CMD --help`).
#include <cstdio>
#include <string>

#include "cli.hpp"

namespace cgan::cli {

// The help text, one section per command: `cgan_gpu --help` prints them all, `cgan_gpu CMD --help`
// the usage lines and options of CMD.
const char* const kHelpIntro = "cgan_gpu — train conditional GANs from JSON experiment configs\n\nUsage:\n";
struct CommandHelp {
  const char* name;
  const char* usage;    // the "Usage:" lines
  const char* options;  // its options section ("" for none)
};
const CommandHelp kCommandHelp[] = {
    {"train",
     R"(  cgan_gpu [train] --config FILE [options]      train an experiment
  cgan_gpu [train] --resume CKPT [options]      continue a run exactly where a checkpoint left it
  cgan_gpu [train] --resume latest --out DIR    ... from the newest checkpoint of run directory DIR
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
                       checkpoint; the config stored in it is used unless --config is given.
                       CKPT may be a run directory (its newest checkpoints/step_N.safetensors) or
                       `latest`: the newest of --out DIR, else of out/<name> of --config FILE.
                       A damaged newest checkpoint is refused, naming the one before it
  --device D           auto | cpu | cuda (default: the config's "device", itself default auto)
)"},
    {"sample",
     R"(  cgan_gpu sample --checkpoint CKPT --labels 3,1,4,1,5 [--out result.png]
  cgan_gpu sample --checkpoint CKPT --label 5 --count 16 [--out grid.png]
  cgan_gpu sample --checkpoint CKPT --tags "blue hair, yellow eyes" --count 16
  cgan_gpu sample --checkpoint CKPT --interpolate [--rows R] [--steps S] [--label N]
  cgan_gpu sample --checkpoint CKPT --dump-dir DIR --count N [--label N | --tags TEXT]
)",
     R"(Sample options:
  --checkpoint CKPT    a checkpoints/step_N.safetensors file written by training
  --labels LIST        one image per listed label, in a row (e.g. 3,1,4,1,5; at most 10000); for
                       an image_folder model a label may be a class name (cat,dog,3; classes.txt)
  --label N --count C  a grid of C images of label N (or class name N)
  --tags TEXT          models of tagged image sets (anime): a grid of --count C images (default 16)
                       for the tag phrases named, separated by ',' (the run's vocab.txt lists them)
  --count C            unconditional models: C samples (at most 10000)
  --seed S             noise seed (default 1)
  --interpolate        a grid of R rows (default: one per label, at most 10; unconditional 8)
                       of S columns (default 10) walking the noise by slerp from image 2r to
                       image 2r+1 of a plain sample with this seed; row r shows label r mod K
                       (--label N: N on every row; tagged models: --tags, else row r's hair)
  --dump-dir DIR       one PNG per image into DIR (new or empty), for FID tools:
                       img_000123_label_5.png (unconditional: img_000123.png) and labels.csv
                       (file,label[,tags]) written last; labels i mod K unless --label/--tags
  --out FILE           PNG to write (default result.png)
  --save-tensors FILE  also write the noise, labels, condition vectors and generated values to a
                       safetensors file (tools/cgan_torch.py sample --noise FILE replays them)
  --no-ema             the raw generator, not the weight average a run with train.ema stores
                       (which is used by default)
  --device D           auto | cpu | cuda
)"},
    {"export",
     R"(  cgan_gpu export --checkpoint CKPT --format onnx|torchscript --out FILE [--no-ema]
)",
     R"(Export options (the generator as a standalone file, through tools/cgan_torch.py and PyTorch):
  --checkpoint CKPT    a checkpoints/step_N.safetensors file written by training
  --format F           onnx (opset 14) | torchscript (traced)
  --out FILE           file to write (only once complete)
                       inputs: noise [B, noise_dim] float32, then label [B] int64 (class labels),
                       or tags [B, tag_dim] float32 multi-hot (tagged models), or nothing
                       (unconditional); output: images [B, C, H, W] in the data range; B dynamic.
                       Evaluation mode: batch norm uses its running statistics, spectral norm is
                       folded into the weights (sigma from the stored u, v)
  --no-ema             the raw generator, not the weight average a run with train.ema stores
                       (which is exported by default)
  Environment: CGAN_PYTHON (default /usr/bin/python3, needs PyTorch), CGAN_TOOLS_DIR (the folder
  holding cgan_torch.py; default the source tree's tools/)
)"},
    {"bench",
     R"(  cgan_gpu bench --config FILE [--steps N] [--batch B] [--repeats R] [--device D] [--per-op]
  cgan_gpu bench --conv-probe --config FILE [--batch B] [--device cuda] [--json FILE]
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
  --json FILE          also write the JSON line to FILE (--conv-probe: every measured algorithm)
  --conv-probe         instead of timing steps: for every conv2d of G and D, each direction, in
                       four variants (nchw-fp32, nchw-tf32, nhwc-pad4-tf32, nhwc-pad8-bf16),
                       time every cuDNN algorithm (cudnnFind*Ex); a table of the fastest
                       deterministic and fastest overall per conv (CUDA only; docs/PROFILING.md)
)"},
    {"classifier",
     R"(  cgan_gpu classifier --data mnist|fashion|anime|image_folder [--size N|HxW] [--data-dir DIR]
                      [--out FILE] [--steps N] [--config FILE]
)",
     R"(Classifier options (trains the evaluator's classifier on the real training set):
  --data KIND          mnist | fashion | anime | image_folder (the spec's data.kind; default
                       spec configs/classifier_KIND.json); anime: the procedural faces' hair
                       colour; image_folder: the class of a class-folder set (10 % of each
                       class held out for the test accuracy)
  --size N|HxW         anime (default the spec's, 96) and image_folder (required): image size
  --config FILE        classifier spec (layers, steps, batch size, learning rate)
  --steps N            override the spec's training steps
  --out FILE           where to write it (default classifiers/KIND.safetensors; anime:
                       classifiers/anime_HxW.safetensors; image_folder:
                       classifiers/<folder name>_HxW.safetensors)
  --data-dir DIR       IDX folder (default data/KIND); image_folder: the folder of class
                       folders (required)
  --device D           auto | cpu | cuda
)"},
    {"eval",
     R"(  cgan_gpu eval --checkpoint CKPT [--classifier FILE] [--count N] [--out DIR] [--seed S]
)",
     R"(Eval options (scores a conditional generator; prints a table, writes metrics.json; anime
checkpoints: the colour probe's hair/eye accuracy, plus the classifier's figures when one exists;
class-folder checkpoints: per class, by name, against every image of the folder):
  --checkpoint CKPT    a checkpoints/step_N.safetensors file written by training
  --classifier FILE    default classifiers/<data kind>.safetensors (anime: anime_HxW;
                       image_folder: <folder name>_HxW, made by cgan_gpu classifier --data
                       image_folder)
  --count N            generated images per label (default 1000)
  --seed S             noise seed (default 0)
  --out DIR            where metrics.json goes (default: the checkpoint's run directory)
  --data-dir DIR       IDX folder of the real test images, or the class folders (default: the
                       checkpoint's data.dir)
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
const char* const kHelpExit = R"(Exit codes: 0 success, 1 bad input or failed run (the message says which file or key),
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

}  // namespace cgan::cli
