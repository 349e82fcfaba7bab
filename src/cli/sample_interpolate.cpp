// `cgan_gpu sample --interpolate`: a grid walking the noise between two points per row (slerp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "cgan/backend/buffer.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/train/sample.hpp"
#include "cli.hpp"

namespace cgan::cli {

// Spherical interpolation of two Gaussian noise vectors (the path stays on the shell where such
// vectors lie, where a straight line would pass through low-norm noise the generator never saw);
// a straight line when the two are (nearly) parallel. t = 0 and t = 1 give a and b exactly.
static void slerp(const float* a, const float* b, int d, double t, float* out) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < d; ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  const double c = aa > 0 && bb > 0 ? std::fmax(-1.0, std::fmin(1.0, ab / std::sqrt(aa * bb))) : 1.0;
  const double om = std::acos(c), s = std::sin(om);
  const double wa = s < 1e-6 ? 1 - t : std::sin((1 - t) * om) / s, wb = s < 1e-6 ? t : std::sin(t * om) / s;
  for (int i = 0; i < d; ++i) out[i] = static_cast<float>(wa * a[i] + wb * b[i]);
}

int sample_interpolate(const SampleMode& m, SampleRequest req) {
  const DataShape& shape = m.info.shape;
  const int nd = m.info.cfg.noise_dim;
  const int K = m.conditional ? shape.num_classes : 0;
  const int rows = m.rows > 0 ? static_cast<int>(m.rows) : (K > 0 ? std::min(K, 10) : 8);
  const int steps = m.steps > 0 ? static_cast<int>(m.steps) : 10;
  if (static_cast<long long>(rows) * steps > kMaxSampleImages)
    throw Usage(
        cat("sample --interpolate: ", rows, " rows x ", steps, " steps is more than ", kMaxSampleImages, " images"));
  // the endpoints: row r walks from image 2r to image 2r + 1 of a plain sample with this seed
  std::vector<float> ends(static_cast<size_t>(2) * rows * nd);
  {
    const Buffer<float> z(*m.be, ends.size());
    m.be->rand_normal(ends.size(), req.seed, kSampleNoiseStream, 0, 0.f, 1.f, z);
    m.be->download(ends.data(), z, ends.size());
  }
  req.noise.assign(static_cast<size_t>(rows) * steps * nd, 0.f);
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < steps; ++j)
      slerp(&ends[static_cast<size_t>(2 * r) * nd], &ends[static_cast<size_t>(2 * r + 1) * nd], nd,
            double(j) / (steps - 1), &req.noise[(static_cast<size_t>(r) * steps + j) * nd]);
  req.rows = rows, req.cols = steps;
  if (K == 0) {
    req.count = rows * steps;
  } else {
    const std::vector<float> given = m.tags.empty() ? std::vector<float>() : tags_from_text(m.tags, shape.vocab);
    for (int r = 0; r < rows; ++r) {
      const int lab = m.label >= 0 ? static_cast<int>(m.label) : r % K;
      // tagged sets: the given tags on every row, else row r's hair label with eye phrase r (as the grids)
      const std::vector<float> t = shape.tag_dim == 0 ? std::vector<float>()
                                   : !given.empty()   ? given
                                                      : tags_for_label(shape.vocab, lab, r);
      for (int j = 0; j < steps; ++j) {
        req.labels.push_back(t.empty() ? lab : label_of_tags(t.data(), shape.vocab));
        req.tags.insert(req.tags.end(), t.begin(), t.end());
      }
    }
  }
  const Image img = sample_from_checkpoint(*m.be, m.ck, m.ckpt, req);
  write_png(m.out, img);
  std::fprintf(stderr, "cgan_gpu: wrote %s (%d rows x %d steps of slerp between two noises, %dx%d)\n", m.out.c_str(),
               rows, steps, img.width, img.height);
  return 0;
}

}  // namespace cgan::cli
