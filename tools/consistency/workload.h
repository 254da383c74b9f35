#pragma once

// The consistency workload: `connections` client threads, each with its own
// connection, run random single-key commands (get, gets, multi-key gets,
// set, add, replace, append, prepend, cas, incr, decr, delete) on a small
// hot key set, one request at a time, and record every operation with its
// invocation and response times (CLOCK_MONOTONIC, shared by all threads) and
// its reply. Once they are done, a fresh connection reads every key, so
// nothing acknowledged may be missing at the end either.
//
// Thread-safety: RunWorkload is a blocking call that owns its threads; call
// it from one thread.
//
// Values are unique, so each read names the write it saw: string values are
// "s<client>.<seq>:" plus padding; numeric ones (for incr/decr) are 16-digit
// numbers 10^15 + (seq*128 + client)*10^6 + 500000, so deltas of at most 1000
// keep the digit count (no padding ambiguity); appended and prepended tags
// are "a<client>.<seq>." and "p<client>.<seq>." (never numeric, no spaces).
// A cas uses the token of the client's last gets of that key (one in ten uses
// a made-up token above 2^63 that no server hands out). No exptime, no flush:
// only eviction could excuse a missing item, and the caller checks that the
// server evicted nothing.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/consistency/history.h"

namespace memshard::consistency {

struct WorkloadOptions {
  int connections = 8;  // 1..63
  int keys = 16;
  // Requests in total (a multi-key gets counts once but records an op per
  // key).
  uint64_t requests = 200000;
  uint32_t seed = 1;
  // Keys are key_prefix + "k" + index; empty: "cons<seed>:".
  std::string key_prefix;
  // String values carry 0..max_padding bytes of padding; one in a hundred
  // carries up to large_value_size.
  uint32_t max_padding = 64;
  uint32_t large_value_size = 4096;
  absl::Duration timeout = absl::Seconds(30);
  // Read "stats workers" once every connection is open (memshard only) to
  // report how the connections spread over the workers.
  bool query_worker_connections = false;
};

struct WorkloadResult {
  History history;
  uint64_t requests = 0;
  // Connection failures and replies outside the protocol; the op concerned
  // is recorded with an unknown outcome and its client stops.
  uint64_t errors = 0;
  std::vector<std::string> error_samples;  // the first few
  absl::Duration elapsed;                  // of the random phase
  // "0:4 1:4" (worker:connections) when query_worker_connections.
  std::string worker_connections;
};

// Runs the workload against 127.0.0.1:`port`. Fails only if no connection
// can be opened; trouble later is counted in `errors`.
absl::StatusOr<WorkloadResult> RunWorkload(int port,
                                           const WorkloadOptions& options);

}  // namespace memshard::consistency
