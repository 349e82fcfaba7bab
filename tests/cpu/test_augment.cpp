// DiffAugment (cgan/backend/augment.hpp) on the CPU backend: the op against a direct host reference of the
// authors' DiffAugment_pytorch.py on random images of odd sizes (draws recomputed here from the
// Philox words), its backward against central finite differences, a sample's draws whatever the
// batch split (offset) or the policy, the [0, 1] data range as the [-1, 1] one carried over, the
// device-counter stream form, argument checks, and the train.augment config key and its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "cgan/backend/augment.hpp"
#include "cgan/config/config.hpp"
#include "cpu/ops_test_util.hpp"

using namespace cgan;
using namespace cgan::opstest;
using json = nlohmann::json;

namespace {

class Augment : public RandomCpuTest {
 protected:
  // A random spec: odd sizes, 1..4 channels, the given transforms (a random non-empty set when
  // none is given), range [-1, 1] or [0, 1].
  AugmentSpec random_spec(int max_side = 37) {
    AugmentSpec a;
    a.C = randint(1, 4);
    a.H = size(1, max_side);
    a.W = size(1, max_side);
    const int mask = randint(1, 7);
    a.color = mask & 1;
    a.translation = mask & 2;
    a.cutout = mask & 4;
    if (randint(0, 1)) a.translation_ratio = uni(0.05f, 0.4f);
    if (randint(0, 1)) a.cutout_ratio = uni(0.1f, 0.9f);
    const bool unit = randint(0, 1);
    a.center = unit ? 0.5f : 0.f;
    a.half = unit ? 0.5f : 1.f;
    return a;
  }
  size_t dim(const AugmentSpec& a) const { return static_cast<size_t>(a.C) * a.H * a.W; }

