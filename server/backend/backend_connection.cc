#include "server/backend/backend_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "glog/logging.h"
#include "server/backend/backend.h"
#include "server/backend/backend_codec.h"

namespace memshard {
namespace backend {

BackendConnection::BackendConnection(Backend* backend, int index)
    : backend_(backend),
      index_(index),
      input_(&backend->buffers()),
      output_(&backend->buffers()) {}

BackendConnection::~BackendConnection() {
  // Nobody is left to answer: drop the sinks first.
  for (PendingOp& op : pending_) op.sink = nullptr;
  Close(BackendStatus::kUnavailable);
}

void BackendConnection::Connect() {
  DCHECK(state_ == State::kDisconnected);
  const ResolvedAddress& address = backend_->resolved();
  fd_ = socket(address.addr.ss_family,
               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    PLOG(WARNING) << "socket() for backend " << backend_->address().ToString();
    backend_->OnConnectionFailed(this, BackendStatus::kUnavailable);
    return;
  }
  if (address.addr.ss_family != AF_UNIX) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  state_ = State::kConnecting;
  int rc = connect(fd_, reinterpret_cast<const sockaddr*>(&address.addr),
                   address.len);
  if (rc != 0 && errno != EINPROGRESS) {
    // Refused at once (typical for a dead local server or unix socket).
    Fail(BackendStatus::kUnavailable);
    return;
  }
  absl::Status s = backend_->loop().Add(
      fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this);
  if (!s.ok()) {
    LOG(WARNING) << "backend " << backend_->address().ToString() << ": " << s;
    Fail(BackendStatus::kUnavailable);
    return;
  }
  connect_deadline_ = absl::Now() + backend_->options().connect_timeout;
  ArmTimer();
  // A unix socket (or a fast loopback) may already be connected; EPOLLOUT
  // reports it either way, with EPOLLET firing once for the initial state.
}

bool BackendConnection::Submit(const BackendRequest& request, ReplySink* sink,
                               uint64_t tag, BackendStatus* failure) {
  BackendStats& stats = backend_->stats();
  stats.AddRequest();
  if (state_ == State::kDisconnected) {
    stats.AddError();
    *failure = BackendStatus::kUnavailable;
    return false;
  }
  if (pending_.size() >= backend_->options().max_in_flight) {
    stats.AddError();
    *failure = BackendStatus::kBusy;
    return false;
  }
  EncodeRequest(backend_->options().protocol, request,
                [this](absl::string_view bytes) { output_.Append(bytes); });
  const bool was_idle = pending_.empty();
  pending_.push_back(PendingOp{sink, tag, backend_->loop().now(), request.op});
  if (pending_.size() == backend_->crowd_threshold()) backend_->NoteCrowded(1);
  stats.AddInFlight(1);
  // A timer still armed for an earlier request fires early and re-arms for
  // this one: no timer churn per request at low pipelining depth.
  if (was_idle && state_ == State::kConnected && timer_ == 0) ArmTimer();
  backend_->MarkDirty(this);
  return true;
}

void BackendConnection::Flush() {
  if (state_ != State::kConnected || output_.empty()) return;
  size_t written = 0;
  OutputChain::FlushResult result = output_.Flush(fd_, &written);
  // kBlocked: EPOLLOUT (edge-triggered) calls Flush() again when the
  // socket drains.
  if (result == OutputChain::FlushResult::kError) {
    Fail(BackendStatus::kUnavailable);
  }
}

void BackendConnection::Cancel(const ReplySink* sink) {
  for (PendingOp& op : pending_) {
    if (op.sink == sink) op.sink = nullptr;
  }
}

void BackendConnection::Close(BackendStatus status) {
  std::deque<PendingOp> failed = Disconnect();
  Answer(&failed, status);
}

std::deque<BackendConnection::PendingOp> BackendConnection::Disconnect() {
  std::deque<PendingOp> failed;
  if (state_ == State::kDisconnected) return failed;
  ++generation_;
  CancelTimer();
  backend_->loop().Remove(fd_);
  close(fd_);
  fd_ = -1;
  state_ = State::kDisconnected;
  input_.Release();
  output_.Clear();
  failed.swap(pending_);
  if (failed.size() >= backend_->crowd_threshold()) backend_->NoteCrowded(-1);
  backend_->stats().AddInFlight(-static_cast<int64_t>(failed.size()));
  return failed;
}

void BackendConnection::Answer(std::deque<PendingOp>* failed,
                               BackendStatus status) {
  BackendStats& stats = backend_->stats();
  BackendReply reply;
  reply.status = status;
  for (PendingOp& op : *failed) {
    if (status == BackendStatus::kTimeout) {
      stats.AddTimeout();
    } else {
      stats.AddError();
    }
    // A sink may submit again (and be refused: we are disconnected).
    if (op.sink != nullptr) op.sink->OnBackendReply(op.tag, reply);
  }
}

void BackendConnection::Fail(BackendStatus status) {
  std::deque<PendingOp> failed = Disconnect();
  // The backend first (it may eject and rebuild the ring), so sinks that
  // send again see the new state.
  backend_->OnConnectionFailed(this, status);
  Answer(&failed, status);
}

void BackendConnection::OnEvents(uint32_t events) {
  if (state_ == State::kConnecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    OnConnectDone();
    if (state_ != State::kConnected) return;
  }
  if (state_ != State::kConnected) return;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
    const uint64_t generation = generation_;
    ReadReplies();
    if (generation != generation_) return;
  }
  if ((events & EPOLLOUT) && !output_.empty()) Flush();
}

void BackendConnection::OnConnectDone() {
  int error = 0;
  socklen_t len = sizeof(error);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
    Fail(BackendStatus::kUnavailable);
    return;
  }
  state_ = State::kConnected;
  CancelTimer();
  if (!pending_.empty()) {
    // Requests queued while connecting start their clocks now.
    absl::Time now = backend_->loop().now();
    for (PendingOp& op : pending_) op.sent = now;
    ArmTimer();
  }
  const uint64_t generation = generation_;
  backend_->OnConnected(this);
  if (generation != generation_) return;
  Flush();
}

