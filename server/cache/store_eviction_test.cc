// Store tests: CLOCK eviction, the memory budget, page drains and the
// expiry sweep (store_eviction.cc).
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "server/cache/store.h"
#include "server/cache/store_test_util.h"

namespace memshard::cache {
namespace {

using store_testing::GetValue;
using store_testing::kNow;
using store_testing::Options;
using store_testing::Set;

TEST(StoreTest, EvictsLeastRecentlyUsedFirst) {
  const std::string value(100, 'v');
  const uint64_t item = Store::AccountedSize(2, value.size());
  Store store(Options(4 * item, 1 << 20, 1));
  ASSERT_EQ(store.stripe_count(), 1u);
  for (int i = 0; i < 4; ++i) Set(store, absl::StrCat("k", i), value);
  EXPECT_EQ(store.GetStats().bytes, 4 * item);
  // Inserted k0..k3, so k0 is the least recently used. Bump k0 by a read,
  // k1 by a failed add (as in memcached), k2 by a touch: now k3 is the least
  // recently used, then k0.
  EXPECT_TRUE(store.Get("k0", kNow));
  EXPECT_EQ(store.Put(StoreMode::kAdd, "k1", 0, 0, value, 0, kNow),
            StoreResult::kNotStored);
  EXPECT_TRUE(store.Touch("k2", 0, kNow));
  Set(store, "k4", value);
  EXPECT_FALSE(store.Get("k3", kNow));
  Set(store, "k5", value);
  EXPECT_FALSE(store.Get("k0", kNow));
  for (const char* key : {"k1", "k2", "k4", "k5"}) {
    EXPECT_TRUE(store.Get(key, kNow)) << key;
  }
  const StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.evictions, 2u);
  EXPECT_EQ(stats.evicted_unfetched, 1u);  // k3 was never read.
  EXPECT_EQ(stats.curr_items, 4u);
  EXPECT_LE(stats.bytes, stats.limit_maxbytes);
}

// CLOCK (item.h): a new item survives one pass of the hand, a used one two,
// so an item read before a newer one was stored outlives it only if the
// hand has not gone by since the read.
TEST(StoreTest, ClockGivesUsedItemsASecondPass) {
  const std::string value(100, 'v');
  const uint64_t item = Store::AccountedSize(2, value.size());
  Store store(Options(3 * item, 1 << 20, 1));
  Set(store, "k0", value);
  Set(store, "k1", value);
  Set(store, "k2", value);
  EXPECT_TRUE(store.Get("k0", kNow));
  // The hand takes k0 to 1, k1 and k2 to 0, then evicts k1.
  Set(store, "k3", value);
  EXPECT_FALSE(store.Get("k1", kNow));
  // Next in line: k2 (0). k0 is read again (2), so it outlives k3 too.
  EXPECT_TRUE(store.Get("k0", kNow));
  Set(store, "k4", value);
  EXPECT_FALSE(store.Get("k2", kNow));
  Set(store, "k5", value);
  EXPECT_FALSE(store.Get("k3", kNow));
  for (const char* key : {"k0", "k4", "k5"}) {
    EXPECT_TRUE(store.Get(key, kNow)) << key;
  }
  const StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.evictions, 3u);
  EXPECT_EQ(stats.evicted_unfetched, 3u);
}

// Items of neighbouring sizes live in different arena classes; the hand
// walks every class's pages, so the older one goes first whatever its size.
TEST(StoreTest, ClockEvictsAcrossSizeClasses) {
  Store store(Options(3 * Store::AccountedSize(2, 200), 1 << 20, 1));
  Set(store, "a0", std::string(100, 'a'));
  Set(store, "b0", std::string(101, 'b'));
  Set(store, "c0", std::string(140, 'c'));
  for (int i = 0; i < 4; ++i) {
    Set(store, absl::StrCat("d", i), std::string(120 + 3 * i, 'd'));
  }
  for (const char* key : {"a0", "b0", "c0"}) {
    EXPECT_FALSE(store.Get(key, kNow)) << key;
  }
  for (const char* key : {"d0", "d1", "d2", "d3"}) {
    EXPECT_TRUE(store.Get(key, kNow)) << key;
  }
}

