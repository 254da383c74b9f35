#pragma once

// The load generator's engine: one ClientThread per --threads, each a core
// Worker (its own thread and EventLoop) owning a disjoint set of client
// Connections, an open-loop pacer (one timerfd) and its own LoadStats.
//
// Thread-safety: the controller constructs a ClientThread, calls Start(),
// drives it only through the Begin*() methods (which Post() to the worker
// thread), and reads stats() only after Stop(). Everything else runs on the
// worker thread. Connections live until the ClientThread is destroyed, so
// an event handler is never freed while the loop may still dispatch to it.
//
// Reply matching: each Connection keeps a FIFO of requests in flight; text
// replies arrive in request order, so every parsed reply belongs to the
// front request, is checked against it (kind, keys in order, value size) and
// timed from the front request's intended send time.

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "core/event_loop.h"
#include "core/worker.h"
#include "tools/loadgen/load_stats.h"
#include "tools/loadgen/open_loop.h"
#include "tools/loadgen/options.h"
#include "tools/loadgen/protocol.h"
#include "tools/loadgen/workload.h"

namespace memshard {
namespace loadgen {

// CLOCK_MONOTONIC in nanoseconds; the one clock of the whole run.
int64_t MonotonicNanos();

// The measured window, shared by all threads. A reply counts when it
// completes in [start_ns, end_ns).
struct Window {
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> start_ns{kNever};
  std::atomic<int64_t> end_ns{kNever};

  bool Contains(int64_t t) const {
    return t >= start_ns.load(std::memory_order_relaxed) &&
           t < end_ns.load(std::memory_order_relaxed);
  }
};

// Where to connect. Resolved once by the controller.
struct Target {
  sockaddr_storage address{};
  socklen_t address_length = 0;
  bool is_unix = false;
};
absl::StatusOr<Target> ResolveTarget(const LoadgenOptions& options);

// Read-only state every thread shares for the whole run.
struct RunContext {
  const LoadgenOptions* options = nullptr;
  const Protocol* protocol = nullptr;
  Target target;
  Window* window = nullptr;
};

// A FIFO ring that allocates only when first used (so thousands of idle
// connections cost nothing) and grows by doubling.
template <typename T>
class Fifo {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  T& front() { return items_[head_]; }
  // i-th entry from the front.
  T& at(size_t i) { return items_[(head_ + i) & (items_.size() - 1)]; }
  void push_back(const T& item) {
    if (size_ == items_.size()) Grow();
    items_[(head_ + size_) & (items_.size() - 1)] = item;
    ++size_;
  }
  void pop_front() {
    head_ = (head_ + 1) & (items_.size() - 1);
    --size_;
  }

 private:
  void Grow() {
    std::vector<T> bigger(items_.empty() ? 8 : items_.size() * 2);
    for (size_t i = 0; i < size_; ++i) bigger[i] = at(i);
    items_.swap(bigger);
    head_ = 0;
  }
  std::vector<T> items_;  // size is zero or a power of two
  size_t head_ = 0;
  size_t size_ = 0;
};

class ClientThread;

class Connection : public EventHandler {
 public:
  enum class Role : uint8_t { kLoad, kIdle };
  enum class State : uint8_t { kNew, kConnecting, kOpen, kClosed };
  enum class Purpose : uint8_t { kLoad, kPrefill };
  enum class ConnectResult : uint8_t { kOpen, kInProgress, kRetry, kFailed };

  Connection(ClientThread* owner, uint32_t index, Role role);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opens a non-blocking socket, starts connecting and registers with the
  // owner's loop. kRetry: the listener's backlog is full (unix sockets);
  // try again later.
  ConnectResult StartConnect();
  void OnEvents(uint32_t events) override;

  // Queue one request; it leaves on the next Flush(). `intended_ns` is the
  // time latency is measured from; 0 means "when it is written".
  void QueueGet(const uint32_t* keys, size_t count, int64_t intended_ns,
                Purpose purpose);
  void QueueSet(uint32_t key, size_t value_size, int64_t intended_ns,
                Purpose purpose);
  // Writes as much queued output as the socket takes; the rest leaves on
  // EPOLLOUT.
  void Flush();

  uint32_t index() const { return index_; }
  Role role() const { return role_; }
  State state() const { return state_; }
  size_t in_flight() const { return pending_.size(); }

 private:
  struct Pending {
    int64_t intended_ns = 0;
    uint32_t key_count = 0;  // 0 for a set
    bool is_get = false;
    Purpose purpose = Purpose::kLoad;
  };

