// What recording costs on the request path, next to the peers it replaces:
// a per-worker counter (relaxed load+store, single writer) against a shared
// atomic fetch_add, one histogram sample, and the clock read the latency
// hook adds. Run with:
//   bazel run //tools/metrics_bench -- --benchmark_min_time=0.5
// The "ratio" counters compare each benchmark with its peer.

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "metrics/latency_histogram.h"
#include "metrics/worker_metrics.h"

namespace memshard {
namespace {

// Per-worker block: what every request pays per counter.
void BM_WorkerCounterAdd(benchmark::State& state) {
  MetricsRegistry registry(1);
  WorkerMetrics& m = registry.worker(0);
  for (auto _ : state) {
    m.Add(Counter::cmd_get);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(m.Get(Counter::cmd_get));
}
BENCHMARK(BM_WorkerCounterAdd);

// The peer: one shared counter, updated with a locked read-modify-write.
// Threads > 1 show what sharing a line between workers would cost.
std::atomic<uint64_t> shared_counter{0};
void BM_SharedAtomicFetchAdd(benchmark::State& state) {
  for (auto _ : state) {
    shared_counter.fetch_add(1, std::memory_order_relaxed);
  }
}
BENCHMARK(BM_SharedAtomicFetchAdd)->Threads(1)->Threads(2);

// Per-worker blocks from several threads at once: no sharing, so no slowdown.
std::unique_ptr<MetricsRegistry> threaded_registry;
void BM_WorkerCounterAddThreads(benchmark::State& state) {
  if (state.thread_index() == 0) {
    threaded_registry = std::make_unique<MetricsRegistry>(state.threads());
  }
  // Benchmark threads start their loops together, after setup.
  for (auto _ : state) {
    threaded_registry->worker(state.thread_index()).Add(Counter::cmd_get);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_WorkerCounterAddThreads)->Threads(1)->Threads(2);

// One latency sample into a log-linear histogram (values spread over
// 1 us .. 1 ms so the bucket index is not a constant).
void BM_HistogramRecord(benchmark::State& state) {
  auto h = std::make_unique<LatencyHistogram>();
  std::vector<int64_t> values(4096);
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = 1000 + static_cast<int64_t>((i * 2654435761u) % 1000000);
  }
  size_t i = 0;
  for (auto _ : state) {
    h->Record(values[i++ & 4095]);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(h->count());
}
BENCHMARK(BM_HistogramRecord);

// Through the worker block, as the connection records it.
void BM_WorkerRecordLatency(benchmark::State& state) {
  MetricsRegistry registry(1);
  WorkerMetrics& m = registry.worker(0);
  int64_t v = 1000;
  for (auto _ : state) {
    m.RecordLatency(LatencyFamily::kGet, v);
    v = v * 7 % 1000000 + 1000;
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_WorkerRecordLatency);

// The whole per-request latency hook, as server/admin/request_latency.h
// does it: one clock read, a subtraction from the loop iteration's start
// time, one sample.
void BM_RequestLatencyHook(benchmark::State& state) {
  MetricsRegistry registry(1);
  WorkerMetrics& m = registry.worker(0);
  const absl::Time iteration_start = absl::Now();
  for (auto _ : state) {
    m.RecordLatency(
        LatencyFamily::kGet,
        absl::GetCurrentTimeNanos() - absl::ToUnixNanos(iteration_start));
  }
}
BENCHMARK(BM_RequestLatencyHook);

// The clock read alone, to split the hook's cost.
void BM_ClockRead(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(absl::Now());
}
BENCHMARK(BM_ClockRead);

// Read side (off the request path): merge every worker's histogram of one
// family and take p99, as `stats latency` does per family.
void BM_MergeAndP99(benchmark::State& state) {
  const size_t workers = static_cast<size_t>(state.range(0));
  MetricsRegistry registry(workers);
  for (size_t w = 0; w < workers; ++w) {
    for (int i = 0; i < 10000; ++i) {
      registry.worker(w).RecordLatency(LatencyFamily::kGet, 1000 + i * 37);
    }
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        registry.Latency(LatencyFamily::kGet)->Percentile(99));
  }
}
BENCHMARK(BM_MergeAndP99)->Arg(2)->Arg(16);

}  // namespace
}  // namespace memshard

BENCHMARK_MAIN();
