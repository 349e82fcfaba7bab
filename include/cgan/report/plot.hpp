// Plotting, all of it: the scatter plot of 2-D samples (the toy GANs' "sample grid"), line charts
// with axes, tick labels, axis labels and legends (drawn with a built-in 5x7 bitmap font, no font
// files), and the run directory's curves: losses.png from losses.csv/losses_avg.csv and
// metrics.png from metrics.csv (write_run_plots; `cgan_gpu plot RUN_DIR` and the trainer call it).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cgan/data/image.hpp"

namespace cgan {

// xy: n points (x0, y0, x1, y1, ...); labels: n labels or empty (all one colour). The view fits
// the points with a margin; axes through 0 are drawn when in view.
Image scatter_plot(const std::vector<float>& xy, const std::vector<int32_t>& labels, int size);

// An 8-bit RGB colour.
struct Color8 {
  uint8_t r = 0, g = 0, b = 0;
};

// ---- text: printable ASCII in a 5x7 bitmap font (descenders below), one glyph per 6 x 10 pixel
// cell at scale 1; characters outside it draw as a hollow box. (x, y) is the top left corner of
// the first cell; `vertical` draws bottom to top (rotated 90 degrees anticlockwise, for a y-axis
// label: (x, y) is then the bottom left corner). Pixels outside the image are clipped.
constexpr int kGlyphAdvance = 6, kGlyphHeight = 10;
void draw_text(Image& img, int x, int y, const std::string& text, Color8 color, int scale = 1, bool vertical = false);
inline int text_width(const std::string& text, int scale = 1) {
  return static_cast<int>(text.size()) * kGlyphAdvance * scale;
}

// ---- line charts
// One curve: points (x[i], y[i]) joined in order; a non-finite x or y leaves a gap. Curves with
// at most kMarkerMaxPoints finite points also get a square marker on every point (so a single
// evaluation shows).
constexpr int kMarkerMaxPoints = 60;
struct Series {
  std::string name;  // the legend entry
  std::vector<double> x, y;
  Color8 color;
  int width = 1;  // line thickness in pixels, 1..4
  bool dashed = false;
  bool markers = true;  // squares on the points of short curves (see kMarkerMaxPoints)
};
// One panel: its own axes, title, axis labels, legend. The x range spans the finite points (from 0
// when they start at a small positive x, as steps do); the y range is fitted to the finite values
// (with a margin) unless y_min/y_max are finite, in which case they are kept (and widened when a
// value falls outside).
struct Panel {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  double y_min = NAN, y_max = NAN;
};
// Panels stacked top to bottom, width x (panel_height * panels) pixels, white background: a
// plot area with grid lines at "nice" ticks (1, 2, 5 x 10^n) and their labels, the title above it,
// the x label below, the y label rotated on the left, the legend in a column on the right. A panel
// whose series hold no finite point shows "no data".
Image line_chart(const std::vector<Panel>& panels, int width = 960, int panel_height = 250);

// Tick positions for [lo, hi]: multiples of a nice step, about `target` of them, all inside.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// A tick label: as few digits as the step needs ("0.25", "5000", "1e+06").
std::string tick_label(double v, double step);

// ---- CSV files with a header row (losses.csv, metrics.csv)
// Columns by name; a missing, empty or unparsable cell (and "nan", "inf") reads as NaN; a row
// with fewer cells than the header gets NaN for the rest. A missing file reads as no columns.
struct CsvTable {
  std::vector<std::string> names;
  std::vector<std::vector<double>> columns;
  size_t rows = 0;
  const std::vector<double>* column(const std::string& name) const;  // null when absent
};
CsvTable read_csv_table(const std::string& path);

// ---- the run directory's curves
// losses.png: three panels against the step: D and G loss (raw, thin and light, and their moving
// average from losses_avg.csv), D(x) and D(G(z)) (raw and averaged), D's accuracy (raw and
// averaged, with 0.5 marked). metrics.png: conditional accuracy; FD (all labels, per-label mean);
// precision and recall (all labels, per-label means). A column missing from the CSV leaves its
// curve out; a file without rows (or absent) leaves its picture out. Each PNG is written to a
// temporary name and renamed. Returns the paths written.
std::vector<std::string> write_run_plots(const std::string& run_dir);

}  // namespace cgan
