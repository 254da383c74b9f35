#include "tools/loadgen/client_thread.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/container/inlined_vector.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace memshard {
namespace loadgen {
namespace {

// Reads into the thread's scratch buffer this many bytes at a time; a read
// that returns less means the socket is drained (edge-triggered epoll).
constexpr size_t kReadScratchSize = 256 * 1024;
// Reads appended to a connection's own partial-reply buffer.
constexpr size_t kReadChunk = 64 * 1024;
// Open loop: at most this many sends per timer event, so replies are read
// even when the generator has fallen behind.
constexpr int kMaxSendsPerTick = 4096;

// read(2) and send(2) without glibc's cancellation-point wrappers (two
// atomic read-modify-writes per call): the generator must stay cheaper per
// request than the servers it measures. Its threads are never cancelled.
ssize_t ReadNoCancel(int fd, char* buffer, size_t size) {
  return syscall(SYS_read, fd, buffer, size);
}
ssize_t SendNoCancel(int fd, const char* data, size_t size) {
  return syscall(SYS_sendto, fd, data, size, MSG_NOSIGNAL, nullptr, 0);
}

}  // namespace

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

absl::StatusOr<Target> ResolveTarget(const LoadgenOptions& options) {
  Target target;
  if (!options.unix_socket.empty()) {
    sockaddr_un* un = reinterpret_cast<sockaddr_un*>(&target.address);
    if (options.unix_socket.size() >= sizeof(un->sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unix socket path too long: ", options.unix_socket));
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, options.unix_socket.data(),
           options.unix_socket.size());
    target.address_length = sizeof(sockaddr_un);
    target.is_unix = true;
    return target;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = absl::StrCat(options.port);
  int rc = getaddrinfo(options.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve ", options.host, ": ", gai_strerror(rc)));
  }
  memcpy(&target.address, found->ai_addr, found->ai_addrlen);
  target.address_length = found->ai_addrlen;
  freeaddrinfo(found);
  return target;
}

// ---------------------------------------------------------------- Connection

Connection::Connection(ClientThread* owner, uint32_t index, Role role)
    : owner_(owner), index_(index), role_(role) {}

Connection::~Connection() {
  // The loop may already be gone (the worker is destroyed first); closing
  // the fd is all epoll needs.
  if (fd_ >= 0) close(fd_);
}

Connection::ConnectResult Connection::StartConnect() {
  const Target& target = owner_->context().target;
  fd_ = socket(target.address.ss_family,
               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    LOG_FIRST_N(WARNING, 5) << "socket: " << strerror(errno);
    state_ = State::kClosed;
    return ConnectResult::kFailed;
  }
  if (!target.is_unix) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  int rc = connect(fd_, reinterpret_cast<const sockaddr*>(&target.address),
                   target.address_length);
  if (rc != 0 && errno != EINPROGRESS) {
    int error = errno;
    close(fd_);
    fd_ = -1;
    if (error == EAGAIN) return ConnectResult::kRetry;
    LOG_FIRST_N(WARNING, 5) << "connect: " << strerror(error);
    state_ = State::kClosed;
    return ConnectResult::kFailed;
  }
  state_ = rc == 0 ? State::kOpen : State::kConnecting;
  absl::Status added =
      owner_->loop().Add(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this);
  if (!added.ok()) {
    LOG_FIRST_N(WARNING, 5) << added;
    close(fd_);
    fd_ = -1;
    state_ = State::kClosed;
    return ConnectResult::kFailed;
  }
  return state_ == State::kOpen ? ConnectResult::kOpen
                                : ConnectResult::kInProgress;
}

void Connection::OnEvents(uint32_t events) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kConnecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    FinishConnect();
    if (state_ != State::kOpen) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) HandleReadable();
  if (state_ == State::kOpen && (events & EPOLLOUT) &&
      out_offset_ < out_.size()) {
    Flush();
  }
}

void Connection::FinishConnect() {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
    error = errno;
  }
  if (error != 0) {
    LOG_FIRST_N(WARNING, 5) << "connect: " << strerror(error);
    close(fd_);
    fd_ = -1;
    state_ = State::kClosed;
    owner_->OnConnectDone(this, false);
    return;
  }
  state_ = State::kOpen;
  owner_->OnConnectDone(this, true);
}