  struct Out {
    VecF y, params;
  };
  Out run(const AugmentSpec& a, const VecF& x, int B, uint64_t seed, RngStream s, uint64_t offset) {
    const size_t n = dim(a) * B;
    float* xd = be_->alloc(n);
    float* yd = be_->alloc(n);
    float* pd = be_->alloc(static_cast<size_t>(B) * kAugmentParams);
    be_->upload(xd, x.data(), n);
    be_->augment_forward(a, B, seed, s, offset, xd, yd, pd);
    Out o{VecF(n), VecF(static_cast<size_t>(B) * kAugmentParams)};
    be_->download(o.y.data(), yd, n);
    be_->download(o.params.data(), pd, o.params.size());
    for (float* p : {xd, yd, pd}) be_->free(p);
    return o;
  }
  VecF backward(const AugmentSpec& a, const VecF& params, const VecF& gy, int B) {
    const size_t n = dim(a) * B;
    float* pd = be_->alloc(params.size());
    float* gyd = be_->alloc(n);
    float* gxd = be_->alloc(n);
    be_->upload(pd, params.data(), params.size());
    be_->upload(gyd, gy.data(), n);
    be_->augment_backward(a, B, pd, gyd, gxd);
    VecF gx(n);
    be_->download(gx.data(), gxd, n);
    for (float* p : {pd, gyd, gxd}) be_->free(p);
    return gx;
  }
};

// The draws as the reference defines them, from the same Philox words: torch.rand -> u, and
// torch.randint(lo, hi) -> lo + floor(w * (hi - lo) / 2^32).
struct RefDraw {
  double brightness = 0, saturation = 1, contrast = 1;
  long tx = 0, ty = 0, off_x = 0, off_y = 0;  // cutout: the reference's offset (centre)
};
RefDraw ref_draw(const AugmentSpec& a, uint64_t seed, uint64_t stream, uint64_t sample) {
  const U32x4 c = philox_words(seed, stream, 2 * sample), s = philox_words(seed, stream, 2 * sample + 1);
  auto u = [](uint32_t w) { return (static_cast<double>(w >> 9) + 0.5) / 8388608.0; };
  auto randint = [](uint32_t w, long lo, long hi) {
    return lo + static_cast<long>(std::floor(static_cast<double>(w) * static_cast<double>(hi - lo) / 4294967296.0));
  };
  RefDraw d;
  if (a.color) {
    d.brightness = (u(c.v[0]) - 0.5) * a.half;
    d.saturation = u(c.v[1]) * 2;
    d.contrast = u(c.v[2]) + 0.5;
  }
  const long sx = static_cast<long>(a.H * static_cast<double>(a.translation_ratio) + 0.5);
  const long sy = static_cast<long>(a.W * static_cast<double>(a.translation_ratio) + 0.5);
  const long cx = static_cast<long>(a.H * static_cast<double>(a.cutout_ratio) + 0.5);
  const long cy = static_cast<long>(a.W * static_cast<double>(a.cutout_ratio) + 0.5);
  if (a.translation) {
    d.tx = randint(s.v[0], -sx, sx + 1);
    d.ty = randint(s.v[1], -sy, sy + 1);
  }
  if (a.cutout) {
    d.off_x = randint(s.v[2], 0, a.H + (1 - cx % 2));
    d.off_y = randint(s.v[3], 0, a.W + (1 - cy % 2));
  }
  return d;
}

// DiffAugment_pytorch.py step by step in double for one sample [C, H, W] (fill: the range's centre,
// the reference's 0 on [-1, 1]).
VecD reference(const AugmentSpec& a, const RefDraw& d, const float* x) {
  const int C = a.C, H = a.H, W = a.W;
  auto at = [&](int c, int i, int j) { return (static_cast<size_t>(c) * H + i) * W + j; };
  VecD v(x, x + static_cast<size_t>(C) * H * W);
  if (a.color) {
    for (double& e : v) e += d.brightness;  // rand_brightness
    for (int i = 0; i < H; ++i)             // rand_saturation: mean over dim 1 (channels)
      for (int j = 0; j < W; ++j) {
        double m = 0;
        for (int c = 0; c < C; ++c) m += v[at(c, i, j)] / C;
        for (int c = 0; c < C; ++c) v[at(c, i, j)] = (v[at(c, i, j)] - m) * d.saturation + m;
      }
    double m = 0;  // rand_contrast: mean over dims 1, 2, 3
    for (double e : v) m += e / static_cast<double>(v.size());
    for (double& e : v) e = (e - m) * d.contrast + m;
  }
  if (a.translation) {  // rand_translation: gather from the image padded by one fill pixel, clamped
    VecD pad(static_cast<size_t>(C) * (H + 2) * (W + 2), a.center);
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < H; ++i)
        for (int j = 0; j < W; ++j) pad[(static_cast<size_t>(c) * (H + 2) + i + 1) * (W + 2) + j + 1] = v[at(c, i, j)];
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < H; ++i)
        for (int j = 0; j < W; ++j) {
          const long gx = std::min<long>(std::max<long>(i + d.tx + 1, 0), H + 1);
          const long gy = std::min<long>(std::max<long>(j + d.ty + 1, 0), W + 1);
          v[at(c, i, j)] = pad[(static_cast<size_t>(c) * (H + 2) + gx) * (W + 2) + gy];
        }
  }
  if (a.cutout) {  // rand_cutout: the clamped grid of the square set to 0 in a mask
    const long cx = static_cast<long>(H * static_cast<double>(a.cutout_ratio) + 0.5);
    const long cy = static_cast<long>(W * static_cast<double>(a.cutout_ratio) + 0.5);
    std::vector<char> mask(static_cast<size_t>(H) * W, 1);
    for (long gi = 0; gi < cx; ++gi)
      for (long gj = 0; gj < cy; ++gj) {
        const long i = std::min<long>(std::max<long>(gi + d.off_x - cx / 2, 0), H - 1);
        const long j = std::min<long>(std::max<long>(gj + d.off_y - cy / 2, 0), W - 1);
        mask[static_cast<size_t>(i) * W + j] = 0;
      }
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < H; ++i)
        for (int j = 0; j < W; ++j)
          if (!mask[static_cast<size_t>(i) * W + j]) v[at(c, i, j)] = a.center;
  }
  return v;
}

}  // namespace

