// The op table's completeness (every public checked Backend op and every OpKind has an entry) and a CPU-only run of its small cases.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "op_table.hpp"

namespace cgan {
namespace {

// Backend's public non-virtual methods (the checked ops), read from backend.hpp: the declarations
// at the class's own indentation between "class Backend {" and " protected:".
std::set<std::string> checked_ops_in_backend_hpp() {
  std::ifstream f(std::string(CGAN_SOURCE_DIR) + "/include/cgan/backend/backend.hpp");
  EXPECT_TRUE(f.good()) << "cannot read include/cgan/backend/backend.hpp";
  std::set<std::string> ops;
  const std::regex decl(R"(^  (virtual\s+)?[A-Za-z_][\w:<>]*(\s*[\*&])?\s+[\*&]?(\w+)\()");
  bool in_class = false;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("class Backend {", 0) == 0)
      in_class = true;
    else if (in_class && line.rfind(" protected:", 0) == 0)
      break;
    std::smatch m;
    if (in_class && std::regex_search(line, m, decl) && !m[1].matched) ops.insert(m[3]);
  }
  return ops;
}

TEST(OpTable, EveryCheckedBackendOpHasAnEntry) {
  const std::set<std::string> ops = checked_ops_in_backend_hpp();
  ASSERT_GE(ops.size(), 40u) << "backend.hpp's ops were not found: is the parser out of date?";
  ASSERT_TRUE(ops.count("gemm") && ops.count("augment_backward") && ops.count("upload"));
  std::set<std::string> covered;
  for (const auto& e : optable::op_table()) {
    EXPECT_FALSE(e.cases.empty()) << e.ops.front() << ": an entry without cases";
    for (const auto& op : e.ops) {
      EXPECT_TRUE(ops.count(op)) << "the table names " << op << ", which is not a checked op of Backend";
      covered.insert(op);
    }
  }
  for (const auto& op : ops)
    EXPECT_TRUE(covered.count(op)) << "Backend::" << op << " has no entry in tests/op_table.hpp";
}

TEST(OpTable, EveryOpKindHasAnEntry) {
  std::set<int> kinds;
  for (const auto& e : optable::op_table())
    for (OpKind k : e.kinds) kinds.insert(static_cast<int>(k));
  for (int k = 0; k < static_cast<int>(OpKind::count_); ++k)
    EXPECT_TRUE(kinds.count(k)) << "OpKind " << op_kind_name(static_cast<OpKind>(k)) << " has no entry";
}

// The CPU half of the table: every small case runs on the CPU backend, gives finite outputs of the
// expected count and gives the same bits when run again (the reference is deterministic).
TEST(OpTable, SmallCasesRunOnTheCpuReproducibly) {
  auto cpu = make_cpu_backend();
  const uint64_t seed = 0x5eed0f0b7ab1eULL;
  for (const auto& e : optable::op_table())
    for (const auto& c : e.cases) {
      if (c.big) continue;
      SCOPED_TRACE(e.ops.front() + " " + c.shape);
      const auto a = c.run(*cpu, seed), b = c.run(*cpu, seed);
      ASSERT_FALSE(a.empty());
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        for (float v : a[i].v) ASSERT_TRUE(std::isfinite(v)) << a[i].name << " is not finite";
        optable::Out exact = a[i];
        exact.exact = true;
        EXPECT_EQ(optable::mismatch(exact, b[i], 0, 0), "");
      }
    }
}

}  // namespace
}  // namespace cgan
