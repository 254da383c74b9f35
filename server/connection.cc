#include "server/connection.h"

#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/slot_allocator.h"
#include "glog/logging.h"
#include "server/connection_table.h"

namespace memshard {
namespace {

// read(2) without glibc's cancellation-point wrapper (two atomic
// read-modify-writes per call); workers are never cancelled.
ssize_t ReadNoCancel(int fd, char* buffer, size_t size) {
  return syscall(SYS_read, fd, buffer, size);
}

}  // namespace

struct Connection::ProxyLink final : ProxySession::Listener {
  explicit ProxyLink(Connection* connection) : owner(connection) {}
  void OnProxyReplies() override { owner->OnProxyReplies(); }
  Connection* const owner;
  std::unique_ptr<ProxySession> session;
};

Connection::Connection(int fd, ConnectionTable* table)
    : table_(table),
      fd_(fd),
      // Registering with epoll reports any bytes already there (and every
      // later arrival raises an edge): no read until EPOLLIN says so.
      readable_(false),
      peer_hup_(false),
      peer_closed_(false),
      close_after_write_(false),
      draining_(false),
      write_shut_(false),
      more_requests_(false),
      session_blocked_(false) {
  // The layout the header's data members describe: what a request touches
  // (up to record's first field, last_active_ns_) within one cache line.
  DCHECK_EQ(reinterpret_cast<uintptr_t>(this) % 64, 0u);
  DCHECK_LE(reinterpret_cast<const char*>(&record) + sizeof(int64_t),
            reinterpret_cast<const char*>(this) + 64);
  record.SetLastActive(table->loop().now());
  if (table->proxy() != nullptr) {
    // The session writes replies later, from the event loop: it needs an
    // output chain of this connection's own for good.
    io_ = std::make_unique<IoState>(&table->pool());
    proxy_ = std::make_unique<ProxyLink>(this);
    // The fd as affinity: this connection's requests to a backend share
    // one backend connection, so they stay in order.
    proxy_->session = std::make_unique<ProxySession>(
        table->proxy(), &io_->output, proxy_.get(), static_cast<uint32_t>(fd));
  }
}

static_assert(sizeof(Connection) <= SlotAllocator::kSlotSize);
static_assert(alignof(Connection) <= SlotAllocator::kAlignment);

void* Connection::operator new(size_t size) {
  DCHECK_LE(size, SlotAllocator::kSlotSize);
  return SlotAllocator::Allocate();
}

void* Connection::operator new(size_t size, std::align_val_t) {
  return operator new(size);
}

void Connection::operator delete(void* p) { SlotAllocator::Free(p); }

void Connection::operator delete(void* p, std::align_val_t) {
  SlotAllocator::Free(p);
}

Connection::~Connection() {
  DCHECK(state_ == State::kClosed) << "connection destroyed while open";
}

ProxySession* Connection::session() const {
  return proxy_ != nullptr ? proxy_->session.get() : nullptr;
}

bool Connection::has_input() const {
  return io_ != nullptr && !io_->input.empty();
}

bool Connection::has_output() const {
  return io_ != nullptr && !io_->output.empty();
}

InputBuffer& Connection::input() {
  // Proxy connections always read into their own buffer: their replies
  // arrive from backends between turns, and nothing of theirs may sit in
  // the shared one then.
  if (io_ != nullptr && (proxy_ != nullptr || !io_->input.empty())) {
    return io_->input;
  }
  return table_->shared_input();
}

OutputChain& Connection::output() {
  return io_ != nullptr ? io_->output : table_->shared_output();
}

Connection::IoState& Connection::own_io() {
  if (io_ == nullptr) io_ = std::make_unique<IoState>(&table_->pool());
  return *io_;
}

void Connection::MaybeDropIo() {
  if (io_ != nullptr && proxy_ == nullptr && io_->input.empty() &&
      io_->output.empty() && io_->retrieval == nullptr) {
    io_.reset();
  }
}

void Connection::OnEvents(uint32_t events) {
  if (state_ == State::kClosed) return;
  if (events & EPOLLERR) {
    state_ = State::kClosing;
  } else if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) {
    readable_ = true;
    // The FIN may have come with the data: a short read then does not mean
    // drained, so read on until read() returns 0.
    if (events & (EPOLLHUP | EPOLLRDHUP)) peer_hup_ = true;
  }
  budget_ = ConnectionTable::kRequestBudget;
  Drive();
  PublishState();
}

