#include "metrics/latency_histogram.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace memshard {
namespace {

constexpr int64_t kMicrosecond = 1000;
constexpr int64_t kSecond = 1000 * 1000 * 1000;

double RelativeError(int64_t reported, int64_t actual) {
  return std::abs(static_cast<double>(reported - actual)) /
         static_cast<double>(actual);
}

// The exact nearest-rank percentile of `values` (sorted in place).
int64_t ExactPercentile(std::vector<int64_t>& values, double p) {
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(
      std::ceil(p / 100.0 * static_cast<double>(values.size())));
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

// Histograms are 30 KiB each: keep them off the test's stack.
std::unique_ptr<LatencyHistogram> NewHistogram() {
  return std::make_unique<LatencyHistogram>();
}

TEST(LatencyHistogramTest, EmptyReportsZero) {
  auto h = NewHistogram();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->min(), 0);
  EXPECT_EQ(h->max(), 0);
  EXPECT_EQ(h->Percentile(50), 0);
  EXPECT_EQ(h->Mean(), 0);
  EXPECT_EQ(h->CountAtOrBelow(LatencyHistogram::kMaxTrackable), 0u);
}

TEST(LatencyHistogramTest, CoversOneMicrosecondToSixtySeconds) {
  EXPECT_GE(LatencyHistogram::kMaxTrackable, 60 * kSecond);
  EXPECT_LT(LatencyHistogram::BucketIndex(60 * kSecond),
            LatencyHistogram::kNumBuckets - 1);
}

TEST(LatencyHistogramTest, BucketsTileTheRangeWithoutGaps) {
  EXPECT_EQ(LatencyHistogram::BucketLower(0), 0);
  for (size_t i = 1; i < LatencyHistogram::kNumBuckets; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketLower(i),
              LatencyHistogram::BucketUpper(i - 1) + 1)
        << "bucket " << i;
  }
  EXPECT_EQ(LatencyHistogram::BucketUpper(LatencyHistogram::kNumBuckets - 1),
            LatencyHistogram::kMaxTrackable);
}

TEST(LatencyHistogramTest, EveryBucketIsNarrowerThanOnePercent) {
  for (size_t i = 0; i < LatencyHistogram::kNumBuckets; ++i) {
    const int64_t lower = LatencyHistogram::BucketLower(i);
    const int64_t upper = LatencyHistogram::BucketUpper(i);
    ASSERT_EQ(LatencyHistogram::BucketIndex(lower), i);
    ASSERT_EQ(LatencyHistogram::BucketIndex(upper), i);
    if (lower > 0) {
      ASSERT_LE(static_cast<double>(upper - lower) / lower, 0.01)
          << "bucket " << i;
    }
  }
}

// Any single value from 1 us to 60 s comes back within 1%.
TEST(LatencyHistogramTest, SingleValuesWithinOnePercentFrom1usTo60s) {
  for (double v = kMicrosecond; v <= 60.0 * kSecond; v *= 1.0137) {
    for (int64_t value : {static_cast<int64_t>(v), static_cast<int64_t>(v) + 1,
                          static_cast<int64_t>(v) + 7}) {
      auto same = NewHistogram();
      same->RecordN(value, 3);
      ASSERT_EQ(same->Percentile(50), value) << "clamped to min == max";
      // Percentiles strictly inside report the bucket middle, not min/max.
      auto spread = NewHistogram();
      spread->Record(1);
      spread->Record(value);
      spread->Record(LatencyHistogram::kMaxTrackable);
      ASSERT_LE(RelativeError(spread->Percentile(50), value), 0.01) << value;
    }
  }
}

TEST(LatencyHistogramTest, PercentilesOfLogUniformSamplesWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> log_value(std::log(1e3),
                                                   std::log(60e9));
  auto h = NewHistogram();
  std::vector<int64_t> values;
  for (int i = 0; i < 200000; ++i) {
    int64_t v = static_cast<int64_t>(std::exp(log_value(rng)));
    values.push_back(v);
    h->Record(v);
  }
  for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99}) {
    const int64_t exact = ExactPercentile(values, p);
    EXPECT_LE(RelativeError(h->Percentile(p), exact), 0.01) << "p" << p;
  }
  EXPECT_EQ(h->min(), values.front());
  EXPECT_EQ(h->max(), values.back());
  EXPECT_EQ(h->Percentile(100), values.back());
  EXPECT_EQ(h->Percentile(0), values.front());
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  auto h = NewHistogram();
  for (int64_t v = 0; v < 128; ++v) h->Record(v);
  for (int64_t v = 1; v < 128; ++v) {
    EXPECT_EQ(h->Percentile(100.0 * (v + 1) / 128.0), v);
  }
}

TEST(LatencyHistogramTest, MeanSumAndCount) {
  auto h = NewHistogram();
  h->Record(1000);
  h->RecordN(3000, 3);
  EXPECT_EQ(h->count(), 4u);
  EXPECT_EQ(h->sum(), 10000u);
  EXPECT_DOUBLE_EQ(h->Mean(), 2500.0);
}

