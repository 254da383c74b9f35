#include "server/orca/cache_handler.h"

namespace memshard {
namespace {

constexpr int64_t kMaxRelativeExptime = 60 * 60 * 24 * 30;

}  // namespace

int64_t AbsoluteExpiry(int64_t exptime, int64_t now) {
  // memcached keeps exptime in a 32-bit signed int: 99999999999 wraps to a
  // negative number and so means "already expired". Match it.
  exptime = static_cast<int32_t>(static_cast<uint32_t>(exptime));
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;  // long past: expired at once
  if (exptime > kMaxRelativeExptime) return exptime;
  return now + exptime;
}

cache::ItemRef CacheHandler::Get(absl::string_view key, int64_t now) {
  cache::ItemRef item = store_->Get(key, now);
  metrics_->Add(Counter::cmd_get);
  metrics_->Add(item ? Counter::get_hits : Counter::get_misses);
  return item;
}

cache::ItemRef CacheHandler::GetAndTouch(absl::string_view key,
                                         int64_t expires_at, int64_t now) {
  cache::ItemRef item = store_->GetAndTouch(key, expires_at, now);
  metrics_->Add(Counter::cmd_touch);
  metrics_->Add(item ? Counter::touch_hits : Counter::touch_misses);
  return item;
}

cache::ItemRef CacheHandler::MetaGet(absl::string_view key,
                                     const cache::MetaGetOptions& options,
                                     int64_t now, cache::ItemMeta* meta) {
  cache::ItemRef item = store_->MetaGet(key, options, now, meta);
  if (options.set_expiry) {
    metrics_->Add(Counter::cmd_touch);
    metrics_->Add(item ? Counter::touch_hits : Counter::touch_misses);
  } else {
    metrics_->Add(Counter::cmd_get);
    metrics_->Add(item ? Counter::get_hits : Counter::get_misses);
  }
  return item;
}

cache::ItemRef CacheHandler::Peek(absl::string_view key, int64_t now,
                                  cache::ItemMeta* meta) {
  return store_->Peek(key, now, meta);
}

CacheHandler::StoreOutcome CacheHandler::Store(
    cache::StoreMode mode, absl::string_view key, uint32_t flags,
    int64_t expires_at, absl::string_view value, uint64_t cas_in, int64_t now,
    const cache::PutOptions& options) {
  StoreOutcome outcome;
  metrics_->Add(Counter::cmd_set);
  outcome.result = store_->Put(mode, key, flags, expires_at, value, cas_in, now,
                               &outcome.cas, options);
  if (mode == cache::StoreMode::kCas) {
    switch (outcome.result) {
      case cache::StoreResult::kStored:
        metrics_->Add(Counter::cas_hits);
        break;
      case cache::StoreResult::kExists:
        metrics_->Add(Counter::cas_badval);
        break;
      case cache::StoreResult::kNotFound:
        metrics_->Add(Counter::cas_misses);
        break;
      default:
        break;
    }
  }
  if (outcome.result == cache::StoreResult::kTooLarge) {
    metrics_->Add(Counter::store_too_large);
  } else if (outcome.result == cache::StoreResult::kOutOfMemory) {
    metrics_->Add(Counter::store_no_memory);
  }
  if (outcome.result != cache::StoreResult::kStored) outcome.cas = 0;
  return outcome;
}

cache::DeleteResult CacheHandler::Delete(absl::string_view key, bool check_cas,
                                         uint64_t cas_in, int64_t now) {
  metrics_->Add(Counter::cmd_delete);
  const cache::DeleteResult result =
      store_->DeleteIf(key, check_cas, cas_in, now);
  metrics_->Add(result == cache::DeleteResult::kDeleted
                    ? Counter::delete_hits
                    : Counter::delete_misses);
  return result;
}

cache::DeleteResult CacheHandler::Invalidate(absl::string_view key,
                                             bool check_cas, uint64_t cas_in,
                                             bool set_expiry,
                                             int64_t expires_at, int64_t now) {
  const cache::DeleteResult result =
      store_->Invalidate(key, check_cas, cas_in, set_expiry, expires_at, now);
  // memcached counts a mismatch or a miss as a delete miss.
  if (result != cache::DeleteResult::kDeleted) {
    metrics_->Add(Counter::delete_misses);
  }
  return result;
}

cache::DeltaResult CacheHandler::Delta(absl::string_view key, bool increment,
                                       uint64_t delta,
                                       const cache::DeltaOptions& options,
                                       int64_t now,
                                       cache::DeltaOutcome* outcome) {
  const cache::DeltaResult result =
      store_->Delta(key, increment, delta, options, now, outcome);
  if (result == cache::DeltaResult::kOk) {
    metrics_->Add(increment ? Counter::incr_hits : Counter::decr_hits);
  } else if (result == cache::DeltaResult::kNotFound) {
    metrics_->Add(increment ? Counter::incr_misses : Counter::decr_misses);
  }
  return result;
}

bool CacheHandler::Touch(absl::string_view key, int64_t expires_at,
                         int64_t now) {
  metrics_->Add(Counter::cmd_touch);
  const bool hit = store_->Touch(key, expires_at, now);
  metrics_->Add(hit ? Counter::touch_hits : Counter::touch_misses);
  return hit;
}

void CacheHandler::FlushAll(int64_t delay, int64_t now) {
  metrics_->Add(Counter::cmd_flush);
  // memcached flushes at realtime(delay) - 1, so `flush_all 1` is at once.
  store_->FlushAll(delay > 0 ? AbsoluteExpiry(delay, now) - 1 : now, now);
}

}  // namespace memshard
