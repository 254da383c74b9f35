#include "tools/loadgen/open_loop.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace memshard {
namespace loadgen {

absl::StatusOr<Arrival> ParseArrival(absl::string_view text) {
  if (text == "uniform") return Arrival::kUniform;
  if (text == "poisson") return Arrival::kPoisson;
  return absl::InvalidArgumentError(
      absl::StrCat("bad arrival process '", text, "' (uniform or poisson)"));
}

OpenLoopSchedule::OpenLoopSchedule(int64_t start_ns, double rate, double phase,
                                   Arrival arrival, uint64_t seed)
    : start_ns_(start_ns),
      period_ns_(1e9 / rate),
      phase_(phase),
      arrival_(arrival),
      rng_(seed) {
  if (arrival_ == Arrival::kUniform) {
    next_ns_ = start_ns_ + static_cast<int64_t>(phase_ * period_ns_);
  } else {
    // Memoryless: the first gap is a full exponential draw from start.
    next_ns_ = start_ns_ + static_cast<int64_t>(
                               -std::log1p(-rng_.NextDouble()) * period_ns_);
  }
}

void OpenLoopSchedule::Advance() {
  ++sent_;
  if (arrival_ == Arrival::kUniform) {
    next_ns_ =
        start_ns_ + static_cast<int64_t>((phase_ + static_cast<double>(sent_)) *
                                         period_ns_);
  } else {
    next_ns_ +=
        static_cast<int64_t>(-std::log1p(-rng_.NextDouble()) * period_ns_);
  }
}

bool SendQueue::PopDue(int64_t now_ns, int64_t* due_ns, uint32_t* connection) {
  if (heap_.empty() || heap_.top().first > now_ns) return false;
  *due_ns = heap_.top().first;
  *connection = heap_.top().second;
  heap_.pop();
  return true;
}

}  // namespace loadgen
}  // namespace memshard
