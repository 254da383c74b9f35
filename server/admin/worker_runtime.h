#pragma once

// Publishes a worker's runtime numbers (buffer pool, event-loop epochs) into
// its metrics block, for `stats workers`, `stats` (read_buf_*) and
// /metrics. The pool and the loop are owner-thread objects that no other
// thread may read, so the worker copies their numbers out once per epoch:
// a handful of relaxed stores, from an epoch hook.
//
// Thread-safety: the worker's own thread only.

#include "core/buffer_pool.h"
#include "metrics/worker_metrics.h"

namespace memshard {

inline void PublishWorkerRuntime(const BufferPool& pool,
                                 WorkerMetrics& metrics) {
  const BufferPoolStats s = pool.stats();
  metrics.Set(Gauge::buffers_in_use, static_cast<int64_t>(s.in_use));
  metrics.Set(Gauge::buffers_free, static_cast<int64_t>(s.free));
  metrics.SetCounter(Counter::buffers_allocated, s.allocated);
  metrics.SetCounter(Counter::buffers_trimmed, s.trimmed);
  metrics.Add(Counter::epochs);
}

}  // namespace memshard
