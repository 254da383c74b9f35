#pragma once

// Per-worker metric blocks and the registry that sums them on read.
//
// Thread-safety: each WorkerMetrics block has exactly one writer, its worker
// thread, which updates with relaxed load+store (no read-modify-write, no
// lock, no shared cache line: blocks are cache-line aligned and separately
// allocated). Any thread may read; a reader sees each counter at some recent
// value. Nothing is summed until somebody asks (stats, /metrics).
//
// `stats reset` never writes a worker's block (that would make two writers):
// the registry instead remembers a baseline of every resettable value, and
// every read through the registry reports the value minus that baseline.
// The baseline is guarded by a mutex that only readers and Reset() take.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "metrics/latency_histogram.h"
#include "metrics/metric_defs.h"

namespace memshard {

// Per-worker counters and gauges (the table's WORKER entries).
enum class Counter : uint8_t {
#define MEMSHARD_METRIC_ENUM(name, help) name,
  MEMSHARD_COUNTERS(MEMSHARD_METRIC_ENUM)
#undef MEMSHARD_METRIC_ENUM
      kCount
};

enum class Gauge : uint8_t {
#define MEMSHARD_METRIC_ENUM(name, help) name,
  MEMSHARD_GAUGES(MEMSHARD_METRIC_ENUM)
#undef MEMSHARD_METRIC_ENUM
      kCount
};

// Every entry of the table, in `stats` order.
enum class Stat : uint8_t {
#define MEMSHARD_METRIC_ENUM(name, kind, source, prometheus, help) name,
  MEMSHARD_STATS(MEMSHARD_METRIC_ENUM)
#undef MEMSHARD_METRIC_ENUM
      kCount
};

enum class LatencyFamily : uint8_t {
#define MEMSHARD_METRIC_ENUM(id, name, help) id,
  MEMSHARD_LATENCY_FAMILIES(MEMSHARD_METRIC_ENUM)
#undef MEMSHARD_METRIC_ENUM
      kCount
};

inline constexpr size_t kNumCounters = static_cast<size_t>(Counter::kCount);
inline constexpr size_t kNumGauges = static_cast<size_t>(Gauge::kCount);
inline constexpr size_t kNumStats = static_cast<size_t>(Stat::kCount);
inline constexpr size_t kNumLatencyFamilies =
    static_cast<size_t>(LatencyFamily::kCount);

enum class StatKind : uint8_t { kCounter, kGauge, kInfo };
enum class StatSource : uint8_t { kWorker, kStore, kServer, kZero };

struct MetricInfo {
  absl::string_view name;
  absl::string_view help;
};

struct StatInfo {
  absl::string_view name;
  StatKind kind;
  StatSource source;
  absl::string_view prometheus;  // "" = not exported
  absl::string_view help;
  // For WORKER entries: the Counter or Gauge index; -1 otherwise.
  int slot;
};

const MetricInfo& CounterInfo(Counter counter);
const MetricInfo& GaugeInfo(Gauge gauge);
const StatInfo& GetStatInfo(Stat stat);
// "get", "set", ...
const MetricInfo& LatencyFamilyInfo(LatencyFamily family);

// Whether `stats reset` clears this entry: counters the server counts
// (WORKER, STORE). Process clocks (uptime, rusage) keep running, as in
// memcached.
inline bool IsResettable(const StatInfo& info) {
  return info.kind == StatKind::kCounter &&
         (info.source == StatSource::kWorker ||
          info.source == StatSource::kStore);
}

class alignas(64) WorkerMetrics {
 public:
  // Owner thread only.
  void Add(Counter c, uint64_t n = 1) {
    auto& v = counters_[static_cast<size_t>(c)];
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Mirrors a count kept elsewhere on the owner thread (e.g. the buffer
  // pool's); the value must not go down.
  void SetCounter(Counter c, uint64_t value) {
    counters_[static_cast<size_t>(c)].store(value, std::memory_order_relaxed);
  }
  void Set(Gauge g, int64_t value) {
    gauges_[static_cast<size_t>(g)].store(value, std::memory_order_relaxed);
  }
  void AddGauge(Gauge g, int64_t delta) {
    auto& v = gauges_[static_cast<size_t>(g)];
    v.store(v.load(std::memory_order_relaxed) + delta,
            std::memory_order_relaxed);
  }
  void RecordLatency(LatencyFamily f, int64_t nanos) {
    latency_[static_cast<size_t>(f)].Record(nanos);
  }

  // Any thread. Raw values, since start (not since `stats reset`).
  uint64_t Get(Counter c) const {
    return counters_[static_cast<size_t>(c)].load(std::memory_order_relaxed);
  }
  int64_t Get(Gauge g) const {
    return gauges_[static_cast<size_t>(g)].load(std::memory_order_relaxed);
  }
  const LatencyHistogram& latency(LatencyFamily f) const {
    return latency_[static_cast<size_t>(f)];
  }

 private:
  std::array<std::atomic<uint64_t>, kNumCounters> counters_{};
  std::array<std::atomic<int64_t>, kNumGauges> gauges_{};
  // LatencyHistogram is cache-line aligned: recording one family never
  // shares a line with the counters or another family's hot fields.
  std::array<LatencyHistogram, kNumLatencyFamilies> latency_;
};

// Owns one block per worker. The set of blocks is fixed at construction.
// Every read below is "since the last Reset()" (since start before any).
class MetricsRegistry {
 public:
  explicit MetricsRegistry(size_t workers);
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  size_t workers() const { return blocks_.size(); }
  WorkerMetrics& worker(size_t index) { return *blocks_[index]; }
  const WorkerMetrics& worker(size_t index) const { return *blocks_[index]; }

  // Sums every worker's block (any thread).
  uint64_t Sum(Counter c) const;
  int64_t Sum(Gauge g) const;
  // One worker's value.
  uint64_t Get(size_t worker, Counter c) const;

  // Latency samples of one family, merged over all workers (or of one
  // worker). Returns a fresh histogram (30 KiB, so on the heap).
  std::unique_ptr<LatencyHistogram> Latency(LatencyFamily f) const;
  std::unique_ptr<LatencyHistogram> WorkerLatency(size_t worker,
                                                  LatencyFamily f) const;
  // Requests one worker executed (every family).
  uint64_t WorkerOps(size_t worker) const;

  // A resettable value kept outside the blocks (source STORE): `raw` minus
  // its value at the last Reset().
  uint64_t SinceReset(Stat stat, uint64_t raw) const;

  // `stats reset`: from now on every counter, histogram and resettable
  // outside value reads as if it started now. `raw` gives the current value
  // of each resettable non-WORKER entry. Any thread.
  void Reset(absl::FunctionRef<uint64_t(Stat)> raw);

 private:
  struct Baseline {
    // Per worker: counters and histograms as they were at the reset.
    std::vector<std::array<uint64_t, kNumCounters>> counters;
    std::vector<std::unique_ptr<LatencyHistogram>> latency;  // [w * F + f]
    std::array<uint64_t, kNumStats> outside{};
  };

  std::vector<std::unique_ptr<WorkerMetrics>> blocks_;
  // std::mutex rather than absl::Mutex: Debian's absl is built without
  // ThreadSanitizer hooks, so --config=tsan would not see absl's locking.
  mutable std::mutex mu_;
  // Null until the first Reset().
  std::unique_ptr<Baseline> baseline_ ABSL_GUARDED_BY(mu_);
};

}  // namespace memshard