TEST_F(Augment, MatchesTheReferenceOnRandomImages) {
  for (int trial = 0; trial < 60; ++trial) {
    const AugmentSpec a = random_spec();
    const int B = randint(1, 6);
    const uint64_t seed = rand64(), stream = rand64() >> 8, offset = rand64() >> 20;
    SCOPED_TRACE(cat("trial ", trial, ": C=", a.C, " H=", a.H, " W=", a.W, " policy ", a.color, a.translation, a.cutout,
                     " ratios ", a.translation_ratio, " ", a.cutout_ratio, " center ", a.center));
    const VecF x = randv(dim(a) * B, a.center - a.half, a.center + a.half);
    const Out o = run(a, x, B, seed, stream, offset);
    VecD ref;
    for (int b = 0; b < B; ++b) {
      const RefDraw d = ref_draw(a, seed, stream, offset + b);
      const VecD r = reference(a, d, x.data() + dim(a) * b);
      ref.insert(ref.end(), r.begin(), r.end());
      // the recorded draws: the colour factors, the shift and the cutout's first row and column
      const float* p = o.params.data() + static_cast<size_t>(b) * kAugmentParams;
      EXPECT_NEAR(p[0], d.brightness, 1e-6);
      EXPECT_NEAR(p[1], d.saturation, 1e-6);
      EXPECT_NEAR(p[2], d.contrast, 1e-6);
      EXPECT_EQ(p[3], d.tx);
      EXPECT_EQ(p[4], d.ty);
      if (a.cutout) {
        EXPECT_EQ(p[5], d.off_x - a.cut_h() / 2);
        EXPECT_EQ(p[6], d.off_y - a.cut_w() / 2);
      }
    }
    expect_close(o.y, ref, 2e-6, 2e-6, "augmented images");
  }
}

// The transforms are linear in x for fixed draws, so central differences are exact up to rounding:
// L = sum(w * aug(x)) with w in U(0, 1) (a non-zero mean makes the contrast's mean term large).
TEST_F(Augment, BackwardMatchesFiniteDifferences) {
  for (int trial = 0; trial < 12; ++trial) {
    AugmentSpec a = random_spec(13);
    if (trial < 6) a.color = true;  // the colour gradient in every other trial at least
    const int B = randint(1, 3);
    const uint64_t seed = rand64(), stream = randint(0, 1000), offset = randint(0, 1000);
    SCOPED_TRACE(
        cat("trial ", trial, ": C=", a.C, " H=", a.H, " W=", a.W, " policy ", a.color, a.translation, a.cutout));
    const size_t n = dim(a) * B;
    VecF x = randv(n, -1.f, 1.f);
    const VecF w = randv(n, 0.f, 1.f);
    const Out o = run(a, x, B, seed, stream, offset);
    const VecF gx = backward(a, o.params, w, B);
    VecD xd = to_d(x);
    const VecD num = numeric_grad(
        xd,
        [&]() {
          VecF xf(xd.begin(), xd.end());
          const VecF y = run(a, xf, B, seed, stream, offset).y;
          double L = 0;
          for (size_t i = 0; i < n; ++i) L += static_cast<double>(w[i]) * y[i];
          return L;
        },
        1e-2);
    expect_close(gx, num, 2e-3, 2e-3, "dL/dx");
  }
}

TEST_F(Augment, ASamplesDrawsDoNotDependOnTheBatchSplitNorThePolicy) {
  AugmentSpec a = random_spec();
  a.color = a.translation = a.cutout = true;
  const int B = 7, k = randint(1, 6);
  const uint64_t seed = rand64(), stream = rand64() >> 8, offset = randint(0, 100000);
  const VecF x = randv(dim(a) * B, -1.f, 1.f);
  const Out whole = run(a, x, B, seed, stream, offset);
  const VecF head(x.begin(), x.begin() + dim(a) * k), tail(x.begin() + dim(a) * k, x.end());
  const Out h = run(a, head, k, seed, stream, offset), t = run(a, tail, B - k, seed, stream, offset + k);
  VecF y = h.y, p = h.params;
  y.insert(y.end(), t.y.begin(), t.y.end());
  p.insert(p.end(), t.params.begin(), t.params.end());
  EXPECT_EQ(y, whole.y) << "split after " << k;
  EXPECT_EQ(p, whole.params);
  // with only translation on, the shifts are those of the full policy
  AugmentSpec only = a;
  only.color = only.cutout = false;
  const Out o = run(only, x, B, seed, stream, offset);
  for (int b = 0; b < B; ++b) {
    EXPECT_EQ(o.params[b * kAugmentParams + 3], whole.params[b * kAugmentParams + 3]);
    EXPECT_EQ(o.params[b * kAugmentParams + 4], whole.params[b * kAugmentParams + 4]);
    EXPECT_EQ(o.params[b * kAugmentParams + 0], 0.f) << "colour off: no brightness";
  }
  // another offset draws other transforms
  EXPECT_NE(run(a, x, B, seed, stream, offset + B).params, whole.params);
}

