#include "core/event_loop.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace memshard {
namespace {

constexpr int kMaxEventsPerWait = 256;

// The wake eventfd and the timerfd are registered with these markers
// instead of handlers (never dereferenced).
EventHandler* const kWakeMarker = nullptr;
char timer_marker_tag;
EventHandler* const kTimerMarker =
    reinterpret_cast<EventHandler*>(&timer_marker_tag);

// Set by the pthread_atfork prepare handler, in the parent before any
// fork: a close() after reading false cannot race a fork whose child
// inherits the fd, except in the instant between the load and the close.
std::atomic<bool> forked_ever{false};

void NoteFork() { forked_ever.store(true, std::memory_order_seq_cst); }

// Registered before main() runs (static initialisation), so no fork is
// missed.
const int kAtforkRegistered = pthread_atfork(&NoteFork, nullptr, nullptr);

absl::Status ErrnoStatus(const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace

bool EventLoop::ForkedEver() {
  (void)kAtforkRegistered;
  return forked_ever.load(std::memory_order_seq_cst);
}

EventLoop::EventLoop()
    : now_unix_ns_(clock_.Now()), events_(kMaxEventsPerWait) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  PCHECK(epoll_fd_ >= 0) << "epoll_create1";
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  PCHECK(wake_fd_ >= 0) << "eventfd";
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = kWakeMarker;
  PCHECK(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) == 0);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  PCHECK(timer_fd_ >= 0) << "timerfd_create";
  ev.events = EPOLLIN;
  ev.data.ptr = kTimerMarker;
  PCHECK(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) == 0);
}

EventLoop::~EventLoop() {
  deferred_.clear();
  close(timer_fd_);
  close(wake_fd_);
  close(epoll_fd_);
}

absl::Status EventLoop::Add(int fd, uint32_t events, EventHandler* handler) {
  DCHECK(handler != nullptr);
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return ErrnoStatus("epoll_ctl(ADD)");
  }
  return absl::OkStatus();
}

absl::Status EventLoop::Modify(int fd, uint32_t events, EventHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
    return ErrnoStatus("epoll_ctl(MOD)");
  }
  return absl::OkStatus();
}

void EventLoop::Remove(int fd) {
  // Closing the fd also removes it; ENOENT/EBADF here are harmless.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::AddTimer(absl::Duration delay,
                                       absl::AnyInvocable<void()> task) {
  TimerId id = next_timer_id_++;
  timer_heap_.push(Timer{absl::FromUnixNanos(clock_.Now()) + delay, id});
  timers_.emplace(id, std::move(task));
  return id;
}

void EventLoop::CancelTimer(TimerId id) { timers_.erase(id); }

void EventLoop::Post(absl::AnyInvocable<void()> task) {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_.push_back(std::move(task));
  }
  Wake();
}

void EventLoop::Wake() {
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;
}

void EventLoop::RunSoon(absl::AnyInvocable<void()> task) {
  soon_.push_back(std::move(task));
}

void EventLoop::DeleteLater(std::unique_ptr<Deletable> object) {
  deferred_.push_back(std::move(object));
}

void EventLoop::AddEpochHook(absl::AnyInvocable<void()> hook) {
  epoch_hooks_.push_back(std::move(hook));
}

void EventLoop::Stop() {
  stop_requested_.store(true, std::memory_order_release);
  Wake();
}

void EventLoop::Run() {
  running_ = true;
  while (!stop_requested_.load(std::memory_order_acquire)) RunOnce();
  // Tasks posted before Stop() still run; nothing is silently dropped.
  RunPosted();
  deferred_.clear();
  running_ = false;
}

void EventLoop::ArmTimerFd() {
  // Already armed for the front timer (the usual case, checked without a
  // lookup): if it was cancelled meanwhile, the timerfd fires early once.
  if (!timer_heap_.empty() && armed_for_ != absl::InfiniteFuture() &&
      timer_heap_.top().id == armed_id_) {
    return;
  }
  // Cancelled timers at the front would only cause an early wake-up.
  while (!timer_heap_.empty() && !timers_.contains(timer_heap_.top().id)) {
    timer_heap_.pop();
  }
  const absl::Time next =
      timer_heap_.empty() ? absl::InfiniteFuture() : timer_heap_.top().when;
  armed_id_ = timer_heap_.empty() ? 0 : timer_heap_.top().id;
  if (next == armed_for_) return;
  armed_for_ = next;
  itimerspec spec{};  // all zero: disarm
  if (next != absl::InfiniteFuture()) {
    // Never zero, which would disarm: a due timer fires at once.
    const absl::Duration wait = std::max(
        next - absl::FromUnixNanos(clock_.Now()), absl::Nanoseconds(1));
    spec.it_value = absl::ToTimespec(wait);
  }
  PCHECK(timerfd_settime(timer_fd_, 0, &spec, nullptr) == 0)
      << "timerfd_settime";
}

void EventLoop::RunOnce() {
  ArmTimerFd();
  // Work left for the next iteration: poll, do not block.
  const int timeout = deferred_.empty() && soon_.empty() ? -1 : 0;
  // Not glibc's epoll_wait(): it is a thread cancellation point, with two
  // atomic read-modify-writes around the call; loops are never cancelled.
  int n = static_cast<int>(syscall(SYS_epoll_wait, epoll_fd_, events_.data(),
                                   static_cast<int>(events_.size()), timeout));
  if (n < 0) {
    PCHECK(errno == EINTR) << "epoll_wait";
    n = 0;
  }
  now_unix_ns_ = clock_.Now();
  ++epoch_;
  // Tasks deferred by the previous iteration run before this one's events.
  running_soon_.swap(soon_);
  for (auto& task : running_soon_) task();
  running_soon_.clear();
  if (n > 1) {
    for (int i = 0; i < n; ++i) {
      auto* handler = static_cast<EventHandler*>(events_[i].data.ptr);
      if (handler != kWakeMarker && handler != kTimerMarker) {
        handler->PrepareEvents(events_[i].events);
      }
    }
  }
  bool woken = false;
  for (int i = 0; i < n; ++i) {
    auto* handler = static_cast<EventHandler*>(events_[i].data.ptr);
    if (handler == kWakeMarker) {
      woken = true;
      continue;
    }
    if (handler == kTimerMarker) {
      uint64_t expirations;
      ssize_t r = read(timer_fd_, &expirations, sizeof(expirations));
      (void)r;
      armed_for_ = absl::InfiniteFuture();  // fired: arm again when needed
      continue;
    }
    handler->OnEvents(events_[i].events);
  }
  if (woken) {
    uint64_t count;
    ssize_t r = read(wake_fd_, &count, sizeof(count));
    (void)r;
    RunPosted();
  }
  RunTimers();
  for (auto& hook : epoch_hooks_) hook();
  deferred_.clear();
}

void EventLoop::RunPosted() {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    running_tasks_.swap(posted_);
  }
  for (auto& task : running_tasks_) task();
  running_tasks_.clear();
}

void EventLoop::RunTimers() {
  // The iteration's time, not a fresh clock read: a timer that falls due
  // while this iteration runs fires in the next one (the timerfd is armed
  // for it).
  const absl::Time iteration_time = now();
  while (!timer_heap_.empty() && timer_heap_.top().when <= iteration_time) {
    TimerId id = timer_heap_.top().id;
    timer_heap_.pop();
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    absl::AnyInvocable<void()> task = std::move(it->second);
    timers_.erase(it);
    task();
  }
}

}  // namespace memshard
