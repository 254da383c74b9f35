#pragma once

// A consistency trial against a running server: the workload (workload.h),
// then the checker (checker.h) on its history, then the server's `stats`,
// whose `evictions` must be 0 (an evicted item would excuse a "lost" write
// the checker cannot tell from a bug; the caller sizes the memory limit so
// that nothing needs evicting).
//
// Thread-safety: a blocking call; call it from one thread.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/consistency/checker.h"
#include "tools/consistency/workload.h"

namespace memshard::consistency {

struct TrialReport {
  WorkloadOptions options;
  WorkloadResult workload;
  CheckReport check;
  int64_t evictions = -1;  // -1: not reported
  absl::Duration check_time;

  // No violation, nothing inconclusive, no client error, no eviction.
  bool ok() const {
    return check.ok() && workload.errors == 0 && evictions == 0;
  }
  // The figures (requests, ops, keys, connections, times, rate, violations)
  // and the checker's reports, several lines.
  std::string Summary() const;
};

absl::StatusOr<TrialReport> RunTrial(
    int port, const WorkloadOptions& options,
    const CheckOptions& check_options = CheckOptions());

}  // namespace memshard::consistency