void Connection::QueueGet(const uint32_t* keys, size_t count,
                          int64_t intended_ns, Purpose purpose) {
  const LoadgenOptions& options = *owner_->context().options;
  const size_t key_size = static_cast<size_t>(options.key_size);
  absl::InlinedVector<absl::string_view, 16> names;
  char* scratch = owner_->key_scratch();
  for (size_t i = 0; i < count; ++i) {
    names.push_back(FormatKey(keys[i], key_size, scratch + i * key_size));
    pending_keys_.push_back(keys[i]);
  }
  owner_->context().protocol->AppendGet(names, &out_);
  Pending pending;
  pending.intended_ns = intended_ns;
  pending.key_count = static_cast<uint32_t>(count);
  pending.is_get = true;
  pending.purpose = purpose;
  PushPending(pending);
}

void Connection::QueueSet(uint32_t key, size_t value_size, int64_t intended_ns,
                          Purpose purpose) {
  const size_t key_size =
      static_cast<size_t>(owner_->context().options->key_size);
  absl::string_view name = FormatKey(key, key_size, owner_->key_scratch());
  owner_->context().protocol->AppendSet(name, owner_->ValueBytes(value_size),
                                        &out_);
  Pending pending;
  pending.intended_ns = intended_ns;
  pending.purpose = purpose;
  PushPending(pending);
}

void Connection::PushPending(const Pending& pending) {
  // A scheduled request behind unstamped ones: they all leave together now.
  if (pending.intended_ns != 0 && unstamped_ > 0) StampUnsent();
  pending_.push_back(pending);
  if (pending.intended_ns == 0) ++unstamped_;
}

void Connection::StampUnsent() {
  const int64_t now = MonotonicNanos();
  for (size_t i = pending_.size() - unstamped_; i < pending_.size(); ++i) {
    pending_.at(i).intended_ns = now;
  }
  unstamped_ = 0;
}

void Connection::Flush() {
  if (state_ != State::kOpen) return;
  // Closed loop: latency counts from the moment the batch is written.
  if (unstamped_ > 0) StampUnsent();
  while (out_offset_ < out_.size()) {
    ssize_t n =
        SendNoCancel(fd_, out_.data() + out_offset_, out_.size() - out_offset_);
    if (n > 0) {
      out_offset_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    Close(/*count_disconnect=*/true);
    return;
  }
  out_.clear();
  out_offset_ = 0;
}

void Connection::HandleReadable() {
  std::string& scratch = owner_->read_scratch();
  while (state_ == State::kOpen) {
    ssize_t n;
    size_t asked;
    if (in_.empty()) {
      asked = scratch.size();
      n = ReadNoCancel(fd_, scratch.data(), asked);
      if (n > 0) {
        bool ok = true;
        absl::string_view input(scratch.data(), static_cast<size_t>(n));
        size_t used = ProcessInput(input, MonotonicNanos(), &ok);
        if (!ok) {
          ++owner_->mutable_stats().protocol_errors;
          Close(/*count_disconnect=*/false);
          return;
        }
        if (used < input.size()) {
          in_.assign(input.data() + used, input.size() - used);
        }
      }
    } else {
      // A reply is split across reads: append and parse from its start.
      asked = kReadChunk;
      const size_t old_size = in_.size();
      in_.resize(old_size + asked);
      n = ReadNoCancel(fd_, &in_[old_size], asked);
      in_.resize(old_size + static_cast<size_t>(std::max<ssize_t>(n, 0)));
      if (n > 0) {
        bool ok = true;
        size_t used = ProcessInput(in_, MonotonicNanos(), &ok);
        if (!ok) {
          ++owner_->mutable_stats().protocol_errors;
          Close(/*count_disconnect=*/false);
          return;
        }
        in_.erase(0, used);
      }
    }
    if (n == 0) {
      Close(/*count_disconnect=*/true);
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        Close(/*count_disconnect=*/true);
      }
      return;
    }
    if (static_cast<size_t>(n) < asked) return;  // drained
  }
}

