// Config: an experiment file parsed once into plain structs. Every key, its type and default is
// listed in configs/README.md; this header and src/config/config.cpp are the single source of defaults.
// Unknown keys, wrong types and out-of-range values throw cgan::Error naming the key path, e.g.
//   generator.layers[1].linear: expected a positive integer, got -3
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgan/base/error.hpp"
#include "cgan/config/condition_mode.hpp"
#include "cgan/config/config_enum.hpp"

namespace cgan {

// The shipped layer kinds' names (each kind is a unit under src/nn/layers, registered by name;
// cgan/config/layer_syntax.hpp). A kind is identified by its name, so a new kind needs no entry here.
namespace LayerKind {
inline constexpr char linear[] = "linear", relu[] = "relu", leaky_relu[] = "leaky_relu", sigmoid[] = "sigmoid",
                      tanh[] = "tanh", dropout[] = "dropout", batchnorm[] = "batchnorm", conv2d[] = "conv2d",
                      avgpool2d[] = "avgpool2d", maxpool2d[] = "maxpool2d", reshape[] = "reshape";
}  // namespace LayerKind

struct LayerSpec {
  std::string kind = LayerKind::linear;  // the registered unit's name (cgan/config/layer_syntax.hpp)
  int out = 0;                           // linear: output features; conv2d: output channels
  // conv2d / avgpool2d / maxpool2d: kernel (window), stride, zero padding (height, width)
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int shape[3] = {0, 0, 0};  // reshape: (C, H, W) of each sample
  float slope = 0.2f;        // leaky_relu: negative slope
  float p = 0.5f;            // dropout: drop probability
  float momentum = 0.1f;     // batchnorm: running-stat momentum (PyTorch convention)
  float eps = 1e-5f;         // batchnorm: variance epsilon
  bool conditional = false;  // batchnorm: per-sample gain and bias from the condition (docs/DECISIONS.md)
  // linear / conv2d: spectral normalization of the weight (cgan/nn/spectral_norm.hpp); the layer's
  // own "spectral_norm" key, else the network's
  bool spectral_norm = false;
  nlohmann::json extra;  // arguments of a kind whose unit keeps them itself (none of the shipped kinds)
};

// How the label enters the network: none | concat_onehot | embed_concat | embed_multiply |
// label_plane | projection (discriminator only: D(x, y) = psi(phi(x)) + <cond . E, phi(x)>).
struct ConditionSpec {
  ConditionMode mode = ConditionMode::concat_onehot;
  int embed_dim = 0;  // embed_concat: embedding width (default: number of classes)
};

struct NetSpec {
  ConditionSpec condition;
  std::vector<LayerSpec> layers;
  // The config's precision is "bf16": the layers' GEMMs and convolutions multiply bfloat16-rounded
  // operands (MulPrecision::bf16, cgan/backend/backend.hpp). Set for the generator and the
  // discriminator, never for the evaluator's classifier.
  bool bf16 = false;
};

struct AdamSpec {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

struct DataSpec {
  DataKind kind = DataKind::Kind::mnist;  // mnist | fashion | gaussian | mixture | anime | images | image_folder
  bool points() const { return kind == DataKind::Kind::gaussian || kind == DataKind::Kind::mixture; }  // 2-D points
  bool idx() const { return kind == DataKind::Kind::mnist || kind == DataKind::Kind::fashion; }        // IDX files
  std::string dir;           // IDX folder (default data/mnist or data/fashion); images: image folder;
                             // image_folder: the folder of class folders
  float lo = 0.f, hi = 1.f;  // pixel range images are scaled to (anime, images: default -1, 1)
  // anime (procedural faces) and images (image folder)
  int height = 96, width = 96;          // data.size [H, W] (image_folder too; there also one int)
  std::string tags;                     // images: tags CSV ("" = <dir>/tags.csv, else <dir>/../tags.csv)
  bool strict = false;                  // images, image_folder: unreadable image (/ malformed CSV line) is an error
  std::vector<std::string> vocabulary;  // images: tag phrases (empty = default or vocabulary_file)
  std::string vocabulary_file;          // images: file of tag phrases, one per line
  // synthetic sets (2-D points, anime)
  int count = 20000;
  float mean_x = 4.f, mean_y = 4.f, std_x = 1.25f, std_y = 1.25f;  // gaussian
  int modes = 8;                                                   // mixture
  float radius = 2.f, stddev = 0.05f;                              // mixture
  uint64_t seed = 0;
};

struct LossSpec {
  // log (BCE, non-saturating G) | squared (least squares) | hinge (D: relu(1 - D(x)) + relu(1 + D(G(z))),
  // G: -D(G(z))) | three_term (= log with the mismatched pair: seed 001's matched/unmatched loss)
  LossType kind = LossType::Kind::log;
  // The mismatched pair as a third term of D's loss, scored as a fake: none | real_other_tags |
  // fake_other_tags (default real_other_tags for three_term, none for the others).
  Mismatch mismatch = Mismatch::Kind::none;
  float d_weight = 1.f;     // weight of each of D's terms (default 1 for log, hinge, 0.5 for squared)
  float real_target = 1.f;  // D's target for real pairs (e.g. 0.9 for one-sided smoothing; log, squared)
  // The loss every term is computed with: log | squared | hinge (three_term is log).
  LossType base_kind() const { return kind == LossType::Kind::three_term ? LossType::Kind::log : kind; }
  // Whether D's loss has the mismatched pair (three_term, or any kind with a mismatch).
  bool mismatched_pair() const { return kind == LossType::Kind::three_term || mismatch != Mismatch::Kind::none; }
};

// train.ema: an exponential moving average of the generator's weights (include/cgan/nn/ema.hpp).
struct EmaSpec {
  bool enabled = false;  // "train.ema" present (and not false)
  float decay = 0.999f;  // avg <- decay * avg + (1 - decay) * weights after each G step
  int64_t start = 1000;  // the average is a copy of the weights up to and including this G step
};

// train.augment: DiffAugment of every image D sees (include/cgan/backend/augment.hpp), off by default.
struct AugmentPolicy {
  bool color = false, translation = false, cutout = false;
  float translation_ratio = 0.125f;  // largest shift as a fraction of the image size
  float cutout_ratio = 0.5f;         // cutout side as a fraction of the image size
  bool any() const { return color || translation || cutout; }
  std::string policy() const;  // "color,translation,cutout" (the ones on, in that order; "" when off)
};

struct TrainSpec {
  int64_t steps = 10000;
  int batch_size = 64;
  uint64_t seed = 1;
  int d_steps = 1;                                  // D steps per G step
  FakeLabels fake_labels = FakeLabels::Kind::data;  // labels fakes are made from: data (the batch's) | random
  EmaSpec ema;                                      // the generator's weight average (off unless given)
  AugmentPolicy augment;                            // DiffAugment before D (off by default)
};

struct LogSpec {
  int64_t every = 1000;              // progress line (plain mode) and loss print period
  int64_t flush_every = 100;         // losses.csv rows are written at least this often
  int64_t sample_every = 5000;       // samples/step_N.png period (0 = only at the end)
  int64_t checkpoint_every = 10000;  // checkpoints/step_N.safetensors period (0 = only at the end)
  int64_t keep_checkpoints = 0;      // keep the newest N checkpoints this process wrote, plus the final one (0: all)
  int avg_window = 100;              // moving-average window of losses_avg.csv
  int samples_per_label = 10;        // grid columns (one row per label)
  std::string progress = "auto";     // auto (redrawn on a terminal, plain lines otherwise) | plain | none
  bool tensorboard = true;           // TensorBoard event files in tb/ (report/tb_log.hpp)
};

// Periodic evaluation during training (include/cgan/eval/evaluate.hpp); off unless every > 0.
struct EvalSpec {
  int64_t every = 0;       // evaluate every this many steps (0 = never)
  std::string classifier;  // classifier file (default: default_classifier_path(data))
  int count = 500;         // generated images per label
  uint64_t seed = 0;       // Philox seed of the evaluation noise
};

// Data-parallel training under mpirun (cgan/train/distributed.hpp); no effect in a single process.
struct DistributedSpec {
  bool sync_batchnorm = false;  // batch-norm statistics over the global batch (else per rank)
};

struct Config {
  std::string name;
  std::string description;
  std::string device = "auto";
  std::string precision = "tf32";  // tf32 | fp32 | bf16 (GEMMs and convolutions: backend.hpp, BackendOptions)
  bool cuda_graphs = true;         // CUDA backend: replay each training iteration as a CUDA graph
  DataSpec data;
  int noise_dim = 100;
  NetSpec generator, discriminator;
  LossSpec loss;
  AdamSpec g_optim, d_optim;
  TrainSpec train;
  LogSpec log;
  EvalSpec eval;
  DistributedSpec distributed;

