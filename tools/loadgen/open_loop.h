#pragma once

// Open-loop scheduling: when each request is due, decided in advance and
// independent of how fast the server answers. Latency is then measured from
// the scheduled time, so a server stall shows up in every request that
// should have been sent during it (no coordinated omission), and a
// generator that falls behind shows up as send lag.
//
// Thread-safety: thread-compatible; each client thread owns its schedules
// and its SendQueue.

#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tools/loadgen/workload.h"

namespace memshard {
namespace loadgen {

enum class Arrival {
  kUniform,  // evenly spaced: start + (phase + n) / rate
  kPoisson,  // exponential gaps with mean 1 / rate
};
absl::StatusOr<Arrival> ParseArrival(absl::string_view text);

// The send times of one connection issuing `rate` requests per second from
// `start_ns` on. Uniform times are computed from the request number, not
// accumulated, so they never drift. `phase` in [0, 1) offsets the first send
// by that fraction of a period so connections sharing a rate do not fire in
// lockstep.
class OpenLoopSchedule {
 public:
  OpenLoopSchedule(int64_t start_ns, double rate, double phase, Arrival arrival,
                   uint64_t seed);

  // The next send time (monotonic nanoseconds).
  int64_t next_ns() const { return next_ns_; }
  // Moves to the following send time.
  void Advance();

 private:
  int64_t start_ns_;
  double period_ns_;
  double phase_;
  Arrival arrival_;
  Rng rng_;
  uint64_t sent_ = 0;
  int64_t next_ns_;
};

// The due times of many connections in one min-heap: one timer per thread
// instead of one per connection. Ties pop in connection order.
class SendQueue {
 public:
  void Push(int64_t due_ns, uint32_t connection) {
    heap_.emplace(due_ns, connection);
  }
  bool empty() const { return heap_.empty(); }
  int64_t next_due_ns() const { return heap_.top().first; }
  // Pops the earliest entry if it is due at or before `now_ns`.
  bool PopDue(int64_t now_ns, int64_t* due_ns, uint32_t* connection);

 private:
  using Entry = std::pair<int64_t, uint32_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
};

}  // namespace loadgen
}  // namespace memshard
