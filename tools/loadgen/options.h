#pragma once

// LoadgenOptions: everything a run needs, as plain values. main.cc turns
// flags into this struct; the library never reads FLAGS_*.
//
// Thread-safety: a plain value; shared read-only by all client threads
// during a run.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "tools/loadgen/open_loop.h"
#include "tools/loadgen/workload.h"

namespace memshard {
namespace loadgen {

struct LoadgenOptions {
  // Target: host:port, or a unix socket path when `unix_socket` is set.
  std::string host = "127.0.0.1";
  int port = 11211;
  std::string unix_socket;
  std::string protocol = "text";

  double duration_s = 10;  // measured window; 0: connect/prefill only
  double warmup_s = 1;     // load runs but is not measured
  double connect_timeout_s = 60;

  int connections = 50;  // load connections, spread over threads
  int threads = 1;
  // Closed loop: each connection writes `pipeline` requests at once and
  // waits for all their replies. A get asks for `multiget` keys.
  int pipeline = 1;
  int multiget = 1;
  // Open loop when > 0: requests per second over all load connections.
  double rate = 0;
  Arrival arrival = Arrival::kUniform;

  Ratio ratio;
  uint64_t keys = 1000000;
  int key_size = 32;
  SizeRange value_size;
  KeyDistribution key_distribution = KeyDistribution::kUniform;
  double zipf_s = 0.99;

  // Set every key once before the warmup, then require that every get hits.
  bool prefill = false;
  int prefill_pipeline = 64;
  // Require a 100% hit ratio without prefilling (the keys were loaded by an
  // earlier run against the same server).
  bool expect_all_hits = false;

  int hold_idle = 0;   // extra connections that never send
  int server_pid = 0;  // > 0: report server CPU per op and RSS
  uint64_t seed = 1;
  int max_connects_in_flight = 256;  // per thread
};

absl::Status ValidateOptions(const LoadgenOptions& options);

}  // namespace loadgen
}  // namespace memshard
