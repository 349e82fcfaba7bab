#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/eval/evaluate.hpp"

#include "cgan/data/image.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cgan/backend/buffer.hpp"
#include "cgan/base/error.hpp"
#include "cgan/base/io.hpp"
#include "cgan/eval/precision_recall.hpp"

namespace cgan {
using json = nlohmann::json;

RealReference prepare_reference(Classifier& clf, const HostDataset& real, int diversity_max) {
  const int K = clf.num_classes(), F = clf.feature_dim(), P = clf.shape().dim();
  CGAN_CHECK(real.dim() == P && real.num_classes == K, clf.path(), ": the real images (", real.name,
             ") do not have the classifier's shape");
  CGAN_CHECK(real.count > 0, "evaluator: no real images");
  RealReference r;
  r.num_classes = K;
  r.feature_dim = F;
  r.count = real.count;
  std::vector<float> logits, feats;
  clf.run(real.x.data(), real.count, &logits, &feats);
  r.classifier_accuracy = accuracy_of(logits, real.y, K);
  r.all = gaussian_stats(feats.data(), real.count, F);
  std::vector<std::vector<float>> by(K);
  for (int i = 0; i < real.count; ++i) {
    const int l = real.y[i];
    CGAN_CHECK(l >= 0 && l < K, "evaluator: real label ", l, " out of range");
    by[l].insert(by[l].end(), feats.begin() + static_cast<ptrdiff_t>(i) * F,
                 feats.begin() + static_cast<ptrdiff_t>(i + 1) * F);
  }
  for (int l = 0; l < K; ++l) {
    const int64_t n = static_cast<int64_t>(by[l].size() / F);
    if (n < 2) throw Error(cat("evaluator: the real set has ", n, " image(s) of label ", l, "; at least 2 are needed"));
    r.label_count.push_back(n);
    r.label_features.push_back(by[l]);
    r.per_label.push_back(gaussian_stats(by[l].data(), n, F));
    r.pairwise.push_back(mean_pairwise_distance(by[l].data(), std::min<int64_t>(n, diversity_max), F));
  }
  return r;
}

// The real side of precision/recall for per-label subset sizes `sizes`.
static std::shared_ptr<RealReference::PrRadii> real_pr_radii(Backend& be, const RealReference& real,
                                                             const std::vector<int64_t>& sizes) {
  const int F = real.feature_dim;
  auto r = std::make_shared<RealReference::PrRadii>();
  r->sizes = sizes;
  for (size_t l = 0; l < sizes.size(); ++l) {
    const float* f = real.label_features[l].data();
    r->label_radii.push_back(knn_radii_sq(be, f, sizes[l], F));
    r->all.insert(r->all.end(), f, f + sizes[l] * F);
  }
  r->all_radii = knn_radii_sq(be, r->all.data(), static_cast<int64_t>(r->all.size() / F), F);
  return r;
}

EvalResult evaluate(Classifier& clf, const RealReference& real, const ImageSource& gen, const EvalOptions& o) {
  const int K = clf.num_classes(), F = clf.feature_dim(), P = clf.shape().dim();
  CGAN_CHECK(real.num_classes == K && real.feature_dim == F, "evaluator: reference from another classifier");
  CGAN_CHECK(o.count >= 2, "evaluator: count must be at least 2, got ", o.count);
  const float clo = clf.shape().lo, chi = clf.shape().hi;
  const bool rescale = o.gen_lo != clo || o.gen_hi != chi;
  const float a = (chi - clo) / (o.gen_hi - o.gen_lo);
  EvalResult res;
  res.count = o.count;
  res.classifier_accuracy = real.classifier_accuracy;
  std::vector<float> all_feats;
  all_feats.reserve(static_cast<size_t>(o.count) * K * F);
  int64_t hits = 0;
  std::vector<float> logits, feats;
  // precision/recall: per label the first n_l = min(count, real images of l) of each side
  CGAN_CHECK(real.label_features.size() == static_cast<size_t>(K), "evaluator: reference without per-label features");
  std::vector<int64_t> pr_sizes(static_cast<size_t>(K));
  for (int l = 0; l < K; ++l) pr_sizes[l] = std::min<int64_t>(o.count, real.label_count[l]);
  if (!real.pr_radii || real.pr_radii->sizes != pr_sizes) real.pr_radii = real_pr_radii(clf.backend(), real, pr_sizes);
  const RealReference::PrRadii& rr = *real.pr_radii;
  Backend& be = clf.backend();
  std::vector<float> pr_gen;  // the generated subsets, concatenated in label order
  pr_gen.reserve(rr.all.size());
  for (int l = 0; l < K; ++l) {
    std::vector<float> x = gen(l, o.count);
    CGAN_CHECK(x.size() == static_cast<size_t>(o.count) * P, "evaluator: the generator returned ", x.size(),
               " values for ", o.count, " images of ", P);
    if (rescale)
      for (float& v : x) v = clo + (v - o.gen_lo) * a;
    clf.run(x.data(), o.count, &logits, &feats);
    LabelScore s;
    s.label = l;
    const std::vector<int32_t> want(o.count, l);
    s.cond_acc = accuracy_of(logits, want, K);
    hits += static_cast<int64_t>(std::llround(s.cond_acc * o.count));
    s.fd = frechet_distance(gaussian_stats(feats.data(), o.count, F), real.per_label[l]);
    const double mpd = mean_pairwise_distance(feats.data(), std::min(o.count, o.diversity_max), F);
    s.diversity = real.pairwise[l] > 0 ? mpd / real.pairwise[l] : 0.0;
    const int64_t n = pr_sizes[l];
    const PrecisionRecall pr = precision_recall(be, real.label_features[l].data(), rr.label_radii[l], n, feats.data(),
                                                knn_radii_sq(be, feats.data(), n, F), n, F);
    s.precision = pr.precision;
    s.recall = pr.recall;
    s.pr_count = n;
    pr_gen.insert(pr_gen.end(), feats.begin(), feats.begin() + static_cast<ptrdiff_t>(n) * F);
    all_feats.insert(all_feats.end(), feats.begin(), feats.end());
    res.labels.push_back(s);
  }
  res.cond_acc = static_cast<double>(hits) / (static_cast<double>(o.count) * K);
  res.fd = frechet_distance(gaussian_stats(all_feats.data(), static_cast<int64_t>(o.count) * K, F), real.all);
  const int64_t n_pr = static_cast<int64_t>(pr_gen.size() / F);
  const PrecisionRecall pr = precision_recall(be, rr.all.data(), rr.all_radii, n_pr, pr_gen.data(),
                                              knn_radii_sq(be, pr_gen.data(), n_pr, F), n_pr, F);
  res.precision = pr.precision;
  res.recall = pr.recall;
  std::vector<float> real_feats;  // every real image's features, label by label
  for (const std::vector<float>& f : real.label_features) real_feats.insert(real_feats.end(), f.begin(), f.end());
  const KidResult kid = kernel_inception_distance(all_feats.data(), static_cast<int64_t>(o.count) * K,
                                                  real_feats.data(), static_cast<int64_t>(real_feats.size() / F), F);
  res.kid_mean = kid.mean;
  res.kid_std = kid.std;
  res.diversity_min = res.labels.empty() ? 0 : res.labels[0].diversity;
  for (const LabelScore& s : res.labels) {
    res.intra_precision += s.precision / K;
    res.intra_recall += s.recall / K;
    res.intra_fd += s.fd / K;
    res.diversity += s.diversity / K;
    res.diversity_min = std::min(res.diversity_min, s.diversity);
  }
  return res;
}

json EvalResult::to_json(const std::vector<std::string>& names) const {
  json per = json::array();
  for (const LabelScore& s : labels) {
    per.push_back({{"label", s.label},
                   {"cond_acc", s.cond_acc},
                   {"fd", s.fd},
                   {"diversity", s.diversity},
                   {"precision", s.precision},
                   {"recall", s.recall},
                   {"pr_count", s.pr_count}});
    if (static_cast<size_t>(s.label) < names.size()) per.back()["name"] = names[static_cast<size_t>(s.label)];
  }
  return {{"count_per_label", count},
          {"cond_acc", cond_acc},
          {"fd", fd},
          {"intra_fd", intra_fd},
          {"diversity", diversity},
          {"diversity_min", diversity_min},
          {"precision", precision},
          {"recall", recall},
          {"intra_precision", intra_precision},
          {"intra_recall", intra_recall},
          {"kid_mean", kid_mean},
          {"kid_std", kid_std},
          {"pr_k", kPrNeighbours},
          {"classifier_accuracy_on_real", classifier_accuracy},
          {"per_label", per}};
}

std::string EvalResult::table(const std::vector<std::string>& names) const {
  // the label column: the number, or "number name" left-aligned when the labels have names
  auto text = [&](int l) { return static_cast<size_t>(l) < names.size() ? cat(l, " ", names[l]) : cat(l); };
  int w = 5;
  for (const LabelScore& s : labels) w = std::max(w, static_cast<int>(text(s.label).size()));
  const std::string pad(static_cast<size_t>(w - 5), ' ');
  std::string t =
      cat(names.empty() ? pad + "label" : "label" + pad, "  cond_acc        FD  diversity  precision  recall\n");
  char buf[320];
  for (const LabelScore& s : labels) {
    std::snprintf(
        buf, sizeof buf,
        names.empty() ? "%*s  %8.4f  %8.3f  %9.3f  %9.4f  %6.4f\n" : "%-*s  %8.4f  %8.3f  %9.3f  %9.4f  %6.4f\n", w,
        text(s.label).c_str(), s.cond_acc, s.fd, s.diversity, s.precision, s.recall);
    t += buf;
  }
  std::snprintf(buf, sizeof buf,
                "%*s  %8.4f  %8.3f  %9.3f  %9.4f  %6.4f   (FD, precision, recall: all images "
                "together; per-label means: FD %.3f, precision %.4f, recall %.4f; diversity: mean, min %.3f; "
                "k = %d)\n",
                w, "all", cond_acc, fd, diversity, precision, recall, intra_fd, intra_precision, intra_recall,
                diversity_min, kPrNeighbours);
  t += buf;
  std::snprintf(buf, sizeof buf, "  KID %.6g +- %.6g   (all images together; mean, std over subsets)\n", kid_mean,
                kid_std);
  t += buf;
  return t;
}

std::vector<std::pair<std::string, std::string>> EvalResult::csv_columns() const {
  auto f6 = [](double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.6f", v);
    return std::string(b);
  };
  auto g6 = [](double v) {  // KID is small: significant digits, not decimals
    char b[64];
    std::snprintf(b, sizeof b, "%.6g", v);
    return std::string(b);
  };
  return {{"cond_acc", f6(cond_acc)},
          {"fd", f6(fd)},
          {"intra_fd", f6(intra_fd)},
          {"diversity", f6(diversity)},
          {"diversity_min", f6(diversity_min)},
          {"precision", f6(precision)},
          {"recall", f6(recall)},
          {"intra_precision", f6(intra_precision)},
          {"intra_recall", f6(intra_recall)},
          {"kid_mean", g6(kid_mean)},
          {"kid_std", g6(kid_std)}};
}

EvalOptions eval_options(int count, const DataShape& shape) {
  EvalOptions o;
  o.count = count;
  o.gen_lo = shape.lo;
  o.gen_hi = shape.hi;
  return o;
}

ImageSource generator_source(Backend& be, const Config& cfg, const Model& G, const DataShape& shape, int batch,
                             uint64_t seed) {
  struct State {
    explicit State(Backend& b) : be(b) {}
    Backend& be;
    std::unique_ptr<Model> S;
    Buffer<float> z, cond;
    Buffer<int32_t> y;
  };
  const int num_classes = shape.num_classes;
  const int Kg = condition_width(cfg.generator, shape);
  CGAN_CHECK(Kg > 0 && num_classes > 0,
             "evaluator: the generator is unconditional; the evaluator scores conditional generators");
  auto st = std::make_shared<State>(be);
  st->S = std::make_unique<Model>(be, cfg.generator, cfg.noise_dim, Kg, batch, "generator", &G);
  st->z = Buffer<float>(be, static_cast<size_t>(batch) * cfg.noise_dim);
  st->y = Buffer<int32_t>(be, batch);
  st->cond = Buffer<float>(be, static_cast<size_t>(batch) * Kg);
  const int noise = cfg.noise_dim;
  return [st, batch, noise, seed, Kg, num_classes, shape](int label, int n) {
    CGAN_CHECK(n > 0 && n <= batch, "evaluator: ", n, " images requested from a source of batch ", batch);
    CGAN_CHECK(label >= 0 && label < num_classes, "evaluator: label ", label, " out of range");
    Backend& be = st->be;
    be.rand_normal(static_cast<size_t>(batch) * noise, seed, kEvalNoiseStream + static_cast<uint64_t>(label), 0, 0.f,
                   1.f, st->z);
    const std::vector<int32_t> labels(batch, label);
    be.upload_int(st->y, labels.data(), labels.size());
    if (shape.tag_dim > 0) {
      std::vector<float> tags;
      for (int i = 0; i < batch; ++i) {
        const std::vector<float> t = tags_for_label(shape.vocab, label, i);
        tags.insert(tags.end(), t.begin(), t.end());
      }
      be.upload(st->cond, tags.data(), tags.size());
    } else {
      be.one_hot(batch, Kg, st->y, st->cond);
    }
    const float* out = st->S->forward(st->z, st->y, st->cond, false);
    std::vector<float> h(static_cast<size_t>(n) * st->S->out_dim());
    be.download(h.data(), out, h.size());
    return h;
  };
}

// ---------------------------------------------------------------- anime attributes

std::vector<float> probe_size_images(std::vector<float> img, int count, const DataShape& shape) {
  const int S = kProbeSize, P = shape.dim();
  CGAN_CHECK(shape.channels == 3 && img.size() == static_cast<size_t>(count) * P, "probe_size_images: bad shape");
  if (shape.height == S && shape.width == S) return img;
  std::vector<float> out(static_cast<size_t>(count) * 3 * S * S);
  for (int i = 0; i < count; ++i) {  // through 8-bit RGB, as a PNG of the image would be
    const Image im = make_grid(img.data() + static_cast<size_t>(i) * P, 1, 3, shape.height, shape.width, 1, 1, shape.lo,
                               shape.hi, 0);
    const Image big = resize_image(im, S, S);
    float* dst = out.data() + static_cast<size_t>(i) * 3 * S * S;
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < S * S; ++p)
        dst[static_cast<size_t>(c) * S * S + p] =
            shape.lo + (shape.hi - shape.lo) * big.pixels[static_cast<size_t>(p) * 3 + c] / 255.f;
  }
  return out;
}

