// Sample grids, PNG writing, PNG/JPEG reading and resizing; see include/cgan/data/image.hpp.
//
// stb_image / stb_image_write come from Debian's libstb: the compiled library is linked when CMake
// finds it; otherwise CMake defines CGAN_STB_IMPLEMENTATION and the implementations are compiled here.
#include "cgan/data/image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "cgan/base/io.hpp"
#include "cgan/base/error.hpp"

#ifdef CGAN_STB_IMPLEMENTATION
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // stb's implementation, not ours
#include <stb_image.h>
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace cgan {

namespace {

constexpr int64_t kMaxSide = int64_t(1) << 20;         // pixels along one side
constexpr int64_t kMaxBytes = int64_t(1) << 30;        // decoded or encoded pixel bytes
constexpr uint64_t kMaxFileBytes = uint64_t(1) << 30;  // image file size read_image accepts

// Checks a width/height/channels triple and returns the byte count; `who` prefixes the message.
size_t checked_bytes(const std::string& who, int64_t w, int64_t h, int64_t c) {
  if (w <= 0 || h <= 0) throw Error(cat(who, ": image size ", w, "x", h, " is not positive"));
  if (w > kMaxSide || h > kMaxSide) throw Error(cat(who, ": image size ", w, "x", h, " is too large"));
  if (c < 1 || c > 4) throw Error(cat(who, ": ", c, " channels (expected 1 to 4)"));
  const int64_t bytes = w * h * c;  // < 2^20 * 2^20 * 4, no overflow
  if (bytes > kMaxBytes) throw Error(cat(who, ": image of ", w, "x", h, "x", c, " is too large"));
  return static_cast<size_t>(bytes);
}

void check_image(const std::string& who, const Image& img) {
  const size_t n = checked_bytes(who, img.width, img.height, img.channels);
  if (img.pixels.size() != n)
    throw Error(cat(who, ": image holds ", img.pixels.size(), " bytes, ", img.width, "x", img.height, "x", img.channels,
                    " needs ", n));
}

uint8_t to_byte(float v, float lo, float scale) {
  const float t = (v - lo) * scale;
  if (!(t > 0.f)) return 0;  // also NaN
  if (t >= 255.f) return 255;
  return static_cast<uint8_t>(std::floor(t + 0.5f));
}

// The size a PNG or JPEG header claims, read by us before stb_image looks at the file (stb refuses
// huge images itself with a misleading "unknown image type"). false: not PNG/JPEG or no size found.
bool header_size(const std::vector<uint8_t>& b, int64_t* w, int64_t* h, int* channels) {
  auto be16 = [&](size_t i) { return (int64_t(b[i]) << 8) | b[i + 1]; };
  auto be32 = [&](size_t i) { return (be16(i) << 16) | be16(i + 2); };
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() >= 26 && std::equal(kPng, kPng + 8, b.begin()) && std::equal(b.begin() + 12, b.begin() + 16, "IHDR")) {
    *w = be32(16), *h = be32(20);
    *channels = (b[25] == 0 || b[25] == 4) ? 1 : 3;  // grey (+alpha) decodes to 1 channel, the rest to 3
    return true;
  }
  if (b.size() >= 4 && b[0] == 0xff && b[1] == 0xd8) {  // JPEG: walk the markers to the first SOFn
    size_t i = 2;
    while (i + 4 <= b.size()) {
      if (b[i] != 0xff) return false;
      const uint8_t m = b[i + 1];
      if (m == 0xff) {
        ++i;
        continue;
      }
      const size_t len = static_cast<size_t>(be16(i + 2));
      const bool sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
      if (sof) {
        if (i + 10 > b.size()) return false;
        *h = be16(i + 5), *w = be16(i + 7);
        *channels = b[i + 9] == 1 ? 1 : 3;
        return true;
      }
      if (len < 2) return false;
      i += 2 + len;
    }
  }
  return false;
}

std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r ? std::string(r) : std::string("unknown error");
}

