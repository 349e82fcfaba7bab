// The evaluator's classifier: a network of the engine's own layers (Model) trained with softmax
// cross-entropy on a labelled image set (MNIST, Fashion-MNIST, the procedural anime faces' hair
// colour), stored as safetensors with its
// spec and test accuracy. Its architecture is data, not code: configs/classifier_<kind>.json holds
// the default per dataset (`cgan_gpu classifier` loads it; --config overrides it):
//
//   {"description": "...", "data": {"kind": "mnist", "range": [0, 1]},
//    "layers": [{"linear": 512}, {"relu": {}}, {"dropout": 0.2}, ..., {"linear": 10}],
//    "train": {"steps": 6000, "batch_size": 128, "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "seed": 1}}
//
// "layers" uses the generator/discriminator layer syntax (configs/README.md); the network gets no
// label input. A network that starts with a conv or pooling layer gets a {"reshape": [C, H, W]} of
// the data's image shape put in front of it, so one spec serves every image size. Anime specs add
// "data": {"kind": "anime", "size": [H, W], "count": N}: N procedural training faces (seed 0) and
// test faces of seed 1 (see classifier_images), labelled with their hair colour (12 classes).
// Class-folder specs (configs/classifier_image_folder.json) add "data": {"kind": "image_folder",
// "dir": D, "size": N or [H, W], "test_fraction": f}: the RGB images of D's class folders
// (class_folder.hpp), f of each class held out for the test accuracy (class_folder_split); `cgan_gpu
// classifier --data image_folder --data-dir D --size N` fills dir and size in. In any spec the
// last layer may be {"linear": "classes"}: as many outputs as the data has labels (10 for MNIST
// and Fashion, 12 hair colours for anime, the class folders' count). Its features (what the
// Fréchet distance and the diversity figure measure) are the input of its last linear layer: the
// output of the layer just before it.
//
// File: tensors "classifier.<slot>" (Model::slots(): the v1 layout of state_dict.hpp), metadata format "cgan_gpu.classifier.v1",
// "network" (the NetSpec JSON), "spec" (the whole classifier spec JSON), "data_kind",
// "data_shape" "C,H,W", "num_classes", "data_range" "lo,hi", "test_accuracy", "steps",
// "feature_layer", and for class-folder classifiers "class_names" (classes.txt's text) and "data_dir".
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgan/backend/backend.hpp"
#include "cgan/backend/buffer.hpp"
#include "cgan/base/safetensors.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/nn/model.hpp"

namespace cgan {

constexpr const char* kClassifierFormat = "cgan_gpu.classifier.v1";

struct ClassifierSpec {
  std::string description;
  std::string data_kind = "mnist";            // mnist | fashion | anime | image_folder
  int height = 28, width = 28, channels = 1;  // image shape (anime, image_folder: data.size, RGB)
  int count = 20000;                          // anime: training faces
  std::string dir;                            // image_folder: the folder of class folders
  double test_fraction = 0.1;                 // image_folder: share of each class held out
  std::vector<std::string> class_names;       // image_folder: read from dir when the spec is parsed
  float lo = 0.f, hi = 1.f;                   // pixel range the classifier sees
  NetSpec net;                                // condition "none"
  int64_t steps = 6000;
  int batch_size = 128;
  AdamSpec adam;
  uint64_t seed = 1;

  nlohmann::json to_json() const;
};

// Parses a classifier spec (unknown keys, wrong types: one-line errors prefixed with `path`). An
// image_folder spec lists its data.dir's class folders (class_folder_names) to learn the labels.
ClassifierSpec parse_classifier_spec(const nlohmann::json& j, const std::string& path);
ClassifierSpec load_classifier_spec(const std::string& path);
// The spec at `path` for the images `data` describes: its data.kind must be data's; an anime spec
// gets data.size, an image_folder spec data.dir and data.size (the keys the file leaves to the run).
ClassifierSpec load_classifier_spec_for(const std::string& path, const DataSpec& data);
// configs/classifier_<kind>.json (relative to the working directory).
std::string default_classifier_spec_path(const std::string& data_kind);
// default_classifier_path (the file a kind's classifier is written to) lives in config.hpp: the
// config names it as eval.classifier's default.
// The real images a classifier of this kind trains on (train) or is tested on (!train): MNIST or
// Fashion-MNIST IDX files from `dir`, or the procedural anime faces (dir unused; `count` training
// faces of seed 0, test faces of seed 1: 5000, or count/4 but at least 1000 when that is fewer).
// `key` names the source in errors.
HostDataset classifier_images(const std::string& kind, const std::string& dir, bool train, float lo, float hi,
                              int height, int width, int count, const std::string& key);
// The real images an evaluation compares generated ones with, in the classifier's range lo..hi:
// the MNIST / Fashion-MNIST test set in `dir`, 5000 procedural test faces (seed 1) of height x
// width, or every image of a class folder `dir` resized to height x width (as StyleGAN's
// fid50k_full uses the whole training set: a class folder has no separate test set, and the
// classifier's own held-out share is too small for the Fréchet statistics). `key` names the
// source in errors.
HostDataset reference_images(const std::string& kind, const std::string& dir, float lo, float hi, int height, int width,
                             const std::string& key);
// Index of the layer whose output is the feature vector: the one before the last linear layer.
int feature_layer_of(const NetSpec& net);

// A trained classifier loaded from its file, ready to run batches in evaluation mode.
class Classifier {
 public:
  // Validates the file (format, metadata, tensor shapes); errors start with `path`.
  Classifier(Backend& be, const SafeTensors& file, const std::string& path, int batch = 500);
  ~Classifier();
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  const std::string& path() const { return path_; }
  Backend& backend() const { return be_; }
  const std::string& data_kind() const { return data_kind_; }
  const DataShape& shape() const { return shape_; }  // lo/hi: the range it expects; class_names
  double test_accuracy() const { return test_accuracy_; }
  int num_classes() const { return shape_.num_classes; }
  int feature_dim() const { return feature_dim_; }

