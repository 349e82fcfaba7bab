// Line charts and the run directory's curves (plot.hpp): picture sizes, curves where the data
// puts them (pixel checks), gaps for NaN, one-row CSVs, CSVs with missing columns, the CSV reader
// and the tick helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "cgan/data/image.hpp"
#include "cgan/report/plot.hpp"
#include "plot_util.hpp"
#include "test_util.hpp"

using namespace cgan;
namespace fs = std::filesystem;

namespace {

constexpr Color8 kRed{220, 0, 0}, kBlue{0, 0, 220};

bool is(const Image& img, size_t p, Color8 c) {
  return img.pixels[p * 3] == c.r && img.pixels[p * 3 + 1] == c.g && img.pixels[p * 3 + 2] == c.b;
}

struct Stats {
  size_t count = 0;
  double mean_x = 0, mean_y = 0;
};
// Pixels of colour c with x < x_max (left of the legend column), and their mean position.
Stats pixels_of(const Image& img, Color8 c, int x_min = 0, int x_max = 1 << 30) {
  Stats s;
  for (int y = 0; y < img.height; ++y)
    for (int x = x_min; x < std::min(x_max, img.width); ++x)
      if (is(img, static_cast<size_t>(y) * img.width + x, c)) {
        ++s.count;
        s.mean_x += x, s.mean_y += y;
      }
  if (s.count) s.mean_x /= static_cast<double>(s.count), s.mean_y /= static_cast<double>(s.count);
  return s;
}

Series line(const std::string& name, std::vector<double> x, std::vector<double> y, Color8 c, int w = 1) {
  Series s;
  s.name = name;
  s.x = std::move(x);
  s.y = std::move(y);
  s.color = c;
  s.width = w;
  return s;
}

}  // namespace

TEST(Plot, CurvesGoWhereTheDataPutsThem) {
  Panel p;
  p.title = "two lines";
  p.x_label = "step";
  p.y_label = "value";
  std::vector<double> x, up, down;
  for (int i = 0; i <= 100; ++i) x.push_back(i), up.push_back(i * 0.1), down.push_back(10 - i * 0.1);
  p.series = {line("up", x, up, kRed), line("down", x, down, kBlue)};
  const Image img = line_chart({p, p}, 960, 250);
  EXPECT_EQ(img.width, 960);
  EXPECT_EQ(img.height, 500);
  EXPECT_EQ(img.channels, 3);
  // in the left third the rising line is low (large y), the falling one high; the other way on the right
  const Stats rl = pixels_of(img, kRed, 0, 300), bl = pixels_of(img, kBlue, 0, 300);
  const Stats rr = pixels_of(img, kRed, 450, 700), br = pixels_of(img, kBlue, 450, 700);
  ASSERT_GT(rl.count, 200u);
  ASSERT_GT(bl.count, 200u);
  ASSERT_GT(rr.count, 200u);
  ASSERT_GT(br.count, 200u);
  EXPECT_GT(rl.mean_y, bl.mean_y);
  EXPECT_LT(rr.mean_y, br.mean_y);
  // a straight line: as many pixels per column on each side (within the thick-pixel rounding)
  EXPECT_NEAR(static_cast<double>(rl.count) / rr.count, 1.0, 0.35);
  // the legend's swatches sit in the right-hand column; text is drawn (dark pixels in the title row)
  EXPECT_GT(pixels_of(img, kRed, 740).count, 10u);
  size_t dark = 0;
  for (int y = 5; y < 30; ++y)
    for (int x = 80; x < 300; ++x) dark += img.pixels[(static_cast<size_t>(y) * img.width + x) * 3] < 60;
  EXPECT_GT(dark, 50u) << "the title";
}