size_t Connection::ProcessInput(absl::string_view input, int64_t now_ns,
                                bool* ok) {
  const Protocol& protocol = *owner_->context().protocol;
  Reply reply;
  size_t pos = 0;
  // A retired reply may trigger new requests or close this connection;
  // `input` stays valid either way (Close() leaves in_ alone).
  while (pos < input.size() && state_ == State::kOpen) {
    size_t used = 0;
    ParseStatus status = protocol.ParseReply(input.substr(pos), &used, &reply);
    if (status == ParseStatus::kIncomplete) break;
    if (status == ParseStatus::kInvalid || pending_.empty()) {
      LOG_FIRST_N(WARNING, 5) << (pending_.empty() ? "reply without a request: "
                                                   : "unparseable reply: ")
                              << absl::CEscape(input.substr(pos, 80));
      *ok = false;
      return pos;
    }
    pos += used;
    RetireReply(reply, now_ns);
  }
  return pos;
}

bool Connection::CheckValues(const Reply& reply, uint32_t key_count,
                             uint64_t* hits) {
  const LoadgenOptions& options = *owner_->context().options;
  const size_t key_size = static_cast<size_t>(options.key_size);
  bool ok = true;
  // Values come back in request order, skipping misses.
  uint32_t next = 0;
  for (const ReplyValue& value : reply.values) {
    bool matched = false;
    while (next < key_count) {
      if (KeyIs(value.key, pending_keys_.at(next++), key_size)) {
        matched = true;
        break;
      }
    }
    if (!matched || value.data.size() < options.value_size.min ||
        value.data.size() > options.value_size.max) {
      ok = false;
    }
  }
  *hits = ok ? reply.values.size() : 0;
  for (uint32_t i = 0; i < key_count; ++i) pending_keys_.pop_front();
  return ok;
}

void Connection::RetireReply(const Reply& reply, int64_t now_ns) {
  const Pending pending = pending_.front();
  pending_.pop_front();
  LoadStats& stats = owner_->mutable_stats();
  const bool measured = pending.purpose == Purpose::kLoad &&
                        owner_->context().window->Contains(now_ns);
  const bool is_error_reply = reply.kind == ReplyKind::kError ||
                              reply.kind == ReplyKind::kClientError ||
                              reply.kind == ReplyKind::kServerError;
  if (is_error_reply) {
    LOG_FIRST_N(WARNING, 5) << "server replied: " << reply.line;
  }
  if (pending.is_get) {
    uint64_t hits = 0;
    if (reply.kind == ReplyKind::kValues) {
      if (!CheckValues(reply, pending.key_count, &hits)) ++stats.bad_replies;
    } else {
      for (uint32_t i = 0; i < pending.key_count; ++i) {
        pending_keys_.pop_front();
      }
      if (is_error_reply) {
        ++stats.server_errors;
      } else {
        ++stats.bad_replies;
      }
    }
    if (measured) {
      ++stats.ops;
      ++stats.gets;
      stats.get_keys += pending.key_count;
      stats.hits += hits;
      stats.misses += pending.key_count - hits;
      const int64_t latency = now_ns - pending.intended_ns;
      stats.latency.Record(latency);
      stats.get_latency.Record(latency);
    }
  } else if (pending.purpose == Purpose::kPrefill) {
    if (reply.kind == ReplyKind::kStored) {
      ++stats.prefill_stored;
    } else {
      ++stats.prefill_errors;
    }
  } else {
    if (reply.kind == ReplyKind::kNotStored) {
      ++stats.not_stored;
    } else if (is_error_reply) {
      ++stats.server_errors;
    } else if (reply.kind != ReplyKind::kStored) {
      ++stats.bad_replies;
    }
    if (measured) {
      ++stats.ops;
      ++stats.sets;
      const int64_t latency = now_ns - pending.intended_ns;
      stats.latency.Record(latency);
      stats.set_latency.Record(latency);
    }
  }
  if (pending_.empty()) owner_->OnDrained(this);
}

