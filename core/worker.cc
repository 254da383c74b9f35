#include "core/worker.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace memshard {

Worker::Worker(int index, int cpu, size_t buffer_size)
    : index_(index), cpu_(cpu), pool_(buffer_size) {
  loop_.AddEpochHook([this] { pool_.OnEpoch(); });
}

Worker::~Worker() {
  if (thread_.joinable()) {
    Stop();
    Join();
  }
}

void Worker::Start(absl::AnyInvocable<void()> on_start) {
  last_check_in_ns_.store(absl::ToUnixNanos(absl::Now()),
                          std::memory_order_relaxed);
  thread_ = std::thread([this, on_start = std::move(on_start)]() mutable {
    std::string name = absl::StrCat("worker", index_);
    pthread_setname_np(pthread_self(), name.c_str());
    if (cpu_ >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu_, &set);
      int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      if (rc != 0) {
        LOG(WARNING) << name << ": cannot pin to cpu " << cpu_ << ": "
                     << strerror(rc);
      }
    }
    if (on_start) on_start();
    loop_.Run();
  });
}

void Worker::RequestCheckIn() {
  loop_.Post([this] {
    last_check_in_ns_.store(absl::ToUnixNanos(absl::Now()),
                            std::memory_order_relaxed);
  });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace memshard