TEST(Plot, NaNAndInfinityLeaveGapsAndNoDataIsSaid) {
  Panel p;
  std::vector<double> x, y, holed;
  for (int i = 0; i <= 100; ++i) {
    x.push_back(i);
    y.push_back(5.0 + (i % 2));
    holed.push_back(i >= 30 && i < 70 ? (i % 2 ? NAN : INFINITY) : y.back());
  }
  p.series = {line("full", x, y, kRed)};
  const Image full = line_chart({p});
  int lo = 1 << 30, hi = -1;  // the columns the full curve spans: x = 0 and x = 100
  for (int yy = 0; yy < full.height; ++yy)
    for (int xx = 0; xx < 740; ++xx)
      if (is(full, static_cast<size_t>(yy) * full.width + xx, kRed)) lo = std::min(lo, xx), hi = std::max(hi, xx);
  ASSERT_GT(hi - lo, 500);
  p.series = {line("holed", x, holed, kRed)};
  const Image gap = line_chart({p});
  // points 30..69 are not finite: nothing is drawn strictly between x = 29 and x = 70
  const int g0 = lo + static_cast<int>(std::ceil(0.29 * (hi - lo))) + 3,
            g1 = lo + static_cast<int>(0.70 * (hi - lo)) - 3;
  EXPECT_EQ(pixels_of(gap, kRed, g0, g1).count, 0u) << "columns " << g0 << ".." << g1;
  EXPECT_GT(pixels_of(gap, kRed, lo, g0).count, 1000u);
  EXPECT_GT(pixels_of(gap, kRed, g1, hi + 3).count, 1000u);
  // nothing finite at all: the panel says so instead of drawing
  p.series = {line("none", {1, 2, NAN}, {NAN, INFINITY, 3}, kRed)};
  const Image empty = line_chart({p});
  EXPECT_EQ(pixels_of(empty, kRed, 0, 740).count, 0u);
  EXPECT_GT(pixels_of(empty, kRed, 740).count, 0u) << "still in the legend";
}

TEST(Plot, OnePointGetsAMarker) {
  Panel p;
  p.series = {line("one", {5000}, {0.9}, kRed, 2)};
  const Image img = line_chart({p});
  EXPECT_GE(pixels_of(img, kRed, 0, 740).count, 36u) << "a 6x6 marker";
  Series ref = line("ref", {0, 10}, {1, 1}, kBlue);
  ref.markers = false;
  p.series = {ref};
  const Image flat = line_chart({p});  // a 1-pixel horizontal line: one pixel per column, no squares
  size_t widest = 0, total = 0;
  for (int x = 0; x < 740; ++x) {
    size_t n = 0;
    for (int y = 0; y < flat.height; ++y) n += is(flat, static_cast<size_t>(y) * flat.width + x, kBlue);
    widest = std::max(widest, n), total += n;
  }
  EXPECT_GT(total, 500u);
  EXPECT_EQ(widest, 1u);
}

