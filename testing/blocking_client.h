#pragma once

// A small blocking memcached text-protocol client for tests.
//
// Thread-compatible: one thread uses one client at a time. Every wait is
// bounded by `timeout()` (poll(2) deadlines), so a server that stops answering
// makes the test fail instead of hang. The plain methods report trouble
// (timeout, EOF, a malformed reply) as a non-fatal gtest failure that names
// the client and what it waited for, and return an empty result; the Try*
// methods return a Status instead, for tests that expect the trouble (e.g. a
// connection the server is about to close).
//
// Invariant: `buffer_` holds bytes received but not yet returned to the
// caller; every read method consumes from its front.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memshard {

// Parsed "STAT <name> <value>" lines of one `stats` reply.
using StatsMap = absl::flat_hash_map<std::string, std::string>;

class BlockingClient {
 public:
  static constexpr absl::Duration kDefaultTimeout = absl::Seconds(5);

  // Connects to 127.0.0.1:`port`.
  static absl::StatusOr<std::unique_ptr<BlockingClient>> ConnectTcp(
      int port, absl::Duration timeout = kDefaultTimeout);
  // Connects to the unix stream socket at `path`.
  static absl::StatusOr<std::unique_ptr<BlockingClient>> ConnectUnix(
      const std::string& path, absl::Duration timeout = kDefaultTimeout);

  BlockingClient(const BlockingClient&) = delete;
  BlockingClient& operator=(const BlockingClient&) = delete;
  ~BlockingClient();

  // The socket, for tests that need a raw syscall (e.g. one write(2)).
  int fd() const { return fd_; }
  absl::Duration timeout() const { return timeout_; }
  void set_timeout(absl::Duration timeout) { timeout_ = timeout; }

  // Writes all of `bytes` (loops over partial writes). False, with a test
  // failure, on error or timeout.
  bool Send(absl::string_view bytes);
  absl::Status TrySend(absl::string_view bytes);
  // Closes the write side (shutdown(SHUT_WR)); reads still work.
  void ShutdownWrite();
  // Closes the socket now.
  void Close();

  // One "\r\n"-terminated line, without the terminator.
  absl::StatusOr<std::string> TryReadLine();
  // Exactly `n` bytes.
  absl::StatusOr<std::string> TryReadExactly(size_t n);
  // Everything up to and including the first `terminator`.
  absl::StatusOr<std::string> TryReadUntil(absl::string_view terminator);

  // As the Try* versions; on failure add a test failure and return "".
  std::string ReadLine();
  std::string ReadExactly(size_t n);
  std::string ReadUntil(absl::string_view terminator);

  // Waits up to `timeout` for the peer to close the connection (EOF or
  // reset). True if it did and no unread bytes were pending. False on
  // timeout, or if bytes arrived first (they stay readable).
  bool PeerClosed(absl::Duration timeout);
  // True if any bytes are readable within `timeout` (buffered or new).
  bool HasData(absl::Duration timeout);

  // "set <key> <flags> <exptime> <len>\r\n<value>\r\n"; the reply line
  // ("STORED", ...).
  std::string Set(absl::string_view key, absl::string_view value,
                  uint32_t flags = 0, int64_t exptime = 0);
  // "get <key>": the value on a hit, nullopt on a miss. A malformed reply is
  // a test failure.
  std::optional<std::string> Get(absl::string_view key);
  // "delete <key>"; the reply line ("DELETED", "NOT_FOUND").
  std::string Delete(absl::string_view key);
  // Sends `line` + "\r\n" and returns the first reply line.
  std::string Command(absl::string_view line);
  // "stats" or "stats <group>": the STAT lines up to "END". A malformed
  // reply is a test failure (the map holds what parsed so far).
  StatsMap Stats(absl::string_view group = "");

 private:
  BlockingClient(int fd, std::string peer, absl::Duration timeout);

  // Reads once into `buffer_`, waiting until `deadline`. OK when bytes
  // arrived; DeadlineExceeded, or Unavailable on EOF / reset.
  absl::Status Fill(absl::Time deadline);
  // Adds a test failure naming this client's peer.
  void Fail(absl::string_view what, const absl::Status& status) const;

  int fd_;
  std::string peer_;
  absl::Duration timeout_;
  std::string buffer_;
};

// `stats[name]` as an integer; -1 and a test failure if it is missing or not
// a number.
int64_t StatInt(const StatsMap& stats, absl::string_view name);

// Raises this process's soft RLIMIT_NOFILE to the hard limit (tests that hold
// thousands of connections); returns the new soft limit.
uint64_t RaiseOpenFileLimit();

// Opens `n` connections to 127.0.0.1:`port`, stopping at the first failure
// (a test failure naming how many were open). When `round_trip` is set, each
// connection sends "version" and waits for the reply before the next one
// opens, so the server has accepted and fully served every one on return.
std::vector<std::unique_ptr<BlockingClient>> ConnectMany(
    int port, int n, bool round_trip = false);

}  // namespace memshard
