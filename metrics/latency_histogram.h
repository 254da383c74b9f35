#pragma once

// LatencyHistogram: a log-linear (HDR-style) histogram of durations in
// nanoseconds, with bounded relative error, for latency percentiles. The one
// implementation shared by the server (per-worker, per command family) and
// the load generator.
//
// Thread-safety: single writer, any readers. Record(), RecordN(), Merge(),
// Subtract() and Reset() change the histogram and must come from one thread
// at a time (its owner: for the server, the worker thread). Every field is a
// relaxed atomic updated with load+store (no read-modify-write), so any
// thread may read (count(), Percentile(), copy construction, or be the
// `other` of a Merge) while the owner records. Such a reader sees each
// bucket at some recent value; sums across buckets may be a few samples
// apart from count() while recording goes on, and Percentile() uses the
// bucket counts it actually read, so its answer is always self-consistent.
//
// Layout and error bound: values below 2^kSubBucketBits (128 ns) are counted
// exactly. Each power of two [2^e, 2^(e+1)) above that is split into
// 2^kSubBucketBits equal buckets, so a bucket is never wider than 1/128 of
// its lower bound. Percentile() reports the middle of a bucket, so a
// reported value is within 1/256 (< 0.4%) of a value that was recorded, from
// 1 ns up to kMaxTrackable (2^36 - 1 ns, about 68.7 s; the design asks for
// 1 us .. 60 s). Larger values share the last bucket; max() stays exact.
// Memory: kNumBuckets 64-bit counters (30 KiB), inline and cache-line
// aligned, so a worker's histograms live in its own cache lines.
//
// Invariant (when no writer is active): count() == the sum of all bucket
// counts; when count() > 0, min() <= max() are exact recorded values (after
// Subtract(), they are bucket bounds clamped to the exact extremes).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace memshard {

class alignas(64) LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr int64_t kSubBucketCount = int64_t{1} << kSubBucketBits;
  // Largest exponent with its own buckets: values up to 2^36 - 1 ns.
  static constexpr int kMaxExponent = 35;
  static constexpr int64_t kMaxTrackable =
      (int64_t{1} << (kMaxExponent + 1)) - 1;
  static constexpr size_t kNumBuckets =
      kSubBucketCount + (kMaxExponent - kSubBucketBits + 1) * kSubBucketCount;

  LatencyHistogram() = default;
  // Copies are snapshots: `other` may be recording meanwhile.
  LatencyHistogram(const LatencyHistogram& other) { CopyFrom(other); }
  LatencyHistogram& operator=(const LatencyHistogram& other) {
    if (this != &other) CopyFrom(other);
    return *this;
  }

  // Owner thread. Negative values count as 0 (a clock that stepped back must
  // not crash the caller); values above kMaxTrackable share the last bucket.
  void Record(int64_t nanos) { RecordN(nanos, 1); }
  void RecordN(int64_t nanos, uint64_t n) {
    if (n == 0) return;
    if (nanos < 0) nanos = 0;
    Bump(buckets_[BucketIndex(nanos)], n);
    // Extremes before the count, so a reader that sees the sample counted
    // usually sees them too (readers tolerate the rare miss).
    if (nanos > max_.load(std::memory_order_relaxed)) {
      max_.store(nanos, std::memory_order_relaxed);
    }
    if (nanos < min_.load(std::memory_order_relaxed)) {
      min_.store(nanos, std::memory_order_relaxed);
    }
    Bump(sum_, static_cast<uint64_t>(nanos) * n);
    Bump(count_, n);
  }

  // Owner thread of `this`. Adds every sample of `other` (which any thread
  // may be writing). Bucket layouts are identical, so merging loses nothing.
  void Merge(const LatencyHistogram& other);
  // Owner thread of `this`. Removes the samples of `earlier`, an older
  // snapshot of this same histogram (how `stats reset` works without
  // touching a worker's block). min() and max() become the bounds of the
  // lowest and highest non-empty buckets, clamped to the exact extremes.
  void Subtract(const LatencyHistogram& earlier);
  // Owner thread.
  void Reset();

  // Any thread.
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // 0 when empty.
  int64_t min() const;
  int64_t max() const { return count() == 0 ? 0 : Load(max_); }
  // Sum of all samples in nanoseconds (wraps after 584 years of latency).
  uint64_t sum() const { return sum_.load(std::memory_order_relaxed); }
  double Mean() const;

  // The value at percentile `p` in [0, 100] by nearest rank: the smallest
  // bucket whose cumulative count reaches ceil(p/100 * count), reported as
  // the bucket's middle clamped to [min(), max()]. Percentile(100) is max(),
  // Percentile(0) is min(). 0 when empty.
  int64_t Percentile(double p) const;

  // How many samples were <= `nanos`, counting whole buckets only: exact
  // when `nanos` is a bucket's upper bound, otherwise it leaves out the one
  // bucket straddling `nanos` (< 1% of its value). For Prometheus `le`.
  uint64_t CountAtOrBelow(int64_t nanos) const;

  // Bucket geometry, exposed for tests and exporters.
  static size_t BucketIndex(int64_t nanos) {
    if (nanos < 0) nanos = 0;
    if (nanos > kMaxTrackable) nanos = kMaxTrackable;
    if (nanos < kSubBucketCount) return static_cast<size_t>(nanos);
    const int exponent = 63 - __builtin_clzll(static_cast<uint64_t>(nanos));
    const int shift = exponent - kSubBucketBits;
    // (nanos >> shift) is in [kSubBucketCount, 2 * kSubBucketCount).
    return static_cast<size_t>(kSubBucketCount + shift * kSubBucketCount +
                               ((nanos >> shift) - kSubBucketCount));
  }
  // Smallest and largest value counted in bucket `index`.
  static int64_t BucketLower(size_t index);
  static int64_t BucketUpper(size_t index);
  uint64_t bucket_count(size_t index) const {
    return buckets_[index].load(std::memory_order_relaxed);
  }

 private:
  // Single-writer increment: a plain load and store, no locked instruction.
  static void Bump(std::atomic<uint64_t>& v, uint64_t n) {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static int64_t Load(const std::atomic<int64_t>& v) {
    return v.load(std::memory_order_relaxed);
  }
  void CopyFrom(const LatencyHistogram& other);

  std::array<std::atomic<uint64_t>, kNumBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
  // min_ starts high so the first sample always lowers it; min() hides it
  // while empty.
  std::atomic<int64_t> min_{std::numeric_limits<int64_t>::max()};
  std::atomic<int64_t> max_{0};
};

}  // namespace memshard
