#pragma once

// CacheHandler: the embedded store's side of every command, shared by the
// text, meta and binary front-ends (CacheOrca). One method per operation;
// each calls the store and counts its statistics the way memcached does,
// and none composes a reply or touches connection state: the orchestrator
// turns the typed result into the protocol's reply.
//
// Thread-safety: one instance per worker (it writes that worker's metrics
// block), used only on that worker's thread. The store is thread-safe.
//
// Times: every expiry here is absolute unix seconds (see AbsoluteExpiry in
// cache_orca.h); `now` is the worker loop's unix time.

#include <cstdint>

#include "absl/strings/string_view.h"
#include "metrics/worker_metrics.h"
#include "server/cache/store.h"

namespace memshard {

// memcached's exptime to an absolute unix time (0 = never): up to 30 days is
// relative to `now`, larger is absolute, negative is already expired.
int64_t AbsoluteExpiry(int64_t exptime, int64_t now);

class CacheHandler {
 public:
  CacheHandler(cache::Store* store, WorkerMetrics* metrics)
      : store_(store), metrics_(metrics) {}

  // Store::Prefetch and PrefetchItem: hints before a batch of lookups;
  // count nothing.
  uint64_t Prefetch(absl::string_view key) const {
    return store_->Prefetch(key);
  }
  void PrefetchItem(uint64_t token) const { store_->PrefetchItem(token); }
  // get/gets, binary Get*: cmd_get, get_hits or get_misses.
  cache::ItemRef Get(absl::string_view key, int64_t now);
  // gat/gats, binary GAT*: counted as touches only, like memcached.
  cache::ItemRef GetAndTouch(absl::string_view key, int64_t expires_at,
                             int64_t now);
  // mg: a touch if it set a TTL (memcached's ttl_set), else a get.
  cache::ItemRef MetaGet(absl::string_view key,
                         const cache::MetaGetOptions& options, int64_t now,
                         cache::ItemMeta* meta);
  // me: counted nowhere.
  cache::ItemRef Peek(absl::string_view key, int64_t now,
                      cache::ItemMeta* meta);

  struct StoreOutcome {
    cache::StoreResult result;
    uint64_t cas = 0;  // the new item's CAS when stored
  };
  // Every storage command: cmd_set; for kCas also cas_hits, cas_badval or
  // cas_misses.
  StoreOutcome Store(cache::StoreMode mode, absl::string_view key,
                     uint32_t flags, int64_t expires_at,
                     absl::string_view value, uint64_t cas_in, int64_t now,
                     const cache::PutOptions& options = cache::PutOptions());

  // delete, md, binary Delete: cmd_delete, delete_hits or delete_misses.
  cache::DeleteResult Delete(absl::string_view key, bool check_cas,
                             uint64_t cas_in, int64_t now);
  // md I.
  cache::DeleteResult Invalidate(absl::string_view key, bool check_cas,
                                 uint64_t cas_in, bool set_expiry,
                                 int64_t expires_at, int64_t now);

  // incr/decr, ma, binary Increment/Decrement: incr_* or decr_* hits and
  // misses.
  cache::DeltaResult Delta(absl::string_view key, bool increment,
                           uint64_t delta, const cache::DeltaOptions& options,
                           int64_t now, cache::DeltaOutcome* outcome);

  // touch, binary Touch: cmd_touch, touch_hits or touch_misses.
  bool Touch(absl::string_view key, int64_t expires_at, int64_t now);

  // flush_all, binary Flush: cmd_flush. `delay` is the raw exptime-style
  // delay (<= 0: now).
  void FlushAll(int64_t delay, int64_t now);

  cache::Store& store() { return *store_; }

 private:
  cache::Store* const store_;
  WorkerMetrics* const metrics_;
};

}  // namespace memshard