TEST(LatencyHistogramTest, NegativeCountsAsZeroAndHugeIsClamped) {
  auto h = NewHistogram();
  h->Record(-5);
  EXPECT_EQ(h->min(), 0);
  const int64_t huge = int64_t{1} << 50;
  h->Record(huge);
  EXPECT_EQ(h->max(), huge);
  EXPECT_EQ(h->Percentile(100), huge);
  EXPECT_EQ(h->bucket_count(LatencyHistogram::kNumBuckets - 1), 1u);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> latency(1.0 / 50000);
  auto all = NewHistogram();
  auto a = NewHistogram();
  auto b = NewHistogram();
  for (int i = 0; i < 50000; ++i) {
    int64_t v = static_cast<int64_t>(latency(rng)) + 1000;
    all->Record(v);
    (i % 3 == 0 ? *a : *b).Record(v);
  }
  auto merged = NewHistogram();
  merged->Merge(*a);
  merged->Merge(*b);
  merged->Merge(*NewHistogram());  // merging empty changes nothing
  EXPECT_EQ(merged->count(), all->count());
  EXPECT_EQ(merged->min(), all->min());
  EXPECT_EQ(merged->max(), all->max());
  EXPECT_EQ(merged->sum(), all->sum());
  for (size_t i = 0; i < LatencyHistogram::kNumBuckets; ++i) {
    ASSERT_EQ(merged->bucket_count(i), all->bucket_count(i));
  }
  for (double p : {50.0, 99.0, 99.9}) {
    EXPECT_EQ(merged->Percentile(p), all->Percentile(p));
  }
}

TEST(LatencyHistogramTest, CopyIsASnapshot) {
  auto h = NewHistogram();
  h->Record(5000);
  h->Record(7000);
  auto copy = std::make_unique<LatencyHistogram>(*h);
  h->Record(9000);
  EXPECT_EQ(copy->count(), 2u);
  EXPECT_EQ(copy->max(), 7000);
  EXPECT_EQ(h->count(), 3u);
}

TEST(LatencyHistogramTest, SubtractLeavesOnlyLaterSamples) {
  auto h = NewHistogram();
  for (int i = 0; i < 1000; ++i) h->Record(1000 + i);  // 1.0 .. 2.0 us
  auto baseline = std::make_unique<LatencyHistogram>(*h);
  for (int i = 0; i < 10; ++i) h->Record(50 * kMicrosecond);
  auto since = std::make_unique<LatencyHistogram>(*h);
  since->Subtract(*baseline);
  EXPECT_EQ(since->count(), 10u);
  EXPECT_EQ(since->sum(), 10u * 50 * kMicrosecond);
  EXPECT_LE(RelativeError(since->Percentile(50), 50 * kMicrosecond), 0.01);
  EXPECT_LE(RelativeError(since->min(), 50 * kMicrosecond), 0.01);
  EXPECT_EQ(since->max(), 50 * kMicrosecond);  // clamped to the exact max

  since->Subtract(*since);
  EXPECT_EQ(since->count(), 0u);
  EXPECT_EQ(since->Percentile(99), 0);
}

TEST(LatencyHistogramTest, CountAtOrBelowCountsWholeBuckets) {
  auto h = NewHistogram();
  h->Record(100);
  h->Record(1000);
  h->Record(1000 * kMicrosecond);
  EXPECT_EQ(h->CountAtOrBelow(99), 0u);
  EXPECT_EQ(h->CountAtOrBelow(100), 1u);
  const size_t b = LatencyHistogram::BucketIndex(1000);
  EXPECT_EQ(h->CountAtOrBelow(LatencyHistogram::BucketUpper(b)), 2u);
  EXPECT_EQ(h->CountAtOrBelow(LatencyHistogram::BucketLower(b) - 1), 1u);
  EXPECT_EQ(h->CountAtOrBelow(kSecond), 3u);
}

TEST(LatencyHistogramTest, ResetEmpties) {
  auto h = NewHistogram();
  h->Record(12345);
  h->Reset();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->Percentile(99), 0);
  h->Record(7);
  EXPECT_EQ(h->min(), 7);
  EXPECT_EQ(h->max(), 7);
}

// One writer records while a reader keeps reading: the reader never sees a
// count go backwards or a torn value, and once the writer is done every
// sample is there (single-writer load+store loses nothing).
TEST(LatencyHistogramTest, ReadersNeverDisturbTheWriter) {
  constexpr uint64_t kSamples = 2000000;
  auto h = NewHistogram();
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint64_t i = 0; i < kSamples; ++i) {
      h->Record(static_cast<int64_t>(1000 + i % 100000));
    }
    done.store(true);
  });
  uint64_t last = 0;
  int reads = 0;
  while (!done.load()) {
    const uint64_t now = h->count();
    ASSERT_GE(now, last);
    last = now;
    const int64_t p99 = h->Percentile(99);
    ASSERT_GE(p99, 0);
    ASSERT_LE(p99, 101000);
    auto copy = std::make_unique<LatencyHistogram>(*h);
    ASSERT_LE(copy->count(), kSamples);
    ++reads;
  }
  writer.join();
  EXPECT_GT(reads, 0);
  EXPECT_EQ(h->count(), kSamples);
  uint64_t total = 0;
  for (size_t i = 0; i < LatencyHistogram::kNumBuckets; ++i) {
    total += h->bucket_count(i);
  }
  EXPECT_EQ(total, kSamples);
  EXPECT_EQ(h->min(), 1000);
  EXPECT_EQ(h->max(), 1000 + 99999);
}

}  // namespace
}  // namespace memshard