  nlohmann::json to_json() const;  // the config in effect, every default filled in
};

// Parses and validates. `name_hint` (e.g. the file's stem) is used when the file has no "name".
Config parse_config(const nlohmann::json& j, const std::string& name_hint = "experiment");
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// A JSON file; one-line errors name it: a folder, unreadable ("cannot open <what><open_hint>"),
// or not JSON (with the parser's position).
nlohmann::json read_json_file(const std::string& path, const std::string& what, const std::string& open_hint = "");

// The evaluator's default classifier file (relative to the working directory; eval.classifier's
// default): classifiers/<kind>.safetensors; anime classifiers are per image size,
// classifiers/anime_<H>x<W>.safetensors; class-folder classifiers per folder and size,
// classifiers/<last component of dir>_<H>x<W>.safetensors.
std::string default_classifier_path(const std::string& data_kind, int height = 28, int width = 28,
                                    const std::string& dir = "");
// The default classifier of a run's data (the one above for its kind, size and folder).
std::string default_classifier_path(const DataSpec& data);
// The one JSON reader of configs, specs and the config stored in a checkpoint: `text` parsed with
// duplicate keys ("<where>: key \"train.steps\" appears twice") and nesting past 64 levels refused
// (JsonStructureError); a syntax error is a cgan::Error "<where>: not valid JSON: parse error ...".
struct JsonStructureError : Error {
  explicit JsonStructureError(const std::string& m) : Error(m) {}
};
nlohmann::json parse_json_text(const std::string& text, const std::string& where);
// A JSON value for an error message: compact, at most max_chars characters ("..." at the end when
// cut), written only as far as shown (nesting past 8 levels is written "[...]"), so a hostile value
// costs no more than its excerpt.
std::string describe_json(const nlohmann::json& v, size_t max_chars = 60);
// Applies one `a.b[2].c=value` override (value parsed as JSON, else taken as a string).
void apply_override(nlohmann::json& j, const std::string& assignment);

// Whether a network has a conditional batch norm layer, and whether it reads the label at all
// (a condition mode other than "none", or a conditional batch norm).
bool has_conditional_bn(const NetSpec& n);
bool net_is_conditional(const NetSpec& n);

// A network object {"condition": {...}, "layers": [...]} (the syntax of "generator" and
// "discriminator", without noise_dim), with errors naming `path` (e.g. "discriminator"); and back.
NetSpec parse_net_spec(const nlohmann::json& j, const std::string& path);
nlohmann::json net_spec_to_json(const NetSpec& n);

}  // namespace cgan
