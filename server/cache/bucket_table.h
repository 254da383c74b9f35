// BucketTable: the store's hash buckets, every stripe's, at addresses
// computed from the stripe and the bucket index alone.
//
// Why: with an array per stripe, a lookup's bucket address comes from the
// stripe (or a per-stripe view of it), a load that misses under load like
// S4's (8000 connections, each request's socket work evicting the cache
// between requests): view, bucket and item were three dependent misses.
// Here the bucket's address is arithmetic on the hash, so it is prefetched
// at once and only the bucket and the item remain dependent.
//
// Layout: one reservation of address space (touched as the stripes grow),
// in 64-byte lines of 16 buckets. Stripe s's buckets 16k..16k+15 fill line
// k * stripes + s: a line belongs to one stripe (no false sharing between
// stripe locks), and the stripes' first n buckets all sit in the first
// n * stripes buckets, so a stripe doubles in place (its new buckets are
// the next ones up, still zero) and the resident part is the stripes'
// largest table times their number. Past the first 2 MiB the range asks
// for transparent huge pages: a bucket is scattered over the whole table,
// and with 4 KiB pages each lookup would also pay a TLB miss.
//
// Thread-safety: a stripe's buckets are guarded by its lock (the store's);
// the table itself is immutable after construction, except the hint below.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace memshard::cache::internal {

class BucketTable {
 public:
  // Buckets a stripe starts with: one line. Tables start small (a stripe
  // may stay nearly empty) and double when the load factor passes 1.5
  // (memcached's threshold; Store's Stripe::GrowthNeeded): chains stay
  // short and a bucket costs under a slot per item.
  static constexpr size_t kInitialBuckets = 16;
  // Address space reserved for every stripe's buckets together (1 GiB):
  // ~270M items at most at the 12 GiB memory limit's cap, one bucket each.
  static constexpr size_t kDefaultReservedBuckets = size_t{1} << 28;

  // `stripes`: a power of two. A stripe's table can grow to
  // reserved_buckets / stripes buckets (at least kInitialBuckets; less if
  // the reservation fails and a smaller one is taken).
  explicit BucketTable(uint32_t stripes,
                       size_t reserved_buckets = kDefaultReservedBuckets);
  ~BucketTable();
  BucketTable(const BucketTable&) = delete;
  BucketTable& operator=(const BucketTable&) = delete;

  // Stripe `stripe`'s bucket `index` (below max_buckets_per_stripe()).
  uint32_t* Bucket(uint32_t stripe, size_t index) const {
    return BucketFrom(base_ + (size_t{stripe} << kLineShift),
                      line_stride_bits(), index);
  }
  // The same from a stripe's own bucket 0 (Bucket(stripe, 0)) and
  // line_stride_bits(), without this object: Store's Stripe keeps both in
  // the line a lookup reads anyway.
  static uint32_t* BucketFrom(uint32_t* first, int line_stride_bits,
                              size_t index) {
    return first + ((index >> kLineShift) << line_stride_bits) +
           (index & (kBucketsPerLine - 1));
  }
  // log2 of the distance, in buckets, between two lines of one stripe.
  int line_stride_bits() const { return stripe_bits_ + kLineShift; }

  // Largest table a stripe may grow to: a power of two.
  size_t max_buckets_per_stripe() const { return max_per_stripe_; }

  // The largest mask any stripe has had (monotonic): what a prefetch uses,
  // without a load from the stripe. Stripes grow at about the same item
  // count, so it is almost always the stripe's own; when not, the
  // prefetch is wasted, never wrong.
  size_t mask_hint() const {
    return mask_hint_.load(std::memory_order_relaxed);
  }
  void NoteMask(size_t mask);

  // Starts loading the bucket `hash` falls in (stripe `stripe`).
  void Prefetch(uint32_t stripe, uint64_t hash) const {
    __builtin_prefetch(Bucket(stripe, hash & mask_hint()));
  }

  // Bytes of the table that are (or may be) resident: the first
  // (largest mask + 1) buckets of every stripe.
  size_t bytes_in_use() const {
    return (mask_hint() + 1) * stripes_ * sizeof(uint32_t);
  }

 private:
  static constexpr int kLineShift = 4;
  static constexpr size_t kBucketsPerLine = size_t{1} << kLineShift;

  const uint32_t stripes_;
  const int stripe_bits_;
  uint32_t* base_ = nullptr;
  size_t reserved_bytes_ = 0;
  size_t max_per_stripe_ = 0;
  std::atomic<size_t> mask_hint_{kInitialBuckets - 1};
};

}  // namespace memshard::cache::internal
