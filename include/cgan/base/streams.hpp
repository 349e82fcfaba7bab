// Philox stream ids: every random draw's stream, in one list so that no two purposes share numbers.
#pragma once
#include <cstdint>

namespace cgan {

// ---- training (src/train): one stream per (step, sub-step, purpose) of an iteration
// stream_of(step, sub, purpose) = (step * 16 + sub) * 16 + purpose: below 2^38 for the at most
// 2^30 steps the trainer allows (train.steps), with sub < 16 (train.d_steps) and purpose < 16.
enum Purpose : uint64_t {
  kNoiseD = 1,
  kLabelsD,
  kDropGinD,
  kDropDReal,
  kDropDFake,
  kNoiseG,
  kLabelsG,
  kDropGinG,
  kDropDinG,
  kOtherD,
  kNoiseMisD,
  kDropGinMisD,
  kDropDMis  // three_term's mismatched pair
};
constexpr uint64_t stream_of(int64_t step, int sub, Purpose p) {
  return (static_cast<uint64_t>(step) * 16 + static_cast<uint64_t>(sub)) * 16 + p;
}
constexpr uint64_t kPermStream = 0x5045524dULL << 32;  // "PERM" + epoch: the training set's order
// DiffAugment's draws: kAugStream + stream_of(step, sub, which), kept apart from the purposes above
// (and from their dropout sub-streams) by its high bits.
constexpr uint64_t kAugStream = 0x4155474dULL << 32;                  // "AUGM"
enum AugWhich : uint64_t { kAugReal = 1, kAugFake, kAugMis, kAugG };  // D's real, fake, mismatched input; G step

// ---- samples and evaluation
// Sample noise: the training-time grids (seed train.seed) and `cgan_gpu sample` (seed --seed) draw
// z from it, so a grid is reproducible from the checkpoint alone.
constexpr uint64_t kSampleNoiseStream = 0x53414d50ULL << 32;  // "SAMP"
// Evaluation noise: label l draws z from stream kEvalNoiseStream + l (counter = the element index),
// so an evaluation is reproducible from (checkpoint, seed, count).
constexpr uint64_t kEvalNoiseStream = 0x4556414cULL << 32;  // "EVAL" + label
// The evaluator's classifier training (src/eval/classifier.cpp).
constexpr uint64_t kClassifierPermStream = 0x434c5346ULL << 32;  // "CLSF" + epoch
constexpr uint64_t kClassifierDropStream = 0x434c5344ULL << 32;  // "CLSD" + step

// ---- synthetic data sets (src/data)
constexpr uint64_t kGaussianStream = 0x4741555353ULL << 16;      // "GAUSS"
constexpr uint64_t kMixtureNoiseStream = 0x4d49584eULL << 24;    // "MIXN"
constexpr uint64_t kMixtureShuffleStream = 0x4d495853ULL << 24;  // "MIXS"
constexpr uint64_t kFaceStream = 0x414e494d45ULL << 16;          // "ANIME": per-face parameters
constexpr uint64_t kShapeStream = 0x5348415045ULL << 16;         // "SHAPE": per drawn-shape image

}  // namespace cgan
