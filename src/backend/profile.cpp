// ProfileRange and OpProfile (include/cgan/backend/profile.hpp). The NVTX side of a range is
// detail::range_push/range_pop: cuda/profile_nvtx.cpp in CUDA builds, src/backend/profile_noop.cpp otherwise.
#include "cgan/backend/profile.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cgan/backend/backend.hpp"
#include "cgan/base/error.hpp"

namespace cgan {
namespace detail {
void range_push(const char* name);
void range_pop();
}  // namespace detail

namespace {
thread_local OpProfile* t_recording = nullptr;  // the OpProfile this thread's ranges go to

class SteadyOpClock final : public OpClock {
 public:
  void mark() override { marks_.push_back(std::chrono::steady_clock::now()); }
  std::vector<double> pair_ms() override {
    std::vector<double> ms(marks_.size() / 2);
    for (size_t i = 0; i < ms.size(); ++i)
      ms[i] = std::chrono::duration<double, std::milli>(marks_[2 * i + 1] - marks_[2 * i]).count();
    marks_.clear();
    return ms;
  }

 private:
  std::vector<std::chrono::steady_clock::time_point> marks_;
};
}  // namespace

ProfileRange::ProfileRange(const char* name) : sink_(t_recording) {
  detail::range_push(name);
  if (sink_) sink_->push_range(name);
}
ProfileRange::~ProfileRange() {
  if (sink_) sink_->pop_range();
  detail::range_pop();
}

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::gemm: return "gemm";
    case OpKind::conv_fwd: return "conv_fwd";
    case OpKind::conv_bwd_data: return "conv_bwd_data";
    case OpKind::conv_bwd_filter: return "conv_bwd_filter";
    case OpKind::bn_fwd: return "bn_fwd";
    case OpKind::bn_bwd: return "bn_bwd";
    case OpKind::act_fwd: return "act_fwd";
    case OpKind::act_bwd: return "act_bwd";
    case OpKind::pool_fwd: return "pool_fwd";
    case OpKind::pool_bwd: return "pool_bwd";
    case OpKind::dropout: return "dropout";
    case OpKind::fuse: return "fuse";
    case OpKind::loss: return "loss";
    case OpKind::adam: return "adam";
    case OpKind::ema: return "ema";
    case OpKind::rng: return "rng";
    case OpKind::gather: return "gather";
    case OpKind::copy: return "copy";
    case OpKind::counters: return "counters";
    case OpKind::transfer: return "transfer";
    case OpKind::spectral_norm: return "spectral_norm";
    case OpKind::augment: return "augment";
    case OpKind::count_: break;
  }
  return "?";
}

std::unique_ptr<OpClock> make_steady_op_clock() { return std::make_unique<SteadyOpClock>(); }

OpProfile::OpProfile(Backend& be) : be_(be), clock_(be.make_op_clock()) {
  CGAN_CHECK(be_.op_profile_ == nullptr, "OpProfile: backend ", be_.name(), " is already being profiled");
  CGAN_CHECK(t_recording == nullptr, "OpProfile: this thread already records into another OpProfile");
  kinds_.resize(static_cast<size_t>(OpKind::count_));
  for (size_t k = 0; k < kinds_.size(); ++k) kinds_[k].name = op_kind_name(static_cast<OpKind>(k));
  scopes_.push_back({"(none)", 0, 0});
  phases_.push_back({"(none)", 0, 0});
  be_.op_profile_ = this;
  t_recording = this;
}

OpProfile::~OpProfile() {
  be_.op_profile_ = nullptr;
  if (t_recording == this) t_recording = nullptr;
}

void OpProfile::op_begin(OpKind k) {
  if (depth_++ > 0) return;  // an op inside an op: the outer one's time covers it
  pending_.push_back({k, stack_.empty() ? -1 : stack_.back(), stack_.empty() ? -1 : stack_.front()});
  clock_->mark();
}

void OpProfile::op_end() {
  if (--depth_ > 0) return;
  clock_->mark();
}

