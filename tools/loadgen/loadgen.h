#pragma once

// RunLoadgen: one load-generator run, phase by phase: connect every load
// and idle connection, optionally prefill every key, run the load through
// a warmup and then the measured window, and collect what the client
// threads saw together with the server's CPU time and RSS.
//
// Thread-safety: RunLoadgen() is called from one controlling thread (the
// one that handles SIGINT); it starts and joins its own client threads.
// LoadgenResult is a plain value.

#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/loadgen/load_stats.h"
#include "tools/loadgen/options.h"

namespace memshard {
namespace loadgen {

struct LoadgenResult {
  enum class HitCheck { kNotChecked, kPassed, kFailed };

  LoadgenOptions options;
  LoadStats stats;
  // Length of the measured window; 0 if the run never reached it.
  double window_s = 0;
  bool interrupted = false;
  double prefill_s = 0;
  HitCheck hit_check = HitCheck::kNotChecked;

  // From /proc/<server_pid>; -1 when unknown.
  int64_t server_cpu_us = -1;  // over the measured window
  int64_t server_rss_kb_start = -1;
  int64_t server_rss_kb_after_prefill = -1;
  int64_t server_rss_kb_end = -1;  // all connections still open
  int64_t loadgen_cpu_us = -1;     // this process, over the window

  double ops_per_second() const {
    return window_s > 0 ? static_cast<double>(stats.ops) / window_s : 0;
  }
  // -1 when unknown.
  double server_cpu_us_per_op() const;
  double loadgen_cpu_us_per_op() const;

  // A few human-readable lines.
  std::string ToText() const;
  // One line of JSON (no trailing newline) for scripts.
  std::string ToJson() const;
};

// Waits up to `duration`; returns true if the run must stop now (SIGINT).
using InterruptibleSleep = absl::AnyInvocable<bool(absl::Duration)>;

// Fails on bad options or when connections cannot be set up; otherwise
// returns what was measured, also when interrupted part way.
absl::StatusOr<LoadgenResult> RunLoadgen(const LoadgenOptions& options,
                                         InterruptibleSleep sleep);

}  // namespace loadgen
}  // namespace memshard
