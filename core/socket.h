#pragma once

// Listening-socket helpers. Stateless; callable from any thread.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memshard {

// A non-blocking TCP listening socket on `address` (IPv4 dotted quad, IPv6
// literal with or without brackets, or "localhost"), with SO_REUSEADDR and,
// if `reuse_port`, SO_REUSEPORT so every worker can bind its own socket to
// the same address and the kernel spreads accepts. Port 0 lets the kernel
// choose; BoundPort() tells which.
absl::StatusOr<int> ListenTcp(absl::string_view address, uint16_t port,
                              bool reuse_port, int backlog);

// A non-blocking unix-domain stream listening socket at `path` with file
// mode `mode`. A stale socket file at `path` is replaced.
absl::StatusOr<int> ListenUnix(const std::string& path, uint32_t mode,
                               int backlog);

absl::StatusOr<uint16_t> BoundPort(int fd);

// Sets O_NONBLOCK (and FD_CLOEXEC).
absl::Status SetNonBlocking(int fd);

}  // namespace memshard
