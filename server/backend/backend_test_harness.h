#pragma once

// PoolHarness: a BackendPool running on its own worker thread, as in the
// server, driven from a test's thread.
//
// Thread-compatible: one test thread calls it. Every wait is bounded, so a
// pool that never answers fails the test instead of hanging it. Hand-offs
// between the threads use std::mutex, not absl::Mutex: Debian's absl is not
// built for ThreadSanitizer, which would then report false races.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "core/worker.h"
#include "server/backend/backend_pool.h"

namespace memshard {
namespace backend {

// A reply, owning its bytes, and how long it took.
struct Result {
  BackendStatus status = BackendStatus::kMiss;
  std::string value;
  uint32_t flags = 0;
  uint64_t cas = 0;
  int64_t ttl = kTtlUnknown;
  // Whether Send() refused at once (no reply followed).
  bool refused = false;
  absl::Duration elapsed;
};

// Collects replies by tag (tags are 0..n-1), from the worker thread.
class CollectingSink : public ReplySink {
 public:
  explicit CollectingSink(size_t n);
  void OnBackendReply(uint64_t tag, const BackendReply& reply) override;
  // Worker thread: records a refusal as the answer for `tag`.
  void Refused(uint64_t tag, BackendStatus status);
  // Test thread: waits until every tag is answered. False on timeout.
  bool Wait(absl::Duration timeout);
  std::vector<Result> results();
  size_t answered();
  // How many answers arrived for a tag already answered (must stay 0).
  int duplicates();

 private:
  std::mutex mu_;
  // Signalled when the last tag is answered.
  std::condition_variable all_answered_;
  const absl::Time start_ = absl::Now();
  std::vector<std::optional<Result>> results_ ABSL_GUARDED_BY(mu_);
  size_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  int duplicates_ ABSL_GUARDED_BY(mu_) = 0;
};

class PoolHarness {
 public:
  // Starts a worker with a pool over `options` (workers: 1).
  explicit PoolHarness(BackendOptions options);
  // Stops the worker, then destroys the pool.
  ~PoolHarness();

  // Runs `fn` on the worker thread and waits for it.
  void OnWorker(absl::AnyInvocable<void(BackendPool&)> fn);

  // Sends every request at once (one loop iteration: pipelined) with tags
  // 0..n-1 and `affinity`, and waits up to `timeout` for all replies.
  std::vector<Result> Call(const std::vector<BackendRequest>& requests,
                           uint32_t affinity = 0,
                           absl::Duration timeout = absl::Seconds(10));
  Result Call(const BackendRequest& request, uint32_t affinity = 0,
              absl::Duration timeout = absl::Seconds(10));

  // Repeats Call(request) every 10 ms until `done(result)` or `timeout`.
  // Returns the last result.
  template <typename Pred>
  Result CallUntil(const BackendRequest& request, Pred done,
                   absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    Result r;
    do {
      r = Call(request);
      if (done(r)) return r;
      absl::SleepFor(absl::Milliseconds(10));
    } while (absl::Now() < deadline);
    return r;
  }

  BackendStatsRegistry& stats() { return *stats_; }
  const BackendOptions& options() const { return options_; }

 private:
  BackendOptions options_;
  std::unique_ptr<BackendStatsRegistry> stats_;
  Worker worker_;
  std::unique_ptr<BackendPool> pool_;
  // Sinks live until the pool is gone (a late reply may still arrive).
  std::vector<std::unique_ptr<CollectingSink>> sinks_;
};

// Request builders.
BackendRequest Get(absl::string_view key);
BackendRequest Set(absl::string_view key, absl::string_view value,
                   uint32_t flags = 0, int64_t exptime = 0);
BackendRequest Op(BackendOp op, absl::string_view key);

}  // namespace backend
}  // namespace memshard
