#pragma once

// Connection: one client socket, driven by an explicit state machine.
// connection.cc has the state machine (read, write, close, drain);
// connection_requests.cc parses and answers the requests.
//
// Thread-safety: none. A connection lives on one worker; every call comes
// from that worker's event loop. It is destroyed by the loop at the end of
// the iteration in which it closed (EventLoop::DeleteLater), never inside
// its own callback.
//
// States (one small method each):
//   kReading     read until the kernel returns less than asked
//   kProcessing  parse every complete request, execute, compose replies
//   kWriting     one writev of everything composed; a partial write waits
//                for EPOLLOUT and pauses reading (back-pressure)
//   kClosing     unregister, close the fd, return all memory
//   kClosed      waiting for deferred deletion; events are ignored
// Memory: a connection reads into its worker's shared read buffer (in an
// epoll batch of several ready connections, through the worker's pre-read
// arena: see PrepareEvents) and composes replies into the worker's shared
// output chain (ConnectionTable); in the usual case everything read is
// answered and sent within the turn, and the connection keeps nothing. Only a
// connection left with an incomplete request or an unsent reply gets an IoState
// of its own, with buffers from the worker's pool, until those bytes are gone.
// So an idle connection is just this object (about 130 bytes): no buffer, no
// timer, one vtable pointer.

#include <cstdint>
#include <memory>
#include <new>

#include "absl/time/time.h"
#include "core/buffer_pool.h"
#include "core/event_loop.h"
#include "core/input_buffer.h"
#include "server/admin/connection_directory.h"
#include "server/orca/proxy_orca.h"
#include "server/output_chain.h"
#include "server/protocol/binary_parser.h"
#include "server/protocol/request.h"

namespace memshard {

class ConnectionTable;

// In --mode=proxy and l1l2 a request's reply may come later, from a
// backend (ProxySession): replies still go out in request order, reading
// pauses while the session cannot take more, and the connection neither
// closes nor lingers while replies are due.
class alignas(64) Connection : public EventHandler {
 public:
  Connection(int fd, ConnectionTable* table);
  ~Connection() override;

  // In SlotAllocator's slots: cache-line aligned (the data members' layout
  // counts on it) at the price of a free-list pop, not memalign's.
  static void* operator new(size_t size);
  static void* operator new(size_t size, std::align_val_t);
  static void operator delete(void* p);
  static void operator delete(void* p, std::align_val_t);

  void OnEvents(uint32_t events) override;
  // Cache mode, in a batch of ready connections: reads ahead and prefetches
  // the keys of the retrievals read (ConnectionTable::PreReadSpace), so
  // their misses overlap the rest of the batch.
  void PrepareEvents(uint32_t events) override;

  // Continues after a fairness budget ran out (from ConnectionTable).
  void Resume();
  // Closes now (idle timeout, shutdown).
  void Close();
  // Graceful shutdown: reads nothing new, answers every complete request
  // already read, flushes the replies, then half-closes (FIN after the last
  // reply) and closes once the peer has closed or has acknowledged every
  // byte. Unread input is discarded, never left in the socket, because
  // close(2) with unread input sends a RST that can destroy replies still
  // in flight. The table polls Resume() while draining.
  void BeginDrain();

  int fd() const { return fd_; }
  bool closed() const { return state_ == State::kClosed; }
  // When it last read something (or was accepted).
  absl::Time last_active() const { return record.last_active(); }

 private:
  enum class State : uint8_t {
    kReading,
    kProcessing,
    kWriting,
    kClosing,
    kClosed,
  };
  enum class Protocol : uint8_t { kUnknown, kAscii, kBinary };

  // A retrieval with more keys than one turn may answer (a `get` of
  // 100,000 keys), answered a slice per turn so the worker serves others in
  // between. Its keys point into the input, which is neither consumed nor
  // read into (so never moved) until the last slice, END, is composed.
  struct SlicedRetrieval {
    Request request;
    size_t next = 0;      // first key not answered yet
    size_t consumed = 0;  // the request's bytes in the input
  };
  // Bytes this connection keeps between turns (see the top comment).
  struct IoState {
    explicit IoState(BufferPool* pool) : input(pool), output(pool) {}
    InputBuffer input;
    OutputChain output;
    // Set while a sliced retrieval is under way: it goes before anything
    // else in the input.
    std::unique_ptr<SlicedRetrieval> retrieval;
  };
  // --mode=proxy|l1l2 only: the session and its callback into us.
  struct ProxyLink;

