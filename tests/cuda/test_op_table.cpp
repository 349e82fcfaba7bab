// The op table on the GPU: every case of tests/op_table.hpp run on the CPU backend (the reference) and the CUDA backend, compared within atol + rtol * |cpu|.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda_test_util.hpp"
#include "op_table.hpp"

namespace cgan {
namespace {

using namespace cudatest;

// One test per entry (the parameter: its index in op_table()), named after its first op.
class CudaOpTable : public CudaParityTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(CudaOpTable, MatchesTheCpu) {
  const std::vector<optable::Entry> table = optable::op_table();
  const optable::Entry& e = table.at(GetParam());
  for (const auto& c : e.cases) {
    const uint64_t seed = u64();
    SCOPED_TRACE(e.ops.front() + " " + c.shape + " (CGAN_TEST_SEED=" + std::to_string(base_seed()) + ")");
    const auto ref = c.run(cpu(), seed), got = c.run(gpu(), seed);
    ASSERT_EQ(ref.size(), got.size());
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(optable::mismatch(ref[i], got[i], c.atol, c.rtol), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, CudaOpTable, ::testing::Range<size_t>(0, optable::op_table().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return optable::op_table().at(info.param).ops.front() + "_" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace cgan