AnimeAttributeTally::AnimeAttributeTally(const DataShape& shape) : shape_(shape) {
  if (shape.vocab != default_vocabulary())
    throw Error("evaluator: attribute accuracy needs the procedural anime set's vocabulary (12 hair + 10 eye colours)");
  hair_by_label_.assign(default_hair_tags().size(), 0.0);
}

void AnimeAttributeTally::add(int hair, const std::vector<float>& images) {
  const int T = shape_.tag_dim;
  const int n = static_cast<int>(images.size() / static_cast<size_t>(shape_.dim()));
  CGAN_CHECK(hair >= 0 && hair < static_cast<int>(hair_by_label_.size()) && n > 0, "evaluator: bad hair colour ", hair,
             " or no images");
  std::vector<float> tags;
  for (int i = 0; i < n; ++i) {
    const std::vector<float> t = tags_for_label(shape_.vocab, hair, i);
    tags.insert(tags.end(), t.begin(), t.end());
  }
  const std::vector<float> probe_in = probe_size_images(images, n, shape_);
  const AttributeAccuracy a =
      attribute_accuracy(probe_in.data(), n, kProbeSize, kProbeSize, shape_.lo, shape_.hi, tags.data(), T);
  hair_by_label_[static_cast<size_t>(hair)] = a.hair;
  count_ = n;
  images_ += n;
  hair_ok_ += std::llround(a.hair * n);  // the fractions are counts over n
  eye_ok_ += std::llround(a.eye * n);
  both_ok_ += std::llround(a.both * n);
  hair_unknown_ += a.hair_unknown;
  eye_unknown_ += a.eye_unknown;
}