  // Data members come before the methods, in this order, for the cache:
  // with 8,000 connections each sending now and then, a connection's object
  // is cold at every request, and every line it touches is a miss. What a
  // request reads and writes in cache mode fills the first line: the vtable
  // pointer, these, and record's last_active_ns_. The rest of record and
  // the idle links serve `stats conns` and --idle_timeout.
  ConnectionTable* const table_;
  std::unique_ptr<IoState> io_;
  std::unique_ptr<ProxyLink> proxy_;
  uint64_t swallow_ = 0;  // bytes still to discard
  int fd_;
  int16_t budget_ = 0;  // requests left in this turn
  State state_ = State::kReading;
  Protocol protocol_ = Protocol::kUnknown;
  bool readable_ : 1;           // the kernel may have unread bytes
  bool peer_hup_ : 1;           // epoll reported the peer's FIN
  bool peer_closed_ : 1;        // read returned 0
  bool close_after_write_ : 1;  // answer what is composed, then close
  bool draining_ : 1;           // BeginDrain(): answer what was read, close
  bool write_shut_ : 1;         // draining: our FIN is queued
  bool more_requests_ : 1;      // stopped by budget or watermark
  // Processing paused until the session writes replies (it could not take
  // the next request yet); reading pauses too (back-pressure).
  bool session_blocked_ : 1;
  // Set when the protocol is picked (true if it needs no authentication),
  // then by a successful ascii handshake or SASL PLAIN. Not a bit field:
  // the executors take its address.
  bool authenticated_ = false;
  // What record.state() was last set to: PublishState stores only changes.
  ConnectionState published_ = ConnectionState::kWaiting;

 public:
  // What `stats conns` shows; linked into the worker's directory by the
  // table while open.
  ConnectionRecord record;
  // Intrusive links for the table's idle-order list.
  Connection* idle_prev = nullptr;
  Connection* idle_next = nullptr;

 private:
  void Drive();
  bool StepRead();
  void StepProcess();
  bool StepWrite();
  void StepClose();
  // Draining, everything read is answered: see BeginDrain().
  bool StepLinger();

  // The input holding this connection's unparsed bytes: its own while it
  // has an incomplete request, else the worker's shared read buffer (empty
  // between turns).
  InputBuffer& input();
  // Where replies go: the connection's own chain if it has an IoState (so
  // they queue behind unsent ones), else the worker's shared chain.
  OutputChain& output();
  IoState& own_io();
  // Frees the IoState once it holds nothing (never in proxy mode: the
  // session writes to its output chain).
  void MaybeDropIo();
  bool has_output() const;
  bool has_input() const;
  ProxySession* session() const;

  // Parses and answers one request from the input; false when no complete
  // request is left. The first byte a connection sends picks its protocol
  // for good: 0x80 is binary, anything else ascii (text and meta, told
  // apart per line).
  bool ProcessOne();
  bool ProcessText(absl::string_view in);
  bool ProcessMeta(absl::string_view in);
  bool ProcessBinary(absl::string_view in);
  // Ascii before authentication (--auth_file): only the auth handshake.
  bool ProcessAsciiAuth(absl::string_view in);
  // A binary request not allowed before SASL authentication: answered and
  // closed after `consumed` bytes, like memcached.
  bool RefuseUnauthenticated(const BinaryRequest& request, size_t consumed);
  // Cache mode, a retrieval with more keys than one request's share of the
  // turn's budget: charged by its keys, and answered in slices when the
  // budget left is too small for all of them. Returns as ProcessText.
  bool ProcessManyKeys(Request& request, size_t consumed);
  // Answers the next slice of io_->retrieval within the budget left; at the
  // last key consumes the request and returns true.
  bool ContinueRetrieval();
  // Cache mode, called as a request parsed from the front of the input is
  // about to execute, `next` being the bytes behind it and `front_key` its
  // key if it is a single-key retrieval (else empty): when `next` holds
  // pipelined requests not scanned yet this turn, prefetches the front key
  // and the keys of the retrievals among the next kLookAheadRequests
  // (CacheOrca::Prefetch), so each finds its bucket and item in cache when
  // its turn comes. Requests still execute one by one, in order: a
  // prefetch is only a hint.
  void LookAhead(absl::string_view front_key, absl::string_view next);
  // PrepareEvents: starts loading the buckets of the keys of the
  // retrievals among the first kLookAheadRequests requests in `input`.
  void PrefetchKeys(absl::string_view input);
  // ScanRetrievalKeys or ScanBinaryRetrievalKeys, by the protocol: the keys
  // of the retrievals among the first `max_requests` requests of `input`
  // (`keys` has room for `max_requests`).
  size_t ScanKeys(absl::string_view input, size_t max_requests,
                  absl::string_view* keys, size_t* count) const;
  // Discards bytes of an oversized value already answered with an error.
  void Swallow();
  void AppendError(absl::string_view kind, absl::string_view message,
                   bool noreply);
  // Copies the state into `record` (for other threads).
  void PublishState();
  // Proxy: backend replies were written to the output (from the event
  // loop).
  void OnProxyReplies();
  // Proxy: true (and processing pauses) if replies are still due, so a
  // reply composed here would overtake them.
  bool WaitForSession();
};

}  // namespace memshard
