// Buffer<T> (cgan/backend/buffer.hpp): owns one Backend allocation, moves without copying, frees once.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "cgan/backend/buffer.hpp"

namespace cgan {
namespace {

static_assert(!std::is_copy_constructible<Buffer<float>>::value, "a Buffer is never copied");
static_assert(!std::is_copy_assignable<Buffer<float>>::value, "a Buffer is never copied");
static_assert(std::is_nothrow_move_constructible<Buffer<int32_t>>::value, "a Buffer moves");
static_assert(std::is_nothrow_move_assignable<Buffer<int32_t>>::value, "a Buffer moves");

TEST(Buffer, OwnsZeroFilledMemoryAndMovesIt) {
  const std::unique_ptr<Backend> be = make_cpu_backend();
  Buffer<float> a(*be, 5);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a.size(), 5u);
  float h[5] = {1, 1, 1, 1, 1};
  be->download(h, a, 5);
  for (float v : h) EXPECT_EQ(v, 0.f);
  float* p = a.get();
  Buffer<float> b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.get(), p);
  Buffer<float> c;
  EXPECT_TRUE(c.empty());
  c = std::move(b);
  EXPECT_EQ(c.get(), p);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  c.reset();
  EXPECT_TRUE(c.empty());
  c.reset();  // twice: nothing to free
}

TEST(Buffer, IntBuffersCarryValues) {
  const std::unique_ptr<Backend> be = make_cpu_backend();
  Buffer<int32_t> y(*be, 3);
  const int32_t in[3] = {7, -2, 5};
  be->upload_int(y, in, 3);
  int32_t out[3] = {};
  be->download_int(out, y.get(), 3);
  EXPECT_EQ(out[0], 7);
  EXPECT_EQ(out[1], -2);
  EXPECT_EQ(out[2], 5);
  Buffer<int32_t> z(*be, 2);
  y = std::move(z);  // the old allocation is freed (ASan/valgrind see no leak), z's is kept
  EXPECT_EQ(y.size(), 2u);
}

}  // namespace
}  // namespace cgan
