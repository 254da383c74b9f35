#pragma once

// AdminClient: a small blocking memcached text-protocol client for
// memshardctl: `stats [group]`, `version`, `flush_all`.
//
// Thread-compatible: one thread uses one client. Every wait is bounded by
// the timeout given at connection, so a hung server cannot hang the tool.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memshard::ctl {

// "STAT <name> <value>" lines of one reply, in server order.
using StatList = std::vector<std::pair<std::string, std::string>>;

struct Target {
  std::string host = "127.0.0.1";
  int port = 11211;
  std::string unix_socket;  // when set, host and port are ignored
  // "127.0.0.1:11211" or "unix:/path", for messages.
  std::string ToString() const;
};

class AdminClient {
 public:
  // Unavailable (with the reason: "connection refused", ...) when the
  // server cannot be reached within `timeout`.
  static absl::StatusOr<std::unique_ptr<AdminClient>> Connect(
      const Target& target, absl::Duration timeout);

  ~AdminClient();
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;

  // `stats` or `stats <group>`. NotFound if the server answers ERROR (no
  // such group), Unavailable on a dead or silent connection.
  absl::StatusOr<StatList> Stats(absl::string_view group = "");
  // Sends `line` and returns the first reply line (without CRLF).
  absl::StatusOr<std::string> Command(absl::string_view line);

 private:
  AdminClient(int fd, std::string peer, absl::Duration timeout)
      : fd_(fd), peer_(std::move(peer)), timeout_(timeout) {}

  absl::Status Send(absl::string_view bytes);
  absl::StatusOr<std::string> ReadLine();

  int fd_;
  std::string peer_;
  absl::Duration timeout_;
  std::string buffer_;  // received, not yet returned
};

}  // namespace memshard::ctl
