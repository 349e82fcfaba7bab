#include "cgan/report/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace cgan {

Image scatter_plot(const std::vector<float>& xy, const std::vector<int32_t>& labels, int size) {
  static const uint8_t palette[10][3] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                         {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                         {188, 189, 34},  {23, 190, 207}};
  Image img;
  img.width = img.height = size;
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(size) * size * 3, 255);
  const size_t n = xy.size() / 2;
  float x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  bool any = false;
  for (size_t i = 0; i < n; ++i) {
    const float x = xy[2 * i], y = xy[2 * i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    if (!any) {
      x0 = x1 = x;
      y0 = y1 = y;
      any = true;
    }
    x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  const float span = std::max({x1 - x0, y1 - y0, 1e-3f}) * 1.15f;
  const float cx = 0.5f * (x0 + x1), cy = 0.5f * (y0 + y1);
  auto px = [&](float x) { return static_cast<int>((x - (cx - span / 2)) / span * (size - 1) + 0.5f); };
  auto py = [&](float y) { return static_cast<int>(((cy + span / 2) - y) / span * (size - 1) + 0.5f); };
  auto put = [&](int x, int y, const uint8_t* c) {
    if (x < 0 || y < 0 || x >= size || y >= size) return;
    uint8_t* p = &img.pixels[(static_cast<size_t>(y) * size + x) * 3];
    p[0] = c[0], p[1] = c[1], p[2] = c[2];
  };
  const uint8_t axis[3] = {200, 200, 200};
  if (const int ax = px(0.f); ax >= 0 && ax < size)
    for (int y = 0; y < size; ++y) put(ax, y, axis);
  if (const int ay = py(0.f); ay >= 0 && ay < size)
    for (int x = 0; x < size; ++x) put(x, ay, axis);
  for (size_t i = 0; i < n; ++i) {
    const float x = xy[2 * i], y = xy[2 * i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    const uint8_t* c = palette[labels.empty() ? 0 : static_cast<size_t>(labels[i]) % 10];
    const int X = px(x), Y = py(y);
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) put(X + dx, Y + dy, c);
  }
  return img;
}

// ---------------------------------------------------------------- the bitmap font

namespace {

// 5 x 9 cells: rows 0-6 hold capitals and digits, rows 7-8 descenders ('#' = ink).
struct GlyphArt {
  char c;
  const char* rows;  // 9 rows of 5, concatenated
};
// one glyph per line, its 9 rows of 5 side by side: kept out of clang-format
// clang-format off
const GlyphArt kGlyphs[] = {
    {' ', "....." "....." "....." "....." "....." "....." "....." "....." "....."},
    {'!', "..#.." "..#.." "..#.." "..#.." "..#.." "....." "..#.." "....." "....."},
    {'"', ".#.#." ".#.#." "....." "....." "....." "....." "....." "....." "....."},
    {'#', ".#.#." "#####" ".#.#." ".#.#." "#####" ".#.#." "....." "....." "....."},
    {'%', "##..#" "##..#" "...#." "..#.." ".#..." "#..##" "#..##" "....." "....."},
    {'&', ".##.." "#..#." ".##.." ".#..." "#.#.#" "#..#." ".##.#" "....." "....."},
    {'\'', "..#.." "..#.." "....." "....." "....." "....." "....." "....." "....."},
    {'(', "...#." "..#.." ".#..." ".#..." ".#..." "..#.." "...#." "....." "....."},
    {')', ".#..." "..#.." "...#." "...#." "...#." "..#.." ".#..." "....." "....."},
    {'*', "....." "..#.." "#.#.#" ".###." "#.#.#" "..#.." "....." "....." "....."},
    {'+', "....." "..#.." "..#.." "#####" "..#.." "..#.." "....." "....." "....."},
    {',', "....." "....." "....." "....." "....." ".##.." ".##.." "..#.." ".#..."},
    {'-', "....." "....." "....." "#####" "....." "....." "....." "....." "....."},
    {'.', "....." "....." "....." "....." "....." ".##.." ".##.." "....." "....."},
    {'/', "....#" "...#." "...#." "..#.." ".#..." ".#..." "#...." "....." "....."},
    {'0', ".###." "#...#" "#..##" "#.#.#" "##..#" "#...#" ".###." "....." "....."},
    {'1', "..#.." ".##.." "..#.." "..#.." "..#.." "..#.." ".###." "....." "....."},
    {'2', ".###." "#...#" "....#" "...#." "..#.." ".#..." "#####" "....." "....."},
    {'3', "####." "....#" "....#" ".###." "....#" "....#" "####." "....." "....."},
    {'4', "...#." "..##." ".#.#." "#..#." "#####" "...#." "...#." "....." "....."},
    {'5', "#####" "#...." "####." "....#" "....#" "#...#" ".###." "....." "....."},
    {'6', "..##." ".#..." "#...." "####." "#...#" "#...#" ".###." "....." "....."},
    {'7', "#####" "....#" "...#." "..#.." ".#..." ".#..." ".#..." "....." "....."},
    {'8', ".###." "#...#" "#...#" ".###." "#...#" "#...#" ".###." "....." "....."},
    {'9', ".###." "#...#" "#...#" ".####" "....#" "...#." ".##.." "....." "....."},
    {':', "....." ".##.." ".##.." "....." ".##.." ".##.." "....." "....." "....."},
    {';', "....." ".##.." ".##.." "....." ".##.." ".##.." "..#.." ".#..." "....."},
    {'<', "...#." "..#.." ".#..." "#...." ".#..." "..#.." "...#." "....." "....."},
    {'=', "....." "....." "#####" "....." "#####" "....." "....." "....." "....."},
    {'>', ".#..." "..#.." "...#." "....#" "...#." "..#.." ".#..." "....." "....."},
    {'?', ".###." "#...#" "....#" "...#." "..#.." "....." "..#.." "....." "....."},
    {'[', ".###." ".#..." ".#..." ".#..." ".#..." ".#..." ".###." "....." "....."},
    {']', ".###." "...#." "...#." "...#." "...#." "...#." ".###." "....." "....."},
    {'_', "....." "....." "....." "....." "....." "....." "#####" "....." "....."},
    {'|', "..#.." "..#.." "..#.." "..#.." "..#.." "..#.." "..#.." "....." "....."},
    {'A', ".###." "#...#" "#...#" "#####" "#...#" "#...#" "#...#" "....." "....."},
    {'B', "####." "#...#" "#...#" "####." "#...#" "#...#" "####." "....." "....."},
    {'C', ".###." "#...#" "#...." "#...." "#...." "#...#" ".###." "....." "....."},
    {'D', "###.." "#..#." "#...#" "#...#" "#...#" "#..#." "###.." "....." "....."},
    {'E', "#####" "#...." "#...." "####." "#...." "#...." "#####" "....." "....."},
    {'F', "#####" "#...." "#...." "####." "#...." "#...." "#...." "....." "....."},
    {'G', ".###." "#...#" "#...." "#.###" "#...#" "#...#" ".####" "....." "....."},
    {'H', "#...#" "#...#" "#...#" "#####" "#...#" "#...#" "#...#" "....." "....."},
    {'I', ".###." "..#.." "..#.." "..#.." "..#.." "..#.." ".###." "....." "....."},
    {'J', "..###" "...#." "...#." "...#." "...#." "#..#." ".##.." "....." "....."},
    {'K', "#...#" "#..#." "#.#.." "##..." "#.#.." "#..#." "#...#" "....." "....."},
    {'L', "#...." "#...." "#...." "#...." "#...." "#...." "#####" "....." "....."},
    {'M', "#...#" "##.##" "#.#.#" "#.#.#" "#...#" "#...#" "#...#" "....." "....."},
    {'N', "#...#" "#...#" "##..#" "#.#.#" "#..##" "#...#" "#...#" "....." "....."},
    {'O', ".###." "#...#" "#...#" "#...#" "#...#" "#...#" ".###." "....." "....."},
    {'P', "####." "#...#" "#...#" "####." "#...." "#...." "#...." "....." "....."},
    {'Q', ".###." "#...#" "#...#" "#...#" "#.#.#" "#..#." ".##.#" "....." "....."},
    {'R', "####." "#...#" "#...#" "####." "#.#.." "#..#." "#...#" "....." "....."},
    {'S', ".####" "#...." "#...." ".###." "....#" "....#" "####." "....." "....."},
    {'T', "#####" "..#.." "..#.." "..#.." "..#.." "..#.." "..#.." "....." "....."},
    {'U', "#...#" "#...#" "#...#" "#...#" "#...#" "#...#" ".###." "....." "....."},
    {'V', "#...#" "#...#" "#...#" "#...#" "#...#" ".#.#." "..#.." "....." "....."},
    {'W', "#...#" "#...#" "#...#" "#.#.#" "#.#.#" "#.#.#" ".#.#." "....." "....."},
    {'X', "#...#" "#...#" ".#.#." "..#.." ".#.#." "#...#" "#...#" "....." "....."},
    {'Y', "#...#" "#...#" ".#.#." "..#.." "..#.." "..#.." "..#.." "....." "....."},
    {'Z', "#####" "....#" "...#." "..#.." ".#..." "#...." "#####" "....." "....."},
    {'a', "....." "....." ".###." "....#" ".####" "#...#" ".####" "....." "....."},
    {'b', "#...." "#...." "#.##." "##..#" "#...#" "#...#" "####." "....." "....."},
    {'c', "....." "....." ".###." "#...." "#...." "#...#" ".###." "....." "....."},
    {'d', "....#" "....#" ".##.#" "#..##" "#...#" "#...#" ".####" "....." "....."},
    {'e', "....." "....." ".###." "#...#" "#####" "#...." ".###." "....." "....."},
    {'f', "..##." ".#..#" ".#..." "###.." ".#..." ".#..." ".#..." "....." "....."},
    {'g', "....." "....." ".####" "#...#" "#...#" ".####" "....#" "....#" ".###."},
    {'h', "#...." "#...." "#.##." "##..#" "#...#" "#...#" "#...#" "....." "....."},
    {'i', "..#.." "....." ".##.." "..#.." "..#.." "..#.." ".###." "....." "....."},
    {'j', "...#." "....." "..##." "...#." "...#." "...#." "...#." "#..#." ".##.."},
    {'k', "#...." "#...." "#..#." "#.#.." "##..." "#.#.." "#..#." "....." "....."},
    {'l', ".##.." "..#.." "..#.." "..#.." "..#.." "..#.." ".###." "....." "....."},
    {'m', "....." "....." "##.#." "#.#.#" "#.#.#" "#.#.#" "#.#.#" "....." "....."},
    {'n', "....." "....." "#.##." "##..#" "#...#" "#...#" "#...#" "....." "....."},
    {'o', "....." "....." ".###." "#...#" "#...#" "#...#" ".###." "....." "....."},
    {'p', "....." "....." "####." "#...#" "#...#" "####." "#...." "#...." "#...."},
    {'q', "....." "....." ".####" "#...#" "#...#" ".####" "....#" "....#" "....#"},
    {'r', "....." "....." "#.##." "##..#" "#...." "#...." "#...." "....." "....."},
    {'s', "....." "....." ".###." "#...." ".###." "....#" "####." "....." "....."},
    {'t', ".#..." ".#..." "###.." ".#..." ".#..." ".#..#" "..##." "....." "....."},
    {'u', "....." "....." "#...#" "#...#" "#...#" "#..##" ".##.#" "....." "....."},
    {'v', "....." "....." "#...#" "#...#" "#...#" ".#.#." "..#.." "....." "....."},
    {'w', "....." "....." "#...#" "#...#" "#.#.#" "#.#.#" ".#.#." "....." "....."},
    {'x', "....." "....." "#...#" ".#.#." "..#.." ".#.#." "#...#" "....." "....."},
    {'y', "....." "....." "#...#" "#...#" "#...#" ".####" "....#" "....#" ".###."},
    {'z', "....." "....." "#####" "...#." "..#.." ".#..." "#####" "....." "....."},
};
// clang-format on
constexpr int kGlyphW = 5, kGlyphRows = 9;

const char* glyph_of(char c) {
  static const std::map<char, const char*> m = [] {
    std::map<char, const char*> g;
    for (const GlyphArt& a : kGlyphs) g[a.c] = a.rows;
    return g;
  }();
  auto it = m.find(c);
  return it == m.end() ? nullptr : it->second;
}

void put_pixel(Image& img, int x, int y, Color8 c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
  p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

}  // namespace

void draw_text(Image& img, int x, int y, const std::string& text, Color8 color, int scale, bool vertical) {
  scale = std::max(scale, 1);
  for (size_t i = 0; i < text.size(); ++i) {
    const char* g = glyph_of(text[i]);
    for (int r = 0; r < kGlyphRows; ++r)
      for (int c = 0; c < kGlyphW; ++c) {
        bool ink;
        if (g)
          ink = g[r * kGlyphW + c] == '#';
        else
          ink = r < 7 && (r == 0 || r == 6 || c == 0 || c == kGlyphW - 1);  // unknown: a box
        if (!ink) continue;
        const int u = static_cast<int>(i) * kGlyphAdvance + c;  // along the text
        for (int dy = 0; dy < scale; ++dy)
          for (int dx = 0; dx < scale; ++dx) {
            if (vertical)
              put_pixel(img, x + r * scale + dx, y - u * scale - dy, color);
            else
              put_pixel(img, x + u * scale + dx, y + r * scale + dy, color);
          }
      }
  }
}

// ---------------------------------------------------------------- line charts

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> t;
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo) || target < 2) return t;
  const double raw = (hi - lo) / (target - 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag * 10;
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  const double eps = step * 1e-9;
  for (double v = std::ceil((lo - eps) / step) * step; v <= hi + eps; v += step)
    t.push_back(std::fabs(v) < eps ? 0.0 : v);
  return t;
}