void BackendConnection::ReadReplies() {
  const uint64_t generation = generation_;
  for (;;) {
    absl::Span<char> space = input_.WritableSpace();
    ssize_t n = read(fd_, space.data(), space.size());
    if (n > 0) {
      input_.Commit(static_cast<size_t>(n));
      if (!Dispatch()) return;
      if (static_cast<size_t>(n) < space.size()) break;  // drained
      continue;
    }
    if (n == 0) {
      // The server closed. Nothing in flight: it was merely idle (e.g. its
      // idle timeout), but reconnect through the backoff all the same.
      Fail(BackendStatus::kUnavailable);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    Fail(BackendStatus::kUnavailable);
    return;
  }
  if (generation == generation_ && input_.empty()) input_.Release();
}

bool BackendConnection::Dispatch() {
  const uint64_t generation = generation_;
  const BackendProtocol protocol = backend_->options().protocol;
  while (!input_.empty()) {
    if (pending_.empty()) {
      LOG_EVERY_N(WARNING, 100) << "backend " << backend_->address().ToString()
                                << ": reply to no request; reconnecting";
      Fail(BackendStatus::kUnavailable);
      return false;
    }
    BackendReply reply;
    size_t consumed = 0;
    size_t need = 0;
    ReplyParse result = ParseReply(protocol, pending_.front().op,
                                   input_.readable(), &consumed, &need, &reply);
    if (result == ReplyParse::kIncomplete) {
      if (need > input_.capacity()) input_.Reserve(need);
      return true;
    }
    if (result == ReplyParse::kInvalid) {
      LOG_EVERY_N(WARNING, 100)
          << "backend " << backend_->address().ToString()
          << ": unexpected reply to " << BackendOpName(pending_.front().op)
          << "; reconnecting";
      Fail(BackendStatus::kUnavailable);
      return false;
    }
    PendingOp op = pending_.front();
    if (pending_.size() == backend_->crowd_threshold()) {
      backend_->NoteCrowded(-1);
    }
    pending_.pop_front();
    backend_->stats().AddInFlight(-1);
    absl::Time now = backend_->loop().now();
    backend_->OnReply(this, now - op.sent);
    if (generation != generation_) return false;
    if (op.sink != nullptr) op.sink->OnBackendReply(op.tag, reply);
    if (generation != generation_) return false;
    input_.Consume(consumed);
  }
  return true;
}

void BackendConnection::ArmTimer() {
  CancelTimer();
  absl::Time when;
  if (state_ == State::kConnecting) {
    when = connect_deadline_;
  } else if (!pending_.empty()) {
    when = pending_.front().sent + backend_->options().timeout;
  } else {
    return;
  }
  absl::Duration delay = when - absl::Now();
  if (delay < absl::ZeroDuration()) delay = absl::ZeroDuration();
  timer_ = backend_->loop().AddTimer(delay, [this] {
    timer_ = 0;
    OnTimer();
  });
}

void BackendConnection::CancelTimer() {
  if (timer_ != 0) {
    backend_->loop().CancelTimer(timer_);
    timer_ = 0;
  }
}

void BackendConnection::OnTimer() {
  const absl::Time now = absl::Now();
  if (state_ == State::kConnecting) {
    if (now >= connect_deadline_) {
      Fail(BackendStatus::kTimeout);
    } else {
      ArmTimer();
    }
    return;
  }
  if (state_ != State::kConnected || pending_.empty()) return;
  if (now >= pending_.front().sent + backend_->options().timeout) {
    // The late reply would be taken for the next request's: start over.
    Fail(BackendStatus::kTimeout);
    return;
  }
  ArmTimer();
}

}  // namespace backend
}  // namespace memshard
