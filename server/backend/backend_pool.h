#pragma once

// BackendPool: one worker's view of the backend fleet -- a Backend (with its
// own non-blocking connections in this worker's event loop) per configured
// server, and the weighted ketama ring that places keys on them.
//
// Thread-safety: none. Each worker builds its own pool on its own thread and
// is the only one to touch it, so no request crosses threads and no lock
// guards a backend. The pool's statistics blocks are readable from any
// thread through the BackendStatsRegistry.
//
// Multigets: the caller sends one request per key (Send() in key order, with
// tags saying which key); keys for the same backend are pipelined on one
// connection and all backends are written at the end of the loop iteration,
// so the parts travel concurrently. Replies come back per backend in order;
// RetrievalCollector puts them back in the client's order.
//
// Lifetime: the event loop and buffer pool must outlive the pool. Sinks with
// requests in flight must outlive them or call Cancel() first.

#include <cstdint>
#include <memory>
#include <vector>

#include "core/buffer_pool.h"
#include "core/event_loop.h"
#include "server/backend/backend.h"
#include "server/backend/backend_options.h"
#include "server/backend/backend_stats.h"
#include "server/backend/backend_types.h"
#include "server/backend/ketama.h"

namespace memshard {
namespace backend {

class BackendPool {
 public:
  // `resolved[i]` is options.backends[i]'s address. `stats` has a block for
  // (worker, i) for every backend i.
  BackendPool(EventLoop* loop, BufferPool* buffers, BackendOptions options,
              const std::vector<ResolvedAddress>& resolved,
              BackendStatsRegistry* stats, int worker);
  ~BackendPool();
  BackendPool(const BackendPool&) = delete;
  BackendPool& operator=(const BackendPool&) = delete;

  // Connects to every backend.
  void Start();

  // Sends `request` to the backend that owns request.key. `affinity` picks
  // the connection: one client connection should always pass the same value,
  // so its requests to a backend stay in order. True: the reply will reach
  // `sink` with `tag` later, from the event loop. False: nothing was sent and
  // `*failure` says why (kUnavailable: no live backend or its connection is
  // down; kBusy: too many requests in flight); answer the client now.
  bool Send(const BackendRequest& request, uint32_t affinity, ReplySink* sink,
            uint64_t tag, BackendStatus* failure);
  // As Send(), to backend `backend` whatever the key (flush_all, version).
  bool SendTo(int backend, const BackendRequest& request, uint32_t affinity,
              ReplySink* sink, uint64_t tag, BackendStatus* failure);

  // Drops every reply still due to `sink` (a client connection closed).
  void Cancel(const ReplySink* sink);

  // The backend that owns `key` under the current ring; -1 if none is live.
  int BackendFor(absl::string_view key) const { return ring_.NodeFor(key); }
  int size() const { return static_cast<int>(backends_.size()); }
  const Backend& backend(int i) const { return *backends_[i]; }
  const KetamaRing& ring() const { return ring_; }
  const BackendOptions& options() const { return options_; }
  EventLoop& loop() { return *loop_; }
  BufferPool& buffers() { return *buffers_; }

  // Whether some connection of this pool has crowd_threshold() requests or
  // more in flight: past max_in_flight a request gets kBusy at once, so a
  // client connection that has requests in flight holds further ones
  // until its replies come (ProxySession::CanAccept).
  bool crowded() const { return crowded_connections_ > 0; }
  // Three quarters of max_in_flight (at least 1).
  size_t crowd_threshold() const { return crowd_threshold_; }

  // --- For backends. ---
  // `connection` has bytes to write at the end of this loop iteration.
  void MarkDirty(BackendConnection* connection);
  // A backend left or rejoined the ring.
  void RebuildRing();
  // A connection's requests in flight reached crowd_threshold() (+1) or
  // fell below it (-1).
  void NoteCrowded(int delta) { crowded_connections_ += delta; }

 private:
  void FlushDirty();

  EventLoop* const loop_;
  BufferPool* const buffers_;
  const BackendOptions options_;
  std::vector<KetamaNode> nodes_;
  std::vector<std::unique_ptr<Backend>> backends_;
  KetamaRing ring_;
  std::vector<BackendConnection*> dirty_;
  // The loop's epoch in which FlushDirty() last ran from the epoch hook: a
  // connection marked dirty after that (by a later hook) flushes via
  // RunSoon instead of waiting for an event that may never come.
  uint64_t flushed_epoch_ = UINT64_MAX;
  bool flush_soon_ = false;
  const size_t crowd_threshold_;
  int crowded_connections_ = 0;
  // Shared with the epoch hook and RunSoon tasks, which outlive nothing but
  // may outlive the pool; null once the pool is gone.
  std::shared_ptr<BackendPool*> self_;
};

// Collects the per-key replies of one multiget, which arrive in any order
// across backends, and gives them back in key order. Values are copied (the
// reply's bytes live only during the callback).
class RetrievalCollector {
 public:
  struct Entry {
    bool done = false;
    BackendStatus status = BackendStatus::kMiss;
    std::string value;  // hit: the value; error: the message
    uint32_t flags = 0;
    uint64_t cas = 0;
    int64_t ttl = kTtlUnknown;
  };

  explicit RetrievalCollector(size_t keys) : entries_(keys) {}

  // Records key `index`'s reply (or a local failure). Returns true when
  // every key has its answer.
  bool Set(size_t index, const BackendReply& reply);
  bool SetFailure(size_t index, BackendStatus status);

  bool complete() const { return remaining_ == 0; }
  size_t size() const { return entries_.size(); }
  const Entry& entry(size_t index) const { return entries_[index]; }

 private:
  std::vector<Entry> entries_;
  size_t remaining_ = entries_.size();
};

}  // namespace backend
}  // namespace memshard