std::string tick_label(double v, double step) {
  char b[48];
  if (std::fabs(v) >= 1e7 || (v != 0 && std::fabs(v) < 1e-4)) {
    std::snprintf(b, sizeof b, "%.3g", v);
    return b;
  }
  const int decimals = step > 0 ? std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9))) : 0;
  std::snprintf(b, sizeof b, "%.*f", std::min(decimals, 8), v);
  return b;
}

namespace {

constexpr Color8 kInk{30, 30, 30}, kAxis{90, 90, 90}, kGrid{228, 228, 228};

// A plot area and the map from data to pixels.
struct Frame {
  int left, top, right, bottom;  // pixels, inclusive
  double x0, x1, y0, y1;         // data range
  int px(double x) const { return left + static_cast<int>(std::lround((x - x0) / (x1 - x0) * (right - left))); }
  int py(double y) const { return bottom - static_cast<int>(std::lround((y - y0) / (y1 - y0) * (bottom - top))); }
  bool inside(int x, int y) const { return x >= left && x <= right && y >= top && y <= bottom; }
};

// A thick pixel of a curve, clipped to the frame.
void dot(Image& img, const Frame& f, int x, int y, int w, Color8 c) {
  const int a = -(w - 1) / 2, b = w / 2;
  for (int dy = a; dy <= b; ++dy)
    for (int dx = a; dx <= b; ++dx)
      if (f.inside(x + dx, y + dy)) put_pixel(img, x + dx, y + dy, c);
}

// Bresenham from (x0, y0) to (x1, y1); `dash` counts pixels along a dashed curve (6 on, 4 off).
void segment(Image& img, const Frame& f, int x0, int y0, int x1, int y1, int w, Color8 c, bool dashed, int* dash) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    if (!dashed || (*dash)++ % 10 < 6) dot(img, f, x0, y0, w, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

bool finite_point(const Series& s, size_t i) { return std::isfinite(s.x[i]) && std::isfinite(s.y[i]); }

void draw_series(Image& img, const Frame& f, const Series& s) {
  const size_t n = std::min(s.x.size(), s.y.size());
  const int w = std::clamp(s.width, 1, 4);
  size_t finite = 0;
  int dash = 0;
  bool have_prev = false;
  int px = 0, py = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!finite_point(s, i)) {
      have_prev = false;  // a gap
      continue;
    }
    ++finite;
    const int x = f.px(s.x[i]), y = f.py(s.y[i]);
    if (have_prev)
      segment(img, f, px, py, x, y, w, s.color, s.dashed, &dash);
    else
      dot(img, f, x, y, w, s.color);
    px = x, py = y, have_prev = true;
  }
  if (!s.markers || finite > static_cast<size_t>(kMarkerMaxPoints)) return;
  for (size_t i = 0; i < n; ++i)
    if (finite_point(s, i)) dot(img, f, f.px(s.x[i]), f.py(s.y[i]), w + 4, s.color);
}

