// Store internals shared by store.cc, store_eviction.cc (CLOCK eviction,
// page drains, the expiry sweep) and store_meta.cc (meta commands): the
// stripe's hash table, the free list, the CLOCK hand, the key hash and item
// sizes. Private to //server/cache:store (not in its hdrs).
//
// Thread-safety: as in store.h; each struct says which lock guards what.
// Lock order: a CLOCK hand, then an arena class or mapping lock, then a
// stripe's (the victim's, after the class lock is dropped).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "server/cache/item.h"
#include "server/cache/slab_arena.h"
#include "server/cache/spin_lock.h"
#include "server/cache/store.h"

namespace memshard::cache {
namespace store_internal {

using internal::Item;

// "No item in the stripe expires" for Stripe::earliest_expiry.
constexpr int64_t kNoExpiry = std::numeric_limits<int64_t>::max();

// The key hash: a seeded multiply-fold hash (the 64x64->128-bit product's
// halves xored, as in wyhash), inline so the request path pays no call and
// no length-prefix mixing of absl::Hash (-75 instructions per key under
// callgrind). Top bits pick the stripe, low bits the bucket: the final fold
// mixes every input bit into both.
inline uint64_t Fold(uint64_t a, uint64_t b) {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}
inline uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline uint64_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
constexpr uint64_t kMix0 = 0x9e3779b97f4a7c15ull;  // 2^64 / golden ratio
constexpr uint64_t kMix1 = 0xc2b2ae3d27d4eb4full;
constexpr uint64_t kMix2 = 0x165667b19e3779f9ull;

inline uint64_t HashKey(absl::string_view key, uint64_t seed) {
  const char* p = key.data();
  size_t n = key.size();
  uint64_t h = seed ^ (n * kMix0);
  while (n > 16) {
    h = Fold(Load64(p) ^ kMix1, Load64(p + 8) ^ h);
    p += 16;
    n -= 16;
  }
  uint64_t a = 0;
  uint64_t b = 0;
  if (n >= 8) {
    a = Load64(p);
    b = Load64(p + n - 8);
  } else if (n >= 4) {
    a = Load32(p);
    b = Load32(p + n - 4);
  } else if (n > 0) {
    a = (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
        (uint64_t{static_cast<uint8_t>(p[n / 2])} << 8) |
        static_cast<uint8_t>(p[n - 1]);
  }
  return Fold(Fold(a ^ kMix1, b ^ h ^ kMix2) ^ kMix0, h ^ kMix2);
}

inline uint32_t ClampExpiry(int64_t expires_at) {
  if (expires_at == 0) return 0;
  if (expires_at < 0) return 1;  // Already dead for any real `now`.
  if (expires_at > std::numeric_limits<uint32_t>::max()) {
    return std::numeric_limits<uint32_t>::max();
  }
  return static_cast<uint32_t>(expires_at);
}

inline uint32_t ClampTime(int64_t now) {
  if (now < 0) return 0;
  if (now > std::numeric_limits<uint32_t>::max()) {
    return std::numeric_limits<uint32_t>::max();
  }
  return static_cast<uint32_t>(now);
}

inline bool IsExpired(uint32_t expiry, int64_t now) {
  return expiry != 0 && expiry <= now;
}

inline uint64_t Accounted(const Item* item) {
  return Store::AccountedSize(item->key_len(), item->value_len(),
                              item->flags());
}

// An item's sizes for the two counters, from one look at it: Accounted()
// for `bytes` (the stat), and what the budget charges: the larger of that
// and the memory the item really holds (its chunk or mapping) plus its
// 4-byte hash slot. Charging chunks keeps the arena's footprint within the
// limit plus partly used pages, as memcached's -m limits slab pages rather
// than item bytes; charging at least Accounted() keeps `bytes` within the
// limit.
struct ItemSizes {
  uint64_t accounted;
  uint64_t charged;
};

inline ItemSizes SizesOf(const Item* item) {
  const uint32_t state = item->state.load(std::memory_order_relaxed);
  const bool mapped = (state & Item::kMapped) != 0;
  const size_t flags = (state & Item::kHasFlags) != 0 ? sizeof(uint32_t) : 0;
  const size_t value_len = mapped ? internal::SlabArena::MappedWord(item)
                                  : item->lens >> Item::kKeyLenBits;
  const size_t payload = flags + item->key_len() + value_len + 2;
  const size_t occupied =
      internal::SlabArena::OccupiedSize(item, sizeof(Item) + payload, mapped);
  const uint64_t accounted = Item::kNotionalHeader + payload + sizeof(void*);
  return {accounted,
          std::max<uint64_t>(accounted, occupied + sizeof(uint32_t))};
}

}  // namespace store_internal

// Items unlinked under a stripe lock, released after it is dropped: freeing
// (possibly a munmap for a large value) must not happen in the critical
// section. Chained through internal::Item::hash_next, which an unlinked item no
// longer uses, so collecting them never allocates. Declare it before the lock
// holder so that it is destroyed after the unlock.
struct Store::FreeList {
  explicit FreeList(const internal::SlabArena* arena) : arena(arena) {}
  FreeList(const FreeList&) = delete;
  FreeList& operator=(const FreeList&) = delete;
  ~FreeList() {
    while (head != 0) {
      internal::Item* item = static_cast<internal::Item*>(arena->Resolve(head));
      head = item->hash_next;
      internal::Item::Unref(item);
    }
  }
  void Push(internal::Item* item, uint32_t handle) {
    item->hash_next = head;
    head = handle;
  }
  const internal::SlabArena* const arena;
  uint32_t head = 0;
};

// A CLOCK hand: where it stands in its class's pages (or the mapped items'
// slots). The lock orders hand, then class or mapping lock, then a stripe's
// (the victim's, after the class lock is dropped).
struct alignas(64) Store::Hand {
  SpinLock lock;
  uint64_t cursor = 0;  // SlabArena::ClockStep's
  // Stats (StoreStats::clock_visits, evicted_active): written under `lock`,
  // read without it.
  std::atomic<uint64_t> visits{0};
  std::atomic<uint64_t> taken_active{0};
};

// One stripe: a chained hash table, intrusive through
// internal::Item::hash_next, of 32-bit arena handles (4 bytes a slot and a link
// instead of 8).
//
// No LRU list: eviction is CLOCK over the arena's pages (Store::EvictOne).
// With malloc'd items an exact LRU was what kept RSS bounded (its tail is
// the oldest allocation, so evictions freed neighbouring blocks that
// coalesced; CLOCK over the hash table left holes everywhere: 137 MiB peak
// RSS against 93 under //tools/memcheck overfill at 64 MiB). With the arena
// a hole is a chunk of its class's page, which the next item of that class
// takes, and when value sizes shift, the footprint cap drains whole pages
// (Reclaim) whatever the eviction order: the hand walking the pages in
// address order keeps RSS within the same bounds (soak_test,
// rss_bound_integration_test) and saves two links (16 bytes) per item.
//
// Aligned to a cache line so neighbouring stripes' locks do not false-share.
// A lookup that finds a live item reads only the first line (the lock, the
// table, the arena and the flush state), and so does the expiry sweep when
// the stripe has nothing to reclaim: a stripe is cold more often than not,
// and each line is a miss.
struct alignas(64) Store::Stripe {
  SpinLock lock;
  // Flushed items may remain; SweepExpired must scan.
  bool unswept_flush ABSL_GUARDED_BY(lock) = false;
  // internal::BucketTable::line_stride_bits(). Immutable after
  // construction.
  uint8_t line_stride_bits = 0;
  uint32_t index = 0;  // Immutable after construction.
  // Bucket 0 in Store::table_. Immutable after construction; the buckets
  // themselves are guarded by `lock`.
  uint32_t* table = nullptr;
  size_t bucket_mask ABSL_GUARDED_BY(lock) = 0;
  const internal::SlabArena* arena = nullptr;  // Immutable after construction.
  // Items whose CAS is below this were stored before the last flush.
  uint64_t flush_cas ABSL_GUARDED_BY(lock) = 0;
  // A delayed flush_all, applied by the first operation at or after it.
  int64_t pending_flush_at ABSL_GUARDED_BY(lock) = 0;
  // Lower bound on the expiry of every item with one (0: unknown, scan):
  // the expiry sweep's O(1) test, which reads only this line.
  int64_t earliest_expiry ABSL_GUARDED_BY(lock) = store_internal::kNoExpiry;

