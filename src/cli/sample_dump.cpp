// `cgan_gpu sample --dump-dir DIR --count N`: one PNG per generated image, for FID tools.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cgan/base/io.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/train/sample.hpp"
#include "cli.hpp"

namespace cgan::cli {
namespace fs = std::filesystem;

int sample_dump(const SampleMode& m, SampleRequest req) {
  const DataShape& shape = m.info.shape;
  if (shape.is_points()) throw Usage("sample --dump-dir: this model makes 2-D points, not images");
  if (m.count <= 0) throw Usage("sample --dump-dir: give --count N (how many images)");
  const int n = static_cast<int>(m.count);
  const int K = m.conditional ? shape.num_classes : 0;
  const bool tagged = K > 0 && shape.tag_dim > 0;
  std::error_code ec;
  if (fs::exists(m.dump_dir, ec) && !(fs::is_directory(m.dump_dir, ec) && fs::is_empty(m.dump_dir, ec)))
    throw Error(cat("--dump-dir: ", m.dump_dir,
                    " is not an empty folder; choose a new one (a score over mixed files would mislead)"));
  fs::create_directories(m.dump_dir, ec);
  if (ec) throw Error(cat("--dump-dir: ", m.dump_dir, ": cannot create: ", ec.message()));
  // labels: --label N for all, the given tags for all, else label i mod K (an even spread)
  const std::vector<float> t = tagged ? tags_from_text(m.tags, shape.vocab) : std::vector<float>();
  std::string csv = tagged ? "file,label,tags\n" : "file,label\n";
  const std::string tag_text = tagged ? tags_to_text(t.data(), shape.vocab) : std::string();
  constexpr int kChunk = 256;  // images per generator call; the noise is one draw (Philox offsets)
  req.save_tensors.clear();
  for (int i0 = 0; i0 < n; i0 += kChunk) {
    const int c = std::min(kChunk, n - i0);
    req.labels.clear(), req.tags.clear();
    req.noise_offset = static_cast<uint64_t>(i0) * m.info.cfg.noise_dim;
    req.count = c;
    for (int i = i0; i < i0 + c && K > 0; ++i) {
      req.labels.push_back(tagged         ? label_of_tags(t.data(), shape.vocab)
                           : m.label >= 0 ? static_cast<int32_t>(m.label)
                                          : i % K);
      req.tags.insert(req.tags.end(), t.begin(), t.end());
    }
    const SampleOutput o = generate_samples(*m.be, m.ck, m.ckpt, req);
    for (int k = 0; k < c; ++k) {
      const int i = i0 + k;
      char name[64];
      if (K > 0)
        std::snprintf(name, sizeof name, "img_%06d_label_%d.png", i, o.labels[k]);
      else
        std::snprintf(name, sizeof name, "img_%06d.png", i);
      write_png((fs::path(m.dump_dir) / name).string(),  // temporary + rename: a file is whole or absent
                make_grid(&o.x[static_cast<size_t>(k) * shape.dim()], 1, shape.channels, shape.height, shape.width, 1,
                          1, shape.lo, shape.hi, 0));
      csv += K > 0 ? cat(name, ",", o.labels[k], tagged ? cat(",\"", tag_text, "\"") : std::string(), "\n")
                   : cat(name, ",\n");
    }
  }
  write_file_atomic((fs::path(m.dump_dir) / "labels.csv").string(), csv);  // last: the folder is complete
  std::fprintf(stderr, "cgan_gpu: wrote %d images and labels.csv to %s (%s generator)\n", n, m.dump_dir.c_str(),
               generator_kind(req.ema, m.ck));
  return 0;
}

}  // namespace cgan::cli
