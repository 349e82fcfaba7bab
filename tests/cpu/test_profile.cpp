// OpProfile (include/cgan/backend/profile.hpp) on the CPU backend: every checked op is timed under its kind
// and attributed to the innermost and outermost ProfileRange open at the time; nothing is recorded
// once the profile is gone.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"
#include "cgan/backend/profile.hpp"
#include "test_util.hpp"

namespace cgan {
namespace {

const OpProfile::Row* find(const std::vector<OpProfile::Row>& rows, const std::string& name) {
  for (const auto& r : rows)
    if (r.name == name) return &r;
  return nullptr;
}

TEST(OpProfile, TimesEachOpUnderItsKindLayerAndPhase) {
  auto be = make_cpu_backend();
  const int n = 256;
  float* a = be->alloc(n * n);
  float* b = be->alloc(n * n);
  float* c = be->alloc(n * n);
  float* m = be->alloc(n * n);
  float* v = be->alloc(n * n);
  be->fill(a, n * n, 0.5f);  // before the profile: not counted
  {
    OpProfile prof(*be);
    {
      ProfileRange phase("phase");
      {
        ProfileRange layer("layer");
        be->gemm(false, false, n, n, n, 1.f, a, b, 0.f, c);
        be->fill(b, n * n, 1.f);
      }
      be->adam(n * n, a, c, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 1);
    }
    be->gemm(false, false, n, n, n, 1.f, a, b, 0.f, c);  // outside every range
    be->gemm(false, false, 0, n, n, 1.f, a, b, 0.f, c);  // empty: returns before the backend runs
    prof.collect();

    const auto kinds = prof.by_kind();
    ASSERT_EQ(kinds.size(), 3u);  // only the kinds that ran are listed
    ASSERT_TRUE(find(kinds, "gemm"));
    EXPECT_EQ(find(kinds, "gemm")->calls, 2);
    ASSERT_TRUE(find(kinds, "copy"));
    EXPECT_EQ(find(kinds, "copy")->calls, 1);
    ASSERT_TRUE(find(kinds, "adam"));
    EXPECT_EQ(find(kinds, "adam")->calls, 1);
    EXPECT_GE(kinds.front().ms, kinds.back().ms);  // largest first

    const auto scopes = prof.by_scope();
    ASSERT_TRUE(find(scopes, "layer") && find(scopes, "phase") && find(scopes, "(none)"));
    EXPECT_EQ(find(scopes, "layer")->calls, 2);
    EXPECT_EQ(find(scopes, "phase")->calls, 1);
    EXPECT_EQ(find(scopes, "(none)")->calls, 1);
    const auto phases = prof.by_phase();
    ASSERT_EQ(phases.size(), 2u);
    EXPECT_EQ(find(phases, "phase")->calls, 3);
    EXPECT_EQ(find(phases, "(none)")->calls, 1);

    double sum_kinds = 0, sum_scopes = 0;
    for (const auto& r : kinds) {
      EXPECT_GT(r.ms, 0.0) << r.name;
      sum_kinds += r.ms;
    }
    for (const auto& r : scopes) sum_scopes += r.ms;
    EXPECT_GT(prof.total_ms(), 0.0);
    EXPECT_NEAR(sum_kinds, prof.total_ms(), 1e-9);
    EXPECT_NEAR(sum_scopes, prof.total_ms(), 1e-9);

    // a second profile on the same backend, or on the same thread, is refused
    EXPECT_NE(testutil::error_of([&] { OpProfile again(*be); }).find("already being profiled"), std::string::npos);
    auto other = make_cpu_backend();
    EXPECT_NE(testutil::error_of([&] { OpProfile again(*other); }).find("this thread already records"),
              std::string::npos);

    prof.reset();
    EXPECT_TRUE(prof.by_kind().empty());
    EXPECT_EQ(prof.total_ms(), 0.0);
  }
  // gone: the backend runs unprofiled again, and a new profile starts from nothing
  be->gemm(false, false, n, n, n, 1.f, a, b, 0.f, c);
  {
    OpProfile prof(*be);
    ProfileRange r("again");
    be->fill(c, n * n, 0.f);
    prof.collect();
    ASSERT_EQ(prof.by_kind().size(), 1u);
    EXPECT_EQ(prof.by_kind()[0].name, "copy");
    EXPECT_EQ(prof.by_scope()[0].name, "again");
  }
  for (float* p : {a, b, c, m, v}) be->free(p);
}

TEST(OpProfile, TablesAndJsonSharesSumToTheTimedTotal) {
  auto be = make_cpu_backend();
  const int n = 128;
  float* a = be->alloc(n * n);
  float* c = be->alloc(n * n);
  OpProfile prof(*be);
  for (int it = 0; it < 4; ++it) {
    ProfileRange r("step");
    be->gemm(false, false, n, n, n, 1.f, a, a, 0.f, c);
    be->copy(a, c, n * n);
  }
  prof.collect();
  const double total = prof.total_ms();
  const auto j = nlohmann::json::parse(prof.json(4, total * 1.25));
  EXPECT_EQ(j.at("iterations"), 4);
  EXPECT_NEAR(j.at("timed_ms_per_iter").get<double>(), total / 4, 1e-12);
  EXPECT_NEAR(j.at("wall_ms_per_iter").get<double>(), total * 1.25 / 4, 1e-12);
  for (const char* t : {"kinds", "layers", "phases"}) {
    double share = 0;
    for (const auto& r : j.at(t)) share += r.at("share_pct").get<double>();
    EXPECT_NEAR(share, 100.0, 1e-9) << t;
  }
  ASSERT_EQ(j.at("kinds").size(), 2u);
  for (const auto& r : j.at("kinds")) EXPECT_EQ(r.at("calls_per_iter").get<double>(), 1.0) << r.at("name");
  const std::string t = prof.table(4, total * 1.25);
  EXPECT_NE(t.find("| op kind | calls/iter | ms/iter | share |"), std::string::npos) << t;
  EXPECT_NE(t.find("| gemm | 1.00 |"), std::string::npos) << t;
  EXPECT_NE(t.find("| step | 2.00 |"), std::string::npos) << t;
  EXPECT_NE(t.find("80.0 % of the profiled iteration"), std::string::npos) << t;
  be->free(a);
  be->free(c);
}

}  // namespace
}  // namespace cgan