  // Immutable after construction.
  std::atomic<uint64_t>* charged = nullptr;         // Store::charged_
  std::atomic<uint64_t>* charged_mapped = nullptr;  // and its mapped part
  uint64_t bytes ABSL_GUARDED_BY(lock) =
      0;  // store_internal::ItemSizes::accounted, stats
  uint64_t count ABSL_GUARDED_BY(lock) = 0;
  // CAS = cas_counter << stripe_bits | index: unique store-wide without a
  // shared atomic, and increasing within the stripe.
  uint64_t cas_counter ABSL_GUARDED_BY(lock) = 1;
  // Bumped by every table resize, so a sweep can tell its cursor is stale.
  uint64_t resize_generation ABSL_GUARDED_BY(lock) = 0;
  // Store::SweepStripe's pass, if one is under way: the next bucket and
  // the resize_generation the pass started in.
  bool sweeping ABSL_GUARDED_BY(lock) = false;
  size_t sweep_cursor ABSL_GUARDED_BY(lock) = 0;
  uint64_t sweep_generation ABSL_GUARDED_BY(lock) = 0;

  uint64_t total_items ABSL_GUARDED_BY(lock) = 0;
  uint64_t evictions ABSL_GUARDED_BY(lock) = 0;
  uint64_t evicted_unfetched ABSL_GUARDED_BY(lock) = 0;
  uint64_t reclaimed ABSL_GUARDED_BY(lock) = 0;
  uint64_t expired_unfetched ABSL_GUARDED_BY(lock) = 0;
  uint64_t get_expired ABSL_GUARDED_BY(lock) = 0;
  uint64_t get_flushed ABSL_GUARDED_BY(lock) = 0;
  uint64_t crawler_reclaimed ABSL_GUARDED_BY(lock) = 0;

