// Profiling marks and per-op timing.
//
// A ProfileRange names a phase of the run ("data", "d_step", "g_step", "optimizer", ...) or a layer
// ("generator.layers[4].conv2d+relu") from its construction to its destruction. In CUDA builds it is
// an NVTX range (visible in Nsight Systems, and usable as an Nsight Compute filter); otherwise it
// marks nothing.
//
//   { ProfileRange r("d_step"); ...D step... }
//
// Ranges nest; open and close one on the same thread. The name must outlive the constructor call
// only (NVTX and OpProfile copy it).
//
// An OpProfile (cgan_gpu bench --per-op) times every checked Backend op while it lives: each op is
// bracketed by two marks of the backend's OpClock (a steady clock on the CPU, where ops are
// synchronous; CUDA events on the stream on the GPU, eager mode only: ops inside a CUDA graph
// capture are not run, so they cannot be timed) and tallied by op kind, by the innermost open
// ProfileRange (the layer, or the phase for ops outside any layer) and by the outermost one (the
// phase). Without an OpProfile an op pays one pointer test and a range one thread-local read.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace cgan {

class Backend;
class OpProfile;

struct ProfileRange {
  explicit ProfileRange(const char* name);
  ~ProfileRange();
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;

 private:
  OpProfile* sink_;  // the OpProfile this range was pushed onto (null: none was recording)
};

// The kinds a Backend op is timed under. Forward and backward are separate kinds where both exist.
enum class OpKind : uint8_t {
  gemm,             // gemm
  conv_fwd,         // conv2d_forward
  conv_bwd_data,    // conv2d_backward_data
  conv_bwd_filter,  // conv2d_backward_filter
  bn_fwd,           // batchnorm_forward_train / _eval
  bn_bwd,           // batchnorm_backward
  act_fwd,          // bias_act_forward (bias + activation)
  act_bwd,          // bias_act_backward
  pool_fwd,         // pool2d_forward
  pool_bwd,         // pool2d_backward
  dropout,          // dropout_forward, mul (its backward)
  fuse,             // fuse_forward / fuse_backward, one_hot (label fusion)
  loss,             // loss_fused, softmax_xent
  adam,             // adam
  ema,              // ema_update (the generator's weight average)
  rng,              // rand_normal, rand_uniform, rand_below, permutation
  gather,           // gather_rows, gather_int, copy_cols
  copy,             // copy, fill
  counters,         // add_ints, copy_to_slot (step counters, loss statistics)
  transfer,         // upload*, download* (host <-> backend memory)
  spectral_norm,    // spectral_norm_vec / _scale / _grad (its GEMVs count as gemm)
  augment,          // augment_forward, augment_backward (DiffAugment)
  count_
};
const char* op_kind_name(OpKind k);

// A timeline on which op boundaries are marked.
class OpClock {
 public:
  virtual ~OpClock() = default;
  virtual void mark() = 0;
  // Milliseconds between marks 2i and 2i+1 for every pair marked since the last call, once the
  // work they bracket has finished (the CUDA clock waits for its stream); forgets those marks.
  virtual std::vector<double> pair_ms() = 0;
};
// The host's steady clock (Backend's default: CPU ops are synchronous).
std::unique_ptr<OpClock> make_steady_op_clock();

class OpProfile {
 public:
  // Attaches to `be`: from now until destruction its ops are timed and this thread's ProfileRanges
  // attribute them. One OpProfile per backend and per thread at a time.
  explicit OpProfile(Backend& be);
  ~OpProfile();
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  // Folds the ops timed since the last collect() into the tallies (waits for the device).
  void collect();
  // Drops the tallies (e.g. after a warm-up); ops still pending are collected first.
  void reset();

  struct Row {
    std::string name;
    long long calls = 0;
    double ms = 0;  // summed over the calls
  };
  // Tallies, largest time first (collect() first). by_scope: the innermost range open at the op
  // ("(none)" outside every range); by_phase: the outermost.
  std::vector<Row> by_kind() const;
  std::vector<Row> by_scope() const;
  std::vector<Row> by_phase() const;
  double total_ms() const;  // the sum of every timed op

  // The tallies per iteration of a run of `iterations` iterations whose wall time was `wall_ms`:
  // Markdown tables (op kind, layer, phase: calls, ms and share of the timed total per iteration),
  // and the same as one JSON object {"iterations", "timed_ms_per_iter", "wall_ms_per_iter",
  // "kinds"|"layers"|"phases": [{"name", "calls_per_iter", "ms_per_iter", "share_pct"}]}.
  std::string table(long long iterations, double wall_ms) const;
  std::string json(long long iterations, double wall_ms) const;

  // Called by Backend's checked ops and by ProfileRange; not for other callers.
  void op_begin(OpKind k);
  void op_end();
  void push_range(const char* name);
  void pop_range();

 private:
  struct Pending {
    OpKind kind;
    int scope, phase;  // indices into names_, -1: no range open
  };
  int intern(const char* name);
  static std::vector<Row> sorted(const std::vector<Row>& rows);

  Backend& be_;
  std::unique_ptr<OpClock> clock_;
  int depth_ = 0;  // nesting of ops (only the outermost is timed)
  std::vector<int> stack_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, int> ids_;
  std::vector<Pending> pending_;
  std::vector<Row> kinds_, scopes_, phases_;  // kinds_: one per OpKind; the others: per names_ id + 1
};

}  // namespace cgan
