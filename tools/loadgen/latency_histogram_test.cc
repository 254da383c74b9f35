#include "tools/loadgen/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
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

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.Percentile(50), 0);
  EXPECT_EQ(h.Mean(), 0);
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
      LatencyHistogram h;
      h.Record(value);
      h.Record(value);
      h.Record(value);
      // Percentiles strictly inside report the bucket middle, not min/max.
      LatencyHistogram spread;
      spread.Record(1);
      spread.Record(value);
      spread.Record(LatencyHistogram::kMaxTrackable);
      ASSERT_LE(RelativeError(spread.Percentile(50), value), 0.01) << value;
      ASSERT_EQ(h.Percentile(50), value) << "clamped to min == max";
    }
  }
}

TEST(LatencyHistogramTest, PercentilesOfLogUniformSamplesWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> log_value(std::log(1e3),
                                                   std::log(60e9));
  LatencyHistogram h;
  std::vector<int64_t> values;
  for (int i = 0; i < 200000; ++i) {
    int64_t v = static_cast<int64_t>(std::exp(log_value(rng)));
    values.push_back(v);
    h.Record(v);
  }
  for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99}) {
    const int64_t exact = ExactPercentile(values, p);
    EXPECT_LE(RelativeError(h.Percentile(p), exact), 0.01) << "p" << p;
  }
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.Percentile(100), values.back());
  EXPECT_EQ(h.Percentile(0), values.front());
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int64_t v = 0; v < 128; ++v) h.Record(v);
  for (int64_t v = 1; v < 128; ++v) {
    EXPECT_EQ(h.Percentile(100.0 * (v + 1) / 128.0), v);
  }
}

TEST(LatencyHistogramTest, MeanAndCount) {
  LatencyHistogram h;
  h.Record(1000);
  h.RecordN(3000, 3);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.Mean(), 2500.0);
}

TEST(LatencyHistogramTest, NegativeCountsAsZeroAndHugeIsClamped) {
  LatencyHistogram h;
  h.Record(-5);
  EXPECT_EQ(h.min(), 0);
  const int64_t huge = int64_t{1} << 50;
  h.Record(huge);
  EXPECT_EQ(h.max(), huge);
  EXPECT_EQ(h.Percentile(100), huge);
  EXPECT_EQ(h.bucket_count(LatencyHistogram::kNumBuckets - 1), 1u);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> latency(1.0 / 50000);
  LatencyHistogram all, a, b;
  for (int i = 0; i < 50000; ++i) {
    int64_t v = static_cast<int64_t>(latency(rng)) + 1000;
    all.Record(v);
    (i % 3 == 0 ? a : b).Record(v);
  }
  LatencyHistogram merged;
  merged.Merge(a);
  merged.Merge(b);
  merged.Merge(LatencyHistogram());  // merging empty changes nothing
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.Mean(), all.Mean());
  for (size_t i = 0; i < LatencyHistogram::kNumBuckets; ++i) {
    ASSERT_EQ(merged.bucket_count(i), all.bucket_count(i));
  }
  for (double p : {50.0, 99.0, 99.9}) {
    EXPECT_EQ(merged.Percentile(p), all.Percentile(p));
  }
}

TEST(LatencyHistogramTest, ResetEmpties) {
  LatencyHistogram h;
  h.Record(12345);
  h.Reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(99), 0);
  h.Record(7);
  EXPECT_EQ(h.min(), 7);
}

}  // namespace
}  // namespace memshard
