// A layer kind's config side: its JSON syntax (parse, validate, write back) and the shape check the
// config alone decides, registered by name. The units under src/nn/layers implement it (with their
// model side, cgan/nn/layer.hpp); config.cpp finds them here and holds no per-kind code.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgan/config/config.hpp"

namespace cgan {

// One sample's shape as the config walks a network's layers: flat `width` features, or an image
// (c, h, w) after a reshape or conv/pool; width_known is false until a layer fixes it (the input
// width is the data's).
struct ConfigShape {
  bool width_known = false, image = false;
  int64_t width = 0, c = 0, h = 0, w = 0;
};

class LayerSyntax {
 public:
  virtual ~LayerSyntax() = default;
  virtual const char* name() const = 0;
  // Where the kind is listed in "expected one of ..." (the shipped kinds 0..10, others after).
  virtual int rank() const { return 1000; }
  // Whether "spectral_norm" may be given with it (linear, conv2d).
  virtual bool takes_spectral_norm() const { return false; }
  // Whether a network may start with it (its input width is the data's: linear, reshape).
  virtual bool can_start() const { return false; }
  // Parses the value of {"<name>": value} into l (l.kind is set), errors naming `vp`
  // ("generator.layers[2].linear"). A "spectral_norm" inside the value is returned in *sn_inner.
  virtual void parse(const nlohmann::json& v, const std::string& vp, LayerSpec& l,
                     const nlohmann::json** sn_inner) const = 0;
  // The value of {"<name>": value} that parses back to l.
  virtual nlohmann::json to_json(const LayerSpec& l) const = 0;
  // Walks s through the layer, errors naming lp; the default keeps the shape (elementwise layers).
  virtual void check_shape(const LayerSpec& l, ConfigShape& s, const std::string& lp) const {
    (void)l, (void)s, (void)lp;
  }
};

// Registers a kind under syntax->name() (kept for the program's life); a second kind of the same
// name is an error.
void register_layer_syntax(const LayerSyntax* syntax);
// The kind named `name`, or nullptr.
const LayerSyntax* find_layer_syntax(const std::string& name);
// The kind named `name`; throws cgan::Error for an unknown name.
const LayerSyntax& layer_syntax(const std::string& name);
// "linear, relu, ..." (rank order) for error messages.
std::string layer_kind_list();

// A registration at static-initialisation time: `static const RegisterLayer<MyUnit> reg;`.
template <class Unit>
struct RegisterLayer {
  RegisterLayer() {
    static const Unit unit;
    register_layer_syntax(&unit);
  }
};

}  // namespace cgan
