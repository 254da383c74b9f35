#include "metrics/worker_metrics.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

TEST(WorkerMetricsTest, NamesComeFromTheTable) {
  EXPECT_EQ(CounterInfo(Counter::cmd_get).name, "cmd_get");
  EXPECT_FALSE(CounterInfo(Counter::cmd_get).help.empty());
  EXPECT_EQ(GaugeInfo(Gauge::curr_connections).name, "curr_connections");
}

TEST(WorkerMetricsTest, BlocksDoNotShareCacheLines) {
  EXPECT_EQ(alignof(WorkerMetrics), 64u);
  MetricsRegistry registry(2);
  auto a = reinterpret_cast<uintptr_t>(&registry.worker(0));
  auto b = reinterpret_cast<uintptr_t>(&registry.worker(1));
  EXPECT_EQ(a % 64, 0u);
  EXPECT_EQ(b % 64, 0u);
}

// Each worker is the single writer of its block; concurrent readers summing
// on read must never see a total go backwards, and the final sum is exact.
TEST(WorkerMetricsTest, NoLostIncrementsUnderConcurrentReads) {
  constexpr int kWorkers = 4;
  constexpr uint64_t kPerWorker = 1000000;
  MetricsRegistry registry(kWorkers);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      uint64_t now = registry.Sum(Counter::cmd_get);
      EXPECT_GE(now, last);
      last = now;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWorkers; ++w) {
    writers.emplace_back([&, w] {
      for (uint64_t i = 0; i < kPerWorker; ++i) {
        registry.worker(w).Add(Counter::cmd_get);
      }
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(registry.Sum(Counter::cmd_get), kWorkers * kPerWorker);
}

TEST(WorkerMetricsTest, TableIsConsistent) {
  std::set<std::string> names;
  size_t worker_counters = 0;
  size_t worker_gauges = 0;
  for (size_t i = 0; i < kNumStats; ++i) {
    const StatInfo& info = GetStatInfo(static_cast<Stat>(i));
    EXPECT_TRUE(names.insert(std::string(info.name)).second)
        << "duplicate " << info.name;
    EXPECT_FALSE(info.help.empty()) << info.name;
    for (char c : info.name) {
      EXPECT_TRUE(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_')
          << info.name;
    }
    if (info.source == StatSource::kWorker) {
      ASSERT_GE(info.slot, 0) << info.name;
      if (info.kind == StatKind::kCounter) {
        ++worker_counters;
        EXPECT_EQ(CounterInfo(static_cast<Counter>(info.slot)).name, info.name);
      } else {
        ++worker_gauges;
        EXPECT_EQ(GaugeInfo(static_cast<Gauge>(info.slot)).name, info.name);
      }
    } else {
      EXPECT_EQ(info.slot, -1) << info.name;
    }
    // Prometheus: TYPE is counter exactly when the name ends in _total, so
    // a gauge must not end in _total; uptime is memcached_exporter's one
    // counter without it (exported as a gauge).
    absl::string_view family = info.prometheus.substr(
        0, std::min(info.prometheus.size(), info.prometheus.find('{')));
    if (info.kind == StatKind::kGauge) {
      EXPECT_FALSE(absl::EndsWith(family, "_total")) << info.name;
    }
    if (info.kind == StatKind::kCounter && !family.empty() &&
        info.name != "uptime") {
      EXPECT_TRUE(absl::EndsWith(family, "_total")) << info.name;
    }
  }
  EXPECT_EQ(worker_counters, kNumCounters);
  EXPECT_EQ(worker_gauges, kNumGauges);
  // Every field memcached_exporter needs is there.
  for (const char* name : {"uptime",
                           "time",
                           "version",
                           "rusage_user",
                           "rusage_system",
                           "curr_connections",
                           "total_connections",
                           "rejected_connections",
                           "conn_yields",
                           "listen_disabled_num",
                           "bytes",
                           "limit_maxbytes",
                           "curr_items",
                           "total_items",
                           "bytes_read",
                           "bytes_written",
                           "evictions",
                           "reclaimed",
                           "store_too_large",
                           "store_no_memory",
                           "lru_crawler_starts",
                           "direct_reclaims",
                           "crawler_items_checked",
                           "crawler_reclaimed",
                           "moves_to_cold",
                           "moves_to_warm",
                           "moves_within_lru",
                           "total_malloced",
                           "accepting_conns",
                           "get_hits",
                           "get_misses",
                           "delete_hits",
                           "delete_misses",
                           "incr_hits",
                           "incr_misses",
                           "decr_hits",
                           "decr_misses",
                           "cas_hits",
                           "cas_misses",
                           "cas_badval",
                           "touch_hits",
                           "touch_misses",
                           "cmd_flush",
                           "cmd_set"}) {
    EXPECT_TRUE(names.count(name)) << name;
  }
}

TEST(WorkerMetricsTest, ResetReadsAsZeroWithoutWritingTheBlocks) {
  MetricsRegistry registry(2);
  registry.worker(0).Add(Counter::cmd_get, 5);
  registry.worker(1).Add(Counter::cmd_get, 7);
  registry.worker(0).AddGauge(Gauge::curr_connections, 3);
  registry.worker(1).RecordLatency(LatencyFamily::kGet, 1000);
  registry.Reset(
      [](Stat stat) -> uint64_t { return stat == Stat::evictions ? 40 : 0; });
  EXPECT_EQ(registry.Sum(Counter::cmd_get), 0u);
  EXPECT_EQ(registry.worker(0).Get(Counter::cmd_get), 5u) << "block untouched";
  EXPECT_EQ(registry.Sum(Gauge::curr_connections), 3) << "gauges stay";
  EXPECT_EQ(registry.Latency(LatencyFamily::kGet)->count(), 0u);
  EXPECT_EQ(registry.WorkerOps(1), 0u);
  EXPECT_EQ(registry.SinceReset(Stat::evictions, 45), 5u);

  registry.worker(1).Add(Counter::cmd_get, 2);
  registry.worker(1).RecordLatency(LatencyFamily::kGet, 4000);
  registry.worker(0).RecordLatency(LatencyFamily::kSet, 9000);
  EXPECT_EQ(registry.Sum(Counter::cmd_get), 2u);
  EXPECT_EQ(registry.Get(1, Counter::cmd_get), 2u);
  EXPECT_EQ(registry.Get(0, Counter::cmd_get), 0u);
  auto get = registry.Latency(LatencyFamily::kGet);
  EXPECT_EQ(get->count(), 1u);
  EXPECT_EQ(get->max(), 4000);
  EXPECT_EQ(registry.WorkerOps(0), 1u);
  EXPECT_EQ(registry.WorkerOps(1), 1u);
}

TEST(WorkerMetricsTest, LatencyIsMergedOverWorkersOnRead) {
  MetricsRegistry registry(3);
  for (size_t w = 0; w < 3; ++w) {
    for (int i = 0; i < 100; ++i) {
      registry.worker(w).RecordLatency(LatencyFamily::kGet, 1000 * (w + 1));
    }
  }
  auto merged = registry.Latency(LatencyFamily::kGet);
  EXPECT_EQ(merged->count(), 300u);
  EXPECT_EQ(merged->min(), 1000);
  EXPECT_EQ(merged->max(), 3000);
  EXPECT_EQ(registry.WorkerLatency(2, LatencyFamily::kGet)->min(), 3000);
  EXPECT_EQ(registry.Latency(LatencyFamily::kSet)->count(), 0u);
}

// Writers record counters and latency while readers sum, read histograms
// and reset: nothing is lost, and after a reset totals restart from it.
TEST(WorkerMetricsTest, NoLostIncrementsWithConcurrentReadersAndResets) {
  constexpr int kWorkers = 3;
  constexpr uint64_t kPerWorker = 300000;
  MetricsRegistry registry(kWorkers);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      registry.Latency(LatencyFamily::kGet);
      registry.Sum(Counter::bytes_read);
      registry.Reset([](Stat) { return uint64_t{0}; });
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWorkers; ++w) {
    writers.emplace_back([&, w] {
      for (uint64_t i = 0; i < kPerWorker; ++i) {
        registry.worker(w).Add(Counter::bytes_read, 3);
        registry.worker(w).RecordLatency(LatencyFamily::kGet, 1000 + i % 5000);
      }
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  reader.join();
  uint64_t raw = 0;
  uint64_t samples = 0;
  for (int w = 0; w < kWorkers; ++w) {
    raw += registry.worker(w).Get(Counter::bytes_read);
    samples += registry.worker(w).latency(LatencyFamily::kGet).count();
  }
  EXPECT_EQ(raw, kWorkers * kPerWorker * 3);
  EXPECT_EQ(samples, kWorkers * kPerWorker);
  registry.Reset([](Stat) { return uint64_t{0}; });
  registry.worker(0).Add(Counter::bytes_read, 11);
  EXPECT_EQ(registry.Sum(Counter::bytes_read), 11u);
}

}  // namespace
}  // namespace memshard