// For each output coordinate along one axis: the source indices and weights (summing to 1).
struct Tap {
  int index;
  float weight;
};
std::vector<std::vector<Tap>> axis_taps(int n, int m) {
  std::vector<std::vector<Tap>> taps(static_cast<size_t>(m));
  if (m <= n) {  // area: average the source interval [o*s, (o+1)*s)
    const double s = static_cast<double>(n) / m;
    for (int o = 0; o < m; ++o) {
      const double a = o * s, b = std::min<double>((o + 1) * s, n);
      for (int i = static_cast<int>(std::floor(a)); i < n && i < b; ++i) {
        const double ov = std::min<double>(b, i + 1) - std::max<double>(a, i);
        if (ov > 1e-12) taps[o].push_back({i, static_cast<float>(ov / s)});
      }
    }
  } else {  // bilinear with pixel centres aligned
    for (int o = 0; o < m; ++o) {
      double x = (o + 0.5) * n / m - 0.5;
      x = std::min<double>(std::max(x, 0.0), n - 1);
      const int i0 = static_cast<int>(std::floor(x));
      const int i1 = std::min(i0 + 1, n - 1);
      const float f = static_cast<float>(x - i0);
      taps[o].push_back({i0, 1.f - f});
      if (f > 0.f && i1 != i0) taps[o].push_back({i1, f});
    }
  }
  return taps;
}

}  // namespace

Image make_grid(const float* samples, int count, int channels, int h, int w, int rows, int cols, float lo, float hi,
                int pad) {
  if (channels != 1 && channels != 3) throw Error(cat("make_grid: ", channels, " channels (expected 1 or 3)"));
  if (h <= 0 || w <= 0) throw Error(cat("make_grid: tile size ", w, "x", h, " is not positive"));
  if (rows <= 0 || cols <= 0) throw Error(cat("make_grid: grid of ", rows, "x", cols, " is empty"));
  if (pad < 0) throw Error(cat("make_grid: negative padding ", pad));
  if (count < 0 || static_cast<int64_t>(count) > static_cast<int64_t>(rows) * cols)
    throw Error(cat("make_grid: ", count, " samples do not fit a grid of ", rows, " rows x ", cols, " columns"));
  if (count > 0 && !samples) throw Error("make_grid: samples is null");
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo))
    throw Error(cat("make_grid: value range [", lo, ", ", hi, "] is empty or not finite"));
  const int64_t W = static_cast<int64_t>(cols) * w + static_cast<int64_t>(cols + 1) * pad;
  const int64_t H = static_cast<int64_t>(rows) * h + static_cast<int64_t>(rows + 1) * pad;
  Image img;
  img.pixels.assign(checked_bytes("make_grid", W, H, channels), 128);
  img.width = static_cast<int>(W);
  img.height = static_cast<int>(H);
  img.channels = channels;
  const float scale = 255.f / (hi - lo);
  const size_t plane = static_cast<size_t>(h) * w;
  for (int cell = 0; cell < rows * cols; ++cell) {
    const int64_t x0 = pad + static_cast<int64_t>(cell % cols) * (w + pad);
    const int64_t y0 = pad + static_cast<int64_t>(cell / cols) * (h + pad);
    const float* s = cell < count ? samples + static_cast<size_t>(cell) * channels * plane : nullptr;
    for (int y = 0; y < h; ++y) {
      uint8_t* row = &img.pixels[((y0 + y) * W + x0) * channels];
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < channels; ++c)
          row[x * channels + c] = s ? to_byte(s[c * plane + static_cast<size_t>(y) * w + x], lo, scale) : 0;
    }
  }
  return img;
}

void write_png(const std::string& path, const Image& img) {
  check_image(cat(path, ": cannot write PNG"), img);
  std::vector<uint8_t> png;
  auto sink = [](void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(ctx);
    const auto* p = static_cast<const uint8_t*>(data);
    out->insert(out->end(), p, p + size);
  };
  if (!stbi_write_png_to_func(sink, &png, img.width, img.height, img.channels, img.pixels.data(),
                              img.width * img.channels) ||
      png.empty())
    throw Error(cat(path, ": PNG encoding failed"));
  write_file_atomic(path, {{png.data(), png.size()}});
}