// Values over SlabArena::kMaxChunk are mapped one by one; their own hand
// evicts them, in the same order.
TEST(StoreTest, ClockEvictsLargeItems) {
  const std::string value(100 << 10, 'L');
  const uint64_t limit = 8 * Store::AccountedSize(3, value.size()) + 4096 * 8;
  Store store(Options(limit, 1 << 20, 1));
  for (int i = 0; i < 8; ++i) Set(store, absl::StrCat("L", i, "x"), value);
  EXPECT_EQ(store.GetStats().evictions, 0u);
  EXPECT_TRUE(store.Get("L0x", kNow));
  for (int i = 8; i < 40; ++i) {
    ASSERT_EQ(Set(store, absl::StrCat("L", i, "x"), value),
              StoreResult::kStored);
    ASSERT_LE(store.GetStats().bytes, limit);
  }
  const StoreStats stats = store.GetStats();
  EXPECT_GE(stats.evictions, 32u);
  EXPECT_FALSE(store.Get("L1x", kNow));
  EXPECT_TRUE(store.Get("L39x", kNow));
  EXPECT_EQ(GetValue(store, "L39x"), value);
  // Small items still find room: the pages' hand has nothing, the mapped
  // items' hand gives it.
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(Set(store, absl::StrCat("s", i), "small"), StoreResult::kStored);
  }
  EXPECT_EQ(GetValue(store, "s99"), "small");
  EXPECT_LE(store.GetStats().bytes, limit);
}

// A writer at full memory does bounded work however many items were used
// since the hand last went by: plain CLOCK would take all 4000 counts from
// 2 to 0 (8001 visits, under the hand's lock) before it evicts k0000; the
// bounded hand evicts it after Store::kMaxClockVisits, as the first item it
// took down (all being equal, the oldest goes first, as in an LRU).
TEST(StoreTest, ClockSearchIsBoundedWhenEveryItemWasUsed) {
  constexpr int kItems = 4000;
  static_assert(kItems > 4 * Store::kMaxClockVisits, "must not wrap");
  const std::string value(100, 'v');
  const uint64_t item = Store::AccountedSize(5, value.size());
  Store store(Options(kItems * item, 1 << 20, 1));
  for (int i = 0; i < kItems; ++i) {
    ASSERT_EQ(Set(store, absl::StrFormat("k%04d", i), value),
              StoreResult::kStored);
  }
  for (int i = 0; i < kItems; ++i) {
    ASSERT_TRUE(store.Get(absl::StrFormat("k%04d", i), kNow));
  }
  StoreStats stats = store.GetStats();
  ASSERT_EQ(stats.evictions, 0u);
  ASSERT_EQ(stats.clock_visits, 0u);
  // Then its neighbours, which it took down on the way (oldest first).
  for (int n = 0; n < 3; ++n) {
    SCOPED_TRACE(absl::StrCat("set ", n));
    EXPECT_EQ(Set(store, absl::StrCat("new", n), value), StoreResult::kStored);
    const uint64_t visits_before = stats.clock_visits;
    stats = store.GetStats();
    EXPECT_EQ(stats.evictions, n + 1u);
    EXPECT_EQ(stats.evicted_active, 1u);
    EXPECT_LE(stats.clock_visits - visits_before, Store::kMaxClockVisits);
    EXPECT_LE(stats.bytes, stats.limit_maxbytes);
    EXPECT_FALSE(store.Get(absl::StrFormat("k%04d", n), kNow));
  }
  EXPECT_TRUE(store.Get("k0003", kNow));
}

