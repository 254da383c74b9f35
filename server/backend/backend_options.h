#pragma once

// BackendOptions: how a worker talks to its backend servers. Filled from
// flags by main.cc (--backends, --backend_*); libraries never read flags.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/backend/backend_codec.h"

namespace memshard {
namespace backend {

struct BackendAddress {
  // Hostname or IP literal (IPv6 without brackets), or a unix socket path.
  std::string host;
  uint16_t port = 0;  // 0: `host` is a unix socket path
  uint32_t weight = 1;

  bool is_unix() const { return port == 0; }
  // "host:port", "[v6]:port" or the path: for stats and logs.
  std::string ToString() const;
};

// Parses "host:port[:weight],[v6]:port[:weight],/unix/path[:weight],...".
// A host without a port means memcached's 11211. Weights are >= 1.
absl::StatusOr<std::vector<BackendAddress>> ParseBackendList(
    absl::string_view spec);

// A connectable address.
struct ResolvedAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// Resolves every address (getaddrinfo for names: blocking, for start-up;
// IPv4 preferred where a name has both).
absl::StatusOr<std::vector<ResolvedAddress>> ResolveBackends(
    const std::vector<BackendAddress>& addresses);

enum class FailurePolicy : uint8_t {
  // Keys on a dead backend get an error reply; the ring never changes.
  kError,
  // A backend that failed `failure_limit` times in a row leaves the ring
  // (its keys move to the others) until a `version` probe answers.
  kEject,
};

struct BackendOptions {
  std::vector<BackendAddress> backends;
  // Connections per worker per backend. One client connection always uses
  // the same one, so its requests to a backend stay in order.
  int connections = 1;
  BackendProtocol protocol = BackendProtocol::kMeta;
  absl::Duration connect_timeout = absl::Milliseconds(500);
  // Per request, from submission to reply.
  absl::Duration timeout = absl::Milliseconds(1000);
  FailurePolicy failure = FailurePolicy::kError;
  int failure_limit = 3;
  // How often an ejected backend is probed; also the longest reconnect
  // backoff.
  absl::Duration retry_interval = absl::Milliseconds(1000);
  // The first reconnect delay; it doubles per failure up to retry_interval.
  absl::Duration min_backoff = absl::Milliseconds(10);
  // Requests in flight per connection; more get kBusy at once.
  size_t max_in_flight = 4096;
};

}  // namespace backend
}  // namespace memshard