int OpProfile::intern(const char* name) {
  const std::string s = name ? name : "?";
  const auto it = ids_.find(s);
  if (it != ids_.end()) return it->second;
  const int id = static_cast<int>(names_.size());
  names_.push_back(s);
  ids_.emplace(s, id);
  scopes_.push_back({s, 0, 0});
  phases_.push_back({s, 0, 0});
  return id;
}

void OpProfile::push_range(const char* name) { stack_.push_back(intern(name)); }
void OpProfile::pop_range() {
  if (!stack_.empty()) stack_.pop_back();
}

void OpProfile::collect() {
  const std::vector<double> ms = clock_->pair_ms();
  CGAN_CHECK(ms.size() == pending_.size(), "OpProfile: ", pending_.size(), " ops but ", ms.size(),
             " timed (collect() inside an op?)");
  for (size_t i = 0; i < ms.size(); ++i) {
    const Pending& p = pending_[i];
    for (Row* r : {&kinds_[static_cast<size_t>(p.kind)], &scopes_[p.scope + 1], &phases_[p.phase + 1]}) {
      r->calls += 1;
      r->ms += ms[i];
    }
  }
  pending_.clear();
}

void OpProfile::reset() {
  collect();
  for (auto* rows : {&kinds_, &scopes_, &phases_})
    for (Row& r : *rows) r.calls = 0, r.ms = 0;
}

std::vector<OpProfile::Row> OpProfile::sorted(const std::vector<Row>& rows) {
  std::vector<Row> out;
  for (const Row& r : rows)
    if (r.calls > 0) out.push_back(r);
  std::stable_sort(out.begin(), out.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
  return out;
}

std::vector<OpProfile::Row> OpProfile::by_kind() const { return sorted(kinds_); }
std::vector<OpProfile::Row> OpProfile::by_scope() const { return sorted(scopes_); }
std::vector<OpProfile::Row> OpProfile::by_phase() const { return sorted(phases_); }

double OpProfile::total_ms() const {
  double t = 0;
  for (const Row& r : kinds_) t += r.ms;
  return t;
}

namespace {
std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
}  // namespace

std::string OpProfile::table(long long iterations, double wall_ms) const {
  const double n = static_cast<double>(std::max(iterations, 1LL));
  const double total = total_ms();
  std::string out = cat("Timed in ops: ", fixed(total / n, 4), " ms per iteration, ",
                        fixed(wall_ms > 0 ? 100.0 * total / wall_ms : 0.0, 1), " % of the profiled iteration (",
                        fixed(wall_ms / n, 4), " ms; the rest is host work between ops), over ", iterations,
                        " iterations. Shares are of the timed total.\n");
  auto section = [&](const char* title, const std::vector<Row>& rows) {
    out += cat("\n| ", title, " | calls/iter | ms/iter | share |\n| --- | ---: | ---: | ---: |\n");
    for (const Row& r : rows)
      out += cat("| ", r.name, " | ", fixed(static_cast<double>(r.calls) / n, 2), " | ", fixed(r.ms / n, 4), " | ",
                 fixed(total > 0 ? 100.0 * r.ms / total : 0.0, 1), " % |\n");
  };
  section("op kind", by_kind());
  section("layer (innermost range)", by_scope());
  section("phase (outermost range)", by_phase());
  return out;
}

std::string OpProfile::json(long long iterations, double wall_ms) const {
  const double n = static_cast<double>(std::max(iterations, 1LL));
  const double total = total_ms();
  auto rows = [&](const std::vector<Row>& rs) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const Row& r : rs)
      a.push_back({{"name", r.name},
                   {"calls_per_iter", static_cast<double>(r.calls) / n},
                   {"ms_per_iter", r.ms / n},
                   {"share_pct", total > 0 ? 100.0 * r.ms / total : 0.0}});
    return a;
  };
  nlohmann::ordered_json j;
  j["iterations"] = iterations;
  j["timed_ms_per_iter"] = total / n;
  j["wall_ms_per_iter"] = wall_ms / n;
  j["kinds"] = rows(by_kind());
  j["layers"] = rows(by_scope());
  j["phases"] = rows(by_phase());
  return j.dump();
}

}  // namespace cgan
