#pragma once

// ConnectionDirectory: one worker's open connections as `stats conns` sees
// them, readable from any thread.
//
// Thread-safety: a ConnectionRecord is written only by the worker owning its
// connection: the fields set before Link() are constant while linked; state
// and last activity are relaxed atomics the owner stores. Link() and
// Unlink() (owner thread, on accept and close only, never per request) and
// ForEach() (any thread) take the directory's mutex, so a reader never sees
// a record that is being freed: the owner unlinks a record before its
// connection is deleted.
//
// Memory: a record is ~64 bytes, embedded in its Connection (no allocation).

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace memshard {

// What a connection is doing, as far as another thread can tell: the
// connection publishes it each time it goes back to waiting for the loop.
enum class ConnectionState : uint8_t {
  kWaiting,  // idle: no unanswered bytes, waiting for a request
  kReading,  // holds part of a request, waiting for the rest
  kWriting,  // replies not yet taken by the client (back-pressure)
  kClosing,
};

// memcached's names where one fits: "conn_waiting", "conn_nread",
// "conn_mwrite", "conn_closing".
absl::string_view ConnectionStateName(ConnectionState state);

class ConnectionRecord {
 public:
  ConnectionRecord() = default;
  ConnectionRecord(const ConnectionRecord&) = delete;
  ConnectionRecord& operator=(const ConnectionRecord&) = delete;

  // Owner thread.
  void SetState(ConnectionState state) {
    state_.store(state, std::memory_order_relaxed);
  }
  void SetLastActive(absl::Time when) {
    last_active_ns_.store(absl::ToUnixNanos(when), std::memory_order_relaxed);
  }
  // The same from nanoseconds since the Unix epoch (EventLoop::now_unix_ns):
  // no absl::ToUnixNanos() call on every read.
  void SetLastActiveNanos(int64_t unix_ns) {
    last_active_ns_.store(unix_ns, std::memory_order_relaxed);
  }

  // Any thread holding the directory's view (inside ForEach).
  int fd() const { return fd_; }
  ConnectionState state() const {
    return state_.load(std::memory_order_relaxed);
  }
  absl::Time last_active() const {
    return absl::FromUnixNanos(last_active_ns_.load(std::memory_order_relaxed));
  }
  // "tcp:127.0.0.1:41234", "tcp6:[::1]:41234", or "unix:<unix_path>" (unix
  // peers are unnamed; the path is the server's socket).
  std::string Address(absl::string_view unix_path) const;

 private:
  friend class ConnectionDirectory;

  // First: the one field stored on every request (Connection keeps it in
  // its first cache line).
  std::atomic<int64_t> last_active_ns_{0};
  int fd_ = -1;
  uint16_t port_ = 0;       // host order
  sa_family_t family_ = 0;  // AF_INET, AF_INET6, AF_UNIX
  std::array<uint8_t, 16> address_{};
  std::atomic<ConnectionState> state_{ConnectionState::kWaiting};
  // Guarded by the directory's mutex while linked.
  ConnectionRecord* prev_ = nullptr;
  ConnectionRecord* next_ = nullptr;
};

class ConnectionDirectory {
 public:
  ConnectionDirectory() = default;
  ConnectionDirectory(const ConnectionDirectory&) = delete;
  ConnectionDirectory& operator=(const ConnectionDirectory&) = delete;

  // Owner thread: records `fd`'s peer address and makes the record
  // visible. `record` must stay valid until Unlink(). The address is
  // `peer` (`peer_length` bytes, as accept4 filled them), or asked of the
  // kernel with getpeername when `peer` is null.
  void Link(ConnectionRecord* record, int fd, absl::Time now,
            const sockaddr* peer = nullptr, socklen_t peer_length = 0);
  // Owner thread; no-op for a record that is not linked.
  void Unlink(ConnectionRecord* record);

  // Any thread: calls `visit` for every linked record, oldest first, while
  // holding the directory's mutex (keep `visit` short; it must not call
  // back into the directory).
  void ForEach(absl::FunctionRef<void(const ConnectionRecord&)> visit) const;
  size_t size() const;

 private:
  // std::mutex rather than absl::Mutex: Debian's absl is built without
  // ThreadSanitizer hooks, so --config=tsan would not see absl's locking.
  mutable std::mutex mu_;
  ConnectionRecord* head_ ABSL_GUARDED_BY(mu_) = nullptr;
  ConnectionRecord* tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace memshard