// Within its bound the hand still takes an item not used since it last went
// by before a used one, wherever it is in the window.
TEST(StoreTest, BoundedClockSearchPrefersAnUnusedItem) {
  constexpr int kItems = 4000;
  const std::string value(100, 'v');
  const uint64_t item = Store::AccountedSize(5, value.size());
  Store store(Options(kItems * item, 1 << 20, 1));
  for (int i = 0; i < kItems; ++i) {
    ASSERT_EQ(Set(store, absl::StrFormat("k%04d", i), value),
              StoreResult::kStored);
  }
  // Items are carved in the order they were stored: k0200 is the hand's
  // 201st chunk.
  constexpr int kUnused = 200;
  static_assert(kUnused < Store::kMaxClockVisits, "in the window");
  const std::string unused = absl::StrFormat("k%04d", kUnused);
  for (int i = 0; i < kItems; ++i) {
    if (i == kUnused) continue;
    ASSERT_TRUE(store.Get(absl::StrFormat("k%04d", i), kNow));
  }
  EXPECT_EQ(Set(store, "new", value), StoreResult::kStored);
  const StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.evicted_unfetched, 1u);
  EXPECT_EQ(stats.evicted_active, 0u);
  EXPECT_LE(stats.clock_visits, Store::kMaxClockVisits);
  EXPECT_FALSE(store.Get(unused, kNow));
  EXPECT_TRUE(store.Get("k0000", kNow));
}

// Free chunks count toward the search's bound only at 1/16 the weight of
// items: a run of them longer than the bound (here 400, left by deletes on
// the first page, which keeps some items, so stays in use) does not end the
// search, which would make EvictOne drain a whole page.
TEST(StoreTest, BoundedClockSearchSkipsARunOfFreeChunks) {
  constexpr int kItems = 4000;
  constexpr int kDeleted = 400;  // Of the first page's 481.
  static_assert(kDeleted > Store::kMaxClockVisits, "longer than the bound");
  const std::string value(100, 'v');
  const uint64_t item = Store::AccountedSize(5, value.size());
  Store store(Options(kItems * item, 1 << 20, 1));
  for (int i = 0; i < kItems; ++i) {
    ASSERT_EQ(Set(store, absl::StrFormat("k%04d", i), value),
              StoreResult::kStored);
  }
  for (int i = 0; i < kDeleted; ++i) {
    ASSERT_TRUE(store.Delete(absl::StrFormat("k%04d", i), kNow));
  }
  // Larger values: another class, so the freed chunks stay free.
  const std::string larger(200, 'l');
  for (int i = 0; store.GetStats().evictions == 0; ++i) {
    ASSERT_LT(i, kItems);
    ASSERT_EQ(Set(store, absl::StrFormat("l%04d", i), larger),
              StoreResult::kStored);
  }
  const StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.slabs_moved, 0u);
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_LE(stats.clock_visits, kDeleted + Store::kMaxClockVisits);
  EXPECT_FALSE(store.Get(absl::StrFormat("k%04d", kDeleted), kNow));
  EXPECT_TRUE(store.Get(absl::StrFormat("k%04d", kDeleted + 1), kNow));
}

// The arena's 32-bit handles address at most ~16 GiB: larger limits are
// clamped (the server's flag is checked against kMaxMemoryLimit too).
TEST(StoreTest, MemoryLimitIsClampedToWhatHandlesAddress) {
  Store store(Options(64ull << 30));
  EXPECT_EQ(store.GetStats().limit_maxbytes, Store::kMaxMemoryLimit);
  store.SetMemoryLimit(1ull << 40);
  EXPECT_EQ(store.GetStats().limit_maxbytes, Store::kMaxMemoryLimit);
  store.SetMemoryLimit(64 << 20);
  EXPECT_EQ(store.GetStats().limit_maxbytes, 64u << 20);
  EXPECT_EQ(Set(store, "k", "v"), StoreResult::kStored);
  EXPECT_EQ(GetValue(store, "k"), "v");
}

TEST(StoreTest, EvictingADeadItemCountsAsReclaimed) {
  const std::string value(100, 'v');
  const uint64_t item = Store::AccountedSize(2, value.size());
  Store store(Options(2 * item, 1 << 20, 1));
  Set(store, "k0", value, kNow + 5);
  Set(store, "k1", value);
  Set(store, "k2", value, 0, 0, kNow + 5);
  const StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.evictions, 0u);
  EXPECT_EQ(stats.reclaimed, 1u);
  EXPECT_EQ(stats.expired_unfetched, 1u);
}

