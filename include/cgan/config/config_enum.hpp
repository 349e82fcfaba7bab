// A config string with a fixed set of values (data.kind, loss.kind, loss.mismatch, train.fake_labels), decided once at parse time: an enum the trainer switches on, read from and written as its config name.
#pragma once
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include "cgan/base/error.hpp"

namespace cgan {

// Traits: `enum Kind {...}` (values 0..n-1), `static constexpr const char* names[]` (the config
// names, in that order) and `static constexpr const char* what` ("loss kind") for the error.
template <class Traits>
class ConfigEnum {
 public:
  using Kind = typename Traits::Kind;
  ConfigEnum(Kind k = Kind{}) : k_(k) {}  // NOLINT: implicit, as the enum it wraps
  // From its config name; throws cgan::Error "unknown <what> \"x\"" for any other string.
  ConfigEnum(const std::string& name) : k_(Kind{}) {  // NOLINT
    for (size_t i = 0; i < sizeof(Traits::names) / sizeof(Traits::names[0]); ++i)
      if (name == Traits::names[i]) {
        k_ = static_cast<Kind>(i);
        return;
      }
    throw Error(cat("unknown ", Traits::what, " \"", name, "\""));
  }
  ConfigEnum(const char* name) : ConfigEnum(std::string(name)) {}  // NOLINT
  Kind kind() const { return k_; }
  // Every config name, in enum order: the choices the strict reader accepts for the key.
  static std::vector<std::string> choices() { return {std::begin(Traits::names), std::end(Traits::names)}; }
  const char* name() const { return Traits::names[k_]; }
  friend bool operator==(ConfigEnum a, ConfigEnum b) { return a.k_ == b.k_; }
  friend bool operator!=(ConfigEnum a, ConfigEnum b) { return a.k_ != b.k_; }
  friend std::ostream& operator<<(std::ostream& os, ConfigEnum e) { return os << e.name(); }

 private:
  Kind k_;
};

struct DataKindTraits {
  enum Kind { mnist, fashion, gaussian, mixture, anime, images, image_folder };
  static constexpr const char* names[] = {"mnist", "fashion", "gaussian", "mixture", "anime", "images", "image_folder"};
  static constexpr const char* what = "data kind";
};
// data.kind
using DataKind = ConfigEnum<DataKindTraits>;

struct LossTypeTraits {
  enum Kind { log, squared, hinge, three_term };
  static constexpr const char* names[] = {"log", "squared", "hinge", "three_term"};
  static constexpr const char* what = "loss kind";
};
// loss.kind
using LossType = ConfigEnum<LossTypeTraits>;

struct MismatchTraits {
  enum Kind { none, real_other_tags, fake_other_tags };
  static constexpr const char* names[] = {"none", "real_other_tags", "fake_other_tags"};
  static constexpr const char* what = "loss mismatch";
};
// loss.mismatch
using Mismatch = ConfigEnum<MismatchTraits>;

struct FakeLabelsTraits {
  enum Kind { data, random };
  static constexpr const char* names[] = {"data", "random"};
  static constexpr const char* what = "fake labels";
};
// train.fake_labels
using FakeLabels = ConfigEnum<FakeLabelsTraits>;

}  // namespace cgan
