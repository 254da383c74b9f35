#include "server/expiry_sweeper.h"

#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

// Items that expired are reclaimed by the workers' sweeps alone (nobody reads
// them), and each worker only visits its own stripes.
TEST(ExpirySweeperTest, ReclaimsExpiredItemsWithoutAccess) {
  cache::StoreOptions options;
  options.stripes = 8;
  cache::Store store(options);
  int64_t now = absl::ToUnixSeconds(absl::Now());
  for (int i = 0; i < 500; ++i) {
    std::string key = "k" + std::to_string(i);
    // Already expired a second ago, but stored with a future time first so
    // the put succeeds, then touched into the past.
    ASSERT_EQ(store.Put(cache::StoreMode::kSet, key, 0, now + 100, "v", 0, now),
              cache::StoreResult::kStored);
    ASSERT_TRUE(store.Touch(key, now - 1, now - 2));
  }
  ASSERT_EQ(store.GetStats().curr_items, 500u);
  EventLoop loop;
  ExpirySweeper first(&loop, &store, 0, 2);
  ExpirySweeper second(&loop, &store, 1, 2);
  size_t total = 0;
  for (int step = 0; step < 200 && total < 500; ++step) {
    total += first.Step();
    total += second.Step();
  }
  EXPECT_EQ(total, 500u);
  EXPECT_EQ(store.GetStats().curr_items, 0u);
}

}  // namespace
}  // namespace memshard
