#pragma once

// ConnectionTable: the connections one worker owns, and that worker's view of
// the server (store, metrics, options, the request executor).
//
// Thread-safety: none; owned by and used on one worker thread. The only
// shared state it touches is ServerContext::curr_connections (accept/close).
//
// Ownership: the table owns every open Connection. A closed connection is
// handed to the event loop for deletion at the end of the iteration.
// Connections are kept in least-recently-active order (intrusive list) so the
// idle timeout sweep only looks at the front (without --idle_timeout the
// list is in no particular order).

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/input_buffer.h"
#include "core/worker.h"
#include "metrics/worker_metrics.h"
#include "server/orca/cache_orca.h"
#include "server/orca/proxy_orca.h"
#include "server/output_chain.h"
#include "server/protocol/request.h"
#include "server/protocol/text_parser.h"
#include "server/server_context.h"

namespace memshard {

class Connection;

class ConnectionTable {
 public:
  // Requests answered per connection per turn before yielding to others.
  static constexpr int kRequestBudget = 64;
  // Stop reading while this much output is unsent.
  static constexpr size_t kOutputHighWatermark = 256 * 1024;

  ConnectionTable(Worker* worker, ServerContext* context);
  ~ConnectionTable();
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  // Takes ownership of an accepted socket: admits it or, over
  // --max_connections, tells the client and closes it. `peer` is the
  // address accept4 returned (`stats conns` shows it); null: ask the kernel.
  void Admit(int fd, const sockaddr* peer = nullptr, socklen_t peer_length = 0);

  // Called by a connection as it closes.
  void OnClosed(Connection* connection);
  // Moves `connection` to the most-recently-active end (when an idle
  // timeout needs the order).
  void Touch(Connection* connection) {
    if (track_idle_) MoveToBack(connection);
  }
  // Asks for Resume() in the next loop iteration.
  void ScheduleResume(Connection* connection);

  // Closes every connection (shutdown).
  void CloseAll();

  // Graceful shutdown, once this worker's listeners are closed: every
  // connection answers what it has read, flushes and closes (see
  // Connection::BeginDrain). `on_drained` runs once, on this thread, when
  // the last connection has closed (right away if there is none).
  void BeginDrain(absl::AnyInvocable<void()> on_drained);

  EventLoop& loop() { return worker_->loop(); }
  BufferPool& pool() { return worker_->pool(); }
  WorkerMetrics& metrics() { return *metrics_; }
  const TextParserOptions& parser_options() const { return parser_options_; }
  // Scratch request reused by every connection of this worker (requests are
  // executed before the next one is parsed, so one is enough).
  Request& scratch_request() { return request_; }
  CacheOrca& orca() { return orca_; }
  // --mode=proxy|l1l2: the backend orchestrator; null in cache mode.
  ProxyOrca* proxy() { return proxy_.get(); }
  // The worker's shared read buffer and reply chain. A connection reads
  // and composes into them during its turn and leaves them empty when the
  // turn ends (bytes it could not finish move to buffers of its own), so
  // the steady path borrows no buffer per request and an idle connection
  // holds none.
  InputBuffer& shared_input() { return shared_input_; }
  OutputChain& shared_output() { return shared_output_; }
  // Connection's look-ahead over pipelined requests: where, in the input of
  // the connection processing now, the bytes already scanned for keys to
  // prefetch end (only compared, never read). Reset by every
  // Connection::StepProcess; one per worker, as one connection processes
  // at a time.
  const char*& lookahead_end() { return lookahead_end_; }
  int64_t unix_now() const;

  // Reads ahead of a batch (Connection::PrepareEvents). When an epoll batch
  // holds several ready connections, each reads its socket before any of
  // them executes, into this worker's pre-read arena, and starts loading
  // the buckets of the keys it read; the first turn of the batch then
  // starts loading the items those buckets lead to, all at once. By a
  // connection's turn its bucket and item are in cache, instead of two
  // misses one after the other (S1: 50 connections at depth 1, epoll
  // batches of ~45). Pre-reads last one loop iteration: the arena is
  // reused by the next batch.
  //
  // Space for the next pre-read: what one read into an empty input asks
  // for, or less as the arena fills; empty when it is full (the connection
  // then reads in its turn, as usual).
  absl::Span<char> PreReadSpace();
  // Records that `connection` read into `space` (from PreReadSpace()):
  // read()'s result, and errno if it is negative.
  void CommitPreRead(Connection* connection, absl::Span<char> space,
                     ssize_t result, int error);
  // Starts loading the buckets of `keys` (their items follow at the
  // batch's first TakePreRead).
  void PrefetchBuckets(const absl::string_view* keys, size_t count);
  // If the batch read ahead for `connection`, copies the bytes to `space`
  // (an empty input's, as large as a pre-read asks) and returns true with
  // read()'s result in `*result` (errno set if negative) and the size it
  // asked for in `*asked`.
  bool TakePreRead(Connection* connection, absl::Span<char> space,
                   ssize_t* result, size_t* asked);

 private:
  void Unlink(Connection* connection);
  void MoveToBack(Connection* connection);
  void ArmIdleSweep();
  void SweepIdle();
  void RunResumes();
  // Draining: nudges every connection on a short timer (lingering ones
  // wait on acknowledgements, which raise no epoll event).
  void PollDrain();
  void MaybeDrained();

  Worker* const worker_;
  ServerContext* const context_;
  WorkerMetrics* const metrics_;
  TextParserOptions parser_options_;
  Request request_;
  CacheOrca orca_;
  std::unique_ptr<ProxyOrca> proxy_;
  InputBuffer shared_input_;
  OutputChain shared_output_;
  const char* lookahead_end_ = nullptr;
  // This iteration's pre-reads: their bytes in `pre_read_arena_`, in batch
  // order; `pre_read_next_` is where the next is likely. Emptied at the end
  // of every loop iteration.
  struct PreReadEntry {
    Connection* connection;  // null once taken
    uint32_t offset;         // of the bytes, in the arena
    uint32_t asked;
    int error;
    ssize_t result;  // read()'s: the bytes read if positive
    size_t size() const { return result > 0 ? static_cast<size_t>(result) : 0; }
  };
  static constexpr size_t kPreReadArenaBytes = 64 * 1024;
  static constexpr size_t kMinPreReadBytes = 2048;
  std::unique_ptr<char[]> pre_read_arena_;
  std::vector<PreReadEntry> pre_reads_;
  size_t pre_read_next_ = 0;
  // Buckets the batch's pre-reads prefetched, whose items its first turn
  // prefetches.
  static constexpr size_t kMaxBatchKeys = 256;
  uint64_t bucket_tokens_[kMaxBatchKeys];
  size_t bucket_token_count_ = 0;
  // The idle-order list is kept in order only for the idle sweep
  // (--idle_timeout); otherwise Touch() is a no-op and a request writes
  // no other connection's links.
  const bool track_idle_;
  // Least recently active first.
  Connection* idle_head_ = nullptr;
  Connection* idle_tail_ = nullptr;
  std::vector<Connection*> resumes_;
  std::vector<Connection*> resumes_running_;
  bool draining_ = false;
  absl::AnyInvocable<void()> on_drained_;
};

}  // namespace memshard
