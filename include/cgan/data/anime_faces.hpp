// The procedural anime-face set with known hair/eye colours, and the colour probe that reads them back
// from generated images (src/data/anime_faces.cpp). See docs/DECISIONS.md ("Anime data").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cgan/data/data.hpp"

namespace cgan {

// ------------------------------------------------------------------ procedural anime faces

// RGB colours 0..255. hair[k] draws default_hair_tags()[k], eye[k] default_eye_tags()[k].
struct Rgb {
  float r, g, b;
};
struct AnimePalette {
  std::vector<Rgb> hair;  // 12
  std::vector<Rgb> eye;   // 10
  Rgb skin, sclera, mouth;
  std::vector<Rgb> background;  // backgrounds the drawer picks from
};
const AnimePalette& default_anime_palette();

// `count` faces of height x width (each at least 16), RGB NCHW scaled to [lo, hi]: a background
// (one of the palette's, with a vertical gradient), hair behind the face in one of 4 styles (short,
// long, twin tails, bun) and bangs over the forehead (straight, jagged or swept), a skin face
// ellipse (chin shape varies), two eyes (white, iris in the eye colour, dark pupil), a mouth; face
// position, size and proportions vary. Hair and eye colours are drawn uniformly and independently,
// each with a small brightness jitter. tags: multi-hot over default_vocabulary() (one hair, one
// eye); y = hair index, num_classes = 12. Deterministic per seed (Philox), any thread count.
HostDataset make_anime_faces(int count, int height, int width, uint64_t seed, float lo = -1.f, float hi = 1.f);

// Reads the hair and eye colour back from one image (3 x height x width floats in [lo, hi], NCHW).
// Pixels are classified by the nearest palette colour; the face is the largest 4-connected region
// of skin pixels; eye votes come from non-skin pixels enclosed by that face (skin on both sides in
// their row and column) in its upper 60 %, hair votes from the pixels not enclosed. Each attribute
// is the palette entry with most votes, or -1 (unknown) when no face is found or too few pixels
// vote.
struct AnimeColours {
  int hair = -1, eye = -1;
};
AnimeColours probe_anime_colours(const float* image, int height, int width, float lo, float hi,
                                 const AnimePalette& palette = default_anime_palette());

// Fraction of images whose probed hair (eye) colour is the one their tags name. `tags` are
// count x tag_dim multi-hot vectors over default_vocabulary() (tag_dim 22): the hair tag is the set
// entry among the first 12, the eye tag among the next 10. Unknown probes count as wrong.
struct AttributeAccuracy {
  double hair = 0, eye = 0, both = 0;
  int hair_unknown = 0, eye_unknown = 0;
};
AttributeAccuracy attribute_accuracy(const float* images, int count, int height, int width, float lo, float hi,
                                     const float* tags, int tag_dim);

}  // namespace cgan
