// ConditionMode's names (cgan/config/condition_mode.hpp).
#include "cgan/config/condition_mode.hpp"

#include "cgan/base/error.hpp"

namespace cgan {
namespace {
constexpr const char* kNames[] = {"none",           "concat_onehot", "embed_concat",
                                  "embed_multiply", "label_plane",   "projection"};
}  // namespace

ConditionMode::ConditionMode(const std::string& name) : k_(none) {
  for (int i = 0; i < 6; ++i)
    if (name == kNames[i]) {
      k_ = static_cast<Kind>(i);
      return;
    }
  throw Error(cat("unknown condition mode \"", name, "\""));
}

const char* ConditionMode::name() const { return kNames[k_]; }

}  // namespace cgan