void draw_panel(Image& img, const Panel& p, int top, int width, int height) {
  const int legend_w = 200;
  Frame f{};
  f.left = 84, f.right = width - legend_w - 12, f.top = top + 36, f.bottom = top + height - 44;
  draw_text(img, f.left, top + 10, p.title, kInk, 2);
  // data ranges over the finite points
  double xl = INFINITY, xh = -INFINITY, yl = INFINITY, yh = -INFINITY;
  for (const Series& s : p.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (finite_point(s, i)) {
        xl = std::min(xl, s.x[i]), xh = std::max(xh, s.x[i]);
        yl = std::min(yl, s.y[i]), yh = std::max(yh, s.y[i]);
      }
  const bool any = xl <= xh;
  if (!any) xl = 0, xh = 1, yl = 0, yh = 1;
  if (xl > 0 && xl <= 0.1 * (xh - xl)) xl = 0;  // steps 1..N: the axis starts at 0
  if (xh == xl) xl -= std::max(1.0, std::fabs(xl) * 0.05), xh += std::max(1.0, std::fabs(xh) * 0.05);
  if (yh == yl) yl -= std::max(1e-3, std::fabs(yl) * 0.1), yh += std::max(1e-3, std::fabs(yh) * 0.1);
  const double pad = 0.05 * (yh - yl);
  yl = std::isfinite(p.y_min) ? std::min(p.y_min, yl) : yl - pad;
  yh = std::isfinite(p.y_max) ? std::max(p.y_max, yh) : yh + pad;
  f.x0 = xl, f.x1 = xh, f.y0 = yl, f.y1 = yh;
  // grid, ticks and their labels
  const std::vector<double> xt = nice_ticks(xl, xh, 7), yt = nice_ticks(yl, yh, 6);
  const double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double v : yt) {
    const int y = f.py(v);
    for (int x = f.left; x <= f.right; ++x) put_pixel(img, x, y, kGrid);
    for (int x = f.left - 4; x < f.left; ++x) put_pixel(img, x, y, kAxis);
    const std::string t = tick_label(v, ys);
    draw_text(img, f.left - 8 - text_width(t), y - 3, t, kInk);
  }
  for (double v : xt) {
    const int x = f.px(v);
    for (int y = f.top; y <= f.bottom; ++y) put_pixel(img, x, y, kGrid);
    for (int y = f.bottom + 1; y <= f.bottom + 4; ++y) put_pixel(img, x, y, kAxis);
    const std::string t = tick_label(v, xs);
    draw_text(img, x - text_width(t) / 2, f.bottom + 9, t, kInk);
  }
  for (int x = f.left; x <= f.right; ++x) put_pixel(img, x, f.top, kAxis), put_pixel(img, x, f.bottom, kAxis);
  for (int y = f.top; y <= f.bottom; ++y) put_pixel(img, f.left, y, kAxis), put_pixel(img, f.right, y, kAxis);
  draw_text(img, (f.left + f.right - text_width(p.x_label)) / 2, f.bottom + 25, p.x_label, kInk);
  draw_text(img, 8, (f.top + f.bottom + text_width(p.y_label)) / 2, p.y_label, kInk, 1, true);
  if (!any) {
    const std::string t = "no data";
    draw_text(img, (f.left + f.right - text_width(t, 2)) / 2, (f.top + f.bottom) / 2 - 7, t, kAxis, 2);
  }
  // curves (thin ones first, so the averages lie on top), then the legend
  Frame inner = f;
  inner.left += 1, inner.right -= 1, inner.top += 1, inner.bottom -= 1;
  std::vector<const Series*> order;
  for (const Series& s : p.series) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(), [](const Series* a, const Series* b) { return a->width < b->width; });
  for (const Series* s : order) draw_series(img, inner, *s);
  Frame whole{0, 0, img.width - 1, img.height - 1, 0, 1, 0, 1};
  int ly = f.top + 4;
  for (const Series& s : p.series) {
    int dash = 0;
    const int x = f.right + 14, y = ly + 4;
    segment(img, whole, x, y, x + 22, y, std::clamp(s.width, 1, 4), s.color, s.dashed, &dash);
    draw_text(img, x + 28, ly, s.name, kInk);
    ly += 16;
  }
}

}  // namespace

Image line_chart(const std::vector<Panel>& panels, int width, int panel_height) {
  Image img;
  img.width = std::max(width, 400);
  img.channels = 3;
  panel_height = std::max(panel_height, 140);
  img.height = panel_height * static_cast<int>(std::max<size_t>(panels.size(), 1));
  img.pixels.assign(static_cast<size_t>(img.width) * img.height * 3, 255);
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(img, panels[i], static_cast<int>(i) * panel_height, img.width, panel_height);
  return img;
}

}  // namespace cgan
