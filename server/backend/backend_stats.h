#pragma once

// Per-backend statistics, one block per (worker, backend).
//
// Thread-safety: a block has one writer, the worker that owns the backend's
// connections, which updates with relaxed load+store (no read-modify-write,
// no lock). Any thread may read; BackendStatsRegistry sums the workers'
// blocks on read (`stats backends`, /metrics). Blocks are cache-line aligned
// so two workers never write the same line.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "server/backend/backend_options.h"

namespace memshard {
namespace backend {

// Ordered from best to worst: a summary over workers shows the worst.
enum class BackendState : uint8_t { kUp = 0, kDown = 1, kEjected = 2 };

absl::string_view BackendStateName(BackendState state);

// Round-trip times in microseconds, log-linear: exact below 16 us, then 16
// buckets per power of two (<= 6.25% wide), up to 2^36 us.
class RoundTripHistogram {
 public:
  static constexpr int kSubBits = 4;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMaxExponent = 35;
  static constexpr size_t kBuckets =
      kSub + (kMaxExponent - kSubBits + 1) * kSub;

  static size_t BucketIndex(uint64_t micros);
  static uint64_t BucketLower(size_t index);

  // Owner thread.
  void Record(uint64_t micros) {
    auto& b = buckets_[BucketIndex(micros)];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  // Any thread.
  uint64_t bucket(size_t index) const {
    return buckets_[index].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
};

class alignas(64) BackendStats {
 public:
  // Owner thread.
  void AddRequest() { Bump(requests_); }
  void AddError() { Bump(errors_); }
  void AddTimeout() { Bump(timeouts_); }
  void AddEjection() { Bump(ejections_); }
  void AddInFlight(int64_t delta) {
    in_flight_.store(in_flight_.load(std::memory_order_relaxed) + delta,
                     std::memory_order_relaxed);
  }
  void SetState(BackendState state) {
    state_.store(static_cast<uint8_t>(state), std::memory_order_relaxed);
  }
  void RecordRoundTrip(absl::Duration rtt) {
    int64_t us = absl::ToInt64Microseconds(rtt);
    rtt_.Record(us < 0 ? 0 : static_cast<uint64_t>(us));
  }

  // Any thread.
  uint64_t requests() const { return Load(requests_); }
  uint64_t errors() const { return Load(errors_); }
  uint64_t timeouts() const { return Load(timeouts_); }
  uint64_t ejections() const { return Load(ejections_); }
  int64_t in_flight() const {
    return in_flight_.load(std::memory_order_relaxed);
  }
  BackendState state() const {
    return static_cast<BackendState>(state_.load(std::memory_order_relaxed));
  }
  const RoundTripHistogram& rtt() const { return rtt_; }

 private:
  static void Bump(std::atomic<uint64_t>& v) {
    v.store(v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  static uint64_t Load(const std::atomic<uint64_t>& v) {
    return v.load(std::memory_order_relaxed);
  }

  std::atomic<uint64_t> requests_{0};   // requests submitted
  std::atomic<uint64_t> errors_{0};     // answered unavailable or busy
  std::atomic<uint64_t> timeouts_{0};   // answered timeout
  std::atomic<uint64_t> ejections_{0};  // times taken out of the ring
  std::atomic<int64_t> in_flight_{0};   // sent, not yet answered
  std::atomic<uint8_t> state_{0};
  RoundTripHistogram rtt_;
};

// What `stats backends` shows for one backend, summed over workers.
struct BackendSummary {
  BackendState state = BackendState::kUp;  // the worst worker's view
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t timeouts = 0;
  uint64_t ejections = 0;
  int64_t in_flight = 0;
  uint64_t rtt_count = 0;
  uint64_t rtt_p50_us = 0;
  uint64_t rtt_p99_us = 0;
};

// Owns every (worker, backend) block. The shape is fixed at construction.
class BackendStatsRegistry {
 public:
  BackendStatsRegistry(int workers, int backends);

  int workers() const { return workers_; }
  int backends() const { return backends_; }
  // The owner is worker `worker`.
  BackendStats& at(int worker, int backend) {
    return *blocks_[static_cast<size_t>(worker * backends_ + backend)];
  }
  const BackendStats& at(int worker, int backend) const {
    return *blocks_[static_cast<size_t>(worker * backends_ + backend)];
  }

  // Any thread.
  BackendSummary Summarize(int backend) const;

 private:
  const int workers_;
  const int backends_;
  std::vector<std::unique_ptr<BackendStats>> blocks_;
};

// What `stats backends` shows: ("backend:<i>:<field>", value) for every
// backend and field (address, weight, state, requests, errors, timeouts,
// ejections, in_flight, rtt_p50_us, rtt_p99_us).
std::vector<std::pair<std::string, std::string>> BackendStatLines(
    const BackendStatsRegistry& registry,
    const std::vector<BackendAddress>& addresses);

// The same as "STAT <name> <value>\r\n" lines, without the final "END".
std::string FormatBackendStats(const BackendStatsRegistry& registry,
                               const std::vector<BackendAddress>& addresses);

}  // namespace backend
}  // namespace memshard
