// The evaluator: what a conditional generator learned, measured with a classifier (classifier.hpp)
// trained on the real images.
//
//   conditional accuracy  share of generated images the classifier assigns to the requested label
//                         (overall and per label)
//   Fréchet distance      between Gaussians fitted to the classifier's penultimate features of real
//                         TEST images and of generated images: overall, and per label (intra-class,
//                         real images of label l vs images generated for label l)
//   diversity             per label: mean pairwise feature distance of the generated images over
//                         that of the real ones; about 1 when the spread matches, toward 0 when a
//                         label collapses to one image
//   KID                   kernel (Inception) distance: the unbiased polynomial-kernel MMD² between
//                         the same features of all generated and all real images, mean and standard
//                         deviation over 100 random subsets of min(1000, n) (metrics.hpp)
//   precision, recall     improved precision and recall (Kynkäänniemi et al. 2019, k = 3) in the
//                         same feature space (precision_recall.hpp): overall (all labels together)
//                         and per label (real images of label l vs images generated for l; for the
//                         tagged anime faces a label is the requested hair colour, eye colours
//                         pooled), on equal numbers of real and generated images: per label the
//                         first min(count, real images of l) of each
//
// The generator is anything that produces images for a label (ImageSource), so tests can score
// fake generators; generator_source() wraps a Model.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgan/data/anime_faces.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/backend/backend.hpp"
#include "cgan/base/streams.hpp"
#include "cgan/eval/classifier.hpp"
#include "cgan/config/config.hpp"
#include "cgan/data/data.hpp"
#include "cgan/eval/metrics.hpp"
#include "cgan/nn/model.hpp"

namespace cgan {

// n images of `label`: host, row-major [n, dim], values in the generator's data range.
using ImageSource = std::function<std::vector<float>(int label, int n)>;

// The real side, prepared once: features of the real (test) images per label.
struct RealReference {
  int num_classes = 0, feature_dim = 0;
  int64_t count = 0;
  double classifier_accuracy = 0;        // the classifier's accuracy on these images
  GaussianStats all;                     // over every image
  std::vector<GaussianStats> per_label;  // images of label l
  std::vector<double> pairwise;          // mean pairwise feature distance of label l's images
  std::vector<int64_t> label_count;
  std::vector<std::vector<float>> label_features;  // label l's features [label_count[l], feature_dim]
  // The k-NN radii of the real subsets precision/recall compare with (the first n_l images of each
  // label), computed by the first evaluate() that needs these n_l and kept: training evaluates
  // with one count, so the 10,000 x 10,000 real distances are computed once per run.
  struct PrRadii {
    std::vector<int64_t> sizes;                    // n_l per label
    std::vector<std::vector<double>> label_radii;  // squared, per label
    std::vector<float> all;                        // the subsets, concatenated in label order
    std::vector<double> all_radii;                 // squared, over `all`
  };
  mutable std::shared_ptr<PrRadii> pr_radii;
};

// `real` must be in the classifier's range with its shape (check_classifier_matches). The mean
// pairwise distance uses at most `diversity_max` images per label (the first ones).
RealReference prepare_reference(Classifier& clf, const HostDataset& real, int diversity_max = 1000);

struct EvalOptions {
  int count = 1000;                  // generated images per label
  int diversity_max = 1000;          // images per label entering the mean pairwise distance
  float gen_lo = 0.f, gen_hi = 1.f;  // the generator's pixel range (mapped linearly to the classifier's)
};
// `count` images per label from a generator of data shaped `shape` (its range).
EvalOptions eval_options(int count, const DataShape& shape);

struct LabelScore {
  int label = 0;
  double cond_acc = 0, fd = 0, diversity = 0;
  double precision = 0, recall = 0;  // against label l's real images
  int64_t pr_count = 0;              // real and generated images entering them
};

struct EvalResult {
  int count = 0;                                 // generated images per label
  double cond_acc = 0;                           // over all generated images
  double fd = 0;                                 // all generated vs all real
  double intra_fd = 0;                           // mean of the per-label distances
  double diversity = 0;                          // mean of the per-label figures
  double diversity_min = 0;                      // the most collapsed label's figure
  double classifier_accuracy = 0;                // on the real reference images
  double precision = 0, recall = 0;              // all labels together
  double intra_precision = 0, intra_recall = 0;  // means of the per-label figures
  double kid_mean = 0, kid_std = 0;              // all generated vs all real
  std::vector<LabelScore> labels;

