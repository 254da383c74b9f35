// Helpers shared by the Store tests (store_test.cc, store_eviction_test.cc,
// store_meta_test.cc). Test-only; no state.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "server/cache/store.h"

namespace memshard::cache::store_testing {

inline constexpr int64_t kNow = 1'700'000'000;  // A fake unix time.

inline StoreOptions Options(uint64_t limit, uint64_t max_item = 1 << 20,
                            uint32_t stripes = 0) {
  StoreOptions options;
  options.memory_limit_bytes = limit;
  options.max_item_size = max_item;
  options.stripes = stripes;
  return options;
}

inline StoreResult Set(Store& store, absl::string_view key,
                       absl::string_view value, int64_t expires_at = 0,
                       uint32_t flags = 0, int64_t now = kNow) {
  return store.Put(StoreMode::kSet, key, flags, expires_at, value, 0, now);
}

inline std::string GetValue(Store& store, absl::string_view key,
                            int64_t now = kNow) {
  ItemRef ref = store.Get(key, now);
  return ref ? std::string(ref.value()) : "<miss>";
}

}  // namespace memshard::cache::store_testing
