#pragma once

// BackendConnection: one non-blocking, pipelined connection from one worker
// to one backend server, registered in that worker's event loop.
//
// Thread-safety: none. Owned by a Backend; every call comes from the owning
// worker's thread.
//
// Requests are encoded into the output chain as they are submitted and
// written together at the end of the loop iteration (the pool's flush), so a
// burst of client requests costs one write per backend connection. Replies
// come back in request order (memcached answers a connection in order), so
// each is matched with the oldest request in flight; no request carries an
// id. Anything that breaks that order -- a reply we cannot parse, a request
// that timed out (its late reply would be taken for the next one's), EOF, a
// socket error -- closes the connection and answers every request in flight
// with a local failure. The Backend decides when to reconnect.
//
// Invariants: `pending_` holds the requests sent or queued, oldest first;
// while connected it is also the order of the replies still to come. While
// disconnected `pending_`, `input_` and `output_` are empty and nothing is
// registered in the loop. While connecting a timer runs for the connect
// timeout; while connected and anything is in flight a timer is armed for
// at most the oldest request's deadline (it may fire early and re-arm).

#include <cstdint>
#include <deque>

#include "absl/time/time.h"
#include "core/event_loop.h"
#include "core/input_buffer.h"
#include "server/backend/backend_types.h"
#include "server/output_chain.h"

namespace memshard {
namespace backend {

class Backend;

class BackendConnection final : public EventHandler {
 public:
  enum class State : uint8_t { kDisconnected, kConnecting, kConnected };

  BackendConnection(Backend* backend, int index);
  // Closes without answering anything (the pool is going away).
  ~BackendConnection() override;
  BackendConnection(const BackendConnection&) = delete;
  BackendConnection& operator=(const BackendConnection&) = delete;

  // Starts a non-blocking connect; only while disconnected. The outcome is
  // reported to the backend (OnConnected / OnConnectionFailed), possibly
  // before Connect() returns.
  void Connect();

  // Queues `request`; its reply goes to `sink` with `tag`, from the event
  // loop. False (and `*failure` set, nothing queued) while disconnected
  // (kUnavailable) or at the in-flight limit (kBusy).
  bool Submit(const BackendRequest& request, ReplySink* sink, uint64_t tag,
              BackendStatus* failure);

  // Writes what is queued (the pool calls this at the end of an iteration).
  void Flush();

  // Replies meant for `sink` are read and dropped.
  void Cancel(const ReplySink* sink);

  // Disconnects now and answers every request in flight with `status`.
  // Reports nothing to the backend.
  void Close(BackendStatus status);

  void OnEvents(uint32_t events) override;

  State state() const { return state_; }
  int index() const { return index_; }
  size_t in_flight() const { return pending_.size(); }
  bool has_output() const { return !output_.empty(); }

  // The pool's flush list bookkeeping.
  bool dirty = false;

 private:
  struct PendingOp {
    ReplySink* sink;  // null once cancelled
    uint64_t tag;
    absl::Time sent;
    BackendOp op;
  };

  void OnConnectDone();
  void ReadReplies();
  // Parses and answers complete replies. False if the connection closed.
  bool Dispatch();
  // Closes the socket and hands back what was in flight.
  std::deque<PendingOp> Disconnect();
  // Answers each of `failed` with `status`.
  void Answer(std::deque<PendingOp>* failed, BackendStatus status);
  // Disconnect(), tell the backend, then Answer().
  void Fail(BackendStatus status);
  void ArmTimer();
  void OnTimer();
  void CancelTimer();

  Backend* const backend_;
  const int index_;
  int fd_ = -1;
  State state_ = State::kDisconnected;
  // Bumped by every Close(), so a loop that called out can tell that the
  // connection it was reading is gone.
  uint64_t generation_ = 0;
  EventLoop::TimerId timer_ = 0;
  absl::Time connect_deadline_;
  std::deque<PendingOp> pending_;
  InputBuffer input_;
  OutputChain output_;
};

}  // namespace backend
}  // namespace memshard
