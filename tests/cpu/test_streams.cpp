// The Philox stream list (cgan/base/streams.hpp): every stream family is distinct and no two
// families' derived ranges (base + epoch, base + step, base + stream_of(...)) overlap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cgan/base/streams.hpp"

namespace cgan {
namespace {

struct Family {
  std::string name;
  uint64_t lo, count;  // the streams [lo, lo + count)
};

// Realistic bounds: train.steps <= 2^30 (the trainer refuses more), at most 2^32 epochs or
// classifier steps, 2^16 labels, train.d_steps < 16.
std::vector<Family> families() {
  const uint64_t train_span = stream_of(int64_t{1} << 30, 0, Purpose{0});  // every (step, sub, purpose)
  return {
      {"training purposes", 0, train_span},
      {"kAugStream + stream_of", kAugStream, train_span},
      {"kPermStream + epoch", kPermStream, uint64_t{1} << 32},
      {"kSampleNoiseStream", kSampleNoiseStream, 1},
      {"kEvalNoiseStream + label", kEvalNoiseStream, uint64_t{1} << 16},
      {"kClassifierPermStream + epoch", kClassifierPermStream, uint64_t{1} << 32},
      {"kClassifierDropStream + step", kClassifierDropStream, uint64_t{1} << 32},
      {"kGaussianStream", kGaussianStream, 1},
      {"kMixtureNoiseStream", kMixtureNoiseStream, 1},
      {"kMixtureShuffleStream", kMixtureShuffleStream, 1},
      {"kFaceStream", kFaceStream, 1},
  };
}

TEST(Streams, BasesAreDistinct) {
  std::vector<uint64_t> bases = {
      kPermStream,           kAugStream,      kSampleNoiseStream,  kEvalNoiseStream,      kClassifierPermStream,
      kClassifierDropStream, kGaussianStream, kMixtureNoiseStream, kMixtureShuffleStream, kFaceStream};
  std::sort(bases.begin(), bases.end());
  EXPECT_EQ(std::adjacent_find(bases.begin(), bases.end()), bases.end());
}

TEST(Streams, DerivedRangesDoNotOverlap) {
  const std::vector<Family> f = families();
  for (size_t i = 0; i < f.size(); ++i) {
    ASSERT_LE(f[i].lo, UINT64_MAX - f[i].count) << f[i].name << " wraps around";
    for (size_t j = i + 1; j < f.size(); ++j) {
      const bool apart = f[i].lo + f[i].count <= f[j].lo || f[j].lo + f[j].count <= f[i].lo;
      EXPECT_TRUE(apart) << f[i].name << " overlaps " << f[j].name;
    }
  }
}

TEST(Streams, TrainingPurposesAreDistinctPerStep) {
  // every (sub, purpose) of a step and of its neighbour: distinct ids
  std::vector<uint64_t> ids;
  for (int64_t step : {int64_t{0}, int64_t{1}, (int64_t{1} << 30) - 1})
    for (int sub = 0; sub < 16; ++sub)
      for (uint64_t p = kNoiseD; p <= kDropDMis; ++p) ids.push_back(stream_of(step, sub, static_cast<Purpose>(p)));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  EXPECT_LT(static_cast<uint64_t>(kDropDMis), 16u);  // a purpose fits its 4 bits
  EXPECT_LT(static_cast<uint64_t>(kAugG), 16u);
}

TEST(Streams, ValuesAreTheRecordedOnes) {  // bit-exact runs: the ids never change
  EXPECT_EQ(kPermStream, 0x5045524dULL << 32);
  EXPECT_EQ(kAugStream, 0x4155474dULL << 32);
  EXPECT_EQ(kSampleNoiseStream, 0x53414d50ULL << 32);
  EXPECT_EQ(kEvalNoiseStream, 0x4556414cULL << 32);
  EXPECT_EQ(kClassifierPermStream, 0x434c5346ULL << 32);
  EXPECT_EQ(kClassifierDropStream, 0x434c5344ULL << 32);
  EXPECT_EQ(kGaussianStream, 0x4741555353ULL << 16);
  EXPECT_EQ(kMixtureNoiseStream, 0x4d49584eULL << 24);
  EXPECT_EQ(kMixtureShuffleStream, 0x4d495853ULL << 24);
  EXPECT_EQ(kFaceStream, 0x414e494d45ULL << 16);
  EXPECT_EQ(stream_of(3, 2, kNoiseG), (3u * 16 + 2) * 16 + 6);
}

}  // namespace
}  // namespace cgan