TEST(StoreTest, BudgetIsNeverExceeded) {
  for (const uint32_t stripes : {0u, 1u, 8u}) {
    SCOPED_TRACE(absl::StrCat("stripes ", stripes));
    const uint64_t limit = 256 << 10;
    Store store(Options(limit, 8 << 10, stripes));
    std::mt19937 rng(stripes);
    uint64_t stored = 0;
    for (int i = 0; i < 20000; ++i) {
      const std::string key = absl::StrCat("key", rng() % 5000);
      const std::string value(rng() % 4000, 'x');
      switch (rng() % 4) {
        case 0:
        case 1:
          if (Set(store, key, value) == StoreResult::kStored) ++stored;
          break;
        case 2:
          store.Put(StoreMode::kAppend, key, 0, 0, value.substr(0, 100), 0,
                    kNow);
          break;
        case 3:
          store.Get(key, kNow);
          break;
      }
      if (i % 100 == 0) {
        ASSERT_LE(store.GetStats().bytes, limit);
      }
    }
    const StoreStats stats = store.GetStats();
    EXPECT_LE(stats.bytes, limit);
    EXPECT_GT(stats.evictions, 0u);
    EXPECT_GT(stats.bytes, limit / 2);  // The budget is actually used.
    EXPECT_GE(stats.total_items, stored);
  }
}

// tools/soak's worst case in miniature: the LRU evicts small items spread
// over every page while large ones arrive. The arena drains whole pages, so
// item memory stays near the cap instead of holding both generations.
TEST(StoreTest, ShiftingValueSizesStayWithinTheArenaCap) {
  const uint64_t limit = 16 << 20;
  Store store(Options(limit));
  std::mt19937 rng(7);
  uint64_t peak = 0;
  const auto phase = [&](int min_size, int max_size, uint64_t total) {
    std::uniform_int_distribution<int> size(min_size, max_size);
    std::uniform_int_distribution<int> key(0, 200000);
    for (uint64_t sent = 0; sent < total;) {
      const std::string value(size(rng), 'v');
      Set(store, absl::StrCat("k", key(rng)), value);
      sent += value.size();
      const StoreStats stats = store.GetStats();
      peak = std::max(peak, stats.arena_bytes);
      if (sent % 64 == 0) {
        ASSERT_LE(stats.bytes, limit);
      }
    }
  };
  phase(10, 1000, 4 * limit);
  phase(10 << 10, 100 << 10, 4 * limit);
  phase(10, 100, 2 * limit);
  phase(1 << 10, 10 << 10, 4 * limit);
  const StoreStats stats = store.GetStats();
  EXPECT_LE(stats.bytes, limit);
  EXPECT_GT(stats.bytes, limit / 2);
  // Reclaim runs after each set and drains a bounded number of pages, so
  // the footprint may pass the cap by about one large item.
  EXPECT_LE(peak, stats.arena_cap + (256 << 10));
  EXPECT_LE(stats.arena_cap, limit + limit / 16 + (8 << 20));
  EXPECT_GT(stats.slabs_moved, 0u);
}