// Augmenting [0, 1] data is the [-1, 1] augmentation carried over by x -> 2x - 1 and back.
TEST_F(Augment, UnitRangeIsTheSymmetricRangeCarriedOver) {
  for (int trial = 0; trial < 10; ++trial) {
    AugmentSpec s = random_spec();
    s.center = 0.f, s.half = 1.f;
    AugmentSpec u = s;
    u.center = 0.5f, u.half = 0.5f;
    const int B = randint(1, 4);
    const uint64_t seed = rand64(), stream = rand64() >> 8;
    const VecF x01 = randv(dim(s) * B, 0.f, 1.f);
    VecF xs(x01.size());
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = 2.f * x01[i] - 1.f;
    const VecF ys = run(s, xs, B, seed, stream, 0).y, yu = run(u, x01, B, seed, stream, 0).y;
    VecD back(ys.size());
    for (size_t i = 0; i < ys.size(); ++i) back[i] = (static_cast<double>(ys[i]) + 1.0) / 2.0;
    expect_close(yu, back, 1e-6, 1e-6, "[0,1] vs [-1,1] carried over");
  }
}

TEST_F(Augment, CounterStreamEqualsTheFixedStreamAndDrawsCoverTheirRanges) {
  AugmentSpec a;
  a.C = 1, a.H = 28, a.W = 28, a.color = a.translation = a.cutout = true;
  const int B = 400;
  const VecF x = randv(dim(a) * B, -1.f, 1.f);
  int32_t* ctr = be_->alloc_int(1);
  const int32_t c = randint(0, 5000);
  be_->upload_int(ctr, &c, 1);
  const Out fixed = run(a, x, B, 9, 77 + 256ull * c, 0), counted = run(a, x, B, 9, RngStream(77, ctr, 256), 0);
  be_->free(ctr);
  EXPECT_EQ(fixed.y, counted.y);
  std::set<int> tx, r0;
  double bright = 0;
  for (int b = 0; b < B; ++b) {
    const float* p = &fixed.params[static_cast<size_t>(b) * kAugmentParams];
    EXPECT_GE(p[0], -0.5f);
    EXPECT_LT(p[0], 0.5f);
    EXPECT_GE(p[1], 0.f);
    EXPECT_LT(p[1], 2.f);
    EXPECT_GE(p[2], 0.5f);
    EXPECT_LT(p[2], 1.5f);
    tx.insert(static_cast<int>(p[3]));
    r0.insert(static_cast<int>(p[5]));
    bright += p[0] / B;
  }
  // 28 x 28: shifts of up to int(3.5 + 0.5) = 4 pixels, a 14 x 14 cutout whose centre lies in [0, 28]
  EXPECT_EQ(*tx.begin(), -4);
  EXPECT_EQ(*tx.rbegin(), 4);
  EXPECT_EQ(tx.size(), 9u);
  EXPECT_EQ(*r0.begin(), -7);
  EXPECT_EQ(*r0.rbegin(), 21);
  EXPECT_NEAR(bright, 0.0, 0.06);
}

TEST_F(Augment, ArgumentChecks) {
  AugmentSpec a;
  a.C = 1, a.H = 4, a.W = 4, a.translation = true;
  float* x = be_->alloc(64);
  float* y = be_->alloc(64);
  float* p = be_->alloc(64);
  EXPECT_THROW(be_->augment_forward(a, 2, 1, 0, 0, x, x + 8, p), Error);   // overlapping
  EXPECT_THROW(be_->augment_forward(a, 2, 1, 0, 0, x, y, y + 20), Error);  // params inside y
  EXPECT_THROW(be_->augment_forward(a, 2, 1, 0, 0, nullptr, y, p), Error);
  EXPECT_THROW(be_->augment_backward(a, 2, p, x, x), Error);
  AugmentSpec bad = a;
  bad.H = 0;
  EXPECT_THROW(be_->augment_forward(bad, 2, 1, 0, 0, x, y, p), Error);
  bad = a;
  bad.cutout_ratio = 1.5f;
  EXPECT_THROW(be_->augment_forward(bad, 2, 1, 0, 0, x, y, p), Error);
  bad = a;
  bad.half = 0.f;
  EXPECT_THROW(be_->augment_forward(bad, 2, 1, 0, 0, x, y, p), Error);
  EXPECT_NO_THROW(be_->augment_forward(a, 0, 1, 0, 0, nullptr, nullptr, nullptr));  // empty batch
  EXPECT_NO_THROW(be_->augment_forward(a, 2, 1, 0, 0, x, y, p));
  for (float* q : {x, y, p}) be_->free(q);
}

