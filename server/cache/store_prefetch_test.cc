// Store::Prefetch and PrefetchItem: hints that load buckets and items ahead
// of lookups and change nothing the store shows.
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/cache/store.h"
#include "server/cache/store_test_util.h"

namespace memshard::cache {
namespace {

using store_testing::GetValue;
using store_testing::kNow;
using store_testing::Options;
using store_testing::Set;

void PrefetchAllStages(const Store& store, absl::string_view key) {
  const uint64_t token = store.Prefetch(key);
  store.PrefetchItem(token);
}

TEST(StorePrefetchTest, StagesChangeNothingOverChainedBuckets) {
  // One stripe of 16 buckets: 24 keys stay below its growth threshold
  // (1.5 per bucket), so buckets chain several items, some of them large
  // (mapped on their own, which PrefetchItem skips).
  Store store(Options(64 << 20, 1 << 20, /*stripes=*/1));
  std::vector<std::string> keys;
  for (int i = 0; i < 24; ++i) {
    keys.push_back(absl::StrCat("key", i));
    const std::string value =
        i % 7 == 0 ? std::string(100'000, 'v') : absl::StrCat("value", i);
    ASSERT_EQ(Set(store, keys.back(), value), StoreResult::kStored);
  }
  const StoreStats before = store.GetStats();
  ASSERT_EQ(before.hash_bytes, 16 * sizeof(uint32_t));

  std::vector<std::string> probes = keys;
  probes.push_back("absent");
  probes.push_back("");
  probes.push_back(std::string(Store::kMaxKeyLength + 1, 'k'));
  for (const std::string& key : probes) PrefetchAllStages(store, key);
  EXPECT_EQ(store.Prefetch(std::string(Store::kMaxKeyLength + 1, 'k')), 0u);

  const StoreStats after = store.GetStats();
  EXPECT_EQ(after.curr_items, before.curr_items);
  EXPECT_EQ(after.total_items, before.total_items);
  EXPECT_EQ(after.bytes, before.bytes);
  EXPECT_EQ(after.get_expired, before.get_expired);
  EXPECT_EQ(after.hash_bytes, before.hash_bytes);
  for (int i = 0; i < 24; ++i) {
    const std::string value =
        i % 7 == 0 ? std::string(100'000, 'v') : absl::StrCat("value", i);
    EXPECT_EQ(GetValue(store, keys[i]), value) << keys[i];
  }
}

TEST(StorePrefetchTest, StagesRaceWithStoresDeletesAndGrowth) {
  // Under TSAN: the stages read buckets and prefetch items while another
  // thread links, unlinks and grows the same stripes' tables.
  Store store(Options(64 << 20, 1 << 20, /*stripes=*/2));
  constexpr int kKeys = 2000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < kKeys; ++i) {
        Set(store, absl::StrCat("k", i), absl::StrCat("v", i, "-", round));
      }
      for (int i = 0; i < kKeys; i += 2) {
        store.Delete(absl::StrCat("k", i), kNow);
      }
    }
    done.store(true);
  });
  while (!done.load()) {
    for (int i = 0; i < kKeys; i += 37) {
      PrefetchAllStages(store, absl::StrCat("k", i));
    }
  }
  writer.join();
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_EQ(GetValue(store, absl::StrCat("k", i)),
              i % 2 == 0 ? "<miss>" : absl::StrCat("v", i, "-2"));
  }
}

}  // namespace
}  // namespace memshard::cache
