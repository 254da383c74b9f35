#pragma once

// Backend: one backend server as seen by one worker -- its connections, its
// health, and its statistics block.
//
// Thread-safety: none; owned by a worker's BackendPool and used only on that
// worker's thread.
//
// Health. Every connection failure (refused, reset, EOF, connect or request
// timeout, a reply out of sync) counts; any reply from the server resets the
// count. A failed connection reconnects after a backoff that doubles from
// `min_backoff` up to `retry_interval`; meanwhile requests for it fail at
// once (kUnavailable), so nothing waits on a dead server. A connection that
// comes back after failures first asks `version`, and the server counts as
// healthy once it answers.
// With FailurePolicy::kEject, `failure_limit` failures in a row eject the
// backend: its connections close, the pool rebuilds the ring without it,
// and every `retry_interval` one connection reconnects and probes with
// `version`; the answer restores it to the ring.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "core/buffer_pool.h"
#include "core/event_loop.h"
#include "server/backend/backend_connection.h"
#include "server/backend/backend_options.h"
#include "server/backend/backend_stats.h"
#include "server/backend/backend_types.h"

namespace memshard {
namespace backend {

class BackendPool;

class Backend final : private ReplySink {
 public:
  Backend(BackendPool* pool, int index, const BackendAddress& address,
          const ResolvedAddress& resolved, BackendStats* stats);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // Opens every connection.
  void Start();

  // Queues `request` on the connection chosen by `affinity` (requests with
  // the same affinity stay in order). False with `*failure` if it cannot be
  // sent now.
  bool Submit(const BackendRequest& request, uint32_t affinity, ReplySink* sink,
              uint64_t tag, BackendStatus* failure);
  void Cancel(const ReplySink* sink);

  int index() const { return index_; }
  bool ejected() const { return ejected_; }
  BackendState state() const;
  const BackendAddress& address() const { return address_; }
  int consecutive_failures() const { return consecutive_failures_; }

  // --- For this backend's connections. ---
  EventLoop& loop();
  BufferPool& buffers();
  const BackendOptions& options() const;
  const ResolvedAddress& resolved() const { return resolved_; }
  BackendStats& stats() { return *stats_; }
  void MarkDirty(BackendConnection* connection);
  size_t crowd_threshold() const;
  void NoteCrowded(int delta);
  void OnConnected(BackendConnection* connection);
  void OnConnectionFailed(BackendConnection* connection, BackendStatus reason);
  // Any reply the server sent (not a local failure).
  void OnReply(BackendConnection* connection, absl::Duration round_trip);

 private:
  struct Slot {
    std::unique_ptr<BackendConnection> connection;
    EventLoop::TimerId retry_timer = 0;
    absl::Duration backoff;
  };

  // The version probe's answer (ReplySink).
  void OnBackendReply(uint64_t tag, const BackendReply& reply) override;
  void Probe(BackendConnection* connection);
  void ScheduleReconnect(int slot, absl::Duration delay);
  void Eject();
  void Restore();
  void PublishState();

  BackendPool* const pool_;
  const int index_;
  const BackendAddress address_;
  const ResolvedAddress resolved_;
  BackendStats* const stats_;
  std::vector<Slot> slots_;
  int consecutive_failures_ = 0;
  bool ejected_ = false;
};

}  // namespace backend
}  // namespace memshard