TEST(Plot, TicksAndLabels) {
  EXPECT_EQ(nice_ticks(0, 1, 6), std::vector<double>({0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  const std::vector<double> t = nice_ticks(1, 20000, 7);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t.front(), 5000);
  EXPECT_EQ(t.back(), 20000);
  EXPECT_TRUE(nice_ticks(NAN, 1).empty());
  EXPECT_TRUE(nice_ticks(0, INFINITY).empty());
  EXPECT_TRUE(nice_ticks(1, 1).empty());
  EXPECT_EQ(tick_label(0.6000000000000001, 0.2), "0.6");
  EXPECT_EQ(tick_label(15000, 5000), "15000");
  EXPECT_EQ(tick_label(0.05, 0.05), "0.05");
  EXPECT_EQ(tick_label(-2, 1), "-2");
  EXPECT_EQ(tick_label(2e8, 1e8), "2e+08");
}

TEST(Plot, CsvReaderTakesColumnsByNameAndFillsGapsWithNaN) {
  testutil::TempDir d("csv");
  testutil::spit(d / "a.csv", "step,x,y\r\n1,0.5,2\r\n2,nan,\n3,7\n\n4,abc,1e3\n");
  const CsvTable t = read_csv_table(d / "a.csv");
  ASSERT_EQ(t.rows, 4u);
  ASSERT_EQ(t.names, std::vector<std::string>({"step", "x", "y"}));
  const std::vector<double>& x = *t.column("x");
  const std::vector<double>& y = *t.column("y");
  EXPECT_EQ(x[0], 0.5);
  EXPECT_TRUE(std::isnan(x[1]));
  EXPECT_TRUE(std::isnan(y[1])) << "empty cell";
  EXPECT_EQ(x[2], 7);
  EXPECT_TRUE(std::isnan(y[2])) << "short row";
  EXPECT_TRUE(std::isnan(x[3])) << "not a number";
  EXPECT_EQ(y[3], 1000);
  EXPECT_EQ(t.column("z"), nullptr);
  const CsvTable none = read_csv_table(d / "missing.csv");
  EXPECT_EQ(none.rows, 0u);
  EXPECT_TRUE(none.names.empty());
}

TEST(RunPlots, WrittenFromTheCsvsWithOneRowAndWithMissingColumns) {
  testutil::TempDir d("runplots");
  // one row each: both pictures, three panels each, curves (markers) on them: in every panel's plot
  // area, not only in the legend beside it
  testutil::spit(d / "losses.csv", "step,d_loss,g_loss,d_real,d_fake,d_acc\n1,1.3,0.7,0.5,0.49,0.55\n");
  testutil::spit(d / "losses_avg.csv", "step,d_loss,g_loss,d_real,d_fake,d_acc\n1,1.3,0.7,0.5,0.49,0.55\n");
  testutil::spit(d / "metrics.csv",
                 "step,cond_acc,fd,intra_fd,diversity,diversity_min,precision,recall,intra_precision,intra_recall\n"
                 "500,0.41,80.5,120.25,0.7,0.5,0.6,0.3,0.5,0.2\n");
  std::vector<std::string> w = write_run_plots(d.path);
  ASSERT_EQ(w, std::vector<std::string>({d / "losses.png", d / "metrics.png"}));
  for (const std::string& f : w) {
    const Image img = read_image(f);
    EXPECT_EQ(img.width, 960) << f;
    EXPECT_EQ(img.height, 750) << f;
    const std::vector<size_t> n = plottest::coloured_in_plot_areas(img);
    ASSERT_EQ(n.size(), 3u) << f;
    for (size_t i = 0; i < n.size(); ++i) EXPECT_GE(n[i], 25u) << f << " panel " << i << ": no marker in the plot area";
  }
  for (const auto& e : fs::directory_iterator(d.path))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();

  // an older metrics.csv (no precision/recall columns), a losses.csv with only the losses and no
  // averages: the panels that have data, and only those
  fs::remove(d / "losses_avg.csv");
  testutil::spit(d / "losses.csv", "step,d_loss,g_loss\n1,1.3,0.7\n2,1.2,nan\n3,1.1,0.9\n");
  testutil::spit(d / "metrics.csv",
                 "step,cond_acc,fd,intra_fd,diversity,diversity_min\n500,0.41,80.5,120,0.7,0.5\n"
                 "1000,0.62,60.5\n");
  w = write_run_plots(d.path);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(read_image(d / "losses.png").height, 250) << "one panel: the losses";
  EXPECT_EQ(read_image(d / "metrics.png").height, 500) << "accuracy and FD; no precision/recall columns";

  // header only, or no step column: nothing to draw, nothing written
  testutil::TempDir e("runplots_empty");
  testutil::spit(e / "losses.csv", "step,d_loss,g_loss,d_real,d_fake,d_acc\n");
  testutil::spit(e / "metrics.csv", "cond_acc,fd\n0.5,3\n");
  EXPECT_TRUE(write_run_plots(e.path).empty());
  EXPECT_FALSE(fs::exists(e / "losses.png"));
  EXPECT_FALSE(fs::exists(e / "metrics.png"));
  // a run directory that cannot be written to: a one-line error naming the file
  testutil::TempDir f("runplots_ro");
  testutil::spit(f / "losses.csv", "step,d_loss\n1,2\n");
  fs::create_directory(f / "losses.png");  // a folder where the picture goes
  try {
    write_run_plots(f.path);
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("losses.png"), std::string::npos) << err.what();
  }
}
