// Model tensors <-> checkpoint tensors in PyTorch's state_dict layout (v2) and the v1 layout; see
// include/cgan/nn/state_dict.hpp.
#include "cgan/nn/state_dict.hpp"

#include <algorithm>
#include <vector>

#include "cgan/base/error.hpp"

namespace cgan {

namespace {

// A slot's name and shape in the torch layout, and whether its data is the transpose of the
// engine's (linear weights and the label plane's weight are held as [in, out]).
struct TorchSlot {
  std::string name;
  std::vector<int64_t> shape;
  bool transpose = false;
  bool batchnorm_last = false;  // a batch norm's running_var: num_batches_tracked follows it
};

TorchSlot torch_slot(const ParamSlot& sl) {
  TorchSlot t;
  t.shape = sl.shape;
  auto ends_with = [&](const char* s) {
    const std::string e(s);
    return sl.name.size() >= e.size() && sl.name.compare(sl.name.size() - e.size(), e.size(), e) == 0;
  };
  if (sl.name == "cond.embedding") {
    t.name = "condition.weight";
  } else if (sl.name == "cond.weight") {  // label_plane: nn.Linear(K -> H*W)
    t.name = "condition.weight";
    t.transpose = true;
  } else if (sl.name == "cond.bias") {
    t.name = "condition.bias";
  } else if (sl.name == "embed.weight") {  // projection: the label embedding, nn.Embedding [K, F]
    t.name = "embed.weight";
  } else if (sl.name.rfind("layers.", 0) == 0) {
    t.name = sl.name.substr(7);  // "<i>.<field>"
    // linear (plain or spectrally normalised), and conditional batch norm's gain/bias maps
    // (nn.Linear(K, C, bias=False), [C, K])
    t.transpose = sl.shape.size() == 2 && (ends_with(".weight") || ends_with(".weight_orig"));
    t.batchnorm_last = ends_with(".running_var");
  } else {
    throw Error(cat("internal: parameter slot '", sl.name, "' has no name in the PyTorch layout"));
  }
  if (t.transpose) {
    CGAN_CHECK(sl.shape.size() == 2, "internal: slot ", sl.name, " is not a matrix");
    t.shape = {sl.shape[1], sl.shape[0]};
  }
  return t;
}

// [rows, cols] -> [cols, rows]
void transpose_into(const float* src, int64_t rows, int64_t cols, float* dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
}

std::vector<float> download(Backend& be, const float* p, size_t n) {
  std::vector<float> h(n);
  if (n) be.download(h.data(), p, n);
  return h;
}

// A slot's values (engine layout, at its own offset in `buf`) as a tensor in the given layout.
NamedTensor slot_tensor(const ParamSlot& sl, const std::vector<float>& buf, const std::string& name,
                        TensorLayout layout) {
  NamedTensor t;
  t.name = name;
  const float* src = buf.data() + sl.offset;
  if (layout == TensorLayout::torch) {
    const TorchSlot ts = torch_slot(sl);
    t.shape = ts.shape;
    t.data.resize(sl.count);
    if (ts.transpose)
      transpose_into(src, sl.shape[0], sl.shape[1], t.data.data());
    else
      std::copy(src, src + sl.count, t.data.begin());
  } else {
    t.shape = sl.shape;
    t.data.assign(src, src + sl.count);
  }
  return t;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

const char* dtype_str(DType d) { return d == DType::i64 ? "I64" : "F32"; }

// The one rule for a tensor the engine knows by name: the dtype and shape of its slot.
void check_tensor(const NamedTensor& t, const std::vector<int64_t>& shape, DType dtype, const std::string& path) {
  if (t.dtype != dtype)
    throw Error(cat(path, ": tensor '", t.name, "' is ", dtype_str(t.dtype), " ", shape_str(t.shape),
                    " but this model needs ", dtype_str(dtype), " ", shape_str(shape)));
  if (t.shape != shape)
    throw Error(cat(path, ": tensor '", t.name, "' has shape ", shape_str(t.shape), " but this model needs ",
                    shape_str(shape), " (checkpoint from another architecture)"));
}

const NamedTensor& need(const SafeTensors& ck, const std::string& name, const std::vector<int64_t>& shape,
                        const std::string& path) {
  const NamedTensor* t = ck.find(name);
  if (!t) throw Error(cat(path, ": tensor '", name, "' is missing (checkpoint from another architecture?)"));
  check_tensor(*t, shape, DType::f32, path);
  return *t;
}

// Checks the tensor `name` against (shape, dtype) when the file holds it.
void check_if_present(const SafeTensors& ck, const std::string& name, const std::vector<int64_t>& shape, DType dtype,
                      const std::string& path) {
  if (const NamedTensor* t = ck.find(name)) check_tensor(*t, shape, dtype, path);
}

// A batch norm's num_batches_tracked, named after its running_var tensor.
std::string batches_tracked_name(const std::string& running_var) {
  return running_var.substr(0, running_var.size() - std::string("running_var").size()) + "num_batches_tracked";
}

// The tensor of slot `sl` named `name` copied, in the engine's layout, to buf[sl.offset ...).
void read_slot(const SafeTensors& ck, const ParamSlot& sl, const std::string& name, const std::string& path,
               TensorLayout layout, std::vector<float>& buf) {
  float* dst = buf.data() + sl.offset;
  if (layout == TensorLayout::torch) {
    const TorchSlot ts = torch_slot(sl);
    const NamedTensor& t = need(ck, name, ts.shape, path);
    if (ts.transpose)
      transpose_into(t.data.data(), ts.shape[0], ts.shape[1], dst);
    else
      std::copy(t.data.begin(), t.data.end(), dst);
  } else {
    const NamedTensor& t = need(ck, name, sl.shape, path);
    std::copy(t.data.begin(), t.data.end(), dst);
  }
}

std::string param_name(const ParamSlot& sl, const std::string& net, TensorLayout layout) {
  return net + "." + (layout == TensorLayout::torch ? torch_slot(sl).name : sl.name);
}

}  // namespace

TensorLayout checkpoint_layout(const SafeTensors& ck, const std::string& path) {
  auto it = ck.metadata.find("format");
  if (it == ck.metadata.end() || it->second == kCheckpointFormatV1) return TensorLayout::v1;
  if (it->second == kCheckpointFormat) return TensorLayout::torch;
  throw Error(cat(path, ": metadata 'format' is '", it->second,
                  "', not a cgan_gpu checkpoint format this build reads (", kCheckpointFormatV1, " or ",
                  kCheckpointFormat, ")"));
}

void put_model_params(SafeTensors& st, Backend& be, const Model& m, const std::string& net, TensorLayout layout,
                      int64_t bn_batches) {
  const std::vector<float> p = download(be, m.params(), m.param_count());
  const std::vector<float> s = download(be, m.state(), m.state_count());
  for (const ParamSlot& sl : m.slots()) {
    st.tensors.push_back(slot_tensor(sl, sl.state ? s : p, param_name(sl, net, layout), layout));
    if (layout == TensorLayout::torch && torch_slot(sl).batchnorm_last) {
      NamedTensor t;
      t.name = batches_tracked_name(st.tensors.back().name);
      t.dtype = DType::i64;
      t.ints = {bn_batches};
      st.tensors.push_back(std::move(t));
    }
  }
}

void put_adam_state(SafeTensors& st, Backend& be, const Model& m, const std::string& net) {
  if (!m.param_count()) return;
  const std::vector<float> mh = download(be, m.adam_m(), m.param_count());
  const std::vector<float> vh = download(be, m.adam_v(), m.param_count());
  for (const char* which : {"m", "v"})
    for (const ParamSlot& sl : m.slots())
      if (!sl.state)
        st.tensors.push_back(slot_tensor(sl, which[0] == 'm' ? mh : vh,
                                         cat("optim.", net, ".", which, ".", torch_slot(sl).name),
                                         TensorLayout::torch));
}

void load_model_params(Model& m, const SafeTensors& ck, const std::string& net, const std::string& path,
                       TensorLayout layout) {
  std::vector<float> p(m.param_count(), 0.f), s(m.state_count(), 0.f);
  for (const ParamSlot& sl : m.slots()) {
    read_slot(ck, sl, param_name(sl, net, layout), path, layout, sl.state ? s : p);
    if (layout == TensorLayout::torch && torch_slot(sl).batchnorm_last)  // not read (derived from the step)
      check_if_present(ck, batches_tracked_name(param_name(sl, net, layout)), {}, DType::i64, path);
  }
  m.set_params(p.data(), s.data());
}

void load_adam_state(Model& m, Backend& be, const SafeTensors& ck, const std::string& net, const std::string& path,
                     TensorLayout layout) {
  if (!m.param_count()) return;
  for (const char* which : {"m", "v"}) {
    std::vector<float> h(m.param_count(), 0.f);
    if (layout == TensorLayout::torch) {
      for (const ParamSlot& sl : m.slots())
        if (!sl.state) read_slot(ck, sl, cat("optim.", net, ".", which, ".", torch_slot(sl).name), path, layout, h);
    } else {  // v1: the trained slots packed in slot order, without the alignment gaps
      const NamedTensor& t = need(ck, cat(net, ".adam.", which), {static_cast<int64_t>(m.packed_param_count())}, path);
      h = m.unpack_params(t.data);
    }
    be.upload(which[0] == 'm' ? m.adam_m() : m.adam_v(), h.data(), h.size());
  }
}

void check_known_tensors(const Model& m, const SafeTensors& ck, const std::string& net, const std::string& path,
                         TensorLayout layout, bool adam) {
  for (const ParamSlot& sl : m.slots()) {
    const std::string name = param_name(sl, net, layout);
    if (layout == TensorLayout::torch) {
      const TorchSlot ts = torch_slot(sl);
      check_if_present(ck, name, ts.shape, DType::f32, path);
      if (ts.batchnorm_last) check_if_present(ck, batches_tracked_name(name), {}, DType::i64, path);
      if (adam && !sl.state)
        for (const char* which : {"m", "v"})
          check_if_present(ck, cat("optim.", net, ".", which, ".", ts.name), ts.shape, DType::f32, path);
    } else {
      check_if_present(ck, name, sl.shape, DType::f32, path);
    }
  }
  if (adam && layout == TensorLayout::v1 && m.param_count())
    for (const char* which : {"m", "v"})
      check_if_present(ck, cat(net, ".adam.", which), {static_cast<int64_t>(m.packed_param_count())}, DType::f32, path);
}

}  // namespace cgan
