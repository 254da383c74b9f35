#pragma once

// EventLoop: one epoll instance driven by one thread (the owner).
//
// Thread-safety: every method is owner-thread only, except Post() and Stop(),
// which any thread may call. Callbacks run on the owner thread.
//
// One iteration of Run() is an epoch: wait for events, dispatch them, run
// posted tasks and due timers, then run the epoch hooks and destroy what was
// handed to DeleteLater(). So an object may schedule its own deletion from
// inside its callback and stays valid until that callback returns.
//
// Timers are kept in a heap and delivered through one timerfd, armed for the
// earliest deadline only when that changes, so epoll_wait always blocks
// without a timeout: a timeout would make the kernel arm and cancel a
// high-resolution timer on every idle wait (in a VM, a timer-device exit
// each time), which with many mostly idle connections is once per request.

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/loop_clock.h"

namespace memshard {

// Something the loop may destroy at the end of an iteration.
class Deletable {
 public:
  virtual ~Deletable() = default;
};

// Receives readiness for one file descriptor. A handler is Deletable, so an
// object that is both needs one vtable pointer, not two (a client
// connection's size matters when there are tens of thousands).
class EventHandler : public Deletable {
 public:
  // `events` is the epoll mask (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, ...).
  virtual void OnEvents(uint32_t events) = 0;
  // Called for each handler of an epoll batch of two or more events, with
  // its events, before any handler of the batch gets OnEvents: a chance to
  // start work whose latency the rest of the batch can hide (a connection
  // reads its request and prefetches its keys). OnEvents follows in the
  // same iteration.
  virtual void PrepareEvents(uint32_t events) {}
};

class EventLoop {
 public:
  using TimerId = uint64_t;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registers `fd` for `events` (EPOLLET is the caller's choice). `handler`
  // must outlive the registration.
  absl::Status Add(int fd, uint32_t events, EventHandler* handler);
  absl::Status Modify(int fd, uint32_t events, EventHandler* handler);
  void Remove(int fd);
  // Call right before close(fd) of a registered fd, instead of Remove():
  // close() itself drops the registration, so this costs no syscall,
  // unless the process has ever forked. A forked child that still holds
  // the descriptor (until its exec, for close-on-exec fds) keeps the
  // registration alive, and its events would reach a deleted handler;
  // then this removes explicitly. (The worker path closes one connection
  // per three requests in S4: the epoll_ctl was a tenth of its syscalls.)
  void RemoveBeforeClose(int fd) {
    if (ForkedEver()) Remove(fd);
  }
  // True once any thread of this process has called fork() (or anything
  // that runs the pthread_atfork handlers).
  static bool ForkedEver();

  // Runs `task` once, on the owner thread, after `delay`.
  TimerId AddTimer(absl::Duration delay, absl::AnyInvocable<void()> task);
  // No-op if the timer already ran or was cancelled.
  void CancelTimer(TimerId id);

  // Owner thread: runs `task` in the next iteration, after an epoll poll
  // that does not block. For work cut short by a fairness budget.
  void RunSoon(absl::AnyInvocable<void()> task);

  // Any thread: runs `task` on the owner thread soon (wakes the loop).
  void Post(absl::AnyInvocable<void()> task);

  // Destroys `object` at the end of the current iteration.
  void DeleteLater(std::unique_ptr<Deletable> object);

  // Runs `hook` at the end of every iteration (epoch boundary), in order of
  // registration.
  void AddEpochHook(absl::AnyInvocable<void()> hook);

  // Loops until Stop(). Returns after the iteration that saw the stop.
  void Run();
  // Any thread.
  void Stop();

  // Time sampled once per iteration (cheap to read often).
  absl::Time now() const { return absl::FromUnixNanos(now_unix_ns_); }
  // The same instant as now(), in nanoseconds since the Unix epoch: for the
  // request path, where absl::ToUnixNanos(now()) per request (~35
  // instructions, an out-of-line call) added up.
  int64_t now_unix_ns() const { return now_unix_ns_; }

  // Owner thread: a fresh reading of the clock now() samples, in
  // nanoseconds since the Unix epoch (LoopClock: ~25 ns, no memory touched
  // on most reads). For timing work inside an iteration.
  int64_t FreshNanos() { return clock_.Now(); }
  uint64_t epoch() const { return epoch_; }

 private:
  struct Timer {
    absl::Time when;
    TimerId id;
    bool operator>(const Timer& other) const {
      return when != other.when ? when > other.when : id > other.id;
    }
  };

  void RunOnce();
  void RunPosted();
  void RunTimers();
  // Arms the timerfd for the earliest live timer (or disarms it) if that
  // is not what it is armed for already.
  void ArmTimerFd();
  void Wake();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int timer_fd_ = -1;
  // The deadline timer_fd_ is armed for; InfiniteFuture() when disarmed or
  // once it has fired.
  absl::Time armed_for_ = absl::InfiniteFuture();
  TimerId armed_id_ = 0;  // the timer whose deadline that is
  bool running_ = false;
  LoopClock clock_;
  int64_t now_unix_ns_ = 0;  // now(), in nanoseconds since the Unix epoch
  uint64_t epoch_ = 0;

  std::vector<epoll_event> events_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>>
      timer_heap_;
  // Pending timers by id; cancellation erases here and the heap entry is
  // skipped when it surfaces.
  absl::flat_hash_map<TimerId, absl::AnyInvocable<void()>> timers_;
  TimerId next_timer_id_ = 1;

  std::vector<absl::AnyInvocable<void()>> soon_;
  std::vector<absl::AnyInvocable<void()>> running_soon_;
  std::vector<absl::AnyInvocable<void()>> epoch_hooks_;
  std::vector<std::unique_ptr<Deletable>> deferred_;

  std::atomic<bool> stop_requested_{false};
  // std::mutex, not absl::Mutex: Debian's libabsl is not built for
  // ThreadSanitizer, which then cannot see absl::Mutex order anything and
  // reports every Post() as a race (--config=tsan).
  std::mutex post_mu_;
  std::vector<absl::AnyInvocable<void()>> posted_;  // guarded by post_mu_
  std::vector<absl::AnyInvocable<void()>> running_tasks_;  // owner only
};

}  // namespace memshard
