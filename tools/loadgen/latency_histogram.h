#pragma once

// LatencyHistogram: a log-linear (HDR-style) histogram of durations in
// nanoseconds, with bounded relative error, for latency percentiles.
//
// Thread-safety: thread-compatible. One writer records; to combine the
// histograms of several threads, each thread keeps its own and a reader
// Merge()s them once the writers are quiescent (or joined).
//
// Layout and error bound: values below 2^kSubBucketBits are counted exactly.
// Each power of two [2^e, 2^(e+1)) above that is split into 2^kSubBucketBits
// equal buckets, so a bucket is never wider than 1/128 of its lower bound.
// Percentile() reports the middle of a bucket, so any reported value is
// within 1/256 (< 0.4%) of a value that was recorded, from 1 ns up to
// kMaxTrackable (about 36 minutes). Larger values land in the last bucket;
// max() stays exact. Memory: kNumBuckets 64-bit counters (35 KiB).
//
// Invariant: count() == sum of all bucket counts; when count() > 0,
// min() <= max() and both are exact recorded values.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace memshard {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr int64_t kSubBucketCount = int64_t{1} << kSubBucketBits;
  // Largest value with its own bucket; 2^41 ns is about 36.6 minutes.
  static constexpr int kMaxExponent = 40;
  static constexpr int64_t kMaxTrackable =
      (int64_t{1} << (kMaxExponent + 1)) - 1;
  static constexpr size_t kNumBuckets =
      kSubBucketCount + (kMaxExponent - kSubBucketBits + 1) * kSubBucketCount;

  LatencyHistogram();

  // Negative values count as 0 (a clock that stepped back must not crash
  // the caller); values above kMaxTrackable share the last bucket.
  void Record(int64_t nanos) { RecordN(nanos, 1); }
  void RecordN(int64_t nanos, uint64_t n);

  // Adds every sample of `other`. Bucket layouts are identical by
  // construction, so merging loses nothing.
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  // 0 when empty.
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  int64_t max() const { return count_ == 0 ? 0 : max_; }
  double Mean() const;

  // The value at percentile `p` in [0, 100] by nearest rank: the smallest
  // bucket whose cumulative count reaches ceil(p/100 * count), reported as
  // the bucket's middle clamped to [min(), max()]. Percentile(100) is max(),
  // Percentile(0) is min(). 0 when empty.
  int64_t Percentile(double p) const;

  // Bucket geometry, exposed for tests and exporters (e.g. Prometheus).
  static size_t BucketIndex(int64_t nanos);
  // Smallest and largest value counted in bucket `index`.
  static int64_t BucketLower(size_t index);
  static int64_t BucketUpper(size_t index);
  uint64_t bucket_count(size_t index) const { return buckets_[index]; }

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  // Sum in nanoseconds; as a double so hours of samples cannot overflow.
  double sum_ = 0;
};

}  // namespace memshard
