#include "server/cache/store.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace memshard::cache {
namespace {

constexpr int64_t kNow = 1'700'000'000;  // A fake unix time.

StoreOptions Options(uint64_t limit, uint64_t max_item = 1 << 20,
                     uint32_t stripes = 0) {
  StoreOptions options;
  options.memory_limit_bytes = limit;
  options.max_item_size = max_item;
  options.stripes = stripes;
  return options;
}

StoreResult Set(Store& store, absl::string_view key, absl::string_view value,
                int64_t expires_at = 0, uint32_t flags = 0,
                int64_t now = kNow) {
  return store.Put(StoreMode::kSet, key, flags, expires_at, value, 0, now);
}

std::string GetValue(Store& store, absl::string_view key, int64_t now = kNow) {
  ItemRef ref = store.Get(key, now);
  return ref ? std::string(ref.value()) : "<miss>";
}

TEST(StoreTest, SetThenGetReturnsEverythingStored) {
  Store store(StoreOptions{});
  uint64_t cas = 0;
  EXPECT_EQ(
      store.Put(StoreMode::kSet, "key", 42, kNow + 100, "value", 0, kNow, &cas),
      StoreResult::kStored);
  ItemRef ref = store.Get("key", kNow);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref.key(), "key");
  EXPECT_EQ(ref.value(), "value");
  EXPECT_EQ(ref.value_with_crlf(), "value\r\n");
  EXPECT_EQ(ref.flags(), 42u);
  EXPECT_EQ(ref.expires_at(), kNow + 100);
  EXPECT_NE(ref.cas(), 0u);
  EXPECT_EQ(ref.cas(), cas);
  EXPECT_FALSE(store.Get("other", kNow));
}

TEST(StoreTest, EmptyValueAndMaxLengthKey) {
  Store store(StoreOptions{});
  const std::string key(Store::kMaxKeyLength, 'k');
  EXPECT_EQ(Set(store, key, ""), StoreResult::kStored);
  ItemRef ref = store.Get(key, kNow);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref.key(), key);
  EXPECT_EQ(ref.value(), "");
  EXPECT_EQ(ref.value_with_crlf(), "\r\n");
  const std::string too_long(Store::kMaxKeyLength + 1, 'k');
  EXPECT_EQ(Set(store, too_long, "v"), StoreResult::kNotStored);
  EXPECT_FALSE(store.Get(too_long, kNow));
}

TEST(StoreTest, AddOnlyStoresMissingKeys) {
  Store store(StoreOptions{});
  EXPECT_EQ(store.Put(StoreMode::kAdd, "k", 0, 0, "one", 0, kNow),
            StoreResult::kStored);
  EXPECT_EQ(store.Put(StoreMode::kAdd, "k", 0, 0, "two", 0, kNow),
            StoreResult::kNotStored);
  EXPECT_EQ(GetValue(store, "k"), "one");
}

TEST(StoreTest, ReplaceOnlyStoresExistingKeys) {
  Store store(StoreOptions{});
  EXPECT_EQ(store.Put(StoreMode::kReplace, "k", 0, 0, "one", 0, kNow),
            StoreResult::kNotStored);
  EXPECT_FALSE(store.Get("k", kNow));
  Set(store, "k", "one");
  EXPECT_EQ(store.Put(StoreMode::kReplace, "k", 5, 0, "two", 0, kNow),
            StoreResult::kStored);
  ItemRef ref = store.Get("k", kNow);
  EXPECT_EQ(ref.value(), "two");
  EXPECT_EQ(ref.flags(), 5u);
}

TEST(StoreTest, CasChecksTheUnique) {
  Store store(StoreOptions{});
  EXPECT_EQ(store.Put(StoreMode::kCas, "k", 0, 0, "v", 1, kNow),
            StoreResult::kNotFound);
  uint64_t cas = 0;
  store.Put(StoreMode::kSet, "k", 0, 0, "one", 0, kNow, &cas);
  EXPECT_EQ(store.Get("k", kNow).cas(), cas);
  EXPECT_EQ(store.Put(StoreMode::kCas, "k", 0, 0, "two", cas + 1, kNow),
            StoreResult::kExists);
  EXPECT_EQ(store.Put(StoreMode::kCas, "k", 0, 0, "two", 0, kNow),
            StoreResult::kExists);  // memcached: cas 0 does not match.
  EXPECT_EQ(GetValue(store, "k"), "one");
  uint64_t new_cas = 0;
  EXPECT_EQ(store.Put(StoreMode::kCas, "k", 0, 0, "two", cas, kNow, &new_cas),
            StoreResult::kStored);
  EXPECT_NE(new_cas, cas);
  EXPECT_EQ(GetValue(store, "k"), "two");
  // The old unique is stale now.
  EXPECT_EQ(store.Put(StoreMode::kCas, "k", 0, 0, "three", cas, kNow),
            StoreResult::kExists);
  // Missing because expired counts as not found.
  Set(store, "e", "v", kNow + 1);
  const uint64_t e_cas = store.Get("e", kNow).cas();
  EXPECT_EQ(store.Put(StoreMode::kCas, "e", 0, 0, "w", e_cas, kNow + 1),
            StoreResult::kNotFound);
}

