#include "server/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "glog/logging.h"
#include "server/connection_table.h"
#include "server/protocol/text_parser.h"

namespace memshard {

Connection::Connection(int fd, ConnectionTable* table)
    : table_(table),
      fd_(fd),
      last_active_(table->loop().now()),
      input_(&table->pool()),
      output_(&table->pool()) {}

Connection::~Connection() {
  DCHECK(state_ == State::kClosed) << "connection destroyed while open";
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
}

void Connection::Resume() {
  if (state_ == State::kClosed) return;
  budget_ = ConnectionTable::kRequestBudget;
  Drive();
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
  if (!readable_) {
    if (peer_closed_) state_ = State::kClosing;
    return peer_closed_;
  }
  absl::Span<char> space = input_.WritableSpace();
  ssize_t n = read(fd_, space.data(), space.size());
  if (n > 0) {
    input_.Commit(static_cast<size_t>(n));
    // Less than asked: the socket is drained (the next arrival raises a
    // new edge).
    if (static_cast<size_t>(n) < space.size() && !peer_hup_) {
      readable_ = false;
    }
    table_->metrics().Add(Counter::bytes_read, n);
    last_active_ = table_->loop().now();
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
    // Nothing to read: unused input space goes back to the pool.
    if (input_.empty()) input_.Release();
    return false;
  }
  if (errno == EINTR) return true;
  state_ = State::kClosing;
  return true;
}

void Connection::StepProcess() {
  // Set again below if we stop with complete requests still buffered.
  more_requests_ = false;
  for (;;) {
    if (swallow_ > 0) {
      Swallow();
      if (swallow_ > 0) break;
    }
    if (budget_ <= 0 ||
        output_.pending_bytes() >= ConnectionTable::kOutputHighWatermark) {
      more_requests_ = !input_.empty();
      break;
    }
    if (!ProcessOne()) break;
    --budget_;
  }
  state_ = State::kWriting;
}

bool Connection::ProcessOne() {
  absl::string_view in = input_.readable();
  if (in.empty()) return false;
  Request& request = table_->scratch_request();
  size_t consumed = 0;
  ParseResult result =
      ParseText(in, table_->parser_options(), &consumed, &request);
  switch (result.status) {
    case ParseStatus::kOk: {
      CacheOrca::Outcome outcome =
          table_->orca().Execute(request, table_->unix_now(), &output_);
      input_.Consume(consumed);
      if (outcome == CacheOrca::Outcome::kClose) {
        close_after_write_ = true;
        return false;
      }
      return true;
    }
    case ParseStatus::kIncomplete:
      if (result.need > input_.capacity()) input_.Reserve(result.need);
      return false;
    case ParseStatus::kError:
      table_->metrics().Add(Counter::protocol_errors);
      if (!request.noreply) output_.Append("ERROR\r\n");
      break;
    case ParseStatus::kClientError:
      table_->metrics().Add(Counter::protocol_errors);
      AppendError("CLIENT_ERROR ", result.message, request.noreply);
      break;
    case ParseStatus::kServerError:
      table_->metrics().Add(Counter::protocol_errors);
      AppendError("SERVER_ERROR ", result.message, request.noreply);
      swallow_ = result.swallow;
      break;
    case ParseStatus::kClose:
      table_->metrics().Add(Counter::protocol_errors);
      if (!result.message.empty()) {
        output_.Append(result.message);
        output_.Append("\r\n");
      }
      close_after_write_ = true;
      return false;
  }
  input_.Consume(consumed);
  return true;
}

// memcached stays silent even about errors when the line said noreply.
void Connection::AppendError(absl::string_view kind, absl::string_view message,
                             bool noreply) {
  if (noreply) return;
  output_.Append(kind);
  output_.Append(message);
  output_.Append("\r\n");
}

void Connection::Swallow() {
  size_t n = std::min<uint64_t>(swallow_, input_.readable().size());
  input_.Consume(n);
  swallow_ -= n;
}

// Returns false to wait for EPOLLOUT or for the next event.
bool Connection::StepWrite() {
  if (!output_.empty()) {
    size_t written = 0;
    OutputChain::FlushResult result = output_.Flush(fd_, &written);
    table_->metrics().Add(Counter::bytes_written, written);
    if (result == OutputChain::FlushResult::kError) {
      state_ = State::kClosing;
      return true;
    }
    if (result == OutputChain::FlushResult::kBlocked) {
      // EPOLLOUT is armed (edge-triggered) from registration; reading stays
      // paused until the client takes its replies.
      return false;
    }
  }
  if (close_after_write_) {
    state_ = State::kClosing;
    return true;
  }
  if (more_requests_ || readable_) {
    state_ = more_requests_ ? State::kProcessing : State::kReading;
    if (budget_ > 0) return true;
    table_->ScheduleResume(this);
    return false;
  }
  if (peer_closed_) {
    // Whatever is left is a request that can never complete.
    state_ = State::kClosing;
    return true;
  }
  state_ = State::kReading;
  return false;
}

void Connection::StepClose() {
  table_->loop().Remove(fd_);
  close(fd_);
  fd_ = -1;
  input_.Release();
  output_.Clear();
  state_ = State::kClosed;
  table_->OnClosed(this);
}

}  // namespace memshard
