#include "cgan/nn/checkpoint_info.hpp"
#include "cgan/train/sample.hpp"

#include "cgan/backend/buffer.hpp"
#include "cgan/nn/ema.hpp"
#include "cgan/base/error.hpp"
#include "cgan/report/grid.hpp"
#include "cgan/nn/state_dict.hpp"

namespace cgan {

Image sample_from_checkpoint(Backend& be, const SafeTensors& ck, const std::string& path, const SampleRequest& req) {
  const SampleOutput o = generate_samples(be, ck, path, req);
  return render_samples(o.x, o.labels, o.shape, req.rows, req.cols);
}

SampleOutput generate_samples(Backend& be, const SafeTensors& ck, const std::string& path, const SampleRequest& req) {
  const CheckpointInfo info = read_checkpoint_info(ck, path);
  const Config& cfg = info.cfg;
  const DataShape& shape = info.shape;
  const int Kg = condition_width(cfg.generator, shape);
  const int n = Kg > 0 ? static_cast<int>(req.labels.size()) : req.count;
  if (n <= 0) throw Error("sample: nothing to generate (give --labels, --label or --count)");
  if (shape.tag_dim > 0 && Kg > 0 && req.tags.size() != static_cast<size_t>(n) * shape.tag_dim)
    throw Error("sample: this model is conditioned on tags: give --tags \"blue hair, yellow eyes\"");
  for (int32_t l : req.labels)
    if (l < 0 || l >= std::max(shape.num_classes, 1))
      throw Error(cat("sample: label ", l, " is outside this model's classes 0..", shape.num_classes - 1));
  const std::unique_ptr<Model> G1 = load_generator(be, info, ck, path, req.ema);
  Model G(be, cfg.generator, cfg.noise_dim, Kg, n, "generator", G1.get());
  const Buffer<float> z(be, static_cast<size_t>(n) * cfg.noise_dim);
  const Buffer<int32_t> y(be, n);
  const Buffer<float> cond(be, static_cast<size_t>(n) * std::max(Kg, 1));
  std::vector<int32_t> labels = req.labels;
  labels.resize(n, 0);
  std::vector<float> h(static_cast<size_t>(n) * G.out_dim());
  if (!req.noise.empty()) {
    if (req.noise.size() != static_cast<size_t>(n) * cfg.noise_dim)
      throw Error(cat("sample: ", req.noise.size(), " noise values given for ", n, " x ", cfg.noise_dim));
    be.upload(z, req.noise.data(), req.noise.size());
  } else {
    be.rand_normal(static_cast<size_t>(n) * cfg.noise_dim, req.seed, kSampleNoiseStream, req.noise_offset, 0.f, 1.f, z);
  }
  be.upload_int(y, labels.data(), labels.size());
  if (Kg > 0 && shape.tag_dim > 0 && G.uses_onehot())
    be.upload(cond, req.tags.data(), req.tags.size());
  else if (Kg > 0 && G.uses_onehot())
    be.one_hot(n, Kg, y, cond);
  const float* out = G.forward(z, y, cond, false);
  be.download(h.data(), out, h.size());
  if (!req.save_tensors.empty()) {
    SafeTensors st;
    NamedTensor tz{"noise", {n, cfg.noise_dim}, std::vector<float>(static_cast<size_t>(n) * cfg.noise_dim)};
    be.download(tz.data.data(), z, tz.data.size());
    st.tensors.push_back(std::move(tz));
    st.tensors.push_back(NamedTensor{"labels", {n}, std::vector<float>(labels.begin(), labels.end())});
    if (Kg > 0 && G.uses_onehot()) {
      NamedTensor tc{"cond", {n, Kg}, std::vector<float>(static_cast<size_t>(n) * Kg)};
      be.download(tc.data.data(), cond, tc.data.size());
      st.tensors.push_back(std::move(tc));
    }
    st.tensors.push_back(NamedTensor{"samples", {n, G.out_dim()}, h});
    st.metadata["format"] = "cgan_gpu.sample_inputs.v1";
    st.metadata["checkpoint"] = path;
    st.metadata["seed"] = std::to_string(req.seed);
    st.metadata["grid"] = cat(req.rows, ",", req.cols);  // rows, columns of the picture
    st.metadata["generator"] = req.ema && checkpoint_has_ema(ck) ? kEmaNet : "generator";  // whose weights
    write_safetensors(req.save_tensors, st);
  }
  return SampleOutput{std::move(h), std::move(labels), shape};
}

}  // namespace cgan
