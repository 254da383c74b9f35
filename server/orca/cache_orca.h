#pragma once

// CacheOrca: the orchestrator for --mode=cache. Turns one parsed request
// into calls on the embedded store and composes one text reply.
//
// Thread-safety: one instance per worker, used only on that worker's thread
// (it keeps no per-connection state, so one per worker is enough). The store
// it calls is thread-safe.

#include <cstdint>

#include "metrics/worker_metrics.h"
#include "server/output_chain.h"
#include "server/protocol/request.h"
#include "server/server_context.h"

namespace memshard {

// memcached's exptime to an absolute unix time (0 = never): up to 30 days is
// relative to `now`, larger is absolute, negative is already expired.
int64_t AbsoluteExpiry(int64_t exptime, int64_t now);

class CacheOrca {
 public:
  enum class Outcome { kContinue, kClose };

  CacheOrca(ServerContext* context, WorkerMetrics* metrics);

  // Executes `request` and appends its reply (if any) to `out`.
  Outcome Execute(const Request& request, int64_t now, OutputChain* out);

 private:
  void Retrieve(const Request& request, int64_t now, OutputChain* out);
  void Store(const Request& request, int64_t now, OutputChain* out);
  void Delete(const Request& request, int64_t now, OutputChain* out);
  void Arithmetic(const Request& request, int64_t now, OutputChain* out);
  void Touch(const Request& request, int64_t now, OutputChain* out);
  void FlushAll(const Request& request, int64_t now, OutputChain* out);
  void CacheMemlimit(const Request& request, OutputChain* out);

  ServerContext* const context_;
  cache::Store* const store_;
  WorkerMetrics* const metrics_;
};

}  // namespace memshard