void Connection::PrepareEvents(uint32_t events) {
  // Only a request's usual start: cache mode, woken to read, nothing of
  // its own buffered. Anything else reads in its turn.
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != EPOLLIN ||
      state_ != State::kReading || io_ != nullptr ||
      table_->proxy() != nullptr || session_blocked_ || draining_ ||
      peer_closed_ || swallow_ != 0) {
    return;
  }
  absl::Span<char> space = table_->PreReadSpace();
  if (space.empty()) return;
  const ssize_t n = ReadNoCancel(fd_, space.data(), space.size());
  table_->CommitPreRead(this, space, n, errno);
  if (n > 0) PrefetchKeys(absl::string_view(space.data(), n));
}

void Connection::Resume() {
  if (state_ == State::kClosed) return;
  budget_ = ConnectionTable::kRequestBudget;
  Drive();
  PublishState();
}

void Connection::PublishState() {
  ConnectionState s = ConnectionState::kWaiting;
  if (state_ == State::kClosing || state_ == State::kClosed) {
    s = ConnectionState::kClosing;
  } else if (has_output()) {
    s = ConnectionState::kWriting;
  } else if (has_input()) {
    s = ConnectionState::kReading;
  }
  // Unchanged in the usual case: no store into record's second line.
  if (s != published_) {
    published_ = s;
    record.SetState(s);
  }
}

void Connection::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosing;
  Drive();
}

void Connection::Drive() {
  for (;;) {
    switch (state_) {
      case State::kReading:
        if (!StepRead()) return;
        break;
      case State::kProcessing:
        StepProcess();
        break;
      case State::kWriting:
        if (!StepWrite()) return;
        break;
      case State::kClosing:
        StepClose();
        return;
      case State::kClosed:
        return;
    }
  }
}

// Reads one buffer's worth. Returns false to wait for the next event.
bool Connection::StepRead() {
  if (session_blocked_) return false;  // OnProxyReplies() resumes
  // Reading could move the input a sliced retrieval's keys point into;
  // more_requests_ keeps us processing until it is done.
  DCHECK(io_ == nullptr || io_->retrieval == nullptr);
  if (!readable_) {
    if (peer_closed_) state_ = State::kClosing;
    return peer_closed_;
  }
  // An incomplete request continues in the connection's own buffer; else
  // the worker's shared one, which is empty between turns.
  InputBuffer& in = input();
  absl::Span<char> space = in.WritableSpace();
  // Read already, if PrepareEvents read ahead.
  size_t asked = space.size();
  ssize_t n;
  if (!table_->TakePreRead(this, space, &n, &asked)) {
    n = ReadNoCancel(fd_, space.data(), space.size());
  }
  if (n > 0) {
    in.Commit(static_cast<size_t>(n));
    // Less than asked: the socket is drained (the next arrival raises a
    // new edge).
    if (static_cast<size_t>(n) < asked && !peer_hup_) {
      readable_ = false;
    }
    table_->metrics().Add(Counter::bytes_read, n);
    record.SetLastActiveNanos(table_->loop().now_unix_ns());
    table_->Touch(this);
    state_ = State::kProcessing;
    return true;
  }
  if (n == 0) {
    // Peer closed (or half-closed): answer what is complete, then close.
    readable_ = false;
    peer_closed_ = true;
    state_ = State::kProcessing;
    return true;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    readable_ = false;
    return false;
  }
  if (errno == EINTR) return true;
  state_ = State::kClosing;
  return true;
}

void Connection::StepProcess() {
  // Set again below if we stop with complete requests still buffered.
  more_requests_ = false;
  // Nothing of this turn's input has been looked ahead at yet.
  table_->lookahead_end() = nullptr;
  // A sliced retrieval goes first; nothing behind it runs before its END.
  if (io_ != nullptr && io_->retrieval != nullptr &&
      (budget_ <= 0 ||
       output().pending_bytes() >= ConnectionTable::kOutputHighWatermark ||
       !ContinueRetrieval())) {
    more_requests_ = true;
    state_ = State::kWriting;
    return;
  }
  for (;;) {
    if (swallow_ > 0) {
      Swallow();
      if (swallow_ > 0) break;
    }
    if (budget_ <= 0 ||
        output().pending_bytes() >= ConnectionTable::kOutputHighWatermark) {
      more_requests_ = !input().empty();
      break;
    }
    if (session() != nullptr && !input().empty() && !session()->CanAccept()) {
      session_blocked_ = true;
      break;
    }
    if (!ProcessOne()) break;
    --budget_;
  }
  // Bytes left in the worker's shared buffer (an incomplete request, or
  // requests beyond this turn's budget) become the connection's own; the
  // replies composed so far go with them, ahead of any later ones.
  InputBuffer& shared = table_->shared_input();
  if (!shared.empty()) {
    const bool had_io = io_ != nullptr;
    IoState& io = own_io();
    io.input.TakeFrom(&shared);
    if (!had_io) io.output.TakeFrom(&table_->shared_output());
  }
  state_ = State::kWriting;
}