void Connection::Close(bool count_disconnect) {
  if (state_ == State::kClosed) return;
  close(fd_);  // also leaves the epoll set
  fd_ = -1;
  state_ = State::kClosed;
  LoadStats& stats = owner_->mutable_stats();
  if (count_disconnect) {
    if (role_ == Role::kIdle) {
      ++stats.idle_closed;
    } else {
      ++stats.disconnects;
    }
  }
  size_t lost_prefill = 0;
  while (!pending_.empty()) {
    if (pending_.front().purpose == Purpose::kPrefill) {
      ++lost_prefill;
    } else {
      ++stats.outstanding;
    }
    pending_.pop_front();
  }
  while (!pending_keys_.empty()) pending_keys_.pop_front();
  unstamped_ = 0;
  owner_->OnClosed(this, lost_prefill);
}

// -------------------------------------------------------------- ClientThread

ClientThread::ClientThread(const RunContext& context, int index, int num_load,
                           int num_idle, int first_load_index)
    : context_(context),
      index_(index),
      num_load_(num_load),
      num_idle_(num_idle),
      first_load_index_(first_load_index),
      rng_(context.options->seed * 0x9e3779b97f4a7c15ULL +
           static_cast<uint64_t>(index) + 1),
      key_chooser_(context.options->keys, context.options->key_distribution,
                   context.options->zipf_s),
      read_scratch_(kReadScratchSize, '\0'),
      key_scratch_(static_cast<size_t>(std::max(1, context.options->multiget)) *
                       static_cast<size_t>(context.options->key_size),
                   '\0'),
      multiget_keys_(
          static_cast<size_t>(std::max(1, context.options->multiget))),
      worker_(index, /*cpu=*/-1) {
  // Values are recognisable in a packet capture and never need escaping.
  value_bytes_.resize(context.options->value_size.max);
  for (size_t i = 0; i < value_bytes_.size(); ++i) {
    value_bytes_[i] = static_cast<char>('a' + i % 26);
  }
  connections_.reserve(static_cast<size_t>(num_load + num_idle));
  for (int i = 0; i < num_load + num_idle; ++i) {
    connections_.push_back(std::make_unique<Connection>(
        this, static_cast<uint32_t>(i),
        i < num_load ? Connection::Role::kLoad : Connection::Role::kIdle));
  }
}

ClientThread::~ClientThread() {
  Stop();
  connections_.clear();
  if (timer_fd_ >= 0) close(timer_fd_);
}

void ClientThread::Start() {
  worker_.Start([this] {
    // The default 50 us timer slack would blur open-loop send times.
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    PCHECK(timer_fd_ >= 0) << "timerfd_create";
    absl::Status added = loop().Add(timer_fd_, EPOLLIN, &pace_timer_);
    CHECK(added.ok()) << added;
  });
}

void ClientThread::Stop() {
  if (stopped_) return;
  stopped_ = true;
  worker_.Stop();
  worker_.Join();
  for (const auto& connection : connections_) {
    stats_.outstanding += connection->in_flight();
  }
}

void ClientThread::BeginConnect(absl::AnyInvocable<void()> done) {
  worker_.Post([this, done = std::move(done)]() mutable {
    phase_ = Phase::kConnect;
    phase_done_ = std::move(done);
    StartMoreConnects();
    MaybeFinishConnect();
  });
}