Image read_image(const std::string& path) {
  uint64_t file_size = 0;
  const int fd = open_regular_file(path, "image file", &file_size);
  std::vector<uint8_t> buf;
  {
    std::string err;
    if (file_size == 0)
      err = "empty file (0 bytes), not an image";
    else if (file_size > kMaxFileBytes)
      err = cat("file of ", file_size, " bytes is too large");
    else {
      buf.resize(static_cast<size_t>(file_size));
      size_t got = 0;
      while (got < buf.size()) {
        const ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          err = cat("read error: ", std::strerror(errno));
          break;
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
      }
      buf.resize(got);
      if (err.empty() && got == 0) err = "empty file (0 bytes), not an image";
    }
    ::close(fd);
    if (!err.empty()) throw Error(cat(path, ": ", err));
  }
  int64_t hw = 0, hh = 0;
  int hc = 0;
  if (header_size(buf, &hw, &hh, &hc)) checked_bytes(cat(path, ": cannot read image"), hw, hh, hc);
  const int len = static_cast<int>(buf.size());
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(buf.data(), len, &w, &h, &comp))
    throw Error(cat(path, ": not a readable image (stb_image: ", stb_reason(), ")"));
  const int want = comp <= 2 ? 1 : 3;
  checked_bytes(cat(path, ": cannot read image"), w, h, want);
  int dw = 0, dh = 0, dc = 0;
  stbi_uc* px = stbi_load_from_memory(buf.data(), len, &dw, &dh, &dc, want);
  if (!px) throw Error(cat(path, ": cannot decode image (stb_image: ", stb_reason(), ")"));
  Image img;
  img.width = dw;
  img.height = dh;
  img.channels = want;
  const size_t n = static_cast<size_t>(dw) * dh * want;
  img.pixels.assign(px, px + n);
  stbi_image_free(px);
  if (dw != w || dh != h) throw Error(cat(path, ": image size changed while decoding (corrupt file?)"));
  return img;
}

Image resize_image(const Image& img, int w, int h) {
  check_image("resize_image: source", img);
  const size_t out_bytes = checked_bytes("resize_image: target", w, h, img.channels);
  if (w == img.width && h == img.height) return img;
  const int C = img.channels, W0 = img.width, H0 = img.height;
  const auto tx = axis_taps(W0, w), ty = axis_taps(H0, h);
  // Horizontal pass into floats (H0 x w x C), then vertical pass into bytes.
  std::vector<float> mid(static_cast<size_t>(H0) * w * C, 0.f);
  for (int y = 0; y < H0; ++y) {
    const uint8_t* src = &img.pixels[static_cast<size_t>(y) * W0 * C];
    float* dst = &mid[static_cast<size_t>(y) * w * C];
    for (int x = 0; x < w; ++x)
      for (const Tap& t : tx[x])
        for (int c = 0; c < C; ++c) dst[x * C + c] += t.weight * src[t.index * C + c];
  }
  Image out;
  out.width = w;
  out.height = h;
  out.channels = C;
  out.pixels.resize(out_bytes);
  std::vector<float> acc(static_cast<size_t>(w) * C);
  for (int y = 0; y < h; ++y) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (const Tap& t : ty[y]) {
      const float* src = &mid[static_cast<size_t>(t.index) * w * C];
      for (size_t i = 0; i < acc.size(); ++i) acc[i] += t.weight * src[i];
    }
    uint8_t* dst = &out.pixels[static_cast<size_t>(y) * w * C];
    for (size_t i = 0; i < acc.size(); ++i)
      dst[i] = static_cast<uint8_t>(std::clamp(std::floor(acc[i] + 0.5f), 0.f, 255.f));
  }
  return out;
}

void image_to_rgb_planes(const Image& src, int w, int h, float lo, float hi, float* out) {
  Image img = src;
  if (img.channels == 1) {  // grey -> RGB
    Image rgb;
    rgb.width = img.width;
    rgb.height = img.height;
    rgb.channels = 3;
    rgb.pixels.resize(img.pixels.size() * 3);
    for (size_t i = 0; i < img.pixels.size(); ++i)
      rgb.pixels[3 * i] = rgb.pixels[3 * i + 1] = rgb.pixels[3 * i + 2] = img.pixels[i];
    img = std::move(rgb);
  }
  if (img.channels != 3) throw Error(cat("image_to_rgb_planes: ", img.channels, " channels (expected 1 or 3)"));
  img = resize_image(img, w, h);
  float table[256];
  for (int p = 0; p < 256; ++p) table[p] = static_cast<float>(lo + (static_cast<double>(hi) - lo) * p / 255.0);
  const size_t plane = static_cast<size_t>(h) * w;
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) out[c * plane + p] = table[img.pixels[3 * p + c]];
}

void check_image_folder_args(const std::string& dir, int height, int width, float lo, float hi, const char* what) {
  namespace fs = std::filesystem;
  if (height < 1 || width < 1 || height > 4096 || width > 4096)
    throw Error(cat("data.size: image size ", height, "x", width, " must be in 1..4096 per side"));
  if (!(lo < hi)) throw Error(cat("data.range: [", lo, ", ", hi, "] needs lo < hi"));
  std::error_code ec;
  if (dir.empty()) throw Error(cat("data.dir: no ", what, " given"));
  if (!fs::exists(dir, ec)) throw Error(cat("data.dir: ", dir, ": no such folder"));
  if (!fs::is_directory(dir, ec)) throw Error(cat("data.dir: ", dir, ": is not a folder"));
}

}  // namespace cgan
