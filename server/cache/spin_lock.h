// SpinLock: a one-word lock for the cache's stripe critical sections.
//
// Thread-safety: Lock()/Unlock() may be called from any thread; not
// reentrant. The critical sections it guards are a few hundred nanoseconds
// long, never block and never make syscalls, and there are far more stripes
// than threads, so contention is rare. Under contention it spins with a CPU
// pause hint and then yields, so a waiter does not burn its whole time slice
// when the holder was preempted (more threads than cores).
//
// Why not absl::Mutex: Debian's Abseil is not built with ThreadSanitizer
// annotations, so TSAN cannot see its happens-before edges and reports false
// races; a lock made of std::atomic is visible to TSAN, is one byte instead of
// eight, and is as cheap uncontended.
#pragma once

#include <sched.h>

#include <atomic>

#include "absl/base/thread_annotations.h"

namespace memshard::cache {

class ABSL_LOCKABLE SpinLock {
 public:
  SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    LockSlow();
  }

  void Unlock() ABSL_UNLOCK_FUNCTION() {
    locked_.store(false, std::memory_order_release);
  }

 private:
  static constexpr int kSpinsBeforeYield = 128;

  static void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  void LockSlow() {
    int spins = 0;
    for (;;) {
      // Test before test-and-set: spinning on a load keeps the cache line
      // shared instead of bouncing it between waiters.
      while (locked_.load(std::memory_order_relaxed)) {
        if (spins < kSpinsBeforeYield) {
          ++spins;
          CpuRelax();
        } else {
          sched_yield();
        }
      }
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
    }
  }

  std::atomic<bool> locked_{false};
};

// RAII holder, the SpinLock analogue of absl::MutexLock.
class ABSL_SCOPED_LOCKABLE SpinLockHolder {
 public:
  explicit SpinLockHolder(SpinLock* lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock)
      : lock_(lock) {
    lock_->Lock();
  }
  ~SpinLockHolder() ABSL_UNLOCK_FUNCTION() { lock_->Unlock(); }

  SpinLockHolder(const SpinLockHolder&) = delete;
  SpinLockHolder& operator=(const SpinLockHolder&) = delete;

 private:
  SpinLock* const lock_;
};

}  // namespace memshard::cache