// Page drains racing with every other operation and with ItemRefs held
// across them. Run it under --config=tsan and --config=asan.
TEST(StoreTest, ConcurrentDrains) {
  const uint64_t limit = 2 << 20;
  Store store(Options(limit));
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, t] {
      std::mt19937 rng(t);
      std::vector<ItemRef> held;
      for (int i = 0; i < 30000; ++i) {
        // Sizes shift every 2000 operations, out of step between threads.
        const bool small = ((i / 2000) + t) % 2 == 0;
        const size_t size = small ? 10 + rng() % 500 : 17000 + rng() % 30000;
        const std::string key = absl::StrCat("k", rng() % 20000);
        switch (rng() % 8) {
          case 0:
            held.push_back(store.Get(key, kNow));
            if (held.size() > 16) held.erase(held.begin());
            break;
          case 1:
            store.Delete(key, kNow);
            break;
          case 2:
            store.Put(StoreMode::kAppend, key, 0, 0, "tail", 0, kNow);
            break;
          default:
            store.Put(StoreMode::kSet, key, 0, 0,
                      std::string(size, static_cast<char>('a' + size % 26)), 0,
                      kNow);
        }
      }
      // Held values are intact: one repeated letter, then appended tails.
      for (const ItemRef& ref : held) {
        if (!ref) continue;
        absl::string_view value = ref.value();
        while (absl::ConsumeSuffix(&value, "tail")) {
        }
        for (const char c : value) ASSERT_EQ(c, value[0]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const StoreStats stats = store.GetStats();
  EXPECT_LE(stats.bytes, limit);
  EXPECT_GT(stats.slabs_moved, 0u);
}

// A drained page's items stay readable through ItemRefs until released.
TEST(StoreTest, ItemRefsSurvivePageDrains) {
  const uint64_t limit = 4 << 20;
  Store store(Options(limit, 1 << 20, 1));
  std::vector<ItemRef> held;
  for (int i = 0; i < 20000; ++i) {
    const std::string key = absl::StrCat("small", i);
    Set(store, key, std::string(100 + i % 300, 'a' + i % 26));
    if (i % 100 == 0) held.push_back(store.Get(key, kNow));
  }
  for (int i = 0; i < 400; ++i) {
    Set(store, absl::StrCat("large", i), std::string(50000, 'L'));
  }
  EXPECT_GT(store.GetStats().evictions, 0u);
  for (size_t j = 0; j < held.size(); ++j) {
    const int i = static_cast<int>(j) * 100;
    ASSERT_TRUE(held[j]);
    EXPECT_EQ(held[j].key(), absl::StrCat("small", i));
    EXPECT_EQ(held[j].value(), std::string(100 + i % 300, 'a' + i % 26));
  }
}

// Past the arena's cap a store drains the emptiest pages, which are often
// the ones a class just started. It does so before it allocates its own
// item, so the key it stores is always readable right after (until other
// stores evict it).
TEST(StoreTest, AStoreIsNotUndoneByItsOwnPageDrain) {
  Store store(Options(4 << 20, 1 << 20, 1));
  for (int i = 0; i < 20000; ++i) {
    const std::string key = absl::StrCat("small", i);
    ASSERT_EQ(Set(store, key, std::string(100 + i % 300, 'a' + i % 26)),
              StoreResult::kStored);
    ASSERT_TRUE(store.Get(key, kNow)) << key;
  }
  EXPECT_GT(store.GetStats().slabs_moved, 0u);
}

TEST(StoreTest, ItemsBiggerThanTheStripeShareAreOutOfMemory) {
  // 4 KB budget, 1 MB max item: one stripe with a 4 KB share.
  Store store(Options(4096));
  ASSERT_EQ(store.stripe_count(), 1u);
  EXPECT_EQ(Set(store, "k", "small"), StoreResult::kStored);
  EXPECT_EQ(Set(store, "j", std::string(3000, 'a')), StoreResult::kStored);
  EXPECT_EQ(store.Put(StoreMode::kReplace, "k", 0, 0, std::string(5000, 'a'), 0,
                      kNow),
            StoreResult::kOutOfMemory);
  EXPECT_EQ(GetValue(store, "k"), "small");
  EXPECT_EQ(Set(store, "k", std::string(5000, 'a')), StoreResult::kOutOfMemory);
  EXPECT_FALSE(store.Get("k", kNow));  // memcached drops it on a failed set.
  EXPECT_EQ(GetValue(store, "j"), std::string(3000, 'a'));  // Nothing evicted.
  EXPECT_EQ(
      store.Put(StoreMode::kAppend, "j", 0, 0, std::string(2000, 'b'), 0, kNow),
      StoreResult::kNotStored);
}

TEST(StoreTest, SweepReclaimsExpiredAndFlushedItems) {
  Store store(Options(64 << 20, 1 << 20, 16));
  for (int i = 0; i < 100; ++i) {
    Set(store, absl::StrCat("ttl", i), "v", kNow + 10);
    Set(store, absl::StrCat("keep", i), "v");
  }
  const uint32_t stripes = store.stripe_count();
  EXPECT_EQ(store.SweepExpired(0, stripes, kNow + 5, 1000), 0u);
  EXPECT_EQ(store.GetStats().curr_items, 200u);
  // A budget stops the sweep early; the next sweep finishes the job.
  EXPECT_EQ(store.SweepExpired(0, stripes, kNow + 10, 30), 30u);
  EXPECT_EQ(store.GetStats().curr_items, 170u);
  size_t total = 30;
  for (uint32_t i = 0; i < stripes; i += 4) {
    total += store.SweepExpired(i, 4, kNow + 10, 1000);
  }
  EXPECT_EQ(total, 100u);
  StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.curr_items, 100u);
  EXPECT_EQ(stats.crawler_reclaimed, 100u);
  EXPECT_EQ(stats.expired_unfetched, 100u);
  // keep0..keep9 have 5-byte keys, keep10..keep99 6-byte keys.
  EXPECT_EQ(stats.bytes, 100 * Store::AccountedSize(6, 1) - 10);
  // Out-of-range slices are clipped.
  EXPECT_EQ(store.SweepExpired(stripes, 10, kNow + 10, 1000), 0u);
  // Flushed items are swept too.
  store.FlushAll(kNow + 20, kNow + 10);
  EXPECT_EQ(store.SweepExpired(0, stripes, kNow + 19, 1000), 0u);
  EXPECT_EQ(store.SweepExpired(0, stripes, kNow + 20, 1000), 100u);
  stats = store.GetStats();
  EXPECT_EQ(stats.curr_items, 0u);
  EXPECT_EQ(stats.bytes, 0u);
}

TEST(StoreTest, SweepVisitsABoundedNumberOfItemsAndResumes) {
  Store store(Options(64 << 20, 1 << 20, 1));
  for (int i = 0; i < 400; ++i) Set(store, absl::StrCat("keep", i), "v");
  Set(store, "ttl", "v", kNow + 10);
  // Nothing dead yet: skipped in O(1), whatever the budget.
  EXPECT_EQ(store.SweepExpired(0, 1, kNow + 5, 32, 10), 0u);
  // One dead item among 401: each call looks at about 10 items (whole
  // buckets), so the pass takes dozens of calls, each going on where the
  // last one stopped, and finds the item exactly once.
  size_t reclaimed = 0;
  int calls = 0;
  while (reclaimed == 0 && calls < 1000) {
    reclaimed += store.SweepExpired(0, 1, kNow + 10, 32, 10);
    ++calls;
  }
  EXPECT_EQ(reclaimed, 1u);
  EXPECT_LE(calls, 41);  // 401 items, at least 10 a call
  // Finish the pass; then the stripe is known clean and skipped again.
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(store.SweepExpired(0, 1, kNow + 10, 32, 10), 0u);
  }
  EXPECT_EQ(store.GetStats().curr_items, 400u);
  EXPECT_EQ(store.GetStats().crawler_reclaimed, 1u);
}

