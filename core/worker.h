#pragma once

// Worker: one thread, optionally pinned to a CPU, running one EventLoop and
// owning one BufferPool. Everything a worker owns is touched only by its own
// thread; the single cross-thread door is Post().
//
// Thread-safety: Start(), Stop() and Join() from the controlling thread;
// Post(), RequestCheckIn() and last_check_in() from any thread; loop() and
// pool() only from the worker's thread (or before Start()/after Join()).
//
// Liveness: RequestCheckIn() posts a task that stamps the time; a supervisor
// that asks regularly and finds a stale stamp knows the loop is stuck (a
// busy or blocked callback), which an idle loop never is.

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "core/buffer_pool.h"
#include "core/event_loop.h"

namespace memshard {

class Worker {
 public:
  // `cpu` < 0: not pinned.
  Worker(int index, int cpu,
         size_t buffer_size = BufferPool::kDefaultBufferSize);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread: pins it, then runs `on_start` on it, then the loop.
  void Start(absl::AnyInvocable<void()> on_start);
  void Post(absl::AnyInvocable<void()> task) { loop_.Post(std::move(task)); }
  void Stop() { loop_.Stop(); }
  void Join();

  // Any thread: asks the loop to record that it ran (see last_check_in()).
  void RequestCheckIn();
  // Any thread: when the loop last answered RequestCheckIn(), or when
  // Start() was called if it has not answered yet.
  absl::Time last_check_in() const {
    return absl::FromUnixNanos(
        last_check_in_ns_.load(std::memory_order_relaxed));
  }

  int index() const { return index_; }
  int cpu() const { return cpu_; }
  EventLoop& loop() { return loop_; }
  BufferPool& pool() { return pool_; }

 private:
  const int index_;
  const int cpu_;
  EventLoop loop_;
  BufferPool pool_;
  std::thread thread_;
  // Written by the worker thread (and by Start()), read by anyone.
  std::atomic<int64_t> last_check_in_ns_{0};
};

}  // namespace memshard
