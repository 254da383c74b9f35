#pragma once

// The soak: churns a memcached-protocol server for a long time with a
// working set several times its memory limit, in value-size distributions
// that shift every phase (so freed small items leave holes that large ones
// must not grow the heap around), and samples the server's resident set size
// every second against the budget memshard promises:
// limit x 1.10 + 32 MiB.
//
// Thread-safety: RunSoak is a blocking call that owns its client and sampler
// threads; call it from one thread.
//
// Traffic: `connections` threads send pipelined batches of about 256 KiB:
// 85% "set ... noreply", 10% get (replies read back, so the server writes
// values out while it evicts them), 5% "delete ... noreply". Keys are
// "soak:<n>" with n uniform over a key space sized so that the phase's mean
// value size times the keys is `working_set` memory limits; the same key
// names are reused across phases, so a key's value changes size class.

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace memshard::soak {

struct SoakOptions {
  absl::Duration duration = absl::Minutes(10);
  uint64_t memory_limit_mb = 64;  // the server's, for the bound and key space
  double working_set = 4;         // in memory limits
  int connections = 4;
  // Value bytes sent per second over all connections; 0: as fast as the
  // server takes them.
  double rate_mb_per_s = 0;
  absl::Duration phase_length = absl::Seconds(30);
  absl::Duration sample_every = absl::Seconds(1);
  absl::Duration report_every = absl::Seconds(10);  // progress lines
  // Fail when a sample exceeds limit x rss_factor + rss_slack_mb. Off for
  // sanitizer builds, whose shadow memory and quarantine make RSS
  // meaningless.
  bool check_rss = true;
  double rss_factor = 1.10;
  uint64_t rss_slack_mb = 32;
  uint32_t seed = 1;
};

struct SoakResult {
  double bound_bytes = 0;
  int64_t peak_rss = 0;
  absl::Duration peak_at;  // since the start
  std::string peak_phase;
  int64_t final_rss = 0;
  int samples = 0;
  int samples_over_bound = 0;
  uint64_t sets = 0;
  uint64_t gets = 0;
  uint64_t hits = 0;
  uint64_t deletes = 0;
  uint64_t value_bytes_sent = 0;
  absl::Duration elapsed;
  // The server's `stats` at the end (-1 when missing).
  int64_t evictions = -1;
  int64_t curr_items = -1;
  int64_t bytes = -1;
  int64_t limit_maxbytes = -1;
  // Connection failures and malformed replies; any fails the soak.
  std::vector<std::string> errors;

  bool rss_ok() const { return samples_over_bound == 0; }
  // "peak RSS 80.2 MiB at 312 s (small) against a bound of 102.4 MiB ..."
  std::string Summary() const;
};

// The phases' names and value sizes, in order (they repeat).
struct Phase {
  const char* name;
  // Sizes are log-uniform in [min, max]; with `rare_fraction` of them
  // log-uniform in [rare_min, rare_max] instead.
  uint32_t min, max;
  double rare_fraction;
  uint32_t rare_min, rare_max;
};
const std::vector<Phase>& Phases();

// Runs the soak against 127.0.0.1:`port`, whose process is `pid` (for
// VmRSS). Progress lines go to `log` (may be null). Fails only if the
// server cannot be reached at the start; later trouble is in `errors`.
absl::StatusOr<SoakResult> RunSoak(int port, pid_t pid,
                                   const SoakOptions& options, std::FILE* log);

// VmRSS of `pid` in bytes, from /proc/<pid>/status; -1 if unreadable.
int64_t ReadRss(pid_t pid);

// True if the executable at `path` carries the AddressSanitizer runtime
// (its dynamic symbols name __asan_init), whatever the soak was built with.
bool IsAsanBinary(const std::string& path);

// Sanitizer reports in a server log: LeakSanitizer, AddressSanitizer,
// UndefinedBehaviorSanitizer ("runtime error:"). Empty if none.
std::string FindSanitizerReport(const std::string& log);

}  // namespace memshard::soak