  // `names` (class-folder sets: the class names, index = label; may be empty) adds a "name" per label.
  nlohmann::json to_json(const std::vector<std::string>& names = {}) const;
  // The figures of a metrics.csv row after its step, named as its header names them, each as the
  // text the row holds.
  std::vector<std::pair<std::string, std::string>> csv_columns() const;
  // One row per label (with its class name after the number when `names` has them) and an "all" row.
  std::string table(const std::vector<std::string>& names = {}) const;
};

EvalResult evaluate(Classifier& clf, const RealReference& real, const ImageSource& gen, const EvalOptions& o);

// Images from a generator model in evaluation mode (sharing `G`'s parameters, which must outlive
// the source): z ~ N(0, 1) from Philox(seed, kEvalNoiseStream + label); n may not exceed `batch`.
// Tagged sets (shape.tag_dim > 0): image i of label l is made from tags_for_label(shape.vocab, l, i).
ImageSource generator_source(Backend& be, const Config& cfg, const Model& G, const DataShape& shape, int batch,
                             uint64_t seed);

// ---- models of the procedural anime faces (data.kind "anime"): attribute accuracy through the
// colour probe (anime.hpp). The images of hair colour h are those generator_source() makes for
// label h (tags {hair h, eye e} with e cycling through the eye colours); images smaller or larger
// than 96x96 are resized to 96x96 (the probe's size) first; the probe's hair and eye colours are
// compared with the requested ones. Chance is 1/12 for hair and 1/10 for eyes.
struct AnimeEvalResult {
  int count = 0;                        // images per hair colour
  AttributeAccuracy all;                // over every generated image
  std::vector<double> hair_by_label;    // hair accuracy per requested hair colour
  std::vector<std::string> hair_names;  // the vocabulary's hair phrases
  nlohmann::json to_json() const;
  std::string table() const;
};
// Images (count x 3 x H x W in shape's range) resized to the probe's 96x96 (a copy when already that size).
constexpr int kProbeSize = 96;
std::vector<float> probe_size_images(std::vector<float> images, int count, const DataShape& shape);
// Counts the probe's verdicts on the images of each hair colour as they are generated, so the same
// images can also feed the classifier's evaluate() (see `cgan_gpu eval`). The data's vocabulary
// must be the procedural set's default 22 tags.
class AnimeAttributeTally {
 public:
  explicit AnimeAttributeTally(const DataShape& shape);
  // images: n x dim, in the data's range, made for hair colour `hair` (image i from
  // tags_for_label(vocab, hair, i)).
  void add(int hair, const std::vector<float>& images);
  AnimeEvalResult result() const;

 private:
  DataShape shape_;
  int count_ = 0;  // images per hair colour (the last add's)
  int64_t images_ = 0, hair_ok_ = 0, eye_ok_ = 0, both_ok_ = 0;
  int hair_unknown_ = 0, eye_unknown_ = 0;
  std::vector<double> hair_by_label_;
};

// metrics.csv in a run directory: step,cond_acc,fd,intra_fd,diversity,diversity_min,precision,
// recall,intra_precision,intra_recall,kid_mean,kid_std, one row per evaluation during training. Started at step s > 0 (a resume), rows after s are dropped first.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, int64_t start_step);
  static const char* header();  // "step,cond_acc,...,kid_std\n"
  void append(int64_t step, const EvalResult& r);

 private:
  std::string path_;
};

}  // namespace cgan
