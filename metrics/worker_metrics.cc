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

constexpr MetricInfo kLatencyFamilyInfo[] = {
#define MEMSHARD_METRIC_INFO(id, name, help) {name, help},
    MEMSHARD_LATENCY_FAMILIES(MEMSHARD_METRIC_INFO)
#undef MEMSHARD_METRIC_INFO
};

// The table's kind/source words as enums.
constexpr StatKind COUNTER = StatKind::kCounter;
constexpr StatKind GAUGE = StatKind::kGauge;
constexpr StatKind INFO = StatKind::kInfo;
constexpr StatSource WORKER = StatSource::kWorker;
constexpr StatSource STORE = StatSource::kStore;
constexpr StatSource SERVER = StatSource::kServer;
constexpr StatSource ZERO = StatSource::kZero;

// The Counter or Gauge slot of a WORKER entry, found by name at compile
// time (the enums above list the same names in the same order).
constexpr bool SameName(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

constexpr int SlotOf(const char* name, StatKind kind, StatSource source) {
  if (source != StatSource::kWorker) return -1;
  const MetricInfo* infos =
      kind == StatKind::kCounter ? kCounterInfo : kGaugeInfo;
  const size_t n = kind == StatKind::kCounter ? kNumCounters : kNumGauges;
  for (size_t i = 0; i < n; ++i) {
    if (SameName(infos[i].name.data(), name)) return static_cast<int>(i);
  }
  return -2;  // unreachable: the filters pick every WORKER entry
}

constexpr StatInfo kStatInfo[] = {
#define MEMSHARD_METRIC_INFO(name, kind, source, prometheus, help) \
  {#name, kind, source, prometheus, help, SlotOf(#name, kind, source)},
    MEMSHARD_STATS(MEMSHARD_METRIC_INFO)
#undef MEMSHARD_METRIC_INFO
};

static_assert(sizeof(kStatInfo) / sizeof(kStatInfo[0]) == kNumStats);

constexpr bool EveryWorkerStatHasASlot() {
  for (const StatInfo& info : kStatInfo) {
    if (info.source == StatSource::kWorker && info.slot < 0) return false;
    if (info.source == StatSource::kWorker && info.kind == StatKind::kInfo) {
      return false;
    }
  }
  return true;
}
static_assert(EveryWorkerStatHasASlot(),
              "a WORKER entry must be a COUNTER or GAUGE");

uint64_t Minus(uint64_t now, uint64_t then) {
  return now > then ? now - then : 0;
}

}  // namespace

const MetricInfo& CounterInfo(Counter counter) {
  return kCounterInfo[static_cast<size_t>(counter)];
}

const MetricInfo& GaugeInfo(Gauge gauge) {
  return kGaugeInfo[static_cast<size_t>(gauge)];
}

const StatInfo& GetStatInfo(Stat stat) {
  return kStatInfo[static_cast<size_t>(stat)];
}

const MetricInfo& LatencyFamilyInfo(LatencyFamily family) {
  return kLatencyFamilyInfo[static_cast<size_t>(family)];
}

MetricsRegistry::MetricsRegistry(size_t workers) {
  blocks_.reserve(workers);
  for (size_t i = 0; i < workers; ++i) {
    blocks_.push_back(std::make_unique<WorkerMetrics>());
  }
}

uint64_t MetricsRegistry::Sum(Counter c) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (size_t w = 0; w < blocks_.size(); ++w) {
    uint64_t value = blocks_[w]->Get(c);
    if (baseline_ != nullptr) {
      value = Minus(value, baseline_->counters[w][static_cast<size_t>(c)]);
    }
    total += value;
  }
  return total;
}

int64_t MetricsRegistry::Sum(Gauge g) const {
  int64_t total = 0;
  for (const auto& block : blocks_) total += block->Get(g);
  return total;
}

uint64_t MetricsRegistry::Get(size_t worker, Counter c) const {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t value = blocks_[worker]->Get(c);
  if (baseline_ == nullptr) return value;
  return Minus(value, baseline_->counters[worker][static_cast<size_t>(c)]);
}

std::unique_ptr<LatencyHistogram> MetricsRegistry::WorkerLatency(
    size_t worker, LatencyFamily f) const {
  auto h = std::make_unique<LatencyHistogram>(blocks_[worker]->latency(f));
  std::lock_guard<std::mutex> lock(mu_);
  if (baseline_ != nullptr) {
    h->Subtract(*baseline_->latency[worker * kNumLatencyFamilies +
                                    static_cast<size_t>(f)]);
  }
  return h;
}

std::unique_ptr<LatencyHistogram> MetricsRegistry::Latency(
    LatencyFamily f) const {
  auto merged = std::make_unique<LatencyHistogram>();
  for (size_t w = 0; w < blocks_.size(); ++w) {
    merged->Merge(*WorkerLatency(w, f));
  }
  return merged;
}

uint64_t MetricsRegistry::WorkerOps(size_t worker) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (size_t f = 0; f < kNumLatencyFamilies; ++f) {
    uint64_t n =
        blocks_[worker]->latency(static_cast<LatencyFamily>(f)).count();
    if (baseline_ != nullptr) {
      n = Minus(n,
                baseline_->latency[worker * kNumLatencyFamilies + f]->count());
    }
    total += n;
  }
  return total;
}

uint64_t MetricsRegistry::SinceReset(Stat stat, uint64_t raw) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (baseline_ == nullptr) return raw;
  return Minus(raw, baseline_->outside[static_cast<size_t>(stat)]);
}

void MetricsRegistry::Reset(absl::FunctionRef<uint64_t(Stat)> raw) {
  // Built outside the lock: copying the histograms is the slow part.
  auto baseline = std::make_unique<Baseline>();
  baseline->counters.resize(blocks_.size());
  baseline->latency.reserve(blocks_.size() * kNumLatencyFamilies);
  for (size_t w = 0; w < blocks_.size(); ++w) {
    for (size_t c = 0; c < kNumCounters; ++c) {
      baseline->counters[w][c] = blocks_[w]->Get(static_cast<Counter>(c));
    }
    for (size_t f = 0; f < kNumLatencyFamilies; ++f) {
      baseline->latency.push_back(std::make_unique<LatencyHistogram>(
          blocks_[w]->latency(static_cast<LatencyFamily>(f))));
    }
  }
  for (size_t s = 0; s < kNumStats; ++s) {
    const StatInfo& info = kStatInfo[s];
    if (IsResettable(info) && info.source != StatSource::kWorker) {
      baseline->outside[s] = raw(static_cast<Stat>(s));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  baseline_ = std::move(baseline);
}

}  // namespace memshard