AnimeEvalResult AnimeAttributeTally::result() const {
  AnimeEvalResult r;
  r.count = count_;
  r.hair_names = default_hair_tags();
  r.hair_by_label = hair_by_label_;
  const double n = static_cast<double>(std::max<int64_t>(images_, 1));
  r.all.hair = static_cast<double>(hair_ok_) / n;
  r.all.eye = static_cast<double>(eye_ok_) / n;
  r.all.both = static_cast<double>(both_ok_) / n;
  r.all.hair_unknown = hair_unknown_;
  r.all.eye_unknown = eye_unknown_;
  return r;
}

nlohmann::json AnimeEvalResult::to_json() const {
  nlohmann::json per = nlohmann::json::array();
  for (size_t h = 0; h < hair_by_label.size(); ++h)
    per.push_back({{"hair", hair_names[h]}, {"hair_acc", hair_by_label[h]}});
  return {{"images_per_hair_colour", count},
          {"hair_acc", all.hair},
          {"eye_acc", all.eye},
          {"both_acc", all.both},
          {"hair_unknown", all.hair_unknown},
          {"eye_unknown", all.eye_unknown},
          {"chance_hair", 1.0 / 12},
          {"chance_eye", 1.0 / 10},
          {"per_hair_colour", per}};
}

std::string AnimeEvalResult::table() const {
  std::string t = "hair colour     hair acc\n";
  char line[128];
  for (size_t h = 0; h < hair_by_label.size(); ++h) {
    std::snprintf(line, sizeof line, "%-15s %8.3f\n", hair_names[h].c_str(), hair_by_label[h]);
    t += line;
  }
  std::snprintf(line, sizeof line, "all: hair %.3f (chance 0.083), eyes %.3f (chance 0.100), both %.3f\n", all.hair,
                all.eye, all.both);
  return t + line;
}