void ClientThread::StartMoreConnects() {
  const int limit = std::max(1, context_.options->max_connects_in_flight);
  while (connects_in_flight_ < limit && next_connect_ < connections_.size()) {
    Connection* connection = connections_[next_connect_].get();
    Connection::ConnectResult result = connection->StartConnect();
    if (result == Connection::ConnectResult::kRetry) {
      // A unix listener's backlog is full: try again shortly.
      if (!connect_retry_armed_) {
        connect_retry_armed_ = true;
        loop().AddTimer(absl::Milliseconds(1), [this] {
          connect_retry_armed_ = false;
          StartMoreConnects();
          MaybeFinishConnect();
        });
      }
      return;
    }
    ++next_connect_;
    switch (result) {
      case Connection::ConnectResult::kOpen:
        ++connects_resolved_;
        if (connection->role() == Connection::Role::kLoad) {
          ++stats_.load_connections;
        } else {
          ++stats_.idle_connections;
        }
        break;
      case Connection::ConnectResult::kInProgress:
        ++connects_in_flight_;
        break;
      default:
        ++connects_resolved_;
        ++stats_.connect_failures;
        break;
    }
  }
}

void ClientThread::OnConnectDone(Connection* connection, bool ok) {
  --connects_in_flight_;
  ++connects_resolved_;
  if (!ok) {
    ++stats_.connect_failures;
  } else if (connection->role() == Connection::Role::kLoad) {
    ++stats_.load_connections;
  } else {
    ++stats_.idle_connections;
  }
  StartMoreConnects();
  MaybeFinishConnect();
}

void ClientThread::MaybeFinishConnect() {
  if (phase_ != Phase::kConnect || connects_resolved_ < connections_.size()) {
    return;
  }
  phase_ = Phase::kSetup;
  if (phase_done_) {
    auto done = std::move(phase_done_);
    phase_done_ = nullptr;
    done();
  }
}

void ClientThread::BeginPrefill(uint64_t first_key, uint64_t end_key,
                                absl::AnyInvocable<void()> done) {
  worker_.Post([this, first_key, end_key, done = std::move(done)]() mutable {
    phase_ = Phase::kPrefill;
    phase_done_ = std::move(done);
    prefill_next_ = first_key;
    prefill_end_ = end_key;
    for (int i = 0; i < num_load_; ++i) IssuePrefill(connections_[i].get());
    MaybeFinishPrefill();
  });
}

void ClientThread::IssuePrefill(Connection* connection) {
  if (connection->state() != Connection::State::kOpen ||
      prefill_next_ >= prefill_end_) {
    return;
  }
  const LoadgenOptions& options = *context_.options;
  const uint64_t count = std::min<uint64_t>(
      static_cast<uint64_t>(std::max(1, options.prefill_pipeline)),
      prefill_end_ - prefill_next_);
  if (connection->in_flight() == 0) ++prefill_busy_;
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t span = options.value_size.max - options.value_size.min;
    const size_t size = options.value_size.min +
                        (span == 0 ? 0 : rng_.Uniform(uint64_t{span} + 1));
    connection->QueueSet(static_cast<uint32_t>(prefill_next_++), size, 0,
                         Connection::Purpose::kPrefill);
  }
  connection->Flush();
}

void ClientThread::MaybeFinishPrefill() {
  if (phase_ != Phase::kPrefill || prefill_busy_ > 0) return;
  // Keys no connection was left to send count as failed.
  stats_.prefill_errors += prefill_end_ - prefill_next_;
  prefill_next_ = prefill_end_;
  phase_ = Phase::kSetup;
  if (phase_done_) {
    auto done = std::move(phase_done_);
    phase_done_ = nullptr;
    done();
  }
}

void ClientThread::OnDrained(Connection* connection) {
  if (phase_ == Phase::kPrefill) {
    --prefill_busy_;
    IssuePrefill(connection);
    MaybeFinishPrefill();
  } else if (phase_ == Phase::kLoad && context_.options->rate <= 0) {
    IssueBatch(connection);
  }
}