TEST(StoreTest, EveryMutationGetsAUniqueCasAcrossStripes) {
  Store store(Options(64 << 20, 1 << 20, 64));
  std::set<uint64_t> seen;
  auto record = [&seen](uint64_t cas) {
    EXPECT_NE(cas, 0u);
    EXPECT_TRUE(seen.insert(cas).second) << "duplicate cas " << cas;
  };
  for (int i = 0; i < 2000; ++i) {
    const std::string key = absl::StrCat("key", i % 300);
    uint64_t cas = 0;
    ASSERT_EQ(store.Put(StoreMode::kSet, key, 0, 0, "1", 0, kNow, &cas),
              StoreResult::kStored);
    record(cas);
    ASSERT_EQ(store.Put(StoreMode::kAppend, key, 0, 0, "2", 0, kNow, &cas),
              StoreResult::kStored);
    record(cas);
    uint64_t value = 0;
    ASSERT_EQ(store.Delta(key, true, 1, kNow, &value, &cas), DeltaResult::kOk);
    EXPECT_EQ(value, 13u);
    record(cas);
    EXPECT_EQ(store.Get(key, kNow).cas(), cas);
  }
}

TEST(StoreTest, TouchKeepsTheCasLikeMemcached) {
  Store store(StoreOptions{});
  uint64_t cas = 0;
  store.Put(StoreMode::kSet, "k", 0, 0, "v", 0, kNow, &cas);
  EXPECT_TRUE(store.Touch("k", kNow + 50, kNow));
  EXPECT_EQ(store.Get("k", kNow).cas(), cas);
  ItemRef ref = store.GetAndTouch("k", kNow + 60, kNow);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref.cas(), cas);
  EXPECT_EQ(ref.expires_at(), kNow + 60);
}

TEST(StoreTest, AppendAndPrependKeepFlagsAndExpiry) {
  Store store(StoreOptions{});
  EXPECT_EQ(store.Put(StoreMode::kAppend, "k", 0, 0, "x", 0, kNow),
            StoreResult::kNotStored);
  EXPECT_EQ(store.Put(StoreMode::kPrepend, "k", 0, 0, "x", 0, kNow),
            StoreResult::kNotStored);
  EXPECT_FALSE(store.Get("k", kNow));
  Set(store, "k", "ab", kNow + 100, 7);
  EXPECT_EQ(store.Put(StoreMode::kAppend, "k", 9, 0, "cd", 0, kNow),
            StoreResult::kStored);
  EXPECT_EQ(store.Put(StoreMode::kPrepend, "k", 9, kNow + 1, "zz", 0, kNow),
            StoreResult::kStored);
  ItemRef ref = store.Get("k", kNow);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref.value(), "zzabcd");
  EXPECT_EQ(ref.value_with_crlf(), "zzabcd\r\n");
  EXPECT_EQ(ref.flags(), 7u);
  EXPECT_EQ(ref.expires_at(), kNow + 100);
  EXPECT_EQ(store.Put(StoreMode::kAppend, "k", 0, 0, "", 0, kNow),
            StoreResult::kStored);
  EXPECT_EQ(GetValue(store, "k"), "zzabcd");
}

TEST(StoreTest, AppendBeyondMaxItemSizeIsNotStored) {
  const uint64_t max_item = 1000;
  Store store(Options(1 << 20, max_item));
  const size_t fits = max_item - Store::AccountedSize(1, 0) + sizeof(void*);
  ASSERT_EQ(Set(store, "k", std::string(fits, 'a')), StoreResult::kStored);
  // The payload alone fits, the combination does not: memcached NOT_STORED.
  EXPECT_EQ(store.Put(StoreMode::kAppend, "k", 0, 0, "b", 0, kNow),
            StoreResult::kNotStored);
  // The payload alone is too large: memcached SERVER_ERROR object too large.
  EXPECT_EQ(
      store.Put(StoreMode::kAppend, "k", 0, 0, std::string(2000, 'b'), 0, kNow),
      StoreResult::kTooLarge);
  EXPECT_EQ(GetValue(store, "k"), std::string(fits, 'a'));
}

