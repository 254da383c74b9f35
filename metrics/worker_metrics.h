#pragma once

// Per-worker metric blocks and the registry that sums them on read.
//
// Thread-safety: each WorkerMetrics block has exactly one writer, its worker
// thread, which updates with relaxed load+store (no read-modify-write, no
// lock, no shared cache line: blocks are cache-line aligned). Any thread may
// read; a reader sees each counter's value at some recent point. Nothing is
// summed until somebody asks (stats, /metrics).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "metrics/metric_defs.h"

namespace memshard {

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

inline constexpr size_t kNumCounters = static_cast<size_t>(Counter::kCount);
inline constexpr size_t kNumGauges = static_cast<size_t>(Gauge::kCount);

struct MetricInfo {
  absl::string_view name;
  absl::string_view help;
};

const MetricInfo& CounterInfo(Counter counter);
const MetricInfo& GaugeInfo(Gauge gauge);

class alignas(64) WorkerMetrics {
 public:
  // Owner thread only.
  void Add(Counter c, uint64_t n = 1) {
    auto& v = counters_[static_cast<size_t>(c)];
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void Set(Gauge g, int64_t value) {
    gauges_[static_cast<size_t>(g)].store(value, std::memory_order_relaxed);
  }
  void AddGauge(Gauge g, int64_t delta) {
    auto& v = gauges_[static_cast<size_t>(g)];
    v.store(v.load(std::memory_order_relaxed) + delta,
            std::memory_order_relaxed);
  }

  // Any thread.
  uint64_t Get(Counter c) const {
    return counters_[static_cast<size_t>(c)].load(std::memory_order_relaxed);
  }
  int64_t Get(Gauge g) const {
    return gauges_[static_cast<size_t>(g)].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<uint64_t>, kNumCounters> counters_{};
  std::array<std::atomic<int64_t>, kNumGauges> gauges_{};
};

// Owns one block per worker. The set of blocks is fixed at construction.
class MetricsRegistry {
 public:
  explicit MetricsRegistry(size_t workers);

  size_t workers() const { return blocks_.size(); }
  WorkerMetrics& worker(size_t index) { return *blocks_[index]; }
  const WorkerMetrics& worker(size_t index) const { return *blocks_[index]; }

  // Sums every worker's block (any thread).
  uint64_t Sum(Counter c) const;
  int64_t Sum(Gauge g) const;

 private:
  std::vector<std::unique_ptr<WorkerMetrics>> blocks_;
};

}  // namespace memshard
