#pragma once

// ProxyOrca and ProxySession: the orchestrators for --mode=proxy (every
// request goes to the backend pool) and --mode=l1l2 (the embedded store is
// an L1 in front of the backends as L2, with Rend's semantics).
//
// ProxyOrca is per worker: it owns the worker's BackendPool (connections in
// the worker's own epoll loop, so nothing crosses threads) and what every
// session shares. ProxySession is per client connection: it turns each
// parsed request into backend requests and L1 calls, and writes the one
// reply per request into the connection's output chain in request order.
//
// Ordering. A reply that has to wait for a backend holds back every later
// reply of that connection: requests are "calls" in a FIFO; a finished call
// that is not at the head keeps its composed reply (copied) until the calls
// before it are written. Requests of one connection to one backend share one
// backend connection (affinity), so the backend applies them in order and
// proxy mode may pipeline freely. In l1l2 mode a request may read or write
// L1 when it is executed, so the session takes one request at a time while
// a call waits on L2 (CanAccept), as Rend does: a pipelined "set k" then
// "get k" never reads the L1 value the set is about to replace.
//
// The l1l2 rules (text protocol; meta and binary requests are relayed to L2
// and their writes invalidate the key in L1):
//   get            L1; on a miss L2, and an L2 hit fills L1 with L2's
//                  remaining TTL (--l1_fill=read; needs meta backends, which
//                  report it).
//   gets, gats     L2 only (the CAS must be L2's).
//   set, add, replace, cas
//                  L2 first; if L2 stored it, L1 is set to the same value
//                  (--l1_fill=write_only: replaced, i.e. refreshed only if
//                  present); if that fails, or L2's outcome is unknown
//                  (timeout), the key is deleted from L1. The reply is L2's.
//   append, prepend, incr, decr
//                  L2; the key is deleted from L1 (L1 cannot know the
//                  result's bytes).
//   delete, touch  both; L2's answer decides.
//   gat            L2; a hit fills L1 (read) or touches it (write_only); a
//                  miss deletes the key from L1.
//   flush_all      both.
//
// Failures: a key whose backend is down, timed out or is overloaded makes
// its request answer "SERVER_ERROR backend unavailable" (timeout, busy);
// meta gets the same line, binary an error status.
//
// Multigets. A text get, gets, gat or gats goes to the backends a window of
// kRetrievalWindow keys at a time, and each window's values are composed
// (and their memory released) before the next window is sent; the next one
// also waits while the connection's output holds kStreamHighWatermark bytes
// or more, or while earlier calls' replies are due (OnOutputDrained and the
// call reaching the head resume it). So a get of 100,000 keys keeps neither
// 100,000 requests in flight (past BackendOptions::max_in_flight) nor every
// value in memory. A failure in a later window, after values were written,
// ends the reply with its SERVER_ERROR line instead of END.
//
// Thread-safety: none; both live on one worker's thread.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/worker.h"
#include "metrics/worker_metrics.h"
#include "server/backend/backend_pool.h"
#include "server/backend/backend_types.h"
#include "server/cache/store.h"
#include "server/orca/cache_orca.h"
#include "server/output_chain.h"
#include "server/protocol/binary_parser.h"
#include "server/protocol/meta_parser.h"
#include "server/protocol/request.h"
#include "server/server_context.h"

namespace memshard {

class ProxyOrca {
 public:
  // Builds this worker's backend pool from context->options.backend and
  // starts connecting. `local` answers what needs no backend (stats,
  // version, SASL).
  ProxyOrca(ServerContext* context, Worker* worker, WorkerMetrics* metrics,
            CacheOrca* local);
  ~ProxyOrca();
  ProxyOrca(const ProxyOrca&) = delete;
  ProxyOrca& operator=(const ProxyOrca&) = delete;

  backend::BackendPool& pool() { return *pool_; }
  bool l1l2() const { return l1l2_; }
  bool fill_on_read() const { return fill_on_read_; }
  cache::Store& l1() { return *context_->store; }
  CacheOrca& local() { return *local_; }
  WorkerMetrics& metrics() { return *metrics_; }
  const ServerContext& context() const { return *context_; }
  backend::BackendProtocol backend_protocol() const;

 private:
  ServerContext* const context_;
  WorkerMetrics* const metrics_;
  CacheOrca* const local_;
  const bool l1l2_;
  const bool fill_on_read_;
  std::unique_ptr<backend::BackendPool> pool_;
};

class ProxySession final : public backend::ReplySink {
 public:
  // Told when replies were written to `out` from the event loop (not from
  // inside Execute), so the connection can send them.
  class Listener {
   public:
    virtual void OnProxyReplies() = 0;