TEST(StoreTest, SweepOfManyDeadItemsIsBoundedPerCall) {
  Store store(Options(64 << 20, 1 << 20, 1));
  for (int i = 0; i < 300; ++i) {
    Set(store, absl::StrCat("ttl", i), "v", kNow + 10);
  }
  size_t total = 0;
  int calls = 0;
  while (total < 300 && calls < 1000) {
    const size_t n = store.SweepExpired(0, 1, kNow + 10, 1000, 10);
    // 10 visits, plus the rest of the last bucket's chain.
    EXPECT_GE(n, 1u);
    EXPECT_LE(n, 20u);
    total += n;
    ++calls;
  }
  EXPECT_EQ(total, 300u);
  EXPECT_GE(calls, 15);
  EXPECT_EQ(store.GetStats().curr_items, 0u);
}

TEST(StoreTest, SweepPassSurvivesAResize) {
  Store store(Options(64 << 20, 1 << 20, 1));
  for (int i = 0; i < 50; ++i) {
    Set(store, absl::StrCat("ttl", i), "v", kNow + 10);
  }
  // A pass starts, then the table grows under its cursor.
  EXPECT_GT(store.SweepExpired(0, 1, kNow + 10, 1000, 5), 0u);
  for (int i = 0; i < 5000; ++i) Set(store, absl::StrCat("keep", i), "v");
  // The next pass starts over and still finds every dead item.
  size_t calls = 0;
  while (store.GetStats().curr_items > 5000 && calls < 100000) {
    store.SweepExpired(0, 1, kNow + 10, 1000, 5);
    ++calls;
  }
  EXPECT_EQ(store.GetStats().curr_items, 5000u);
  EXPECT_EQ(store.GetStats().crawler_reclaimed, 50u);
}

