// The convolution probe's report: best algorithms per conv, direction and variant (conv_probe.hpp).
#include "cgan/report/conv_probe.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "cgan/base/error.hpp"

namespace cgan {

namespace {

const char* const kDirections[3] = {"forward", "backward-data", "backward-filter"};

// The variants in the order the rows first name them.
std::vector<std::string> variants_of(const std::vector<ConvProbeRow>& rows) {
  std::vector<std::string> v;
  for (const ConvProbeRow& r : rows)
    if (std::find(v.begin(), v.end(), r.variant) == v.end()) v.push_back(r.variant);
  return v;
}

std::string shape_text(const ConvShape& s) {
  return cat(s.N, "x", s.C, "x", s.H, "x", s.W, " -> ", s.K, " ", s.R, "x", s.S, "/", s.stride_h, " pad ", s.pad_h);
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

double conv_flops(const ConvShape& s) { return 2.0 * s.N * s.K * static_cast<double>(s.P()) * s.Q() * s.C * s.R * s.S; }

const ConvProbeRow* fastest(const std::vector<ConvProbeRow>& rows, const std::string& direction,
                            const std::string& variant, bool deterministic) {
  const ConvProbeRow* best = nullptr;
  for (const ConvProbeRow& r : rows)
    if (r.direction == direction && r.variant == variant && r.status == "ok" && (!deterministic || r.deterministic) &&
        (!best || r.ms < best->ms))
      best = &r;
  return best;
}

std::string conv_probe_table(const std::vector<ConvProbeEntry>& entries) {
  std::string t =
      "| conv | shape (NxCxHxW -> K RxS/stride pad) | direction | variant | C, K run | deterministic: ms | algo, math "
      "| "
      "workspace MiB | TFLOP/s | fastest of any: ms | algo, deterministic |\n"
      "| --- | --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- |\n";
  std::map<std::string, double> total;     // variant -> summed deterministic ms
  std::map<std::string, bool> incomplete;  // variant -> some direction has no deterministic algorithm
  std::vector<std::string> order;
  for (const ConvProbeEntry& e : entries) {
    const double flops = conv_flops(e.shape);
    for (const std::string& v : variants_of(e.rows)) {
      if (!total.count(v)) order.push_back(v), total[v] = 0, incomplete[v] = false;
      for (const char* d : kDirections) {
        const ConvProbeRow* det = fastest(e.rows, d, v, true);
        const ConvProbeRow* any = fastest(e.rows, d, v, false);
        std::string ck = "-", why;
        for (const ConvProbeRow& r : e.rows)
          if (r.variant == v) {
            ck = cat(r.C, ", ", r.K);
            if (r.direction == d && r.status != "ok" && why.empty()) why = r.status;
          }
        t += cat("| ", e.model, "[", e.layer, "] | ", shape_text(e.shape), " | ", d, " | ", v, " | ", ck, " | ");
        if (det) {
          total[v] += det->ms;
          t += cat(fmt("%.3f", det->ms), " | ", det->algo, ", ", det->math, " | ",
                   fmt("%.1f", static_cast<double>(det->workspace) / (1 << 20)), " | ",
                   fmt("%.1f", det->ms > 0 ? flops / (det->ms * 1e9) : 0.0), " | ");
        } else {
          incomplete[v] = true;
          t += cat("none | ", why.empty() ? "-" : why, " | - | - | ");
        }
        t += any ? cat(fmt("%.3f", any->ms), " | ", any->algo, ", ", any->deterministic ? "yes" : "no", " |\n")
                 : std::string("none | - |\n");
      }
    }
  }
  t += "\nSum of the fastest deterministic times over every conv and direction (one step's convolutions):\n\n";
  for (const std::string& v : order)
    t += cat("    ", v, ": ",
             incomplete[v] ? "none (a direction has no deterministic algorithm)" : fmt("%.3f ms", total[v]), "\n");
  return t;
}

nlohmann::json conv_probe_json(const std::vector<ConvProbeEntry>& entries) {
  nlohmann::json convs = nlohmann::json::array();
  for (const ConvProbeEntry& e : entries) {
    nlohmann::json rows = nlohmann::json::array();
    for (const ConvProbeRow& r : e.rows)
      rows.push_back({{"direction", r.direction},
                      {"variant", r.variant},
                      {"C", r.C},
                      {"K", r.K},
                      {"algo", r.algo},
                      {"math", r.math},
                      {"status", r.status},
                      {"ms", r.ms},
                      {"deterministic", r.deterministic},
                      {"workspace_bytes", r.workspace}});
    const ConvShape& s = e.shape;
    convs.push_back({{"model", e.model},
                     {"layer", e.layer},
                     {"shape",
                      {{"N", s.N},
                       {"C", s.C},
                       {"H", s.H},
                       {"W", s.W},
                       {"K", s.K},
                       {"R", s.R},
                       {"S", s.S},
                       {"stride", {s.stride_h, s.stride_w}},
                       {"pad", {s.pad_h, s.pad_w}}}},
                     {"gflop", conv_flops(s) / 1e9},
                     {"rows", rows}});
  }
  return convs;
}

}  // namespace cgan
