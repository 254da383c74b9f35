#include "metrics/worker_metrics.h"

namespace memshard {
namespace {

constexpr MetricInfo kCounterInfo[] = {
#define MEMSHARD_METRIC_INFO(name, help) {#name, help},
    MEMSHARD_COUNTERS(MEMSHARD_METRIC_INFO)
#undef MEMSHARD_METRIC_INFO
};

constexpr MetricInfo kGaugeInfo[] = {
#define MEMSHARD_METRIC_INFO(name, help) {#name, help},
    MEMSHARD_GAUGES(MEMSHARD_METRIC_INFO)
#undef MEMSHARD_METRIC_INFO
};

}  // namespace

const MetricInfo& CounterInfo(Counter counter) {
  return kCounterInfo[static_cast<size_t>(counter)];
}

const MetricInfo& GaugeInfo(Gauge gauge) {
  return kGaugeInfo[static_cast<size_t>(gauge)];
}

MetricsRegistry::MetricsRegistry(size_t workers) {
  blocks_.reserve(workers);
  for (size_t i = 0; i < workers; ++i) {
    blocks_.push_back(std::make_unique<WorkerMetrics>());
  }
}

uint64_t MetricsRegistry::Sum(Counter c) const {
  uint64_t total = 0;
  for (const auto& block : blocks_) total += block->Get(c);
  return total;
}

int64_t MetricsRegistry::Sum(Gauge g) const {
  int64_t total = 0;
  for (const auto& block : blocks_) total += block->Get(g);
  return total;
}

}  // namespace memshard