   protected:
    ~Listener() = default;
  };

  enum class Outcome {
    kContinue,
    // The client asked to quit: close once pending() is 0.
    kClose,
    // Not executed: a local command (stats, SASL, ...) that writes straight
    // to the connection, which must first have every earlier reply. Hand
    // it over again once pending() is 0.
    kWaitIdle,
  };

  // `out` is the connection's output chain; `affinity` keeps the
  // connection's requests to a backend on one backend connection.
  ProxySession(ProxyOrca* orca, OutputChain* out, Listener* listener,
               uint32_t affinity);
  // Drops every reply still due (the connection closed).
  ~ProxySession();
  ProxySession(const ProxySession&) = delete;
  ProxySession& operator=(const ProxySession&) = delete;

  // Each takes one parsed request; its reply reaches `out` now or later, in
  // request order. The request's views need to live only for the call.
  Outcome Execute(const Request& request, int64_t now);
  // `raw` is the request's bytes as received (line and data block).
  Outcome Execute(const MetaRequest& request, absl::string_view raw,
                  int64_t now);
  Outcome Execute(const BinaryRequest& request, bool* authenticated,
                  int64_t now);

  // The connection refused a text storage command whose value is over the
  // item size limit (and answered it): as memcached does for a set, the
  // key's old value goes, here with a backend delete (and from L1) that
  // answers nothing.
  void OnRefusedStore(const Request& request, int64_t now);

  // Requests whose replies are not yet in `out`.
  size_t pending() const { return calls_.size(); }
  // The connection's output has been written out: a multiget paused on it
  // goes on. True if replies were composed into `out` (write them).
  bool OnOutputDrained();
  // Whether the connection may hand over another request now (see the
  // ordering note above; also bounds the calls and backend requests in
  // flight per connection, and waits while a backend connection is
  // crowded: BackendPool::crowded()). Always yes with nothing in flight,
  // so a connection told no has replies coming, and resumes when
  // Listener::OnProxyReplies() is called.
  bool CanAccept() const;

  void OnBackendReply(uint64_t tag,
                      const backend::BackendReply& reply) override;

  // Calls in flight per connection before it stops reading.
  static constexpr size_t kMaxPendingCalls = 1024;
  // Backend requests in flight per connection before it stops reading:
  // pipelined multigets each send a window at once, and without this 17
  // gets of 256 keys passed a backend connection's max_in_flight (4096 by
  // default) and drew "SERVER_ERROR backend busy". A connection then has
  // at most this many plus one request's first window (kRetrievalWindow
  // keys, or a broadcast's one per backend) in flight.
  static constexpr size_t kMaxKeysInFlight = 1024;
  // Keys of one multiget in flight at a time, and the output above which
  // its next window waits (see the top comment).
  static constexpr size_t kRetrievalWindow = 256;
  static constexpr size_t kStreamHighWatermark = 256 * 1024;
  // A backend request's tag is its call's sequence number, shifted by this
  // much, and the key's index in the call (a call has fewer keys: its line
  // is at most kMaxRetrievalLineLength).
  static constexpr int kTagIndexBits = 20;

 private:
  enum class Protocol : uint8_t { kText, kMeta, kBinary };

  // One key's answer.
  struct Entry {
    backend::BackendStatus status = backend::BackendStatus::kMiss;
    std::string value;    // from a backend (copied)
    cache::ItemRef item;  // from L1
    uint32_t flags = 0;
    uint64_t cas = 0;
    int64_t ttl = backend::kTtlUnknown;
    bool answered = false;
  };