// ---------------------------------------------------------------- metrics.csv

static const char* kMetricsHeader =
    "step,cond_acc,fd,intra_fd,diversity,diversity_min,precision,recall,intra_precision,intra_recall,kid_mean,kid_"
    "std\n";

const char* MetricsLog::header() { return kMetricsHeader; }

MetricsLog::MetricsLog(const std::string& path, int64_t start_step) : path_(path) {
  std::string text = kMetricsHeader;
  std::error_code ec;
  if (start_step > 0 && std::filesystem::exists(path, ec)) {  // what a resumed run continues
    std::istringstream in(read_regular_file(path, "metrics log"));
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
      if (first) {
        first = false;
        continue;  // header
      }
      if (line.empty()) continue;
      const long long step = std::strtoll(line.c_str(), nullptr, 10);
      if (step > start_step) break;
      text += line + "\n";
    }
  }
  write_file_atomic(path_, text);
}

void MetricsLog::append(int64_t step, const EvalResult& r) {
  std::string row = cat(static_cast<long long>(step));
  for (const auto& c : r.csv_columns()) row += "," + c.second;
  row += "\n";
  std::FILE* f = std::fopen(path_.c_str(), "ab");
  if (!f) throw Error(cat(path_, ": cannot open for appending: ", std::strerror(errno)));
  const size_t n = row.size();
  const bool ok = std::fwrite(row.data(), 1, n, f) == n;
  if (std::fclose(f) != 0 || !ok) throw Error(cat(path_, ": write failed: ", std::strerror(errno)));
}

}  // namespace cgan