TEST(StoreTest, IncrementAndDecrement) {
  Store store(StoreOptions{});
  uint64_t value = 0;
  EXPECT_EQ(store.Delta("n", true, 1, kNow, &value), DeltaResult::kNotFound);
  Set(store, "n", "10", kNow + 100, 3);
  EXPECT_EQ(store.Delta("n", true, 5, kNow, &value), DeltaResult::kOk);
  EXPECT_EQ(value, 15u);
  EXPECT_EQ(GetValue(store, "n"), "15");
  EXPECT_EQ(store.Delta("n", false, 6, kNow, &value), DeltaResult::kOk);
  EXPECT_EQ(value, 9u);
  // memcached keeps the length and pads: "10" decr 1 reads back "9 ".
  EXPECT_EQ(GetValue(store, "n"), "9 ");
  EXPECT_EQ(store.Delta("n", false, 100, kNow, &value), DeltaResult::kOk);
  EXPECT_EQ(value, 0u);  // Floors at zero.
  EXPECT_EQ(GetValue(store, "n"), "0 ");
  EXPECT_EQ(store.Delta("n", true, 100, kNow, &value), DeltaResult::kOk);
  EXPECT_EQ(value, 100u);
  EXPECT_EQ(GetValue(store, "n"), "100");  // Grows when the number does.
  ItemRef ref = store.Get("n", kNow);
  EXPECT_EQ(ref.flags(), 3u);
  EXPECT_EQ(ref.expires_at(), kNow + 100);
}

TEST(StoreTest, IncrementWrapsAt64Bits) {
  Store store(StoreOptions{});
  Set(store, "n", "18446744073709551615");
  uint64_t value = 1;
  EXPECT_EQ(store.Delta("n", true, 1, kNow, &value), DeltaResult::kOk);
  EXPECT_EQ(value, 0u);
  EXPECT_EQ(GetValue(store, "n"), "0" + std::string(19, ' '));
  Set(store, "m", "5");
  EXPECT_EQ(store.Delta("m", true, UINT64_MAX, kNow, &value), DeltaResult::kOk);
  EXPECT_EQ(value, 4u);
}

TEST(StoreTest, DeltaThatOutgrowsATinyBudgetIsOutOfMemory) {
  Store store(Options(Store::AccountedSize(1, 2), 1 << 20, 1));
  ASSERT_EQ(Set(store, "n", "99"), StoreResult::kStored);
  uint64_t value = 0;
  EXPECT_EQ(store.Delta("n", false, 1, kNow, &value), DeltaResult::kOk);
  EXPECT_EQ(store.Delta("n", true, 1, kNow, &value), DeltaResult::kOk);
  EXPECT_EQ(store.Delta("n", true, 1, kNow, &value),
            DeltaResult::kOutOfMemory);  // "100" needs one more byte.
  EXPECT_EQ(GetValue(store, "n"), "99");
}

TEST(StoreTest, DeltaParsesLikeMemcachedSafeStrtoull) {
  struct Case {
    const char* stored;
    bool numeric;
    uint64_t after_incr_1;
  };
  // Each row was checked against memcached 1.6.18.
  const Case cases[] = {
      {" 12", true, 13},
      {"12 x", true, 13},
      {"\t5\t", true, 6},
      {"5\r\n", true, 6},
      {"+5", true, 6},
      {"-0", true, 1},
      {"-18446744073709551615", true, 2},
      {"0000000000000000000000001", true, 2},
      {"12x", false, 0},
      {"-1", false, 0},
      {"18446744073709551616", false, 0},
      {"", false, 0},
      {"  ", false, 0},
      {"abc", false, 0},
      {"+", false, 0},
      {"0x10", false, 0},
  };
  Store store(StoreOptions{});
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("value '", c.stored, "'"));
    Set(store, "n", c.stored);
    uint64_t value = 0;
    if (c.numeric) {
      ASSERT_EQ(store.Delta("n", true, 1, kNow, &value), DeltaResult::kOk);
      EXPECT_EQ(value, c.after_incr_1);
      // The number, space-padded to the old length (memcached's in-place
      // rewrite).
      std::string expected = absl::StrCat(c.after_incr_1);
      const size_t stored_len = std::strlen(c.stored);
      if (expected.size() < stored_len) expected.resize(stored_len, ' ');
      EXPECT_EQ(GetValue(store, "n"), expected);
    } else {
      EXPECT_EQ(store.Delta("n", true, 1, kNow, &value),
                DeltaResult::kNonNumeric);
      EXPECT_EQ(GetValue(store, "n"), c.stored);
    }
  }
}

TEST(StoreTest, ExpiryIsRelativeToNow) {
  Store store(StoreOptions{});
  Set(store, "k", "v", kNow + 10);
  EXPECT_EQ(GetValue(store, "k", kNow + 9), "v");
  EXPECT_EQ(GetValue(store, "k", kNow + 10), "<miss>");
  EXPECT_EQ(store.GetStats().get_expired, 1u);
  EXPECT_EQ(store.GetStats().curr_items, 0u);  // Reclaimed on access.
  // Dead items are missing for every command.
  Set(store, "k", "v", kNow + 10);
  EXPECT_FALSE(store.Touch("k", 0, kNow + 10));
  EXPECT_FALSE(store.Delete("k", kNow + 10));
  Set(store, "k", "1", kNow + 10);
  uint64_t value;
  EXPECT_EQ(store.Delta("k", true, 1, kNow + 10, &value),
            DeltaResult::kNotFound);
  Set(store, "k", "v", kNow + 10);
  EXPECT_EQ(store.Put(StoreMode::kAdd, "k", 0, 0, "w", 0, kNow + 10),
            StoreResult::kStored);
  EXPECT_EQ(GetValue(store, "k", kNow + 10), "w");
}

