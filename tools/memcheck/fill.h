#pragma once

// Memory measurements of a memcached-protocol server under load: fills it
// with noreply sets over the text protocol and reads its resident set size
// (VmRSS) at synchronisation points. Used by the RSS-bound integration test
// and by the memcheck tool, which reports memshard and memcached side by side.
//
// Thread-compatible: one Fill at a time per server. Every RSS sample is taken
// after a round trip on every connection, so the server has processed all
// bytes sent before it.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "testing/server_process.h"

namespace memshard::memcheck {

struct FillOptions {
  // Stop after this many value bytes have been sent ...
  uint64_t value_bytes = 0;
  // ... or this many items (0: no limit). At least one limit must be set.
  uint64_t items = 0;
  // Value sizes: fixed when min == max, else log-uniform in [min, max], so
  // every size class gets items while the big ones carry most bytes.
  uint32_t min_value_size = 100;
  uint32_t max_value_size = 100;
  // Keys are "k" + decimal index, zero-padded to this length (at least the
  // digits needed).
  uint32_t key_size = 32;
  // Keys are numbered from here (distinct fills use distinct keys).
  uint64_t first_key = 0;
  uint32_t seed = 1;
  // Client connections the sets are spread over (round robin per batch).
  int connections = 2;
  // An RSS sample (after a round trip) every this many bytes sent.
  uint64_t sample_every_bytes = 16ull << 20;
};

struct FillResult {
  uint64_t items = 0;
  uint64_t value_bytes = 0;
  int64_t peak_rss = 0;   // Largest sample, including the final one.
  int64_t final_rss = 0;  // After the last set was processed.
};

// Sends the sets described by `options` to `server` (port and pid), each
// "set <key> 0 0 <n> noreply". Fails on a connection error or if the server
// stops answering.
absl::StatusOr<FillResult> Fill(const ServerProcess& server,
                                const FillOptions& options);

// Round-trips "version" on a fresh connection (everything sent before on
// other connections that also round-tripped is processed), then returns RSS.
absl::StatusOr<int64_t> SettledRss(const ServerProcess& server);

// Starts memshard at `binary` with `args` (after --listen, --port,
// --port_file and --admin_port=0),
// optionally with environment variables `env` ("LD_PRELOAD=...",
// "MALLOC_CONF=...": allocator experiments).
absl::StatusOr<std::unique_ptr<ServerProcess>> StartMemshardAt(
    const std::string& binary, const std::vector<std::string>& args,
    const std::vector<std::string>& env = {});

}  // namespace memshard::memcheck
