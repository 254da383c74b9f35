#pragma once

// ServerContext: what every worker may read about the whole server.
//
// Thread-safety: immutable after Server::Start(), except `curr_connections`
// (an atomic touched only on accept and close, never per request) and the
// store, metrics and prefix stats, which are thread-safe in their own right.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "metrics/worker_metrics.h"
#include "server/admin/connection_directory.h"
#include "server/admin/prefix_stats.h"
#include "server/backend/backend_options.h"
#include "server/backend/backend_stats.h"
#include "server/cache/store.h"
#include "server/server_options.h"

namespace memshard {

class Authenticator;

inline constexpr char kVersion[] = "1.6.0-memshard-0.1";

struct ServerContext {
  ServerOptions options;
  cache::Store* store = nullptr;
  MetricsRegistry* metrics = nullptr;
  // `stats detail`: per key prefix counts while on. Thread-safe, and
  // mutable like a mutex: `stats detail` and `stats reset` change it through
  // a const context.
  mutable PrefixStats prefix_stats;
  absl::Time start_time;
  pid_t pid = 0;
  int workers = 0;
  // The --max_connections gate, shared by every worker's accept path.
  std::atomic<int64_t> curr_connections{0};
  // Credentials for binary SASL PLAIN and for the ascii auth handshake
  // (memcached -Y); null when off. Owned by Server; thread-safe.
  const Authenticator* sasl_auth = nullptr;
  const Authenticator* ascii_auth = nullptr;
  // One per worker (index = worker index), for `stats conns`; thread-safe.
  std::vector<std::unique_ptr<ConnectionDirectory>> connections;
  // --mode=proxy|l1l2: options.backend.backends resolved once at start-up,
  // and every worker's per-backend statistics (owned by Server;
  // thread-safe). Empty / null in cache mode.
  std::vector<backend::ResolvedAddress> backend_addresses;
  backend::BackendStatsRegistry* backend_stats = nullptr;
};

}  // namespace memshard
