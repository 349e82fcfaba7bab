// The strict reader of one JSON object of a config: typed getters whose errors name the key path,
// and finish() rejecting unknown keys. Shared by config.cpp and the layer units' parsers.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgan/base/error.hpp"
#include "cgan/config/config.hpp"

namespace cgan::cfg {
using json = nlohmann::json;

inline std::string describe(const json& v) { return describe_json(v); }

inline std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// A JSON object being read: every key read is remembered; finish() rejects the rest.
class Obj {
 public:
  Obj(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) throw Error(cat(path_.empty() ? "config" : path_, ": expected an object, got ", describe(j_)));
  }
  const std::string& path() const { return path_; }
  std::string at(const std::string& key) const { return join_path(path_, key); }
  const json* get(const std::string& key) {
    allowed_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  bool has(const std::string& key) const { return j_.contains(key); }

  int64_t integer(const std::string& key, int64_t def, int64_t lo, int64_t hi = std::numeric_limits<int64_t>::max()) {
    const json* v = get(key);
    if (!v) return def;
    return as_integer(*v, at(key), lo, hi);
  }
  double number(const std::string& key, double def, double lo, double hi, bool lo_open = false, bool hi_open = false) {
    const json* v = get(key);
    if (!v) return def;
    return as_number(*v, at(key), lo, hi, lo_open, hi_open);
  }
  bool boolean(const std::string& key, bool def) {
    const json* v = get(key);
    if (!v) return def;
    if (!v->is_boolean()) throw Error(cat(at(key), ": expected true or false, got ", describe(*v)));
    return v->get<bool>();
  }
  std::string string(const std::string& key, const std::string& def, const std::vector<std::string>& choices = {}) {
    const json* v = get(key);
    if (!v) return def;
    return as_string(*v, at(key), choices);
  }

  static int64_t as_integer(const json& v, const std::string& p, int64_t lo, int64_t hi) {
    const bool integral =
        v.is_number_integer() ||
        (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() && std::fabs(v.get<double>()) < 9e15);
    // large upper bounds are sanity caps, not part of what the key means
    const bool capped = hi >= (int64_t(1) << 20);
    const std::string want = capped && lo == 1   ? "a positive integer"
                             : capped && lo == 0 ? "a non-negative integer"
                                                 : cat("an integer in [", lo, ", ", hi, "]");
    if (!integral || v.is_boolean() ||
        (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
      throw Error(cat(p, ": expected ", want, ", got ", describe(v)));
    const int64_t x = v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
    if (x < lo) throw Error(cat(p, ": expected ", want, ", got ", describe(v)));
    if (x > hi) throw Error(cat(p, ": expected ", capped ? cat("at most ", hi) : want, ", got ", describe(v)));
    return x;
  }
  static double as_number(const json& v, const std::string& p, double lo, double hi, bool lo_open, bool hi_open) {
    std::string want = cat("a number in ", lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]");
    if (!v.is_number()) throw Error(cat(p, ": expected ", want, ", got ", describe(v)));
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo) || (hi_open && x == hi))
      throw Error(cat(p, ": expected ", want, ", got ", describe(v)));
    return x;
  }
  static std::string as_string(const json& v, const std::string& p, const std::vector<std::string>& choices) {
    std::string want = "a string";
    if (!choices.empty()) {
      want = "one of ";
      for (size_t i = 0; i < choices.size(); ++i) want += (i ? ", " : "") + ("\"" + choices[i] + "\"");
    }
    if (!v.is_string()) throw Error(cat(p, ": expected ", want, ", got ", describe(v)));
    std::string s = v.get<std::string>();
    if (!choices.empty()) {
      bool ok = false;
      for (auto& c : choices) ok = ok || c == s;
      if (!ok) throw Error(cat(p, ": expected ", want, ", got ", describe(v)));
    }
    return s;
  }

  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (allowed_.count(it.key())) continue;
      std::string known;
      for (auto& k : allowed_) known += (known.empty() ? "" : ", ") + k;
      throw Error(cat(at(it.key()), ": unknown key (known keys here: ", known, ")"));
    }
  }

 private:
  const json& j_;
  std::string path_;
  std::set<std::string> allowed_;
};

// An int or an [h, w] pair of ints, each >= lo.
inline void int_pair(const json& v, const std::string& p, int64_t lo, int& a, int& b) {
  const char* want = lo == 1 ? "a positive integer or [h, w] of positive integers"
                             : "a non-negative integer or [h, w] of non-negative integers";
  auto one = [&](const json& e) -> int {
    if (!e.is_number_integer() || e.get<int64_t>() < lo || e.get<int64_t>() > (1 << 20))
      throw Error(cat(p, ": expected ", want, ", got ", describe(v)));
    return static_cast<int>(e.get<int64_t>());
  };
  if (v.is_array()) {
    if (v.size() != 2) throw Error(cat(p, ": expected ", want, ", got ", describe(v)));
    a = one(v[0]);
    b = one(v[1]);
  } else {
    a = b = one(v);
  }
}

// An [h, w] pair as int_pair reads it: one int when h == w.
inline json pair_to_json(int a, int b) { return a == b ? json(a) : json::array({a, b}); }

}  // namespace cgan::cfg
