#pragma once

// Worker: one thread, optionally pinned to a CPU, running one EventLoop and
// owning one BufferPool. Everything a worker owns is touched only by its own
// thread; the single cross-thread door is Post().
//
// Thread-safety: Start(), Stop() and Join() from the controlling thread;
// Post() from any thread; loop() and pool() only from the worker's thread
// (or before Start()/after Join()).

#include <functional>
#include <thread>

#include "absl/functional/any_invocable.h"
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
};

}  // namespace memshard