TEST(StoreTest, PastExpiryStoresNothingAndRemovesTheOldItem) {
  Store store(StoreOptions{});
  Set(store, "k", "v");
  EXPECT_EQ(Set(store, "k", "w", -1), StoreResult::kStored);
  EXPECT_FALSE(store.Get("k", kNow));
  EXPECT_EQ(Set(store, "k", "w", kNow), StoreResult::kStored);
  EXPECT_FALSE(store.Get("k", kNow));
  EXPECT_EQ(store.GetStats().curr_items, 0u);
}

TEST(StoreTest, TouchAndGetAndTouchMoveTheExpiry) {
  Store store(StoreOptions{});
  EXPECT_FALSE(store.Touch("k", kNow + 5, kNow));
  EXPECT_FALSE(store.GetAndTouch("k", kNow + 5, kNow));
  Set(store, "k", "v", kNow + 10);
  EXPECT_TRUE(store.Touch("k", kNow + 20, kNow));
  EXPECT_EQ(GetValue(store, "k", kNow + 15), "v");
  ItemRef ref = store.GetAndTouch("k", 0, kNow + 15);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref.expires_at(), 0);
  EXPECT_EQ(GetValue(store, "k", kNow + 1000000), "v");
  // A past expiry makes it disappear.
  EXPECT_TRUE(store.Touch("k", -1, kNow));
  EXPECT_FALSE(store.Get("k", kNow));
}

TEST(StoreTest, DeleteRemoves) {
  Store store(StoreOptions{});
  EXPECT_FALSE(store.Delete("k", kNow));
  Set(store, "k", "v");
  EXPECT_TRUE(store.Delete("k", kNow));
  EXPECT_FALSE(store.Get("k", kNow));
  EXPECT_FALSE(store.Delete("k", kNow));
  EXPECT_EQ(store.GetStats().curr_items, 0u);
  EXPECT_EQ(store.GetStats().bytes, 0u);
}

TEST(StoreTest, FlushAllNowInvalidatesOnlyEarlierItems) {
  Store store(Options(64 << 20, 1 << 20, 16));
  for (int i = 0; i < 100; ++i) Set(store, absl::StrCat("old", i), "v");
  store.FlushAll(kNow, kNow);
  // Stored in the same second, after the flush: unaffected.
  Set(store, "new", "v");
  EXPECT_EQ(GetValue(store, "new"), "v");
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(store.Get(absl::StrCat("old", i), kNow));
  }
  EXPECT_EQ(store.GetStats().get_flushed, 100u);
  EXPECT_EQ(store.GetStats().curr_items, 1u);
  // at_time in the past is immediate too.
  store.FlushAll(kNow - 5, kNow);
  EXPECT_FALSE(store.Get("new", kNow));
}

TEST(StoreTest, DelayedFlushAll) {
  Store store(StoreOptions{});
  Set(store, "a", "v");
  store.FlushAll(kNow + 10, kNow);
  Set(store, "b", "v", 0, 0, kNow + 5);
  EXPECT_EQ(GetValue(store, "a", kNow + 9), "v");
  EXPECT_EQ(GetValue(store, "b", kNow + 9), "v");
  // Items stored before at_time are gone once it comes...
  EXPECT_FALSE(store.Get("a", kNow + 10));
  EXPECT_FALSE(store.Get("b", kNow + 10));
  // ...items stored at or after it are not.
  Set(store, "c", "v", 0, 0, kNow + 10);
  EXPECT_EQ(GetValue(store, "c", kNow + 11), "v");
  EXPECT_EQ(GetValue(store, "c", kNow + 100), "v");
}

TEST(StoreTest, NewFlushAllReplacesAPendingOne) {
  Store store(StoreOptions{});
  Set(store, "a", "v");
  store.FlushAll(kNow + 2, kNow);
  store.FlushAll(kNow + 100, kNow);  // memcached: the later call wins.
  EXPECT_EQ(GetValue(store, "a", kNow + 3), "v");
  store.FlushAll(kNow, kNow);  // Immediate also cancels the pending one.
  EXPECT_FALSE(store.Get("a", kNow));
  Set(store, "b", "v");
  EXPECT_EQ(GetValue(store, "b", kNow + 200), "v");
}

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

TEST(StoreTest, ChoosesStripesSoEachHoldsFourMaxItems) {
  EXPECT_EQ(Store(Options(64ull << 20)).stripe_count(), 16u);
  EXPECT_EQ(Store(Options(1ull << 30)).stripe_count(), 256u);
  EXPECT_EQ(Store(Options(64ull << 30)).stripe_count(), 1024u);
  EXPECT_EQ(Store(Options(1 << 20)).stripe_count(), 1u);
  EXPECT_EQ(Store(Options(64ull << 20, 1024)).stripe_count(), 1024u);
  EXPECT_EQ(Store(Options(64ull << 20, 1 << 20, 8)).stripe_count(), 8u);
}

