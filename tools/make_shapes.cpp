// cgan_make_shapes DIR [PER_CLASS [SIZE [SEED]]]: writes the drawn-shapes class folders
// (DIR/circle, DIR/square, DIR/triangle; defaults 200 PNGs of 16x16 per class, seed 0) that
// configs/shapes_folder.json trains on. Same arguments, same bytes (Philox-drawn).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cgan/base/error.hpp"
#include "cgan/data/drawn_shapes.hpp"

static long arg(const char* text, const char* what, long lo, long hi) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "cgan_make_shapes: %s: expected an integer in %ld..%ld, got '%s'\n", what, lo, hi, text);
    std::exit(2);
  }
  return v;
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 5 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fprintf(stderr, "usage: cgan_make_shapes DIR [PER_CLASS=200 [SIZE=16 [SEED=0]]]\n");
    return argc == 2 ? 0 : 2;
  }
  const long per_class = argc > 2 ? arg(argv[2], "PER_CLASS", 1, 1000000) : 200;
  const long size = argc > 3 ? arg(argv[3], "SIZE", 4, 1024) : 16;
  const long seed = argc > 4 ? arg(argv[4], "SEED", 0, 1L << 62) : 0;
  try {
    cgan::write_shapes_folder(argv[1], static_cast<int>(per_class), static_cast<int>(size),
                              static_cast<uint64_t>(seed));
  } catch (const cgan::Error& e) {
    std::fprintf(stderr, "cgan_make_shapes: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "cgan_make_shapes: wrote %ld %ldx%ld PNGs per class to %s/{circle,square,triangle}\n", per_class,
               size, size, argv[1]);
  return 0;
}