  size_t bucket_count() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    return bucket_mask + 1;
  }

  // Bucket i (below bucket_count()), from this line's fields alone.
  uint32_t* Bucket(size_t i) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    return internal::BucketTable::BucketFrom(table, line_stride_bits, i);
  }

  internal::Item* At(uint32_t handle) const {
    return static_cast<internal::Item*>(arena->Resolve(handle));
  }
  uint32_t HandleOf(const internal::Item* item) const {
    return arena->HandleOf(item, item->Has(internal::Item::kMapped));
  }

  uint64_t CasWatermark(int stripe_bits) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    return (cas_counter << stripe_bits) | index;
  }

  uint64_t NextCas(int stripe_bits) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    const uint64_t cas = CasWatermark(stripe_bits);
    ++cas_counter;
    return cas;
  }

  void FlushNow(int stripe_bits) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    flush_cas = CasWatermark(stripe_bits);
    pending_flush_at = 0;
    if (count > 0) unswept_flush = true;
  }

  // Applies a delayed flush_all whose time has come. Every operation calls
  // this first, so no item can be stored in this stripe at or after the flush
  // time before the flush takes effect.
  void FireFlush(int64_t now, int stripe_bits)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    if (pending_flush_at != 0 && now >= pending_flush_at) FlushNow(stripe_bits);
  }

  bool Flushed(const internal::Item* item) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    return item->cas() < flush_cas;
  }

  bool Dead(const internal::Item* item, int64_t now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    return Flushed(item) || store_internal::IsExpired(item->expiry(), now);
  }

  // The link holding `key`'s item's handle, or null. A dead item found on
  // the way is unlinked (lazy reclaim) and reported as missing.
  uint32_t* Find(absl::string_view key, uint64_t hash, int64_t now,
                 FreeList* free) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    uint32_t* slot = Bucket(hash & bucket_mask);
    while (const uint32_t handle = *slot) {
      internal::Item* item = At(handle);
      if (item->key() == key) {
        if (Flushed(item)) {
          ++get_flushed;
        } else if (store_internal::IsExpired(item->expiry(), now)) {
          ++get_expired;
        } else {
          return slot;
        }
        Unlink(slot, free);
        return nullptr;
      }
      slot = &item->hash_next;
    }
    return nullptr;
  }

  // A read: used (CLOCK), fetched, accessed now.
  void Access(internal::Item* item, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    item->Touch(internal::Item::kFetched);
    item->last_access = store_internal::ClampTime(now);
  }

  // memcached's bump without a fetch (a failed add).
  void Bump(internal::Item* item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    item->Touch(0);
  }

  void NoteExpiry(uint32_t expiry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    if (expiry != 0 && expiry < earliest_expiry) earliest_expiry = expiry;
  }

  // Takes over the caller's reference as the table's reference.
  void Link(internal::Item* item, uint64_t hash, int64_t now,
            const store_internal::ItemSizes& sizes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    item->last_access = store_internal::ClampTime(now);
    uint32_t* bucket = Bucket(hash & bucket_mask);
    item->hash_next = *bucket;
    *bucket = HandleOf(item);
    item->state.fetch_or(internal::Item::kLinked | internal::Item::kClockOne,
                         std::memory_order_relaxed);
    ++count;
    ++total_items;
    bytes += sizes.accounted;
    charged->fetch_add(sizes.charged, std::memory_order_relaxed);
    if (item->Has(internal::Item::kMapped)) {
      charged_mapped->fetch_add(sizes.charged, std::memory_order_relaxed);
    }
    NoteExpiry(item->expiry());
  }

  // Moves the table's reference to `free` (to the caller if null: it must
  // drop it after the unlock). Returns the item's sizes (what an eviction
  // freed).
  store_internal::ItemSizes Unlink(uint32_t* slot, FreeList* free)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    const uint32_t handle = *slot;
    internal::Item* item = At(handle);
    *slot = item->hash_next;
    item->state.fetch_and(
        ~(internal::Item::kLinked | internal::Item::kClockMask),
        std::memory_order_relaxed);
    --count;
    const store_internal::ItemSizes sizes = store_internal::SizesOf(item);
    bytes -= sizes.accounted;
    charged->fetch_sub(sizes.charged, std::memory_order_relaxed);
    if (item->Has(internal::Item::kMapped)) {
      charged_mapped->fetch_sub(sizes.charged, std::memory_order_relaxed);
    }
    if (free != nullptr) free->Push(item, handle);
    return sizes;
  }

  // The bucket count to grow from, or 0 if the load factor is fine (or
  // the stripe has `max_buckets` already).
  size_t GrowthNeeded(size_t max_buckets) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    const size_t buckets_now = bucket_count();
    return count > buckets_now + buckets_now / 2 && buckets_now < max_buckets
               ? buckets_now
               : 0;
  }
};

