#pragma once

// Notification: a one-shot event one thread waits for and another sets, the
// std::mutex counterpart of absl::Notification for tests.
//
// Why not absl::Notification: Debian's absl is not built with
// ThreadSanitizer, so TSan cannot see the happens-before edge that
// absl::Notification (absl::Mutex inside) creates between Notify() and the
// waiter, and reports races on everything handed over through it.
// std::mutex and std::condition_variable are pthread calls TSan intercepts.
//
// Thread-safe: any thread may call any method. Notify() at most once.

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/time/time.h"

namespace memshard {

class Notification {
 public:
  Notification() = default;
  Notification(const Notification&) = delete;
  Notification& operator=(const Notification&) = delete;

  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
    cv_.notify_all();
  }

  bool HasBeenNotified() const {
    std::lock_guard<std::mutex> lock(mu_);
    return notified_;
  }

  void WaitForNotification() const {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return notified_; });
  }

  // False if `timeout` passed without Notify().
  bool WaitForNotificationWithTimeout(absl::Duration timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [this] { return notified_; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool notified_ = false;
};

}  // namespace memshard