// ---- the train.augment config key

namespace {
json mnist_config() {
  return json::parse(R"({
    "data": {"kind": "mnist", "range": [-1, 1]},
    "generator": {"noise_dim": 4, "layers": [{"linear": 8}, {"relu": {}}, {"linear": 784}]},
    "discriminator": {"layers": [{"linear": 8}, {"leaky_relu": 0.2}, {"linear": 1}]}
  })");
}
std::string augment_error(const json& augment, const std::string& kind = "mnist") {
  json j = mnist_config();
  if (kind != "mnist") j["data"] = {{"kind", kind}, {"count", 100}}, j["generator"]["layers"][2]["linear"] = 2;
  j["train"]["augment"] = augment;
  try {
    parse_config(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(AugmentConfig, FormsParseAndRoundTrip) {
  json j = mnist_config();
  EXPECT_FALSE(parse_config(j).train.augment.any());
  EXPECT_FALSE(parse_config(j).to_json()["train"].contains("augment")) << "off: the config text of old runs";
  for (const json& form : {json("color, translation,cutout"), json({"color", "translation", "cutout"}),
                           json({{"policy", "color,translation,cutout"}})}) {
    j["train"]["augment"] = form;
    const Config c = parse_config(j);
    EXPECT_TRUE(c.train.augment.color && c.train.augment.translation && c.train.augment.cutout) << form;
    EXPECT_EQ(c.train.augment.policy(), "color,translation,cutout");
    EXPECT_EQ(c.train.augment.translation_ratio, 0.125f);
    EXPECT_EQ(c.train.augment.cutout_ratio, 0.5f);
    EXPECT_EQ(parse_config(c.to_json()).to_json(), c.to_json());
  }
  j["train"]["augment"] = {{"policy", "translation"}, {"translation", 0.25}};
  const Config c = parse_config(j);
  EXPECT_EQ(c.train.augment.policy(), "translation");
  EXPECT_EQ(c.train.augment.translation_ratio, 0.25f);
  EXPECT_EQ(c.to_json()["train"]["augment"], json({{"policy", "translation"}, {"translation", 0.25}}));
  EXPECT_EQ(parse_config(c.to_json()).to_json(), c.to_json());
  j["train"]["augment"] = "";
  EXPECT_FALSE(parse_config(j).train.augment.any());
  // --set train.augment=color,cutout (a bare string) works as the string form
  json k = mnist_config();
  apply_override(k, "train.augment=color,cutout");
  EXPECT_EQ(parse_config(k).train.augment.policy(), "color,cutout");
}

TEST(AugmentConfig, ErrorsNameTheKey) {
  EXPECT_EQ(augment_error("color,flip"),
            "train.augment: unknown transform \"flip\" (known: \"color\", \"translation\", \"cutout\")");
  EXPECT_EQ(augment_error("cutout,translation"),
            "train.augment: \"translation\" after \"cutout\": DiffAugment applies color, translation, cutout in this "
            "order; list them so");
  EXPECT_EQ(augment_error("color,color"), "train.augment: \"color\" appears twice");
  EXPECT_EQ(augment_error("color,"),
            "train.augment: unknown transform \"\" (known: \"color\", \"translation\", \"cutout\")");
  EXPECT_EQ(augment_error(3),
            "train.augment: expected a policy such as \"color,translation,cutout\" (a string, or a "
            "list of names), got 3");
  EXPECT_EQ(augment_error(json::array({"color", 2})),
            "train.augment[1]: expected \"color\", \"translation\" or \"cutout\", got 2");
  EXPECT_EQ(augment_error({{"policy", "color"}, {"cutout", 0.3}}),
            "train.augment.cutout: only used when the policy has \"cutout\"");
  EXPECT_EQ(augment_error({{"policy", "translation"}, {"translation", 0}}),
            "train.augment.translation: expected a number in (0, 1], got 0");
  EXPECT_EQ(augment_error({{"cutout", 0.3}}), "train.augment.policy: missing (e.g. \"color,translation,cutout\")");
  EXPECT_EQ(augment_error({{"policy", "cutout"}, {"size", 3}}).rfind("train.augment.size: unknown key", 0), 0u);
  EXPECT_EQ(augment_error("translation", "mixture"),
            "train.augment: DiffAugment transforms images; data.kind \"mixture\" has 2-D points");
  EXPECT_EQ(augment_error("", "mixture"), "(no error)") << "off is fine on points";
}