inline uint64_t Store::Hash(absl::string_view key) const {
  return store_internal::HashKey(key, hash_seed_);
}

inline size_t Store::StripeIndex(uint64_t hash) const {
  // Top bits pick the stripe, low bits the bucket: independent choices.
  return stripe_bits_ == 0 ? 0 : hash >> stripe_shift_;
}

inline Store::Stripe& Store::StripeFor(uint64_t hash) const {
  return stripes_[StripeIndex(hash)];
}

inline void Store::PrefetchBucket(uint64_t hash) const {
  table_.Prefetch(static_cast<uint32_t>(StripeIndex(hash)), hash);
}

inline void Store::PrefetchStripeAndBucket(const Stripe& stripe,
                                           uint64_t hash) const {
  // Both load at once: the lock's xchg waits for every load before it, but
  // not for prefetches.
  __builtin_prefetch(&stripe.lock, 1);
  PrefetchBucket(hash);
}

template <typename R, typename Hit>
R Store::FindLive(Stripe& stripe, absl::string_view key, uint64_t hash,
                  int64_t now, const R& miss, Hit&& hit) {
  FreeList free(arena_);  // destroyed after `holder`: frees outside the lock
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  uint32_t* slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return miss;
  return hit(stripe, slot, &free);
}

template <typename R, typename Hit>
R Store::FindLive(absl::string_view key, int64_t now, const R& miss,
                  Hit&& hit) {
  if (key.size() > kMaxKeyLength) return miss;
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  PrefetchStripeAndBucket(stripe, hash);
  return FindLive(stripe, key, hash, now, miss, std::forward<Hit>(hit));
}

}  // namespace memshard::cache
