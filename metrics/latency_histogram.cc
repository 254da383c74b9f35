#include "metrics/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace memshard {
namespace {

constexpr int64_t kNoMin = std::numeric_limits<int64_t>::max();

void Store(std::atomic<uint64_t>& v, uint64_t value) {
  v.store(value, std::memory_order_relaxed);
}

void Store(std::atomic<int64_t>& v, int64_t value) {
  v.store(value, std::memory_order_relaxed);
}

}  // namespace

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

void LatencyHistogram::CopyFrom(const LatencyHistogram& other) {
  // The count is re-derived from the buckets actually copied, so the copy
  // is self-consistent even if `other` was recording meanwhile.
  uint64_t total = 0;
  for (size_t i = 0; i < kNumBuckets; ++i) {
    const uint64_t c = other.bucket_count(i);
    Store(buckets_[i], c);
    total += c;
  }
  Store(min_, Load(other.min_));
  Store(max_, Load(other.max_));
  Store(sum_, other.sum());
  Store(count_, total);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  uint64_t added = 0;
  for (size_t i = 0; i < kNumBuckets; ++i) {
    const uint64_t c = other.bucket_count(i);
    if (c == 0) continue;
    Bump(buckets_[i], c);
    added += c;
  }
  if (added == 0) return;
  Store(min_, std::min(Load(min_), Load(other.min_)));
  Store(max_, std::max(Load(max_), Load(other.max_)));
  Bump(sum_, other.sum());
  Bump(count_, added);
}

void LatencyHistogram::Subtract(const LatencyHistogram& earlier) {
  uint64_t total = 0;
  size_t lowest = kNumBuckets;
  size_t highest = 0;
  for (size_t i = 0; i < kNumBuckets; ++i) {
    const uint64_t now = bucket_count(i);
    const uint64_t then = earlier.bucket_count(i);
    // Saturating: a Reset() between the two would otherwise wrap.
    const uint64_t c = now > then ? now - then : 0;
    Store(buckets_[i], c);
    if (c == 0) continue;
    total += c;
    if (lowest == kNumBuckets) lowest = i;
    highest = i;
  }
  const uint64_t sum_now = sum();
  const uint64_t sum_then = earlier.sum();
  Store(sum_, sum_now > sum_then ? sum_now - sum_then : 0);
  if (total == 0) {
    Store(min_, kNoMin);
    Store(max_, 0);
  } else {
    Store(min_, std::max(BucketLower(lowest), Load(min_)));
    Store(max_, std::min(BucketUpper(highest), Load(max_)));
  }
  Store(count_, total);
}

void LatencyHistogram::Reset() {
  for (auto& bucket : buckets_) Store(bucket, 0);
  Store(min_, kNoMin);
  Store(max_, 0);
  Store(sum_, 0);
  Store(count_, 0);
}

int64_t LatencyHistogram::min() const {
  if (count() == 0) return 0;
  const int64_t m = Load(min_);
  // A reader may see the count before the first sample's minimum.
  return m == kNoMin ? 0 : m;
}

double LatencyHistogram::Mean() const {
  const uint64_t n = count();
  return n == 0 ? 0.0 : static_cast<double>(sum()) / static_cast<double>(n);
}

int64_t LatencyHistogram::Percentile(double p) const {
  uint64_t total = 0;
  for (size_t i = 0; i < kNumBuckets; ++i) total += bucket_count(i);
  if (total == 0) return 0;
  const int64_t lo = min();
  const int64_t hi = max();
  if (p <= 0) return lo;
  if (p >= 100) return hi;
  uint64_t rank =
      static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total)));
  rank = std::clamp<uint64_t>(rank, 1, total);
  uint64_t seen = 0;
  for (size_t i = 0; i < kNumBuckets; ++i) {
    seen += bucket_count(i);
    if (seen >= rank) {
      const int64_t lower = BucketLower(i);
      int64_t value = lower + (BucketUpper(i) - lower) / 2;
      // Clamp only when the extremes are coherent (a racing reader may see
      // them lag the buckets).
      if (lo <= hi) value = std::clamp(value, lo, hi);
      return value;
    }
  }
  return hi;
}

uint64_t LatencyHistogram::CountAtOrBelow(int64_t nanos) const {
  if (nanos < 0) return 0;
  size_t end = kNumBuckets;  // one past the last bucket counted
  if (nanos < kMaxTrackable) {
    const size_t index = BucketIndex(nanos);
    end = BucketUpper(index) == nanos ? index + 1 : index;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < end; ++i) total += bucket_count(i);
  return total;
}

}  // namespace memshard