  // Runs n images (host, n x shape().dim(), in the classifier's range) in evaluation mode; fills
  // logits [n, K] and features [n, feature_dim()] (host, row-major) for the non-null outputs.
  void run(const float* x, int64_t n, std::vector<float>* logits, std::vector<float>* features);

 private:
  Backend& be_;
  std::string path_, data_kind_;
  DataShape shape_;
  double test_accuracy_ = 0;
  int feature_layer_ = 0, feature_dim_ = 0;
  std::unique_ptr<Model> model_;
  Buffer<float> x_;
};

// Loads a classifier file; a missing file gets a one-line error saying how to create it (`make`, the
// command, when given; else `cgan_gpu classifier --data mnist|fashion --out PATH`).
std::unique_ptr<Classifier> load_classifier(Backend& be, const std::string& path, int batch = 500,
                                            const std::string& make = "");
// The command that trains the classifier for `data` into `out` (square images: --size takes one side).
std::string classifier_command(const DataSpec& data, const std::string& out);

// Throws a one-line cgan::Error unless `clf` was trained on images of `data_kind` with `shape`'s
// size and label count, and (class folders) the same class names in the same order (`what` names
// the other side, e.g. the checkpoint's path).
void check_classifier_matches(const Classifier& clf, const std::string& data_kind, const DataShape& shape,
                              const std::string& what);

// Share of rows whose first-max logit is the label.
double accuracy_of(const std::vector<float>& logits, const std::vector<int32_t>& labels, int num_classes);

// Trains a classifier on `train` (Adam, softmax cross-entropy, Philox-shuffled batches, the last
// partial batch of an epoch dropped), then measures its accuracy on `test` in evaluation mode.
// Returns the file to write; *test_accuracy receives the accuracy. `progress` (may be empty) is
// called every `report_every` steps with the step and the mean loss and training accuracy since
// the last call.
SafeTensors train_classifier(Backend& be, const ClassifierSpec& spec, const HostDataset& train, const HostDataset& test,
                             double* test_accuracy, const std::function<void(int64_t, double, double)>& progress = {},
                             int64_t report_every = 500);

// Trains the classifier `spec` describes on its kind's training images (classifier_images: IDX
// files from `data_dir`, or the procedural faces; a class folder's spec.dir, split by
// class_folder_split; `dir_key` names the folder in errors), printing
// a header and the progress line "step N/M | loss L | train acc A | elapsed" to stderr every
// min(500, steps / 4) steps, and writes the file atomically to `out` (its folder created). A stop
// request (stop.hpp) ends it with Stopped before anything is written.
struct ClassifierTrained {
  double test_accuracy = 0;
  int test_count = 0;
  double seconds = 0;
};
ClassifierTrained train_classifier_file(Backend& be, const ClassifierSpec& spec, const std::string& data_dir,
                                        const std::string& dir_key, const std::string& out);

// What training with evaluation does when its classifier is missing. When `path` is the default
// classifier of the run's data (default_classifier_path(data)) and does not exist, it is trained
// first, from the shipped spec default_classifier_spec_path(kind) (load_classifier_spec_for) on
// the images in data.dir, saying so on stderr (then the progress lines, then the test accuracy and
// the file written); returns true. Otherwise (the file exists, or the user named another path,
// whose absence load_classifier reports) does nothing and returns false. A missing spec file is a
// one-line error saying how to make the classifier by hand.
bool train_missing_default_classifier(Backend& be, const DataSpec& data, const std::string& path);

}  // namespace cgan
