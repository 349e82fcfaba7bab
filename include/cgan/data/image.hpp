// 8-bit images: sample grids, PNG output, PNG/JPEG input (stb_image), resizing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cgan {

// Interleaved HWC, row-major; channels 1 (grey) or 3 (RGB). write_png also accepts 2 and 4.
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // width * height * channels
};

// Grid layout (as torchvision's make_grid): `pad` pixels of border around and between tiles, so
//   width  = cols * w + (cols + 1) * pad,   height = rows * h + (rows + 1) * pad.
// Borders are mid-grey (128); cells past `count` are black. Sample i (CHW floats, `channels` 1 or 3)
// goes to row i / cols, column i % cols. Values map linearly lo -> 0, hi -> 255, rounded and clamped
// (NaN -> 0). Requires hi > lo, count <= rows * cols.
Image make_grid(const float* samples, int count, int channels, int h, int w, int rows, int cols, float lo, float hi,
                int pad = 2);

// Encodes a PNG and writes it atomically (temporary file + rename); errors name the file.
void write_png(const std::string& path, const Image& img);

// Decodes a PNG or JPEG (anything stb_image reads) into 1 channel (grey, grey+alpha) or 3 (RGB,
// RGBA: alpha dropped). Missing, empty, truncated or non-image files give a one-line cgan::Error
// naming the file and the reason.
Image read_image(const std::string& path);

// Resizes to w x h: area averaging along an axis that shrinks, bilinear (pixel centres aligned,
// edges clamped) along one that grows; same size is an exact copy.
Image resize_image(const Image& img, int w, int h);

// A data-set sample from a decoded image (the image-folder loaders): grey replicated to RGB,
// resized (resize_image) to w x h, written as 3 planes (CHW) to out[0 .. 3*h*w), pixel p in 0..255
// becoming lo + (hi - lo) * p / 255.
void image_to_rgb_planes(const Image& img, int w, int h, float lo, float hi, float* out);

// The image-folder loaders' arguments, checked before any file is read: data.size in 1..4096 per
// side, data.range lo < hi, data.dir an existing folder. `what` names the folder in the empty-dir
// message ("no <what> given"). Throws cgan::Error naming the key.
void check_image_folder_args(const std::string& dir, int height, int width, float lo, float hi, const char* what);

}  // namespace cgan
