#include "server/cache/store.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/cache/store_test_util.h"

namespace memshard::cache {
namespace {

using store_testing::GetValue;
using store_testing::kNow;
using store_testing::Options;
using store_testing::Set;

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

// Past its share of the reserved buckets a stripe's table stops growing;
// its chains get longer and every item is still found.
TEST(StoreTest, HashTablesStopGrowingAtTheirReservation) {
  StoreOptions options = Options(64 << 20, 1 << 20, 2);
  options.reserved_buckets = 64;
  Store store(options);
  for (int i = 0; i < 3000; ++i) Set(store, absl::StrCat("key", i), "v");
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(GetValue(store, absl::StrCat("key", i)), "v") << i;
  }
  EXPECT_EQ(store.GetStats().hash_bytes, 64 * sizeof(uint32_t));
  for (int i = 0; i < 3000; i += 2) {
    ASSERT_TRUE(store.Delete(absl::StrCat("key", i), kNow)) << i;
  }
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(GetValue(store, absl::StrCat("key", i)), i % 2 ? "v" : "<miss>")
        << i;
  }
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

}  // namespace
}  // namespace memshard::cache
