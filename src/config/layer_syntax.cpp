// The registry of layer kinds by name (cgan/config/layer_syntax.hpp).
#include "cgan/config/layer_syntax.hpp"

#include <algorithm>
#include <map>

#include "cgan/base/error.hpp"

namespace cgan {
namespace {
std::map<std::string, const LayerSyntax*>& registry() {
  static std::map<std::string, const LayerSyntax*> r;  // built on first use (static-init order safe)
  return r;
}
}  // namespace

void register_layer_syntax(const LayerSyntax* syntax) {
  CGAN_CHECK(syntax, "register_layer_syntax: null");
  auto [it, fresh] = registry().emplace(syntax->name(), syntax);
  CGAN_CHECK(fresh || it->second == syntax, "layer kind \"", syntax->name(), "\" is registered twice");
}

const LayerSyntax* find_layer_syntax(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second;
}

const LayerSyntax& layer_syntax(const std::string& name) {
  const LayerSyntax* s = find_layer_syntax(name);
  if (!s) throw Error(cat("unknown layer kind \"", name, "\" (expected one of ", layer_kind_list(), ")"));
  return *s;
}

std::string layer_kind_list() {
  std::vector<const LayerSyntax*> all;
  for (auto& [n, s] : registry()) all.push_back(s);
  std::stable_sort(all.begin(), all.end(),
                   [](const LayerSyntax* a, const LayerSyntax* b) { return a->rank() < b->rank(); });
  std::string out;
  for (auto* s : all) out += (out.empty() ? "" : ", ") + std::string(s->name());
  return out;
}

}  // namespace cgan