  // One client request.
  struct Call {
    uint64_t seq = 0;
    Protocol protocol = Protocol::kText;
    Command command = Command::kNone;       // text
    MetaCommand meta = MetaCommand::kNone;  // meta
    BinaryOpcode op = BinaryOpcode::kGet;   // binary (quiet folded)
    uint8_t opcode = 0;                     // binary, as sent
    uint32_t opaque = 0;                    // binary
    bool quiet = false;      // text noreply, meta q, binary quiet opcode
    bool silent = false;     // internal: no reply and no counters at all
    int stage = 0;           // multi-step calls (binary incr on a miss)
    uint32_t remaining = 0;  // backend replies still due
    bool done = false;
    // Text retrievals, a window at a time: keys [window_begin, window_end)
    // are in flight or just answered; the entries before were composed and
    // released. `paused`: the window is composed and the next waits (for
    // the output to drain, or for the call to reach the head).
    size_t window_begin = 0;
    size_t window_end = 0;
    bool paused = false;
    std::string bytes;  // the composed reply of a done call not yet written
    std::vector<std::string> keys;  // copied: the input buffer moves on
    std::vector<Entry> entries;
    // What L1 needs after L2 answers (l1l2 writes), and binary incr/decr.
    std::string value;
    uint32_t flags = 0;
    int64_t exptime = 0;
    uint64_t delta = 0;
    uint64_t initial = 0;
    uint32_t expiration = 0;
    int64_t now = 0;
    void Reset();
  };

  // Where one reply is composed: the connection's chain (zero-copy for L1
  // items) or a done call's bytes.
  class ReplyOut {
   public:
    explicit ReplyOut(OutputChain* chain) : chain_(chain) {}
    explicit ReplyOut(std::string* text) : text_(text) {}
    void Append(absl::string_view bytes);
    void AppendItem(cache::ItemRef item, absl::string_view bytes);

   private:
    OutputChain* chain_ = nullptr;
    std::string* text_ = nullptr;
  };

  Call* NewCall(Protocol protocol);
  // Sends one keyed request for entry `index` of `call`; a refusal is
  // recorded as that entry's answer at once.
  void Send(Call* call, uint32_t index, const backend::BackendRequest& request);
  // To every live backend (flush_all).
  void Broadcast(Call* call, const backend::BackendRequest& request);
  void Record(Call* call, uint32_t index, const backend::BackendReply& reply);
  // After Execute built `call`: finishes it now if nothing is due, else
  // queues it.
  void Submit(Call* call);
  // Every backend reply of `call` is in: compose, then write what is ready.
  void Finish(Call* call);
  void Compose(Call* call, ReplyOut out);
  // Writes done calls from the head of the queue. True if any was written.
  bool WriteReady();
  void Recycle(Call* call);
  Call* FindCall(uint64_t seq);

  // Text (proxy_orca_text.cc).
  Outcome ExecuteText(const Request& request, int64_t now);
  void TextRetrieve(Call* call, const Request& request, int64_t now);
  static bool IsRetrieval(const Call& call);
  // Sends the keys of the next window of a retrieval (L1 hits in l1l2 mode
  // are answered at once).
  void SendWindow(Call* call);
  // A retrieval's window is answered: composes it and sends the next ones
  // until a window is in flight, the call ends (recycled or done) or it
  // pauses. True if anything was composed into `out_`.
  bool AdvanceRetrieval(Call* call);
  // Composes the window's values (or the failure that ends the reply); true
  // when the reply is complete.
  bool ComposeWindow(Call* call, ReplyOut out);
  // A local failure (backend down, timed out, busy) or an error a backend
  // sent among `entries` answers for the request: composes it, true.
  bool ComposeFailure(absl::Span<const Entry> entries, ReplyOut out);
  void TextStore(Call* call, const Request& request);
  void TextKeyed(Call* call, const Request& request);
  void TextFlush(Call* call, const Request& request, int64_t now);
  void TextAfterL2(Call* call);
  void ComposeText(Call* call, ReplyOut out);

  // Meta (proxy_orca_meta.cc).
  Outcome ExecuteMeta(const MetaRequest& request, absl::string_view raw,
                      int64_t now);
  void ComposeMeta(Call* call, ReplyOut out);

  // Binary (proxy_orca_binary.cc).
  Outcome ExecuteBinary(const BinaryRequest& request, bool* authenticated,
                        int64_t now);
  void BinaryAfterReply(Call* call);
  void ComposeBinary(Call* call, ReplyOut out);

  ProxyOrca* const orca_;
  OutputChain* const out_;
  Listener* const listener_;
  const uint32_t affinity_;
  std::deque<std::unique_ptr<Call>> calls_;
  std::vector<std::unique_ptr<Call>> free_calls_;
  uint64_t next_seq_ = 1;
  // Backend requests sent and not yet answered, over every call.
  size_t keys_in_flight_ = 0;
  // Inside Execute: replies are written by the connection's own turn, so
  // the listener is not called.
  bool executing_ = false;
};

// "SERVER_ERROR backend unavailable" and friends, for a local failure.
absl::string_view BackendFailureMessage(backend::BackendStatus status);

}  // namespace memshard
