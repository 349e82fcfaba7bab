// How the label enters a network (condition.mode), decided once when the config is parsed: an enum
// the model and memory plan switch on, read from and written as its config name.
#pragma once
#include <ostream>
#include <string>

namespace cgan {

class ConditionMode {
 public:
  enum Kind { none, concat_onehot, embed_concat, embed_multiply, label_plane, projection };
  ConditionMode(Kind k = concat_onehot) : k_(k) {}  // NOLINT: implicit, as the enum it wraps
  // From its config name; throws cgan::Error "unknown condition mode \"x\"" for any other string.
  ConditionMode(const std::string& name);                                // NOLINT
  ConditionMode(const char* name) : ConditionMode(std::string(name)) {}  // NOLINT
  Kind kind() const { return k_; }
  const char* name() const;
  // Modes with an embedding width (condition.embed_dim): embed_concat, label_plane.
  bool sized() const { return k_ == embed_concat || k_ == label_plane; }
  friend bool operator==(ConditionMode a, ConditionMode b) { return a.k_ == b.k_; }
  friend bool operator!=(ConditionMode a, ConditionMode b) { return a.k_ != b.k_; }
  friend std::ostream& operator<<(std::ostream& os, ConditionMode m) { return os << m.name(); }

 private:
  Kind k_;
};

}  // namespace cgan
