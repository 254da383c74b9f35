// Store tests: meta-protocol commands and CAS-checked variants
// (store_meta.cc).
#include <atomic>
#include <cstdint>
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
using store_testing::Set;

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
