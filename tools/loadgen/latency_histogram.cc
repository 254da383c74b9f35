#include "tools/loadgen/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace memshard {

LatencyHistogram::LatencyHistogram() : buckets_(kNumBuckets, 0) {}

size_t LatencyHistogram::BucketIndex(int64_t nanos) {
  if (nanos < 0) nanos = 0;
  if (nanos > kMaxTrackable) nanos = kMaxTrackable;
  if (nanos < kSubBucketCount) return static_cast<size_t>(nanos);
  const int exponent = 63 - __builtin_clzll(static_cast<uint64_t>(nanos));
  const int shift = exponent - kSubBucketBits;
  // (nanos >> shift) is in [kSubBucketCount, 2 * kSubBucketCount).
  return static_cast<size_t>(kSubBucketCount + shift * kSubBucketCount +
                             ((nanos >> shift) - kSubBucketCount));
}

int64_t LatencyHistogram::BucketLower(size_t index) {
  const int64_t i = static_cast<int64_t>(index);
  if (i < kSubBucketCount) return i;
  const int64_t shift = i / kSubBucketCount - 1;
  const int64_t sub = i % kSubBucketCount + kSubBucketCount;
  return sub << shift;
}

int64_t LatencyHistogram::BucketUpper(size_t index) {
  const int64_t i = static_cast<int64_t>(index);
  if (i < kSubBucketCount) return i;
  const int64_t shift = i / kSubBucketCount - 1;
  return BucketLower(index) + (int64_t{1} << shift) - 1;
}

void LatencyHistogram::RecordN(int64_t nanos, uint64_t n) {
  if (n == 0) return;
  if (nanos < 0) nanos = 0;
  buckets_[BucketIndex(nanos)] += n;
  if (count_ == 0) {
    min_ = max_ = nanos;
  } else {
    min_ = std::min(min_, nanos);
    max_ = std::max(max_, nanos);
  }
  count_ += n;
  sum_ += static_cast<double>(nanos) * static_cast<double>(n);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kNumBuckets; ++i) buckets_[i] += other.buckets_[i];
  if (count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  count_ += other.count_;
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  min_ = max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::Mean() const {
  return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_);
}

int64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  if (p <= 0) return min_;
  if (p >= 100) return max_;
  uint64_t rank =
      static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kNumBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      const int64_t lower = BucketLower(i);
      const int64_t middle = lower + (BucketUpper(i) - lower) / 2;
      return std::clamp(middle, min_, max_);
    }
  }
  return max_;
}

}  // namespace memshard