TEST(StoreTest, SweepSeesExpiriesSetByTouch) {
  Store store(Options(64 << 20, 1 << 20, 1));
  Set(store, "k", "v");
  EXPECT_EQ(store.SweepExpired(0, 1, kNow, 10), 0u);
  store.Touch("k", kNow + 1, kNow);
  EXPECT_EQ(store.SweepExpired(0, 1, kNow + 1, 10), 1u);
}

TEST(StoreTest, SetMemoryLimitShrinksEagerly) {
  Store store(Options(1 << 20, 1 << 10, 4));
  for (int i = 0; i < 5000; ++i) Set(store, absl::StrCat("key", i), "value");
  ASSERT_GT(store.GetStats().bytes, 200u << 10);
  store.SetMemoryLimit(64 << 10);
  StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.limit_maxbytes, 64u << 10);
  EXPECT_LE(stats.bytes, 64u << 10);
  EXPECT_GT(stats.evictions, 0u);
  for (int i = 0; i < 5000; ++i) Set(store, absl::StrCat("again", i), "value");
  EXPECT_LE(store.GetStats().bytes, 64u << 10);
  store.SetMemoryLimit(1 << 20);
  for (int i = 0; i < 5000; ++i) Set(store, absl::StrCat("more", i), "value");
  EXPECT_GT(store.GetStats().bytes, 64u << 10);
}

TEST(StoreTest, BytesIsTheSumOfAccountedSizes) {
  Store store(StoreOptions{});
  Set(store, "a", "12345");
  Set(store, "bb", "");
  EXPECT_EQ(store.GetStats().bytes,
            Store::AccountedSize(1, 5) + Store::AccountedSize(2, 0));
  EXPECT_EQ(Store::AccountedSize(1, 5), 48u + 1 + 5 + 2 + 8);
  // Non-zero flags take four bytes, as in memcached.
  Set(store, "f", "12345", 0, 7);
  EXPECT_EQ(Store::AccountedSize(1, 5, 7), 48u + 4 + 1 + 5 + 2 + 8);
  EXPECT_EQ(store.GetStats().bytes, Store::AccountedSize(1, 5) +
                                        Store::AccountedSize(2, 0) +
                                        Store::AccountedSize(1, 5, 7));
  ItemRef flagged = store.Get("f", kNow);
  EXPECT_EQ(flagged.flags(), 7u);
  EXPECT_EQ(flagged.value_with_crlf(), "12345\r\n");
  EXPECT_EQ(flagged.alloc_size(), Store::AccountedSize(1, 5, 7) - 8);
  store.Delete("f", kNow);
  store.Put(StoreMode::kAppend, "a", 0, 0, "67", 0, kNow);
  EXPECT_EQ(store.GetStats().bytes,
            Store::AccountedSize(1, 7) + Store::AccountedSize(2, 0));
}

}  // namespace
}  // namespace memshard::cache
