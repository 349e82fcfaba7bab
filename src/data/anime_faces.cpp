// The procedural anime-face set and its colour probe; see include/cgan/data/tags.hpp and
// docs/DECISIONS.md ("Anime data").
#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "cgan/data/anime_faces.hpp"
#include "cgan/data/tags.hpp"
#include "cgan/base/error.hpp"
#include "cgan/base/philox.hpp"

namespace cgan {

namespace {

constexpr int kParams = 48;  // Philox indices reserved per face

// Shape parameters are drawn in a fixed order from consecutive Philox indices of the face.
struct Draw {
  uint64_t seed, base;
  int k = 0;
  float u() { return philox_uniform(seed, kFaceStream, base + static_cast<uint64_t>(k++)); }
  float in(float a, float b) { return a + (b - a) * u(); }
  int below(int n) {
    return static_cast<int>(
        philox_below(seed, kFaceStream, base + static_cast<uint64_t>(k++), static_cast<uint32_t>(n)));
  }
};

struct Canvas {
  int w, h;
  std::vector<uint8_t> px;  // HWC RGB
  void set(int x, int y, const uint8_t* c) {
    uint8_t* p = &px[(static_cast<size_t>(y) * w + x) * 3];
    p[0] = c[0];
    p[1] = c[1];
    p[2] = c[2];
  }
  // Paints pixels whose centre (x + 0.5, y + 0.5) satisfies `inside`, within the given box.
  template <typename F>
  void paint(float x0, float x1, float y0, float y1, const uint8_t* c, F inside) {
    const int xa = std::max(0, static_cast<int>(std::floor(x0))), xb = std::min(w - 1, static_cast<int>(std::ceil(x1)));
    const int ya = std::max(0, static_cast<int>(std::floor(y0))), yb = std::min(h - 1, static_cast<int>(std::ceil(y1)));
    for (int y = ya; y <= yb; ++y)
      for (int x = xa; x <= xb; ++x)
        if (inside(x + 0.5f, y + 0.5f)) set(x, y, c);
  }
  void ellipse(float cx, float cy, float rx, float ry, const uint8_t* c) {
    paint(cx - rx, cx + rx, cy - ry, cy + ry, c, [&](float x, float y) {
      const float dx = (x - cx) / rx, dy = (y - cy) / ry;
      return dx * dx + dy * dy <= 1.f;
    });
  }
};

void to_bytes(const Rgb& c, float f, uint8_t* out) {
  const float v[3] = {c.r * f, c.g * f, c.b * f};
  for (int i = 0; i < 3; ++i) out[i] = static_cast<uint8_t>(std::clamp(std::floor(v[i] + 0.5f), 0.f, 255.f));
}

bool inside_ellipse(float x, float y, float cx, float cy, float rx, float ry) {
  const float dx = (x - cx) / rx, dy = (y - cy) / ry;
  return dx * dx + dy * dy <= 1.f;
}

// Draws face i into `cv`; returns (hair index, eye index).
std::pair<int, int> draw_face(Canvas& cv, uint64_t seed, int i, const AnimePalette& pal) {
  Draw r{seed, static_cast<uint64_t>(i) * kParams};
  const float W = static_cast<float>(cv.w), H = static_cast<float>(cv.h), S = std::min(W, H);
  const int hair = r.below(static_cast<int>(pal.hair.size()));
  const int eye = r.below(static_cast<int>(pal.eye.size()));
  const int bg = r.below(static_cast<int>(pal.background.size()));
  const int style = r.below(4);  // 0 short, 1 long, 2 twin tails, 3 bun
  const int bangs = r.below(3);  // 0 straight, 1 jagged, 2 swept
  uint8_t hc[3], ec[3], pc[3], sk[3], wh[3], mo[3];
  to_bytes(pal.hair[hair], r.in(0.93f, 1.05f), hc);
  const float ef = r.in(0.93f, 1.05f);
  to_bytes(pal.eye[eye], ef, ec);
  to_bytes(pal.eye[eye], 0.25f * ef, pc);  // pupil: the iris colour, darkened
  to_bytes(pal.skin, 1.f, sk);
  to_bytes(pal.sclera, 1.f, wh);
  to_bytes(pal.mouth, 1.f, mo);

  // background with a vertical gradient (up to 8 % darker at the bottom)
  for (int y = 0; y < cv.h; ++y) {
    uint8_t c[3];
    to_bytes(pal.background[bg], 1.f - 0.08f * (y + 0.5f) / H, c);
    for (int x = 0; x < cv.w; ++x) cv.set(x, y, c);
  }

  const float rx = S * r.in(0.21f, 0.27f), ry = rx * r.in(1.05f, 1.2f);
  const float cx = W * (0.5f + r.in(-0.08f, 0.08f)), cy = H * (0.56f + r.in(-0.05f, 0.05f));
  const float chin = r.in(0.1f, 0.35f);
  const float hx = cx + rx * r.in(-0.04f, 0.04f), hy = cy - 0.12f * ry;  // hair cap
  const float hrx = rx * r.in(1.14f, 1.22f), hry = ry * r.in(1.10f, 1.16f);

  // hair behind the face
  if (style == 1) {  // long: straight down both sides
    const float bottom = cy + ry * r.in(1.1f, 1.7f), half = hrx * r.in(0.98f, 1.04f);
    cv.paint(hx - half, hx + half, hy, bottom, hc, [&](float x, float y) {
      const float dx = std::fabs(x - hx) - (half - 0.3f * rx);
      const float dy = y - (bottom - 0.3f * rx);
      return y <= bottom && (dx <= 0.f || dy <= 0.f || dx * dx + dy * dy <= 0.09f * rx * rx);
    });
  } else if (style == 2) {  // twin tails
    const float tx = hrx * r.in(1.0f, 1.12f), ty = cy + ry * r.in(0.3f, 0.6f);
    const float trx = rx * r.in(0.28f, 0.38f), tr_y = ry * r.in(0.7f, 1.0f);
    cv.ellipse(hx - tx, ty, trx, tr_y, hc);
    cv.ellipse(hx + tx, ty, trx, tr_y, hc);
  } else if (style == 3) {  // bun on top
    const float br = rx * r.in(0.3f, 0.42f);
    cv.ellipse(hx + rx * r.in(-0.4f, 0.4f), hy - hry * 0.92f, br, br, hc);
  }
  cv.ellipse(hx, hy, hrx, hry, hc);

  // face: an ellipse whose lower half narrows towards the chin
  cv.paint(cx - rx, cx + rx, cy - ry, cy + ry, sk, [&](float x, float y) {
    const float t = std::max(0.f, (y - cy) / ry);
    const float rxe = rx * (1.f - chin * t * t);
    const float dx = (x - cx) / rxe, dy = (y - cy) / ry;
    return dx * dx + dy * dy <= 1.f;
  });

  // bangs: the cap down to a (straight, jagged or swept) edge
  const float b0 = cy - ry * r.in(0.42f, 0.55f);
  const float amp = bangs == 1 ? ry * r.in(0.05f, 0.10f) : 0.f;
  const float period = rx * r.in(0.3f, 0.5f), phase = r.in(0.f, 1.f);
  const float slope = bangs == 2 ? (r.u() < 0.5f ? -1.f : 1.f) * 0.06f * ry / rx : 0.f;
  cv.paint(hx - hrx, hx + hrx, hy - hry, b0 + amp + 0.07f * ry, hc, [&](float x, float y) {
    if (!inside_ellipse(x, y, hx, hy, hrx, hry)) return false;
    const float f = (x - cx) / period + phase;
    const float tooth = amp * (1.f - std::fabs(2.f * (f - std::floor(f)) - 1.f));
    const float sw = slope * std::clamp(x - cx, -rx, rx);
    return y < b0 + tooth + sw;
  });

  // eyes: white, iris, pupil, highlight
  const float ey = cy + ry * r.in(0.02f, 0.12f), ex = rx * r.in(0.38f, 0.46f);
  const float erx = rx * r.in(0.17f, 0.22f), ery = ry * r.in(0.13f, 0.17f);
  const float irx = erx * r.in(0.6f, 0.7f), iry = ery * r.in(0.8f, 0.9f);
  const float look = erx * r.in(-0.2f, 0.2f);
  for (int side = -1; side <= 1; side += 2) {
    const float sx = cx + side * ex;
    cv.ellipse(sx, ey, erx, ery, wh);
    const float ix = sx + look, iy = ey + 0.1f * ery;
    cv.paint(ix - irx, ix + irx, iy - iry, iy + iry, ec, [&](float x, float y) {
      return inside_ellipse(x, y, ix, iy, irx, iry) && inside_ellipse(x, y, sx, ey, erx, ery);
    });
    cv.ellipse(ix, iy, 0.4f * irx, 0.4f * iry, pc);
    const float hr = std::max(0.5f, 0.22f * irx);
    cv.ellipse(ix - 0.35f * irx, iy - 0.4f * iry, hr, hr, wh);
  }

  // mouth
  cv.ellipse(cx, cy + ry * r.in(0.56f, 0.64f), rx * r.in(0.1f, 0.16f), std::max(0.75f, 0.035f * ry), mo);
  return {hair, eye};
}

float sq_dist(const float* p, const Rgb& c) {
  const float a = p[0] - c.r, b = p[1] - c.g, d = p[2] - c.b;
  return a * a + b * b + d * d;
}

// Explains p as the blend a*c + (1 - a)*m (a clamped to [0, 1]); returns the squared distance of p
// from that blend and sets *a.
float blend_dist(const float* p, const Rgb& c, const Rgb& m, float* a) {
  const float u[3] = {c.r - m.r, c.g - m.g, c.b - m.b};
  const float v[3] = {p[0] - m.r, p[1] - m.g, p[2] - m.b};
  const float uu = u[0] * u[0] + u[1] * u[1] + u[2] * u[2];
  float t = uu > 0.f ? (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / uu : 1.f;
  t = std::clamp(t, 0.f, 1.f);
  *a = t;
  float d = 0.f;
  for (int i = 0; i < 3; ++i) {
    const float e = v[i] - t * u[i];
    d += e * e;
  }
  return d;
}

}  // namespace

const AnimePalette& default_anime_palette() {
  static const AnimePalette p = [] {
    AnimePalette q;
    // hair, in default_hair_tags() order: orange white aqua gray green red purple pink blue black brown blonde
    q.hair = {{255, 128, 0}, {245, 245, 245}, {0, 220, 220}, {128, 128, 128}, {0, 170, 0},   {220, 0, 0},
              {130, 0, 200}, {255, 110, 200}, {0, 60, 255},  {20, 20, 20},    {120, 60, 10}, {250, 225, 90}};
    // eyes, in default_eye_tags() order: black orange pink yellow aqua purple green brown red blue
    q.eye = {{20, 20, 20},  {255, 128, 0}, {255, 110, 200}, {255, 230, 0}, {0, 220, 220},
             {130, 0, 200}, {0, 170, 0},   {120, 60, 10},   {220, 0, 0},   {0, 60, 255}};
    q.skin = {250, 210, 175};
    q.sclera = {255, 255, 255};
    q.mouth = {190, 70, 80};
    q.background = {{160, 180, 220}, {200, 170, 220}, {170, 210, 180}};
    return q;
  }();
  return p;
}

HostDataset make_anime_faces(int count, int height, int width, uint64_t seed, float lo, float hi) {
  if (count <= 0) throw Error(cat("anime: count must be a positive integer, got ", count));
  if (height < 16 || width < 16 || height > 1024 || width > 1024)
    throw Error(cat("anime: image size ", height, "x", width, " must be in 16..1024 per side"));
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
    throw Error(cat("anime: pixel range [", lo, ", ", hi, "] needs finite lo < hi"));
  const size_t plane = static_cast<size_t>(height) * width, dim = 3 * plane;
  if (static_cast<double>(count) * dim > 4e9)
    throw Error(cat("anime: ", count, " images of ", height, "x", width, " are too many to hold in memory"));
  const AnimePalette& pal = default_anime_palette();
  const std::vector<std::string> vocab = default_vocabulary();
  const int V = static_cast<int>(vocab.size()), NH = static_cast<int>(default_hair_tags().size());
  HostDataset d;
  d.name = "anime";
  d.count = count;
  d.channels = 3;
  d.height = height;
  d.width = width;
  d.num_classes = NH;
  d.tag_dim = V;
  d.vocab = vocab;
  d.x.resize(static_cast<size_t>(count) * dim);
  d.y.resize(count);
  d.tags.assign(static_cast<size_t>(count) * V, 0.f);
  float table[256];
  for (int p = 0; p < 256; ++p) table[p] = static_cast<float>(lo + (static_cast<double>(hi) - lo) * p / 255.0);

  auto work = [&](int first, int last) {
    Canvas cv{width, height, std::vector<uint8_t>(dim)};
    for (int i = first; i < last; ++i) {
      const auto [h, e] = draw_face(cv, seed, i, pal);
      float* out = d.x.data() + static_cast<size_t>(i) * dim;
      for (size_t p = 0; p < plane; ++p)
        for (int c = 0; c < 3; ++c) out[c * plane + p] = table[cv.px[3 * p + c]];
      d.y[i] = h;
      d.tags[static_cast<size_t>(i) * V + h] = 1.f;
      d.tags[static_cast<size_t>(i) * V + NH + e] = 1.f;
    }
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const int threads = static_cast<int>(std::min<unsigned>(std::min(hw, 8u), static_cast<unsigned>(count / 256 + 1)));
  if (threads <= 1) {
    work(0, count);
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back(work, static_cast<int>(static_cast<int64_t>(count) * t / threads),
                        static_cast<int>(static_cast<int64_t>(count) * (t + 1) / threads));
    for (auto& th : pool) th.join();
  }
  return d;
}

AnimeColours probe_anime_colours(const float* image, int height, int width, float lo, float hi,
                                 const AnimePalette& pal) {
  AnimeColours out;
  if (!image || height < 1 || width < 1 || !(hi > lo)) return out;
  const int H = height, W = width;
  const size_t plane = static_cast<size_t>(H) * W;
  const float scale = 255.f / (hi - lo);
  std::vector<float> rgb(plane * 3);
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) {
      const float v = (image[c * plane + p] - lo) * scale;
      rgb[3 * p + c] = std::isfinite(v) ? std::clamp(v, 0.f, 255.f) : 0.f;
    }
  if (std::min(H, W) >= 80) {  // a 3x3 box filter (edges clamped) takes the edge off pixel noise; the
                               // blend model absorbs the blur (smaller faces are too small to blur)
    std::vector<float> tmp(rgb.size());
    for (int pass = 0; pass < 2; ++pass) {  // horizontal, then vertical
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
          for (int c = 0; c < 3; ++c) {
            float s = 0.f;
            int n = 0;
            for (int o = -1; o <= 1; ++o) {
              const int xx = pass == 0 ? x + o : x, yy = pass == 0 ? y : y + o;
              if (xx < 0 || yy < 0 || xx >= W || yy >= H) continue;
              s += rgb[(static_cast<size_t>(yy) * W + xx) * 3 + c];
              ++n;
            }
            tmp[(static_cast<size_t>(y) * W + x) * 3 + c] = s / n;
          }
      rgb.swap(tmp);
    }
  }
  constexpr float kSkin2 = 45.f * 45.f;  // skin: within this of the skin colour (and nearest to it)
  constexpr float kVote2 = 90.f * 90.f;  // a vote: within this of a hair / eye colour
  std::vector<float> d_hair(plane);
  std::vector<int8_t> k_hair(plane);
  std::vector<uint8_t> skin(plane, 0);
  for (size_t p = 0; p < plane; ++p) {
    const float* c = &rgb[3 * p];
    const float ds = sq_dist(c, pal.skin);
    float dh = std::numeric_limits<float>::max(), de = dh, dbg = dh;
    int kh = -1;
    for (size_t k = 0; k < pal.hair.size(); ++k)
      if (float v = sq_dist(c, pal.hair[k]); v < dh) dh = v, kh = static_cast<int>(k);
    for (size_t k = 0; k < pal.eye.size(); ++k) de = std::min(de, sq_dist(c, pal.eye[k]));
    for (const Rgb& b : pal.background) dbg = std::min(dbg, sq_dist(c, b));
    const float dw = sq_dist(c, pal.sclera);
    skin[p] = ds < kSkin2 && ds < dh && ds < de && ds < dbg && ds < dw;
    // a hair vote must beat skin and background
    d_hair[p] = (dh < kVote2 && dh < ds && dh < dbg) ? dh : -1.f;
    k_hair[p] = static_cast<int8_t>(kh);
  }

  // the face: the largest 4-connected skin region
  std::vector<int> comp(plane, -1), stack;
  int best = -1, best_size = 0, ncomp = 0;
  for (size_t s = 0; s < plane; ++s) {
    if (!skin[s] || comp[s] >= 0) continue;
    int size = 0;
    stack.assign(1, static_cast<int>(s));
    comp[s] = ncomp;
    while (!stack.empty()) {
      const int p = stack.back();
      stack.pop_back();
      ++size;
      const int x = p % W, y = p / W;
      const int nb[4] = {x > 0 ? p - 1 : -1, x + 1 < W ? p + 1 : -1, y > 0 ? p - W : -1, y + 1 < H ? p + W : -1};
      for (int q : nb)
        if (q >= 0 && skin[q] && comp[q] < 0) {
          comp[q] = ncomp;
          stack.push_back(q);
        }
    }
    if (size > best_size) best_size = size, best = ncomp;
    ++ncomp;
  }
  if (best < 0 || best_size < std::max(16, static_cast<int>(plane / 50))) return out;  // no face

  std::vector<int> rmin(H, W), rmax(H, -1), cmin(W, H), cmax(W, -1);
  int top = H, bottom = -1;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      if (comp[static_cast<size_t>(y) * W + x] == best) {
        rmin[y] = std::min(rmin[y], x);
        rmax[y] = std::max(rmax[y], x);
        cmin[x] = std::min(cmin[x], y);
        cmax[x] = std::max(cmax[x], y);
        top = std::min(top, y);
        bottom = std::max(bottom, y);
      }
  const float eye_limit = top + 0.6f * (bottom - top);
  // An eye pixel is explained as a blend of an eye colour with white, skin or black (edges of the
  // iris, blurred images, the darkened pupil); it votes its share of the eye colour.
  const Rgb partners[3] = {pal.sclera, pal.skin, Rgb{0.f, 0.f, 0.f}};
  constexpr float kBlend2 = 40.f * 40.f;
  std::vector<float> hair_votes(pal.hair.size(), 0.f), eye_votes(pal.eye.size(), 0.f);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t p = static_cast<size_t>(y) * W + x;
      if (comp[p] == best) continue;
      const bool enclosed = rmin[y] < x && x < rmax[y] && cmin[x] < y && y < cmax[x];
      if (enclosed) {
        if (y >= eye_limit) continue;  // the mouth
        float bd = kBlend2, ba = 0.f;
        int bk = -1;
        for (size_t k = 0; k < pal.eye.size(); ++k)
          for (const Rgb& m : partners) {
            float a;
            const float dist = blend_dist(&rgb[3 * p], pal.eye[k], m, &a);
            if (dist < bd || (dist == bd && a > ba)) bd = dist, ba = a, bk = static_cast<int>(k);
          }
        if (bk >= 0 && ba >= 0.3f) eye_votes[bk] += ba;  // faint blends (noise on white) do not vote
      } else if (d_hair[p] >= 0.f) {
        hair_votes[k_hair[p]] += 1.f;
      }
    }
  auto winner = [](const std::vector<float>& v, float min_votes) {
    const auto it = std::max_element(v.begin(), v.end());
    return *it >= min_votes ? static_cast<int>(it - v.begin()) : -1;
  };
  out.hair = winner(hair_votes, std::max(10.f, plane / 100.f));
  out.eye = winner(eye_votes, std::max(3.f, plane / 2000.f));
  return out;
}

AttributeAccuracy attribute_accuracy(const float* images, int count, int height, int width, float lo, float hi,
                                     const float* tags, int tag_dim) {
  const int NH = static_cast<int>(default_hair_tags().size()), NE = static_cast<int>(default_eye_tags().size());
  if (tag_dim < NH + NE)
    throw Error(cat("attribute_accuracy: tag vectors of ", tag_dim, " entries; the default vocabulary's ", NH + NE,
                    " (hair then eye colours) are needed"));
  AttributeAccuracy a;
  if (count <= 0) return a;
  const size_t dim = static_cast<size_t>(3) * height * width;
  int hair_ok = 0, eye_ok = 0, both_ok = 0;
  for (int i = 0; i < count; ++i) {
    const float* t = tags + static_cast<size_t>(i) * tag_dim;
    int want_h = -1, want_e = -1;
    for (int k = 0; k < NH; ++k)
      if (t[k] > 0.5f && want_h < 0) want_h = k;
    for (int k = 0; k < NE; ++k)
      if (t[NH + k] > 0.5f && want_e < 0) want_e = k;
    const AnimeColours c = probe_anime_colours(images + i * dim, height, width, lo, hi);
    a.hair_unknown += c.hair < 0;
    a.eye_unknown += c.eye < 0;
    const bool h = c.hair >= 0 && c.hair == want_h, e = c.eye >= 0 && c.eye == want_e;
    hair_ok += h;
    eye_ok += e;
    both_ok += h && e;
  }
  a.hair = static_cast<double>(hair_ok) / count;
  a.eye = static_cast<double>(eye_ok) / count;
  a.both = static_cast<double>(both_ok) / count;
  return a;
}

}  // namespace cgan
