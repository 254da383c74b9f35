#pragma once

// Connection: one client socket, driven by an explicit state machine.
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
// An idle connection holds no buffer: input and output borrow from the
// worker's pool only while they have bytes.

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "core/event_loop.h"
#include "core/input_buffer.h"
#include "server/admin/connection_directory.h"
#include "server/orca/proxy_orca.h"
#include "server/output_chain.h"

namespace memshard {

class ConnectionTable;

// In --mode=proxy and l1l2 a request's reply may come later, from a
// backend (ProxySession): replies still go out in request order, reading
// pauses while the session cannot take more, and the connection neither
// closes nor lingers while replies are due.
class Connection : public EventHandler,
                   public Deletable,
                   private ProxySession::Listener {
 public:
  Connection(int fd, ConnectionTable* table);
  ~Connection() override;

  void OnEvents(uint32_t events) override;

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
  absl::Time last_active() const { return last_active_; }

  // Intrusive links for the table's idle-order list.
  Connection* idle_prev = nullptr;
  Connection* idle_next = nullptr;
  // What `stats conns` shows; linked into the worker's directory by the
  // table while open.
  ConnectionRecord record;

 private:
  enum class State : uint8_t {
    kReading,
    kProcessing,
    kWriting,
    kClosing,
    kClosed,
  };

  void Drive();
  bool StepRead();
  void StepProcess();
  bool StepWrite();
  void StepClose();
  // Draining, everything read is answered: see BeginDrain().
  bool StepLinger();

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
  // Discards bytes of an oversized value already answered with an error.
  void Swallow();
  void AppendError(absl::string_view kind, absl::string_view message,
                   bool noreply);
  // Copies state and last activity into `record` (for other threads).
  void PublishState();
  // Proxy: backend replies were written to output_ (from the event loop).
  void OnProxyReplies() override;
  // Proxy: true (and processing pauses) if replies are still due, so a
  // reply composed here would overtake them.
  bool WaitForSession();

  ConnectionTable* const table_;
  int fd_;
  State state_ = State::kReading;
  bool readable_ = true;      // the kernel may have unread bytes
  bool peer_hup_ = false;     // epoll reported the peer's FIN
  bool peer_closed_ = false;  // read returned 0
  bool close_after_write_ = false;
  bool draining_ = false;    // BeginDrain(): answer what was read, then close
  bool write_shut_ = false;  // draining: our FIN is queued
  bool more_requests_ = false;  // stopped by budget or watermark
  enum class Protocol : uint8_t { kUnknown, kAscii, kBinary };
  Protocol protocol_ = Protocol::kUnknown;
  // Set when the protocol is picked (true if it needs no authentication),
  // then by a successful ascii handshake or SASL PLAIN.
  bool authenticated_ = false;
  int budget_ = 0;        // requests left in this turn
  uint64_t swallow_ = 0;  // bytes still to discard
  absl::Time last_active_;
  InputBuffer input_;
  OutputChain output_;
  // --mode=proxy|l1l2 only; released when the connection closes.
  std::unique_ptr<ProxySession> session_;
  // Processing paused until the session writes replies (it could not take
  // the next request yet); reading pauses too (back-pressure).
  bool session_blocked_ = false;
};

}  // namespace memshard