void ClientThread::OnClosed(Connection* connection, size_t lost_prefill) {
  if (lost_prefill > 0) {
    stats_.prefill_errors += lost_prefill;
    if (phase_ == Phase::kPrefill) {
      --prefill_busy_;
      MaybeFinishPrefill();
    }
  }
}

void ClientThread::BeginLoad(int64_t start_ns) {
  worker_.Post([this, start_ns] {
    phase_ = Phase::kLoad;
    const LoadgenOptions& options = *context_.options;
    if (options.rate <= 0) {
      for (int i = 0; i < num_load_; ++i) IssueBatch(connections_[i].get());
      return;
    }
    const double per_connection = options.rate / options.connections;
    schedules_.reserve(static_cast<size_t>(num_load_));
    for (int i = 0; i < num_load_; ++i) {
      const int global = first_load_index_ + i;
      const double phase = static_cast<double>(global) / options.connections;
      schedules_.emplace_back(
          start_ns, per_connection, phase, options.arrival,
          options.seed * 0x2545f4914f6cdd1dULL + static_cast<uint64_t>(global));
      send_queue_.Push(schedules_.back().next_ns(), static_cast<uint32_t>(i));
    }
    ArmPaceTimer();
  });
}

void ClientThread::IssueBatch(Connection* connection) {
  if (connection->state() != Connection::State::kOpen) return;
  for (int i = 0; i < context_.options->pipeline; ++i) {
    QueueRandomRequest(connection, 0);
  }
  connection->Flush();
}

void ClientThread::QueueRandomRequest(Connection* connection,
                                      int64_t intended_ns) {
  const LoadgenOptions& options = *context_.options;
  const uint64_t total = uint64_t{options.ratio.gets} + options.ratio.sets;
  if (rng_.Uniform(total) < options.ratio.gets) {
    for (uint32_t& key : multiget_keys_) {
      key = static_cast<uint32_t>(key_chooser_.Next(rng_));
    }
    connection->QueueGet(multiget_keys_.data(), multiget_keys_.size(),
                         intended_ns, Connection::Purpose::kLoad);
  } else {
    const uint32_t span = options.value_size.max - options.value_size.min;
    const size_t size = options.value_size.min +
                        (span == 0 ? 0 : rng_.Uniform(uint64_t{span} + 1));
    connection->QueueSet(static_cast<uint32_t>(key_chooser_.Next(rng_)), size,
                         intended_ns, Connection::Purpose::kLoad);
  }
}

void ClientThread::PaceTimer::OnEvents(uint32_t events) {
  owner_->OnPaceTimer();
}

void ClientThread::OnPaceTimer() {
  uint64_t expirations;
  ssize_t r = read(timer_fd_, &expirations, sizeof(expirations));
  (void)r;
  const int64_t now = MonotonicNanos();
  const bool measured = context_.window->Contains(now);
  int64_t due;
  uint32_t index;
  for (int sent = 0;
       sent < kMaxSendsPerTick && send_queue_.PopDue(now, &due, &index);
       ++sent) {
    Connection* connection = connections_[index].get();
    // A closed connection drops out of the schedule.
    if (connection->state() != Connection::State::kOpen) continue;
    QueueRandomRequest(connection, due);
    if (measured) stats_.send_lag.Record(now - due);
    to_flush_.push_back(connection);
    OpenLoopSchedule& schedule = schedules_[index];
    schedule.Advance();
    send_queue_.Push(schedule.next_ns(), index);
  }
  for (Connection* connection : to_flush_) connection->Flush();
  to_flush_.clear();
  ArmPaceTimer();
}

void ClientThread::ArmPaceTimer() {
  if (send_queue_.empty()) return;
  const int64_t due = std::max<int64_t>(send_queue_.next_due_ns(), 1);
  itimerspec spec{};
  spec.it_value.tv_sec = due / 1000000000;
  spec.it_value.tv_nsec = due % 1000000000;
  PCHECK(timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr) == 0)
      << "timerfd_settime";
}

}  // namespace loadgen
}  // namespace memshard
