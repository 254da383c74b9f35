#include "metrics/worker_metrics.h"

#include <atomic>
#include <thread>
#include <vector>

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

}  // namespace
}  // namespace memshard