bool Connection::StepWrite() {
  OutputChain& out = output();
  if (!out.empty()) {
    size_t written = 0;
    OutputChain::FlushResult result = out.Flush(fd_, &written);
    table_->metrics().Add(Counter::bytes_written, written);
    if (result == OutputChain::FlushResult::kError) {
      if (&out == &table_->shared_output()) out.Clear();
      state_ = State::kClosing;
      return true;
    }
    if (result == OutputChain::FlushResult::kBlocked) {
      // What the socket did not take becomes the connection's own.
      if (&out == &table_->shared_output()) own_io().output.TakeFrom(&out);
      // EPOLLOUT is armed (edge-triggered) from registration; reading stays
      // paused until the client takes its replies.
      return false;
    }
  }
  // All written: a proxy multiget waiting on the output goes on, and what
  // it composed at once is written in the next step.
  if (proxy_ != nullptr && session()->OnOutputDrained()) return true;
  MaybeDropIo();
  // Replies still due from backends: no closing or lingering before they
  // are written, and no reading while the session cannot take more.
  // OnProxyReplies() drives us again.
  const bool replies_due = session() != nullptr && session()->pending() > 0;
  if (close_after_write_) {
    if (replies_due) return false;
    state_ = State::kClosing;
    return true;
  }
  if (session_blocked_) {
    state_ = State::kReading;
    return false;
  }
  if (draining_ && !more_requests_) {
    if (replies_due) return false;
    return StepLinger();
  }
  if (more_requests_ || readable_) {
    state_ = more_requests_ ? State::kProcessing : State::kReading;
    if (budget_ > 0) return true;
    table_->ScheduleResume(this);
    return false;
  }
  if (peer_closed_) {
    if (replies_due) return false;
    // Whatever is left is a request that can never complete.
    state_ = State::kClosing;
    return true;
  }
  state_ = State::kReading;
  return false;
}

bool Connection::WaitForSession() {
  if (session() == nullptr || session()->pending() == 0) return false;
  session_blocked_ = true;
  return true;
}

void Connection::OnProxyReplies() {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  // Whatever stopped processing may be over: StepProcess checks again.
  if (session_blocked_) {
    session_blocked_ = false;
    more_requests_ = has_input();
  }
  // At rest a connection is reading (idle) or writing (blocked on EPOLLOUT,
  // or waiting for replies before closing); either way, write now.
  state_ = State::kWriting;
  budget_ = ConnectionTable::kRequestBudget;
  Drive();
  PublishState();
}

void Connection::StepClose() {
  // Replies still due are dropped, while the backend pool still exists.
  proxy_.reset();
  table_->loop().RemoveBeforeClose(fd_);  // close() unregisters
  close(fd_);
  fd_ = -1;
  io_.reset();
  state_ = State::kClosed;
  table_->OnClosed(this);
}

void Connection::BeginDrain() {
  if (state_ == State::kClosed || draining_) return;
  draining_ = true;
  // Waiting to read: answer what is buffered now. Other states get there
  // through their pending EPOLLOUT or resume.
  if (state_ == State::kReading) {
    state_ = State::kProcessing;
    budget_ = ConnectionTable::kRequestBudget;
    Drive();
    PublishState();
  }
}

// Returns false to wait for the next event or drain poll.
bool Connection::StepLinger() {
  if (!write_shut_) {
    write_shut_ = true;
    shutdown(fd_, SHUT_WR);
    // A partial request can never complete now.
    if (io_ != nullptr) io_->input.Release();
  }
  // Discard what the client still sends until it closes (read returns 0).
  // Bounded per turn, like requests, so a flood cannot hold the worker.
  char discard[4096];
  for (int i = 0; i < 16; ++i) {
    ssize_t n = read(fd_, discard, sizeof(discard));
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The peer holds every reply and our FIN once nothing is
      // unacknowledged; closing cannot hurt it then, even if it never
      // closes its end.
      int unacked = 0;
      if (ioctl(fd_, SIOCOUTQ, &unacked) != 0 || unacked > 0) return false;
    }
    state_ = State::kClosing;  // EOF, error, or all acknowledged
    return true;
  }
  return false;  // more to discard: the next event or drain poll goes on
}

}  // namespace memshard