#pragma once

// CacheOrca: the orchestrator for --mode=cache. Turns one parsed request --
// text, meta or binary -- into calls on the CacheHandler and composes the
// one reply that protocol expects. The handler produces typed results; the
// reply composition for each protocol lives in its own file
// (cache_orca.cc: text, cache_orca_meta.cc: meta, cache_orca_binary.cc:
// binary), so all three share one executor and one set of statistics.
//
// Thread-safety: one instance per worker, used only on that worker's thread
// (it keeps no per-connection state, so one per worker is enough; the one
// piece of connection state a command may change, SASL authentication, is
// passed in). The store it calls is thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/optimization.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "metrics/worker_metrics.h"
#include "server/admin/prefix_stats.h"
#include "server/orca/cache_handler.h"
#include "server/output_chain.h"
#include "server/protocol/binary_parser.h"
#include "server/protocol/meta_parser.h"
#include "server/protocol/request.h"
#include "server/server_context.h"

namespace memshard {

class CacheOrca {
 public:
  enum class Outcome { kContinue, kClose };

  CacheOrca(ServerContext* context, WorkerMetrics* metrics);

  // Executes a text-protocol request and appends its reply (if any).
  Outcome Execute(const Request& request, int64_t now, OutputChain* out);
  // Executes a meta command (mg, ms, md, ma, mn, me).
  Outcome Execute(const MetaRequest& request, int64_t now, OutputChain* out);
  // Executes a binary request. `*authenticated` is the connection's SASL
  // state: SASL Auth sets it, checking ServerContext::sasl_auth. Access
  // control (refusing other opcodes before authentication) is the
  // connection's job.
  Outcome Execute(const BinaryRequest& request, bool* authenticated,
                  int64_t now, OutputChain* out);

  // Appends a binary error response for `request` (whose opcode and opaque
  // are set even when parsing failed).
  static void AppendBinaryError(const BinaryRequest& request,
                                BinaryStatus status, OutputChain* out);

  // A retrieval (get, gets, gat, gats) answered in slices, a turn each,
  // because it has too many keys for one (see Connection): appends the
  // VALUE blocks of keys [first, first + count) and, after the last key,
  // END. The slices together are the bytes Execute composes.
  void RetrieveSlice(const Request& request, size_t first, size_t count,
                     int64_t now, OutputChain* out);

  // The keys of pipelined retrievals about to execute (Connection's
  // look-ahead), at most kPrefetchKeys: starts loading their buckets, then
  // the items those buckets lead to, so that each lookup finds them in
  // cache. A hint: no effect on the store, the stats or any reply.
  static constexpr size_t kPrefetchKeys = 16;
  void Prefetch(absl::Span<const absl::string_view> keys);
  // Prefetch's two stages apart, for callers with other work to put
  // between them: PrefetchBucket starts loading the key's bucket and
  // returns a token for PrefetchItem (0 for a key too long to be stored:
  // nothing to load), which starts loading the item that bucket leads to.
  uint64_t PrefetchBucket(absl::string_view key) {
    return handler_.Prefetch(key);
  }
  void PrefetchItem(uint64_t token) {
    if (token != 0) handler_.PrefetchItem(token);
  }

  const ServerContext& context() const { return *context_; }

  // A text `set` refused before its data block (value over the item size
  // limit) still removes the key's old value, as memcached does.
  void OnRefusedStore(const Request& request, int64_t now);

  // Worker-scoped scratch requests: a connection parses into these and
  // executes before parsing the next, so one per worker is enough.
  MetaRequest& meta_request() { return meta_request_; }
  BinaryRequest& binary_request() { return binary_request_; }

 private:
  // Text.
  void Retrieve(const Request& request, int64_t now, OutputChain* out);
  // A VALUE block per hit among `keys` (some of `request.keys`).
  void AppendValues(const Request& request,
                    absl::Span<const absl::string_view> keys, int64_t now,
                    OutputChain* out);
  void Store(const Request& request, int64_t now, OutputChain* out);
  void Delete(const Request& request, int64_t now, OutputChain* out);
  void Arithmetic(const Request& request, int64_t now, OutputChain* out);
  void Touch(const Request& request, int64_t now, OutputChain* out);
  void FlushAll(const Request& request, int64_t now, OutputChain* out);
  void CacheMemlimit(const Request& request, OutputChain* out);

  // Meta.
  void MetaGet(const MetaRequest& request, int64_t now, OutputChain* out);
  void MetaSet(const MetaRequest& request, int64_t now, OutputChain* out);
  void MetaDelete(const MetaRequest& request, int64_t now, OutputChain* out);
  void MetaArithmetic(const MetaRequest& request, int64_t now,
                      OutputChain* out);
  void MetaDebug(const MetaRequest& request, int64_t now, OutputChain* out);
  // " k<key>" (base64 and " b" when `binary`) for reply lines.
  void AppendMetaKey(absl::string_view key, bool binary);

  // Binary.
  void BinaryGet(const BinaryRequest& request, int64_t now, OutputChain* out);
  void BinaryStore(const BinaryRequest& request, int64_t now, OutputChain* out);
  void BinaryDelete(const BinaryRequest& request, int64_t now,
                    OutputChain* out);
  void BinaryArithmetic(const BinaryRequest& request, int64_t now,
                        OutputChain* out);
  void BinaryStat(const BinaryRequest& request, OutputChain* out);
  void BinaryStatDetail(const BinaryRequest& request, OutputChain* out);
  void BinarySaslAuth(const BinaryRequest& request, bool* authenticated,
                      OutputChain* out);

  // Whether `stats detail` counts (one relaxed load).
  bool DetailOn() const {
    return ABSL_PREDICT_FALSE(context_->prefix_stats.enabled());
  }

  ServerContext* const context_;
  WorkerMetrics* const metrics_;
  CacheHandler handler_;
  MetaRequest meta_request_;
  BinaryRequest binary_request_;
  // Reply line being composed (reused, so composing does not allocate).
  std::string line_;
};

}  // namespace memshard