  void PushPending(const Pending& pending);
  // Gives the requests queued with intended_ns == 0 the current time.
  void StampUnsent();
  void FinishConnect();
  void HandleReadable();
  // Parses and retires every complete reply at the front of `input`;
  // returns how many bytes were consumed. False in *ok if framing is lost.
  size_t ProcessInput(absl::string_view input, int64_t now_ns, bool* ok);
  void RetireReply(const Reply& reply, int64_t now_ns);
  // Checks a retrieval reply against the keys asked for; counts hits.
  bool CheckValues(const Reply& reply, uint32_t key_count, uint64_t* hits);
  void Close(bool count_disconnect);

  ClientThread* const owner_;
  const uint32_t index_;
  const Role role_;
  State state_ = State::kNew;
  int fd_ = -1;
  std::string out_;
  size_t out_offset_ = 0;
  // Unparsed bytes of a reply split across reads (empty between replies).
  std::string in_;
  Fifo<Pending> pending_;
  // Keys of the gets in flight, in order; each Pending owns key_count.
  Fifo<uint32_t> pending_keys_;
  // Entries at the back of pending_ still waiting for a send timestamp.
  size_t unstamped_ = 0;
};

class ClientThread {
 public:
  // `first_load_index` numbers this thread's load connections globally, so
  // open-loop phases spread over all connections of all threads.
  ClientThread(const RunContext& context, int index, int num_load, int num_idle,
               int first_load_index);
  ~ClientThread();
  ClientThread(const ClientThread&) = delete;
  ClientThread& operator=(const ClientThread&) = delete;

  void Start();
  // Stops and joins the worker thread, then counts requests still in flight.
  void Stop();

  // Each runs on the worker thread; `done` runs there once the phase ends.
  void BeginConnect(absl::AnyInvocable<void()> done);
  void BeginPrefill(uint64_t first_key, uint64_t end_key,
                    absl::AnyInvocable<void()> done);
  // Open loop: schedules start at `start_ns`. Closed loop: starts now.
  void BeginLoad(int64_t start_ns);

  // After Stop() only.
  const LoadStats& stats() const { return stats_; }

 private:
  friend class Connection;
  enum class Phase { kSetup, kConnect, kPrefill, kLoad };

  class PaceTimer : public EventHandler {
   public:
    explicit PaceTimer(ClientThread* owner) : owner_(owner) {}
    void OnEvents(uint32_t events) override;

   private:
    ClientThread* owner_;
  };

  // --- called by connections ---
  EventLoop& loop() { return worker_.loop(); }
  const RunContext& context() const { return context_; }
  LoadStats& mutable_stats() { return stats_; }
  // Scratch space for reads and key formatting, shared by the connections
  // of this thread (one callback runs at a time).
  std::string& read_scratch() { return read_scratch_; }
  // Room for `multiget` keys of key_size bytes.
  char* key_scratch() { return key_scratch_.data(); }
  absl::string_view ValueBytes(size_t size) const {
    return absl::string_view(value_bytes_.data(), size);
  }
  void OnConnectDone(Connection* connection, bool ok);
  // The connection has no request in flight any more.
  void OnDrained(Connection* connection);
  void OnClosed(Connection* connection, size_t lost_prefill);

  // --- phases ---
  void StartMoreConnects();
  void MaybeFinishConnect();
  void IssuePrefill(Connection* connection);
  void MaybeFinishPrefill();
  void IssueBatch(Connection* connection);
  void QueueRandomRequest(Connection* connection, int64_t intended_ns);
  void OnPaceTimer();
  void ArmPaceTimer();

  const RunContext context_;
  const int index_;
  const int num_load_;
  const int num_idle_;
  const int first_load_index_;
  Phase phase_ = Phase::kSetup;
  bool stopped_ = false;
  LoadStats stats_;
  Rng rng_;
  KeyChooser key_chooser_;
  std::string read_scratch_;
  std::string key_scratch_;
  std::string value_bytes_;
  std::vector<uint32_t> multiget_keys_;

  // Load connections first, then idle ones.
  std::vector<std::unique_ptr<Connection>> connections_;
  size_t next_connect_ = 0;
  int connects_in_flight_ = 0;
  size_t connects_resolved_ = 0;
  absl::AnyInvocable<void()> phase_done_;

  uint64_t prefill_next_ = 0;
  uint64_t prefill_end_ = 0;
  int prefill_busy_ = 0;  // connections with prefill requests in flight

  std::vector<OpenLoopSchedule> schedules_;  // by load connection index
  SendQueue send_queue_;
  std::vector<Connection*> to_flush_;
  bool connect_retry_armed_ = false;
  int timer_fd_ = -1;
  PaceTimer pace_timer_{this};

  // Declared last: destroyed (stopped and joined) first.
  Worker worker_;
};

}  // namespace loadgen
}  // namespace memshard
