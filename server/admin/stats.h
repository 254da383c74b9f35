#pragma once

// The memcached `stats` command and the numbers behind it.
//
// Groups: "" (plain `stats`: every general field memcached 1.6 returns, in
// its order, from metrics/metric_defs.h), "settings", "conns", "reset",
// "items" and "slabs" (empty: no slab classes; tools such as
// memcached_exporter ask for them), and memshard's own "workers" (each
// worker's counters, buffers and epochs), "latency" (per command family:
// count, mean, p50, p90, p99, p99.9, max in microseconds) and "backends"
// (--mode=proxy|l1l2: each backend's state, traffic and round trips; empty
// in cache mode). Anything else is memcached's "ERROR". The text protocol's
// "stats detail on|off|dump" is WriteStatsDetail's.
//
// Thread-safety: any thread. Everything is read from per-worker metric
// blocks (summed on read), the store (thread-safe), the connection
// directories (their own mutexes) and immutable options.

#include <array>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "metrics/worker_metrics.h"
#include "server/output_chain.h"
#include "server/server_context.h"

namespace memshard {

struct StatLine {
  std::string name;
  std::string value;
};

struct StatsReply {
  enum class Kind {
    kLines,    // "STAT <name> <value>" for each line, then "END"
    kReset,    // the counters were reset: "RESET"
    kUnknown,  // no such group: "ERROR"
  };
  Kind kind = Kind::kLines;
  std::vector<StatLine> lines;
};

// Runs `stats <group>` (a "reset" resets). For any protocol: the text
// protocol writes it with WriteStats, the binary one as Stat packets.
StatsReply CollectStats(const ServerContext& context, absl::string_view group);

// Text protocol: appends the reply to `out`.
void WriteStats(const ServerContext& context, absl::string_view group,
                OutputChain* out);

// Text protocol, `stats detail <arg>`: "on" and "off" switch per-prefix
// counting (OK), "dump" lists the prefixes (see PrefixStats::Dump), anything
// else is memcached's usage error. Extra arguments are ignored, as there.
void WriteStatsDetail(const ServerContext& context, absl::string_view arg,
                      OutputChain* out);

// The value of one table entry, since the last `stats reset`.
struct StatValue {
  std::string text;     // as `stats` prints it
  double number = 0;    // for Prometheus (unused when !numeric)
  bool numeric = true;  // false for text such as version and libevent
};
using StatValues = std::array<StatValue, kNumStats>;

// Every entry of the table at once (one pass over the store's stripes).
StatValues ComputeStatValues(const ServerContext& context);

}  // namespace memshard
