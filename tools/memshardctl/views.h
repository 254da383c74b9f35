#pragma once

// memshardctl's text views: pure functions from `stats` replies to what the
// operator reads. No I/O, so tests feed them literal replies.
//
// Thread-compatible (stateless functions).

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "tools/memshardctl/admin_client.h"

namespace memshard::ctl {

// `stats` / `stats settings`: one "name  value" line each, aligned.
std::string FormatStats(const StatList& stats);
// `stats latency` ("<family>:<field>" lines) as a table, microseconds.
std::string FormatLatency(const StatList& latency);
// `stats workers` ("<worker>:<field>" lines) as a table, one row a worker.
std::string FormatWorkers(const StatList& workers);
// `stats conns` ("<fd>:<field>" lines) as a table, one row a connection.
std::string FormatConns(const StatList& conns);

// One `watch` observation.
struct Sample {
  absl::Time at;
  absl::flat_hash_map<std::string, std::string> stats;
  // From `stats latency`; empty if the server has none (e.g. memcached).
  absl::flat_hash_map<std::string, std::string> latency;
};

// One `watch` frame: rates from the difference with `previous` (null for
// the first frame, which shows totals only), hit ratio, connections,
// memory, evictions, p99 per command family.
std::string FormatWatch(const Sample* previous, const Sample& current,
                        const std::string& target);

}  // namespace memshard::ctl
