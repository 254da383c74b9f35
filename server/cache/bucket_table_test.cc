#include "server/cache/bucket_table.h"

#include <cstdint>
#include <set>

#include "gtest/gtest.h"

namespace memshard::cache::internal {
namespace {

// Every stripe's buckets are distinct, start zero, and each 64-byte line
// holds one stripe's buckets only (no false sharing between stripe locks).
TEST(BucketTableTest, StripesOwnWholeLinesOfDistinctBuckets) {
  constexpr uint32_t kStripes = 8;
  BucketTable table(kStripes, 8 * 1024);
  ASSERT_EQ(table.max_buckets_per_stripe(), 1024u);
  std::set<const uint32_t*> seen;
  std::set<uintptr_t> lines[kStripes];
  for (uint32_t s = 0; s < kStripes; ++s) {
    for (size_t i = 0; i < table.max_buckets_per_stripe(); ++i) {
      const uint32_t* bucket = table.Bucket(s, i);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(bucket) % sizeof(uint32_t), 0u);
      ASSERT_TRUE(seen.insert(bucket).second) << s << " " << i;
      ASSERT_EQ(*bucket, 0u);
      // What a stripe computes from its own fields (Store's Stripe::Bucket).
      ASSERT_EQ(BucketTable::BucketFrom(table.Bucket(s, 0),
                                        table.line_stride_bits(), i),
                bucket);
      lines[s].insert(reinterpret_cast<uintptr_t>(bucket) / 64);
    }
  }
  for (uint32_t s = 0; s < kStripes; ++s) {
    EXPECT_EQ(lines[s].size(), 1024u / 16);
    for (uint32_t t = s + 1; t < kStripes; ++t) {
      for (uintptr_t line : lines[s]) ASSERT_EQ(lines[t].count(line), 0u);
    }
  }
}

// A table of n buckets per stripe uses only the first n * stripes buckets
// of the reservation: growing every stripe to n touches nothing beyond,
// and doubling one stripe adds buckets just past that.
TEST(BucketTableTest, FirstBucketsOfEveryStripeArePacked) {
  constexpr uint32_t kStripes = 4;
  BucketTable table(kStripes, 4 * 4096);
  const uint32_t* base = table.Bucket(0, 0);
  for (size_t n = BucketTable::kInitialBuckets; n <= 4096; n *= 2) {
    for (uint32_t s = 0; s < kStripes; ++s) {
      for (size_t i = 0; i < n; ++i) {
        ASSERT_LT(table.Bucket(s, i) - base,
                  static_cast<ptrdiff_t>(n * kStripes));
      }
    }
  }
}

TEST(BucketTableTest, CapacityIsThePowerOfTwoShareOfTheReservation) {
  EXPECT_EQ(BucketTable(4, 1000).max_buckets_per_stripe(), 128u);
  EXPECT_EQ(BucketTable(1, 1 << 20).max_buckets_per_stripe(), 1u << 20);
  // Never below one line per stripe.
  EXPECT_EQ(BucketTable(64, 16).max_buckets_per_stripe(),
            BucketTable::kInitialBuckets);
  // The default reserves address space only.
  BucketTable big(1024);
  EXPECT_EQ(big.max_buckets_per_stripe() * 1024,
            BucketTable::kDefaultReservedBuckets);
  EXPECT_EQ(big.bytes_in_use(), 1024 * 16 * sizeof(uint32_t));
}

TEST(BucketTableTest, MaskHintOnlyGrows) {
  BucketTable table(2, 1 << 12);
  EXPECT_EQ(table.mask_hint(), BucketTable::kInitialBuckets - 1);
  table.NoteMask(63);
  table.NoteMask(31);
  EXPECT_EQ(table.mask_hint(), 63u);
  EXPECT_EQ(table.bytes_in_use(), 2 * 64 * sizeof(uint32_t));
}

}  // namespace
}  // namespace memshard::cache::internal
