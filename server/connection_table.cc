#include "server/connection_table.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "glog/logging.h"
#include "server/admin/worker_runtime.h"
#include "server/connection.h"

namespace memshard {
namespace {

constexpr char kTooManyConnections[] = "ERROR Too many open connections\r\n";

// This worker's `stats conns` directory (none in tests without a Server).
ConnectionDirectory* DirectoryOf(ServerContext* context, int worker) {
  return static_cast<size_t>(worker) < context->connections.size()
             ? context->connections[worker].get()
             : nullptr;
}

}  // namespace

ConnectionTable::ConnectionTable(Worker* worker, ServerContext* context)
    : worker_(worker),
      context_(context),
      metrics_(&context->metrics->worker(worker->index())),
      orca_(context, metrics_),
      shared_input_(&worker->pool(), InputBuffer::WhenDrained::kKeep),
      shared_output_(&worker->pool(), OutputChain::Memory::kKeep),
      track_idle_(context->options.idle_timeout > absl::ZeroDuration()) {
  parser_options_.max_value_size = context->options.max_item_size;
  if (context->options.mode != ServerOptions::Mode::kCache) {
    proxy_ = std::make_unique<ProxyOrca>(context, worker, metrics_, &orca_);
  }
  if (context->options.idle_timeout > absl::ZeroDuration()) ArmIdleSweep();
  // Pool and loop numbers, copied out for `stats workers` and /metrics.
  loop().AddEpochHook([this] {
    PublishWorkerRuntime(pool(), *metrics_);
    // A pre-read never taken belongs to a connection closed meanwhile.
    pre_reads_.clear();
    pre_read_next_ = 0;
    bucket_token_count_ = 0;
  });
}

void ConnectionTable::ArmIdleSweep() {
  // Check a few times per timeout period, so an idle connection lives at
  // most ~1.25x the timeout.
  absl::Duration period = std::clamp(context_->options.idle_timeout / 4,
                                     absl::Milliseconds(50), absl::Seconds(1));
  loop().AddTimer(period, [this] {
    SweepIdle();
    ArmIdleSweep();
  });
}

ConnectionTable::~ConnectionTable() { CloseAll(); }

int64_t ConnectionTable::unix_now() const {
  // Floor division, as ToUnixSeconds, without its out-of-line call.
  const int64_t ns = worker_->loop().now_unix_ns();
  return ns / 1000000000 - (ns % 1000000000 < 0 ? 1 : 0);
}

void ConnectionTable::Admit(int fd, const sockaddr* peer,
                            socklen_t peer_length) {
  int64_t limit = context_->options.max_connections;
  if (context_->curr_connections.fetch_add(1, std::memory_order_relaxed) >=
      limit) {
    context_->curr_connections.fetch_sub(1, std::memory_order_relaxed);
    metrics_->Add(Counter::rejected_connections);
    // Best effort, like memcached: the socket is fresh, so the short reply
    // fits in its send buffer.
    ssize_t n = send(fd, kTooManyConnections, sizeof(kTooManyConnections) - 1,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    close(fd);
    return;
  }
  // Owned through the idle-order list until OnClosed hands it to the loop.
  auto* c = new Connection(fd, this);
  c->idle_prev = idle_tail_;
  c->idle_next = nullptr;
  if (idle_tail_ != nullptr) {
    idle_tail_->idle_next = c;
  } else {
    idle_head_ = c;
  }
  idle_tail_ = c;
  if (auto* d = DirectoryOf(context_, worker_->index())) {
    d->Link(&c->record, fd, loop().now(), peer, peer_length);
  }
  metrics_->Add(Counter::total_connections);
  metrics_->AddGauge(Gauge::curr_connections, 1);
  absl::Status added =
      loop().Add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, c);
  if (!added.ok()) {
    LOG(WARNING) << "cannot register connection: " << added;
    c->Close();
  }
}

void ConnectionTable::Unlink(Connection* c) {
  if (c->idle_prev != nullptr) {
    c->idle_prev->idle_next = c->idle_next;
  } else if (idle_head_ == c) {
    idle_head_ = c->idle_next;
  }
  if (c->idle_next != nullptr) {
    c->idle_next->idle_prev = c->idle_prev;
  } else if (idle_tail_ == c) {
    idle_tail_ = c->idle_prev;
  }
  c->idle_prev = c->idle_next = nullptr;
}

void ConnectionTable::MoveToBack(Connection* c) {
  if (idle_tail_ == c) return;
  Unlink(c);
  c->idle_prev = idle_tail_;
  if (idle_tail_ != nullptr) idle_tail_->idle_next = c;
  idle_tail_ = c;
  if (idle_head_ == nullptr) idle_head_ = c;
}

void ConnectionTable::OnClosed(Connection* c) {
  Unlink(c);
  if (auto* d = DirectoryOf(context_, worker_->index())) d->Unlink(&c->record);
  context_->curr_connections.fetch_sub(1, std::memory_order_relaxed);
  metrics_->AddGauge(Gauge::curr_connections, -1);
  auto it = std::find(resumes_.begin(), resumes_.end(), c);
  if (it != resumes_.end()) resumes_.erase(it);
  loop().DeleteLater(std::unique_ptr<Deletable>(c));
  if (draining_) MaybeDrained();
}

void ConnectionTable::ScheduleResume(Connection* c) {
  if (std::find(resumes_.begin(), resumes_.end(), c) != resumes_.end()) return;
  metrics_->Add(Counter::conn_yields);
  if (resumes_.empty()) loop().RunSoon([this] { RunResumes(); });
  resumes_.push_back(c);
}

void ConnectionTable::RunResumes() {
  resumes_running_.swap(resumes_);
  for (size_t i = 0; i < resumes_running_.size(); ++i) {
    resumes_running_[i]->Resume();
  }
  resumes_running_.clear();
}

void ConnectionTable::SweepIdle() {
  absl::Time deadline = loop().now() - context_->options.idle_timeout;
  while (idle_head_ != nullptr && idle_head_->last_active() <= deadline) {
    metrics_->Add(Counter::idle_kicks);
    idle_head_->Close();  // unlinks it
  }
}

void ConnectionTable::CloseAll() {
  while (idle_head_ != nullptr) idle_head_->Close();
}

void ConnectionTable::BeginDrain(absl::AnyInvocable<void()> on_drained) {
  if (draining_) return;
  draining_ = true;
  on_drained_ = std::move(on_drained);
  // Copied first: a connection may close (and unlink) as it drains; its
  // object lives until the end of this loop iteration.
  std::vector<Connection*> open;
  for (Connection* c = idle_head_; c != nullptr; c = c->idle_next) {
    open.push_back(c);
  }
  for (Connection* c : open) c->BeginDrain();
  if (idle_head_ != nullptr) PollDrain();
  MaybeDrained();
}

void ConnectionTable::PollDrain() {
  loop().AddTimer(absl::Milliseconds(10), [this] {
    std::vector<Connection*> open;
    for (Connection* c = idle_head_; c != nullptr; c = c->idle_next) {
      open.push_back(c);
    }
    for (Connection* c : open) c->Resume();
    if (idle_head_ != nullptr) PollDrain();
  });
}

void ConnectionTable::MaybeDrained() {
  if (idle_head_ != nullptr || !on_drained_) return;
  absl::AnyInvocable<void()> done = std::move(on_drained_);
  on_drained_ = nullptr;
  done();
}

absl::Span<char> ConnectionTable::PreReadSpace() {
  const size_t end = pre_reads_.empty()
                         ? 0
                         : pre_reads_.back().offset + pre_reads_.back().size();
  // As much as a connection's empty input takes in one read, if there is
  // room for that or for a typical request.
  const size_t size = std::min(pool().buffer_size(), kPreReadArenaBytes - end);
  if (size < kMinPreReadBytes && size < pool().buffer_size()) return {};
  if (pre_read_arena_ == nullptr) {
    pre_read_arena_ = std::make_unique<char[]>(kPreReadArenaBytes);
  }
  return absl::MakeSpan(pre_read_arena_.get() + end, size);
}

void ConnectionTable::CommitPreRead(Connection* connection,
                                    absl::Span<char> space, ssize_t result,
                                    int error) {
  PreReadEntry entry;
  entry.connection = connection;
  entry.offset = static_cast<uint32_t>(space.data() - pre_read_arena_.get());
  entry.asked = static_cast<uint32_t>(space.size());
  entry.result = result;
  entry.error = result < 0 ? error : 0;
  pre_reads_.push_back(entry);
}

void ConnectionTable::PrefetchBuckets(const absl::string_view* keys,
                                      size_t count) {
  for (size_t i = 0; i < count && bucket_token_count_ < kMaxBatchKeys; ++i) {
    bucket_tokens_[bucket_token_count_++] = orca_.PrefetchBucket(keys[i]);
  }
}

bool ConnectionTable::TakePreRead(Connection* connection,
                                  absl::Span<char> space, ssize_t* result,
                                  size_t* asked) {
  if (bucket_token_count_ > 0) {
    // The batch's first turn: every bucket has had the batch's reads to
    // arrive. Their items in one burst, with no system call between them
    // to wait for each prefetch's address translation.
    for (size_t i = 0; i < bucket_token_count_; ++i) {
      orca_.PrefetchItem(bucket_tokens_[i]);
    }
    bucket_token_count_ = 0;
  }
  // Connections take their pre-reads in batch order, so the search starts
  // where the last one was taken and ends there at once (one closed
  // meanwhile leaves its entry behind).
  const size_t count = pre_reads_.size();
  for (size_t searched = 0; searched < count; ++searched) {
    const size_t i = (pre_read_next_ + searched) % count;
    PreReadEntry& entry = pre_reads_[i];
    if (entry.connection != connection) continue;
    entry.connection = nullptr;  // taken
    pre_read_next_ = i + 1;
    // The pre-read asked for no more than an empty input's space.
    CHECK_LE(entry.size(), space.size());
    std::memcpy(space.data(), pre_read_arena_.get() + entry.offset,
                entry.size());
    *result = entry.result;
    *asked = entry.asked;
    errno = entry.error;
    return true;
  }
  return false;
}

}  // namespace memshard
