#include "core/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace memshard {
namespace {

constexpr int kMaxEventsPerWait = 256;

// The wake eventfd is registered with this marker instead of a handler.
EventHandler* const kWakeMarker = nullptr;

absl::Status ErrnoStatus(const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace

EventLoop::EventLoop() : now_(absl::Now()), events_(kMaxEventsPerWait) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  PCHECK(epoll_fd_ >= 0) << "epoll_create1";
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  PCHECK(wake_fd_ >= 0) << "eventfd";
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = kWakeMarker;
  PCHECK(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) == 0);
}

EventLoop::~EventLoop() {
  deferred_.clear();
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
  timer_heap_.push(Timer{absl::Now() + delay, id});
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

int EventLoop::NextTimeoutMs() const {
  if (!deferred_.empty() || !soon_.empty()) return 0;
  // Skip cancelled heads lazily in RunTimers; here a cancelled head only
  // makes us wake early once.
  if (timer_heap_.empty()) return -1;
  absl::Duration wait = timer_heap_.top().when - absl::Now();
  if (wait <= absl::ZeroDuration()) return 0;
  // Round up so we never wake before the timer is due.
  return static_cast<int>(
      absl::ToInt64Milliseconds(wait + absl::Microseconds(999)));
}

void EventLoop::RunOnce() {
  int n = epoll_wait(epoll_fd_, events_.data(),
                     static_cast<int>(events_.size()), NextTimeoutMs());
  if (n < 0) {
    PCHECK(errno == EINTR) << "epoll_wait";
    n = 0;
  }
  now_ = absl::Now();
  ++epoch_;
  // Tasks deferred by the previous iteration run before this one's events.
  running_soon_.swap(soon_);
  for (auto& task : running_soon_) task();
  running_soon_.clear();
  bool woken = false;
  for (int i = 0; i < n; ++i) {
    auto* handler = static_cast<EventHandler*>(events_[i].data.ptr);
    if (handler == kWakeMarker) {
      woken = true;
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
  if (timer_heap_.empty()) return;
  absl::Time now = absl::Now();
  while (!timer_heap_.empty() && timer_heap_.top().when <= now) {
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
