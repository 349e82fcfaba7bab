// The step tracer that records into a SafeTensors (the hidden `cgan_gpu trace` command).
#include "cgan/train/tracer.hpp"

#include "cgan/base/error.hpp"

namespace cgan {
namespace {

void put_buffer(SafeTensors& st, Backend& be, const std::string& name, const float* p, size_t n,
                std::vector<int64_t> shape) {
  NamedTensor t;
  t.name = name;
  t.shape = std::move(shape);
  t.data.resize(n);
  if (n) be.download(t.data.data(), p, n);
  st.tensors.push_back(std::move(t));
}

// A model's tensors named by its slots: `params` is a parameter-shaped backend buffer (the
// parameters, or their gradients); the state slots are written only when `with_state`.
void put_slots(SafeTensors& st, Backend& be, const Model& m, const std::string& prefix, const float* params,
               bool with_state) {
  std::vector<float> p(m.param_count()), s(with_state ? m.state_count() : 0);
  if (!p.empty()) be.download(p.data(), params, p.size());
  if (!s.empty()) be.download(s.data(), m.state(), s.size());
  for (auto& sl : m.slots()) {
    if (sl.state && !with_state) continue;
    NamedTensor t;
    t.name = prefix + sl.name;
    t.shape = sl.shape;
    const float* src = (sl.state ? s.data() : p.data()) + sl.offset;
    t.data.assign(src, src + sl.count);
    st.tensors.push_back(std::move(t));
  }
}

class TensorTracer final : public StepTracer {
 public:
  TensorTracer(Backend& be, SafeTensors* out, bool weights) : be_(be), out_(out), weights_(weights) {}
  bool active() const override { return true; }
  void buf(const std::string& prefix, const char* name, const float* p, std::vector<int64_t> shape) override {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    put_buffer(*out_, be_, prefix + name, p, n, std::move(shape));
  }
  void ints(const std::string& prefix, const char* name, const int32_t* p, int64_t n) override {
    std::vector<int32_t> h(static_cast<size_t>(n));
    if (n) be_.download_int(h.data(), p, h.size());
    out_->tensors.push_back(NamedTensor{prefix + name, {n}, std::vector<float>(h.begin(), h.end())});
  }
  void masks(const std::string& prefix, const char* name, const Model& m, const NetSpec& spec) override {
    for (int i = 0; i < m.layer_count(); ++i) {
      const std::string& kind = spec.layers[static_cast<size_t>(i)].kind;
      const bool kink = kind == LayerKind::relu || kind == LayerKind::leaky_relu;
      if (kind != LayerKind::dropout && !(kink && weights_)) continue;
      int width = 0;
      const float* y = m.output_of(i, &width);
      if (kink)  // the side of the kink each value took: the replay's choice where rounding decides it
        buf(prefix, cat(name, "side.", i).c_str(), y, {m.batch(), width});
      else if (const float* mask = m.dropout_mask(i))
        buf(prefix, cat(name, "mask.", i).c_str(), mask, {m.batch(), width});
    }
  }
  void grads(const std::string& prefix, const char* name, const Model& m) override {
    if (weights_) put_slots(*out_, be_, m, prefix + name, m.grads(), false);
  }
  void params(const std::string& prefix, const char* name, const Model& m) override {
    if (weights_) put_slots(*out_, be_, m, prefix + name, m.params(), true);
  }

 private:
  Backend& be_;
  SafeTensors* out_;
  bool weights_;
};

}  // namespace

std::unique_ptr<StepTracer> make_tensor_tracer(Backend& be, SafeTensors* out, bool weights) {
  CGAN_CHECK(out != nullptr, "make_tensor_tracer: no SafeTensors to record into");
  return std::make_unique<TensorTracer>(be, out, weights);
}

}  // namespace cgan
