#pragma once

// The request-latency hook: what `stats latency` and the Prometheus
// histograms measure, and the one call the connection makes per request.
//
// What is measured: from the start of the event-loop iteration that read
// the request's last bytes (EventLoop::now(), sampled right after epoll_wait
// returned) to the moment its reply is composed. So it includes waiting
// behind other connections served in the same iteration and behind earlier
// requests of a pipelined batch, parsing and execution; it leaves out the
// kernel, the network and the writev of the reply, which a client-side
// measurement (the load generator) also sees.
//
// Thread-safety: owner (worker) thread only, like the metrics block.

#include "core/event_loop.h"
#include "metrics/worker_metrics.h"
#include "server/protocol/request.h"

namespace memshard {

// The `stats latency` family of a text/binary command.
inline LatencyFamily LatencyFamilyOf(Command command) {
  switch (command) {
    case Command::kGet:
    case Command::kGets:
      return LatencyFamily::kGet;
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
      return LatencyFamily::kSet;
    case Command::kDelete:
      return LatencyFamily::kDelete;
    case Command::kIncr:
    case Command::kDecr:
      return LatencyFamily::kIncrDecr;
    case Command::kTouch:
    case Command::kGat:
    case Command::kGats:
      return LatencyFamily::kTouch;
    default:
      return LatencyFamily::kOther;
  }
}

// Records one request of `family` that started at the worker loop's now().
// Costs one read of the loop's clock (LoopClock: the TSC on most reads) and a
// histogram record.
inline void RecordRequestLatency(WorkerMetrics& metrics, LatencyFamily family,
                                 EventLoop& loop) {
  metrics.RecordLatency(family, loop.FreshNanos() - loop.now_unix_ns());
}

inline void RecordRequestLatency(WorkerMetrics& metrics, Command command,
                                 EventLoop& loop) {
  RecordRequestLatency(metrics, LatencyFamilyOf(command), loop);
}

}  // namespace memshard