TEST(StoreTest, TooLargeItemsAreRejected) {
  Store store(Options(64 << 20, 1000));
  const size_t fits = 1000 - Store::AccountedSize(1, 0) + sizeof(void*);
  EXPECT_EQ(Set(store, "k", std::string(fits, 'a')), StoreResult::kStored);
  EXPECT_EQ(store.Put(StoreMode::kAdd, "j", 0, 0, std::string(fits + 1, 'a'), 0,
                      kNow),
            StoreResult::kTooLarge);
  // A failed add keeps the old item; a failed set drops it (memcached).
  EXPECT_EQ(store.Put(StoreMode::kAdd, "k", 0, 0, std::string(fits + 1, 'a'), 0,
                      kNow),
            StoreResult::kTooLarge);
  EXPECT_TRUE(store.Get("k", kNow));
  EXPECT_EQ(Set(store, "k", std::string(fits + 1, 'a')),
            StoreResult::kTooLarge);
  EXPECT_FALSE(store.Get("k", kNow));
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

TEST(StoreTest, ItemRefOutlivesDeleteReplaceEvictionFlushAndStore) {
  const std::string value(100, 'v');
  auto store = std::make_unique<Store>(
      Options(3 * Store::AccountedSize(6, value.size()), 1 << 20, 1));
  Set(*store, "victim", value);
  ItemRef deleted = store->Get("victim", kNow);
  ASSERT_TRUE(store->Delete("victim", kNow));
  Set(*store, "victim", value);
  ItemRef replaced = store->Get("victim", kNow);
  Set(*store, "victim", "new value");
  Set(*store, "evict0", value);
  ItemRef evicted = store->Get("evict0", kNow);
  for (int i = 0; i < 10; ++i) Set(*store, absl::StrCat("filler", i), value);
  EXPECT_FALSE(store->Get("evict0", kNow));
  Set(*store, "flushed", value);
  ItemRef flushed = store->Get("flushed", kNow);
  store->FlushAll(kNow, kNow);
  store->SweepExpired(0, store->stripe_count(), kNow, 1000);
  EXPECT_EQ(store->GetStats().curr_items, 0u);
  store.reset();
  for (const ItemRef* ref : {&deleted, &replaced, &evicted, &flushed}) {
    ASSERT_TRUE(*ref);
    EXPECT_EQ(ref->value(), value);
    EXPECT_EQ(ref->value_with_crlf(), value + "\r\n");
  }
  EXPECT_EQ(evicted.key(), "evict0");
}

TEST(StoreTest, ItemRefCopyAndMove) {
  Store store(StoreOptions{});
  Set(store, "k", "v");
  ItemRef a = store.Get("k", kNow);
  ItemRef b = a;
  ItemRef c = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty.
  ItemRef d;
  EXPECT_FALSE(d);
  d = b;
  d = d;
  ItemRef e;
  e = std::move(c);
  store.Delete("k", kNow);
  for (const ItemRef* ref : {&b, &d, &e}) EXPECT_EQ(ref->value(), "v");
  b = ItemRef();
  EXPECT_FALSE(b);
  EXPECT_EQ(e.value(), "v");
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

TEST(StoreTest, SweepSeesExpiriesSetByTouch) {
  Store store(Options(64 << 20, 1 << 20, 1));
  Set(store, "k", "v");
  EXPECT_EQ(store.SweepExpired(0, 1, kNow, 10), 0u);
  store.Touch("k", kNow + 1, kNow);
  EXPECT_EQ(store.SweepExpired(0, 1, kNow + 1, 10), 1u);
}

TEST(StoreTest, HashTablesGrow) {
  Store store(Options(64 << 20, 1 << 20, 1));
  const uint64_t initial = store.GetStats().hash_bytes;
  for (int i = 0; i < 20000; ++i) Set(store, absl::StrCat("key", i), "v");
  for (int i = 0; i < 20000; ++i) {
    ASSERT_EQ(GetValue(store, absl::StrCat("key", i)), "v") << i;
  }
  const StoreStats stats = store.GetStats();
  EXPECT_EQ(stats.curr_items, 20000u);
  // Load factor at most 1.5.
  EXPECT_GE(stats.hash_bytes / sizeof(uint32_t) * 3 / 2, 20000u);
  EXPECT_GT(stats.hash_bytes, initial);
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

// Four threads hammer overlapping keys with every operation, plus flushes,
// sweeps and a small budget forcing evictions, then check invariants. Run it
// under --config=tsan and --config=asan.
TEST(StoreTest, ConcurrentHammer) {
  constexpr int kThreads = 4;
  constexpr int kOpsPerThread = 40000;
  constexpr int kBlobKeys = 64;
  constexpr int kCounters = 8;
  constexpr int kIncrsPerThread = 2000;
  // Counters live in a store that never evicts, so their totals are exact.
  Store counters(Options(64 << 20, 1 << 20, 16));
  Store blobs(Options(8 << 10, 1 << 10, 4));
  for (int c = 0; c < kCounters; ++c) Set(counters, absl::StrCat("c", c), "0");

  // A blob's value is its key repeated, so any torn or mixed-up read shows.
  auto blob_value = [](const std::string& key, size_t repeat) {
    std::string value;
    for (size_t i = 0; i < repeat; ++i) value += key;
    return value;
  };
  auto check_blob = [](const ItemRef& ref) {
    ASSERT_TRUE(ref);
    const absl::string_view key = ref.key();
    const absl::string_view value = ref.value();
    ASSERT_EQ(value.size() % key.size(), 0u) << key;
    for (size_t i = 0; i < value.size(); i += key.size()) {
      ASSERT_EQ(value.substr(i, key.size()), key);
    }
    ASSERT_EQ(ref.value_with_crlf().substr(value.size()), "\r\n");
  };

  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<ItemRef> held;  // Refs kept across mutations, like writers.
      for (int i = 0; i < kOpsPerThread && !failed; ++i) {
        const int64_t now = kNow + i / 1000;
        const std::string key = absl::StrCat("blob", rng() % kBlobKeys, "_");
        switch (rng() % 10) {
          case 0:
          case 1:
          case 2:
            blobs.Put(StoreMode::kSet, key, 0, rng() % 4 ? 0 : now + 2,
                      blob_value(key, 1 + rng() % 60), 0, now);
            break;
          case 3:
            blobs.Put(StoreMode::kAppend, key, 0, 0, key, 0, now);
            break;
          case 4:
            blobs.Delete(key, now);
            break;
          case 5: {
            uint64_t value;
            // Blobs are non-numeric: exercises the parse path under races.
            DeltaResult r = blobs.Delta(key, true, 1, now, &value);
            if (r == DeltaResult::kOk) failed = true;
            break;
          }
          case 6:
            if (i % 97 == 0) blobs.FlushAll(now + rng() % 2, now);
            blobs.SweepExpired(rng() % 4, 2, now, 16);
            break;
          default: {
            ItemRef ref = blobs.Get(key, now);
            if (ref) {
              check_blob(ref);
              if (::testing::Test::HasFatalFailure()) failed = true;
              if (held.size() < 16) {
                held.push_back(ref);
              } else {
                held[rng() % held.size()] = std::move(ref);
              }
            }
          }
        }
        if (i < kIncrsPerThread) {
          uint64_t value;
          if (counters.Delta(absl::StrCat("c", i % kCounters), true, 1, kNow,
                             &value) != DeltaResult::kOk) {
            failed = true;
          }
        }
      }
      for (const ItemRef& ref : held) check_blob(ref);
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_FALSE(failed);

  uint64_t total = 0;
  for (int c = 0; c < kCounters; ++c) {
    uint64_t value = 0;
    ASSERT_EQ(counters.Delta(absl::StrCat("c", c), true, 0, kNow, &value),
              DeltaResult::kOk);
    total += value;
  }
  EXPECT_EQ(total, uint64_t{kThreads} * kIncrsPerThread);

  // Every live blob is intact and the accounting adds up.
  const int64_t later = kNow + kOpsPerThread / 1000 + 10;
  blobs.SweepExpired(0, blobs.stripe_count(), later, SIZE_MAX);
  uint64_t live = 0;
  uint64_t bytes = 0;
  for (int k = 0; k < kBlobKeys; ++k) {
    ItemRef ref = blobs.Get(absl::StrCat("blob", k, "_"), later);
    if (!ref) continue;
    check_blob(ref);
    ++live;
    bytes += Store::AccountedSize(ref.key().size(), ref.value().size());
  }
  const StoreStats stats = blobs.GetStats();
  EXPECT_EQ(stats.curr_items, live);
  EXPECT_EQ(stats.bytes, bytes);
  EXPECT_LE(stats.bytes, stats.limit_maxbytes);
  EXPECT_GT(stats.evictions, 0u);
}

// --- Meta protocol and binary protocol additions ---------------------------

TEST(StoreMetaTest, VivifyWinsOnceThenOthersSeeZ) {
  Store store(StoreOptions{});
  MetaGetOptions vivify;
  vivify.vivify = true;
  vivify.vivify_expires_at = kNow + 30;
  ItemMeta meta;
  ItemRef first = store.MetaGet("k", vivify, kNow, &meta);
  ASSERT_TRUE(first);
  EXPECT_TRUE(meta.created);
  EXPECT_TRUE(meta.won);
  EXPECT_FALSE(meta.token_sent);
  EXPECT_EQ(first.value(), "");
  EXPECT_EQ(first.expires_at(), kNow + 30);
  ItemRef second = store.MetaGet("k", vivify, kNow, &meta);
  ASSERT_TRUE(second);
  EXPECT_FALSE(meta.created);
  EXPECT_FALSE(meta.won);
  EXPECT_TRUE(meta.token_sent);
  EXPECT_EQ(second.cas(), first.cas());
  // Without N a miss stays a miss.
  EXPECT_FALSE(store.MetaGet("other", MetaGetOptions(), kNow, &meta));
}

TEST(StoreMetaTest, RecacheWinsBelowTheThreshold) {
  Store store(StoreOptions{});
  ASSERT_EQ(Set(store, "k", "v", kNow + 100), StoreResult::kStored);
  MetaGetOptions recache;
  recache.recache = true;
  recache.recache_below = kNow + 50;
  ItemMeta meta;
  ASSERT_TRUE(store.MetaGet("k", recache, kNow, &meta));
  EXPECT_FALSE(meta.won);  // 100 s left is not below 50
  recache.recache_below = kNow + 200;
  ASSERT_TRUE(store.MetaGet("k", recache, kNow, &meta));
  EXPECT_TRUE(meta.won);
  ASSERT_TRUE(store.MetaGet("k", recache, kNow, &meta));
  EXPECT_FALSE(meta.won);
  EXPECT_TRUE(meta.token_sent);
}

TEST(StoreMetaTest, HitBeforeAndLastAccessAreFromBeforeTheCommand) {
  Store store(StoreOptions{});
  ASSERT_EQ(Set(store, "k", "v"), StoreResult::kStored);
  ItemMeta meta;
  MetaGetOptions no_bump;
  no_bump.bump = false;
  ASSERT_TRUE(store.MetaGet("k", no_bump, kNow + 5, &meta));
  EXPECT_FALSE(meta.fetched);
  EXPECT_EQ(meta.last_access, kNow);
  ASSERT_TRUE(store.MetaGet("k", MetaGetOptions(), kNow + 7, &meta));
  EXPECT_FALSE(meta.fetched);  // u did not mark it
  EXPECT_EQ(meta.last_access, kNow);
  ASSERT_TRUE(store.Peek("k", kNow + 9, &meta));
  EXPECT_TRUE(meta.fetched);
  EXPECT_EQ(meta.last_access, kNow + 7);
}

TEST(StoreMetaTest, MetaGetSetsTheExpiry) {
  Store store(StoreOptions{});
  ASSERT_EQ(Set(store, "k", "v"), StoreResult::kStored);
  MetaGetOptions ttl;
  ttl.set_expiry = true;
  ttl.expires_at = kNow + 60;
  ItemMeta meta;
  ItemRef ref = store.MetaGet("k", ttl, kNow, &meta);
  ASSERT_TRUE(ref);
  EXPECT_EQ(meta.expiry_before, 0);
  EXPECT_EQ(ref.expires_at(), kNow + 60);
  EXPECT_FALSE(store.Get("k", kNow + 60));
}

TEST(StoreMetaTest, InvalidateMarksStaleWithANewCas) {
  Store store(StoreOptions{});
  uint64_t cas = 0;
  ASSERT_EQ(store.Put(StoreMode::kSet, "k", 3, 0, "v", 0, kNow, &cas),
            StoreResult::kStored);
  EXPECT_EQ(store.Invalidate("k", true, cas + 1, false, 0, kNow),
            DeleteResult::kExists);
  EXPECT_EQ(store.Invalidate("missing", false, 0, false, 0, kNow),
            DeleteResult::kNotFound);
  EXPECT_EQ(store.Invalidate("k", true, cas, true, kNow + 30, kNow),
            DeleteResult::kDeleted);
  ItemMeta meta;
  ItemRef ref = store.MetaGet("k", MetaGetOptions(), kNow, &meta);
  ASSERT_TRUE(ref);
  EXPECT_NE(ref.cas(), cas);
  EXPECT_EQ(ref.value(), "v");
  EXPECT_EQ(ref.flags(), 3u);
  EXPECT_EQ(ref.expires_at(), kNow + 30);
  EXPECT_TRUE(meta.stale);
  EXPECT_TRUE(meta.won);  // the first reader of a stale item wins
  ASSERT_TRUE(store.MetaGet("k", MetaGetOptions(), kNow, &meta));
  EXPECT_TRUE(meta.stale);
  EXPECT_FALSE(meta.won);
  EXPECT_TRUE(meta.token_sent);
  // A fresh store clears the stale mark.
  ASSERT_EQ(Set(store, "k", "new"), StoreResult::kStored);
  ASSERT_TRUE(store.MetaGet("k", MetaGetOptions(), kNow, &meta));
  EXPECT_FALSE(meta.stale);
}

TEST(StoreMetaTest, StaleCasStoresAStaleItem) {
  Store store(StoreOptions{});
  uint64_t cas = 0;
  ASSERT_EQ(store.Put(StoreMode::kSet, "k", 0, kNow + 100, "v1", 0, kNow, &cas),
            StoreResult::kStored);
  PutOptions stale;
  stale.allow_stale = true;
  // Higher than the item's: an ordinary mismatch.
  EXPECT_EQ(store.Put(StoreMode::kCas, "k", 0, 0, "v2", cas + 1000, kNow,
                      nullptr, stale),
            StoreResult::kExists);
  EXPECT_EQ(store.Put(StoreMode::kCas, "k", 0, 0, "v2", cas - 1, kNow, nullptr,
                      stale),
            StoreResult::kStored);
  ItemMeta meta;
  ItemRef ref = store.MetaGet("k", MetaGetOptions(), kNow, &meta);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref.value(), "v2");
  EXPECT_EQ(ref.expires_at(), kNow + 100);  // kept
  EXPECT_TRUE(meta.stale);
  // Without allow_stale a lower CAS is a mismatch.
  EXPECT_EQ(store.Put(StoreMode::kCas, "k", 0, 0, "v3", 1, kNow),
            StoreResult::kExists);
}

TEST(StoreMetaTest, DeleteIfChecksCas) {
  Store store(StoreOptions{});
  uint64_t cas = 0;
  ASSERT_EQ(store.Put(StoreMode::kSet, "k", 0, 0, "v", 0, kNow, &cas),
            StoreResult::kStored);
  EXPECT_EQ(store.DeleteIf("k", true, cas + 1, kNow), DeleteResult::kExists);
  EXPECT_EQ(store.DeleteIf("k", true, cas, kNow), DeleteResult::kDeleted);
  EXPECT_EQ(store.DeleteIf("k", false, 0, kNow), DeleteResult::kNotFound);
}

TEST(StoreMetaTest, DeltaChecksCasAndSetsExpiry) {
  Store store(StoreOptions{});
  uint64_t cas = 0;
  ASSERT_EQ(store.Put(StoreMode::kSet, "n", 0, kNow + 10, "5", 0, kNow, &cas),
            StoreResult::kStored);
  DeltaOptions options;
  options.check_cas = true;
  options.cas_in = cas + 1;
  DeltaOutcome outcome;
  EXPECT_EQ(store.Delta("n", true, 1, options, kNow, &outcome),
            DeltaResult::kExists);
  options.cas_in = cas;
  options.set_expiry = true;
  options.expires_at = kNow + 99;
  ASSERT_EQ(store.Delta("n", true, 1, options, kNow, &outcome),
            DeltaResult::kOk);
  EXPECT_EQ(outcome.value, 6u);
  EXPECT_NE(outcome.cas, cas);
  EXPECT_EQ(outcome.expiry_before, kNow + 10);
  EXPECT_EQ(outcome.expires_at, kNow + 99);
  EXPECT_EQ(store.Get("n", kNow).expires_at(), kNow + 99);
  EXPECT_EQ(store.Get("n", kNow).cas(), outcome.cas);
}

TEST(StoreMetaTest, AppendWithCas) {
  Store store(StoreOptions{});
  uint64_t cas = 0;
  ASSERT_EQ(store.Put(StoreMode::kSet, "k", 0, 0, "a", 0, kNow, &cas),
            StoreResult::kStored);
  EXPECT_EQ(store.Put(StoreMode::kAppend, "k", 0, 0, "b", cas + 1, kNow),
            StoreResult::kExists);
  EXPECT_EQ(store.Put(StoreMode::kAppend, "k", 0, 0, "b", cas, kNow),
            StoreResult::kStored);
  EXPECT_EQ(GetValue(store, "k"), "ab");
}

TEST(StoreMetaTest, KeyBinarySurvivesDerivedItems) {
  Store store(StoreOptions{});
  PutOptions binary;
  binary.key_binary = true;
  ASSERT_EQ(
      store.Put(StoreMode::kSet, "k", 0, 0, "1", 0, kNow, nullptr, binary),
      StoreResult::kStored);
  EXPECT_TRUE(store.Get("k", kNow).key_binary());
  uint64_t value = 0;
  ASSERT_EQ(store.Delta("k", true, 1, kNow, &value), DeltaResult::kOk);
  EXPECT_TRUE(store.Get("k", kNow).key_binary());
  ASSERT_EQ(Set(store, "k", "plain"), StoreResult::kStored);
  EXPECT_FALSE(store.Get("k", kNow).key_binary());
}

TEST(StoreMetaTest, ConcurrentVivifyHasOneWinner) {
  Store store(StoreOptions{});
  MetaGetOptions vivify;
  vivify.vivify = true;
  vivify.vivify_expires_at = kNow + 30;
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        ItemMeta meta;
        ItemRef ref =
            store.MetaGet(absl::StrCat("key", i), vivify, kNow, &meta);
        if (meta.won) winners.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 200);
}

}  // namespace
}  // namespace memshard::cache
