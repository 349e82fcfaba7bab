// The run directory's curves (losses.png, metrics.png) from its CSVs; see include/cgan/report/plot.hpp.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "cgan/base/error.hpp"
#include "cgan/base/io.hpp"
#include "cgan/report/plot.hpp"

namespace cgan {
namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

double number(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  if (b == s.size()) return NAN;
  const char* p = s.c_str() + b;
  char* end = nullptr;
  const double v = std::strtod(p, &end);
  return end == p || *end != '\0' ? NAN : v;
}

Color8 lighter(Color8 c, double t = 0.62) {  // toward white
  auto m = [t](uint8_t v) { return static_cast<uint8_t>(v + (255 - v) * t + 0.5); };
  return {m(c.r), m(c.g), m(c.b)};
}

constexpr Color8 kBlue{31, 119, 180}, kOrange{255, 127, 14}, kGreen{44, 160, 44}, kRed{214, 39, 40},
    kPurple{148, 103, 189}, kGrey{120, 120, 120};

// The series `col` of `t` against its "step" column, or nothing when either is absent or empty.
bool add(Panel& p, const CsvTable& t, const std::string& col, const std::string& name, Color8 color, int width,
         bool dashed = false) {
  const std::vector<double>* x = t.column("step");
  const std::vector<double>* y = t.column(col);
  if (!x || !y || t.rows == 0) return false;
  Series s;
  s.name = name;
  s.x = *x;
  s.y = *y;
  s.color = color;
  s.width = width;
  s.dashed = dashed;
  p.series.push_back(std::move(s));
  return true;
}

// The first and last finite step of a table (for a reference line across the panel).
bool step_range(const CsvTable& t, double* lo, double* hi) {
  const std::vector<double>* x = t.column("step");
  if (!x) return false;
  bool any = false;
  for (double v : *x)
    if (std::isfinite(v)) {
      if (!any) *lo = *hi = v;
      *lo = std::min(*lo, v), *hi = std::max(*hi, v);
      any = true;
    }
  return any;
}

bool has_points(const std::vector<Panel>& panels) {
  for (const Panel& p : panels)
    for (const Series& s : p.series)
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) return true;
  return false;
}

}  // namespace

const std::vector<double>* CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return &columns[i];
  return nullptr;
}

CsvTable read_csv_table(const std::string& path) {
  CsvTable t;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return t;
  std::istringstream in(read_regular_file(path, "CSV file"));
  std::string line;
  if (!std::getline(in, line)) return t;
  for (std::string n : split(line)) {
    while (!n.empty() && (n.back() == '\r' || n.back() == ' ')) n.pop_back();
    t.names.push_back(n);
  }
  t.columns.resize(t.names.size());
  while (std::getline(in, line)) {
    if (line.empty() || line == "\r") continue;
    const std::vector<std::string> cells = split(line);
    for (size_t c = 0; c < t.names.size(); ++c) t.columns[c].push_back(c < cells.size() ? number(cells[c]) : NAN);
    ++t.rows;
  }
  return t;
}

std::vector<std::string> write_run_plots(const std::string& dir) {
  std::vector<std::string> written;
  const std::string run = std::filesystem::path(dir).filename().string();
  const CsvTable raw = read_csv_table(dir + "/losses.csv"), avg = read_csv_table(dir + "/losses_avg.csv");
  {
    Panel loss, out, acc;
    loss.title = "Losses" + (run.empty() ? std::string() : " (" + run + ")");
    loss.x_label = out.x_label = acc.x_label = "step";
    loss.y_label = "loss";
    add(loss, raw, "d_loss", "D loss", lighter(kBlue), 1);
    add(loss, raw, "g_loss", "G loss", lighter(kOrange), 1);
    add(loss, avg, "d_loss", "D loss, moving avg.", kBlue, 2);
    add(loss, avg, "g_loss", "G loss, moving avg.", kOrange, 2);
    out.title = "Discriminator outputs";
    out.y_label = "mean D output";
    add(out, raw, "d_real", "D(x), real", lighter(kGreen), 1);
    add(out, raw, "d_fake", "D(G(z)), fake", lighter(kRed), 1);
    add(out, avg, "d_real", "D(x), moving avg.", kGreen, 2);
    add(out, avg, "d_fake", "D(G(z)), moving avg.", kRed, 2);
    acc.title = "Discriminator accuracy (real + fake)";
    acc.y_label = "accuracy";
    acc.y_min = 0, acc.y_max = 1;
    const bool a1 = add(acc, raw, "d_acc", "D accuracy", lighter(kPurple), 1);
    const bool a2 = add(acc, avg, "d_acc", "D accuracy, moving avg.", kPurple, 2);
    double lo = 0, hi = 0;
    if ((a1 || a2) && step_range(a1 ? raw : avg, &lo, &hi)) {
      Series half;
      half.name = "0.5: G fools D";
      half.x = {lo, hi};
      half.y = {0.5, 0.5};
      half.color = kGrey;
      half.dashed = true;
      half.markers = false;
      acc.series.push_back(half);
    }
    std::vector<Panel> panels;
    for (Panel* p : {&loss, &out, &acc})
      if (!p->series.empty()) panels.push_back(*p);
    if (has_points(panels)) {
      write_png(dir + "/losses.png", line_chart(panels));
      written.push_back(dir + "/losses.png");
    }
  }
  const CsvTable m = read_csv_table(dir + "/metrics.csv");
  {
    Panel ca, fd, pr;
    ca.title = "Conditional accuracy" + (run.empty() ? std::string() : " (" + run + ")");
    ca.x_label = fd.x_label = pr.x_label = "step";
    ca.y_label = "share classified as asked";
    ca.y_max = 1;
    add(ca, m, "cond_acc", "cond. accuracy", kBlue, 2);
    fd.title = "Frechet distance (classifier features)";
    fd.y_label = "FD";
    fd.y_min = 0;
    add(fd, m, "fd", "FD, all labels", kOrange, 2);
    add(fd, m, "intra_fd", "FD, per-label mean", kOrange, 2, true);
    pr.title = "Precision and recall (k = 3)";
    pr.y_label = "share";
    pr.y_min = 0, pr.y_max = 1;
    add(pr, m, "precision", "precision, all", kGreen, 2);
    add(pr, m, "recall", "recall, all", kRed, 2);
    add(pr, m, "intra_precision", "precision, per-label mean", kGreen, 2, true);
    add(pr, m, "intra_recall", "recall, per-label mean", kRed, 2, true);
    std::vector<Panel> panels;
    for (Panel* p : {&ca, &fd, &pr})
      if (!p->series.empty()) panels.push_back(*p);
    if (has_points(panels)) {
      write_png(dir + "/metrics.png", line_chart(panels));
      written.push_back(dir + "/metrics.png");
    }
  }
  return written;
}

}  // namespace cgan
