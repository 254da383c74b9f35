#include "server/cache/store.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "glog/logging.h"
#include "server/cache/malloc_config.h"
#include "server/cache/spin_lock.h"

namespace memshard::cache {

using internal::Item;

namespace {

constexpr uint32_t kDefaultStripes = 1024;
constexpr uint32_t kMaxStripes = 1 << 16;
constexpr uint64_t kMaxItemSizeLimit = uint64_t{1} << 30;
// Tables start small (a stripe may stay nearly empty) and double when the
// load factor passes 1.5 (memcached's threshold): chains stay short and a
// bucket costs under a slot per item.
constexpr size_t kInitialBuckets = 16;
constexpr size_t kMaxBuckets = size_t{1} << 31;
// Bounds on the work done per lock hold by the maintenance paths, so that
// request-path operations on the same stripe never wait long behind them.
constexpr size_t kSweepBucketsPerHold = 64;
// Chunks a CLOCK hand visits per class-lock hold (at most one page's).
constexpr size_t kClockChunksPerHold = 64;
// Pages a Reclaim drains at most (each is SlabArena::kPageSize): enough to
// keep up with a stream of the largest items, bounded per request.
constexpr int kDrainsPerReclaim = 8;
// Unused pages or kept mappings a Reclaim gives back at most (syscalls).
constexpr int kReleasesPerReclaim = 64;
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

uint32_t ClampExpiry(int64_t expires_at) {
  if (expires_at == 0) return 0;
  if (expires_at < 0) return 1;  // Already dead for any real `now`.
  if (expires_at > std::numeric_limits<uint32_t>::max()) {
    return std::numeric_limits<uint32_t>::max();
  }
  return static_cast<uint32_t>(expires_at);
}

uint32_t ClampTime(int64_t now) {
  if (now < 0) return 0;
  if (now > std::numeric_limits<uint32_t>::max()) {
    return std::numeric_limits<uint32_t>::max();
  }
  return static_cast<uint32_t>(now);
}

bool IsExpired(uint32_t expiry, int64_t now) {
  return expiry != 0 && expiry <= now;
}

bool IsCSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
         c == '\r';
}

// memcached's safe_strtoull (strtoull base 10 plus its checks) over a bounded
// view: leading whitespace, an optional sign, digits without overflow, then
// whitespace or the end (in memcached the value's CRLF ends it). A '-' is
// accepted only when the negated result is not negative as int64 ("-0" is 0).
bool ParseCounter(absl::string_view text, uint64_t* out) {
  size_t i = 0;
  while (i < text.size() && IsCSpace(text[i])) ++i;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    negative = text[i] == '-';
    ++i;
  }
  const size_t digits_begin = i;
  uint64_t value = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    const uint64_t digit = text[i] - '0';
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return false;  // strtoull: ERANGE.
    }
    value = value * 10 + digit;
  }
  if (i == digits_begin) return false;
  if (i < text.size() && !IsCSpace(text[i])) return false;
  if (negative) {
    value = 0 - value;  // strtoull negates in unsigned arithmetic.
    if (static_cast<int64_t>(value) < 0) return false;
  }
  *out = value;
  return true;
}

uint64_t ClampLimit(uint64_t limit) {
  if (limit > Store::kMaxMemoryLimit) {
    LOG(WARNING) << "memory limit " << limit << " bytes is above the "
                 << Store::kMaxMemoryLimit
                 << " the cache's 32-bit item handles can address; using that";
    return Store::kMaxMemoryLimit;
  }
  return limit;
}

uint32_t ChooseStripes(const StoreOptions& options) {
  if (options.stripes != 0) return options.stripes;
  uint32_t stripes = kDefaultStripes;
  while (stripes > 1 &&
         options.memory_limit_bytes / stripes < 4 * options.max_item_size) {
    stripes /= 2;
  }
  return stripes;
}

int Log2(uint32_t power_of_two) {
  int bits = 0;
  while ((uint32_t{1} << bits) < power_of_two) ++bits;
  return bits;
}

// The arena's resident cap for a memory limit: the limit, chunk rounding
// (classes are up to 8% apart: about 4% on average) and a few partly used
// pages per class (up to 8 MiB, a quarter of small limits, at least 16
// pages). Within limit x 1.10 + 32 MiB with room for the hash tables and
// connection buffers.
uint64_t ArenaCap(uint64_t limit) {
  return limit + limit / 16 +
         std::clamp<uint64_t>(limit / 4, 16 * internal::SlabArena::kPageSize,
                              8 << 20);
}

// Address space for the arena's pages: past the cap, items are mapped one by
// one, so this only needs to cover the cap comfortably.
uint64_t ArenaReserve(uint64_t limit) {
  return std::min<uint64_t>(ArenaCap(limit) + limit / 2 + (64 << 20),
                            internal::SlabArena::kMaxPageRange);
}

uint64_t Accounted(const Item* item) {
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

ItemSizes SizesOf(const Item* item) {
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

}  // namespace

// Items unlinked under a stripe lock, released after it is dropped: freeing
// (possibly a munmap for a large value) must not happen in the critical
// section. Chained through Item::hash_next, which an unlinked item no longer
// uses, so collecting them never allocates. Declare it before the lock holder
// so that it is destroyed after the unlock.
struct Store::FreeList {
  explicit FreeList(const internal::SlabArena* arena) : arena(arena) {}
  FreeList(const FreeList&) = delete;
  FreeList& operator=(const FreeList&) = delete;
  ~FreeList() {
    while (head != 0) {
      Item* item = static_cast<Item*>(arena->Resolve(head));
      head = item->hash_next;
      Item::Unref(item);
    }
  }
  void Push(Item* item, uint32_t handle) {
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
};

// One stripe: a chained hash table, intrusive through Item::hash_next, of
// 32-bit arena handles (4 bytes a slot and a link instead of 8).
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
struct alignas(64) Store::Stripe {
  SpinLock lock;
  std::unique_ptr<uint32_t[]> buckets ABSL_GUARDED_BY(lock);
  size_t bucket_mask ABSL_GUARDED_BY(lock) = 0;
  // `buckets` and `bucket_mask` for Store::Prefetch, which reads them
  // without the lock: stored (relaxed) whenever those change, so a prefetch
  // may use a stale or mismatched pair. It only ever prefetches with them,
  // and a prefetch never faults.
  std::atomic<const uint32_t*> prefetch_buckets{nullptr};
  std::atomic<size_t> prefetch_mask{0};

  void PublishBuckets() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    prefetch_buckets.store(buckets.get(), std::memory_order_relaxed);
    prefetch_mask.store(bucket_mask, std::memory_order_relaxed);
  }
  // Immutable after construction.
  const internal::SlabArena* arena = nullptr;
  std::atomic<uint64_t>* charged = nullptr;         // Store::charged_
  std::atomic<uint64_t>* charged_mapped = nullptr;  // and its mapped part
  uint64_t bytes ABSL_GUARDED_BY(lock) = 0;  // ItemSizes::accounted, stats
  uint64_t count ABSL_GUARDED_BY(lock) = 0;
  uint32_t index = 0;  // Immutable after construction.
  // CAS = cas_counter << stripe_bits | index: unique store-wide without a
  // shared atomic, and increasing within the stripe.
  uint64_t cas_counter ABSL_GUARDED_BY(lock) = 1;
  // Items whose CAS is below this were stored before the last flush.
  uint64_t flush_cas ABSL_GUARDED_BY(lock) = 0;
  // A delayed flush_all, applied by the first operation at or after it.
  int64_t pending_flush_at ABSL_GUARDED_BY(lock) = 0;
  // Flushed items may remain; SweepExpired must scan.
  bool unswept_flush ABSL_GUARDED_BY(lock) = false;
  // Lower bound on the expiry of every item with one (0: unknown, scan).
  int64_t earliest_expiry ABSL_GUARDED_BY(lock) = kNoExpiry;
  // Bumped by every table resize, so a sweep can tell its cursor is stale.
  uint64_t resize_generation ABSL_GUARDED_BY(lock) = 0;

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

  Item* At(uint32_t handle) const {
    return static_cast<Item*>(arena->Resolve(handle));
  }
  uint32_t HandleOf(const Item* item) const {
    return arena->HandleOf(item, item->Has(Item::kMapped));
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

  bool Flushed(const Item* item) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    return item->cas() < flush_cas;
  }

  bool Dead(const Item* item, int64_t now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    return Flushed(item) || IsExpired(item->expiry(), now);
  }

  // The link holding `key`'s item's handle, or null. A dead item found on
  // the way is unlinked (lazy reclaim) and reported as missing.
  uint32_t* Find(absl::string_view key, uint64_t hash, int64_t now,
                 FreeList* free) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    uint32_t* slot = &buckets[hash & bucket_mask];
    while (const uint32_t handle = *slot) {
      Item* item = At(handle);
      if (item->key() == key) {
        if (Flushed(item)) {
          ++get_flushed;
        } else if (IsExpired(item->expiry(), now)) {
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
  void Access(Item* item, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    item->Touch(Item::kFetched);
    item->last_access = ClampTime(now);
  }

  // memcached's bump without a fetch (a failed add).
  void Bump(Item* item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) { item->Touch(0); }

  void NoteExpiry(uint32_t expiry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    if (expiry != 0 && expiry < earliest_expiry) earliest_expiry = expiry;
  }

  // Takes over the caller's reference as the table's reference.
  void Link(Item* item, uint64_t hash, int64_t now, const ItemSizes& sizes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    item->last_access = ClampTime(now);
    uint32_t* bucket = &buckets[hash & bucket_mask];
    item->hash_next = *bucket;
    *bucket = HandleOf(item);
    item->state.fetch_or(Item::kLinked | Item::kClockOne,
                         std::memory_order_relaxed);
    ++count;
    ++total_items;
    bytes += sizes.accounted;
    charged->fetch_add(sizes.charged, std::memory_order_relaxed);
    if (item->Has(Item::kMapped)) {
      charged_mapped->fetch_add(sizes.charged, std::memory_order_relaxed);
    }
    NoteExpiry(item->expiry());
  }

  // Moves the table's reference to `free`.
  void Unlink(uint32_t* slot, FreeList* free)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    const uint32_t handle = *slot;
    Item* item = At(handle);
    *slot = item->hash_next;
    item->state.fetch_and(~(Item::kLinked | Item::kClockMask),
                          std::memory_order_relaxed);
    --count;
    const ItemSizes sizes = SizesOf(item);
    bytes -= sizes.accounted;
    charged->fetch_sub(sizes.charged, std::memory_order_relaxed);
    if (item->Has(Item::kMapped)) {
      charged_mapped->fetch_sub(sizes.charged, std::memory_order_relaxed);
    }
    free->Push(item, handle);
  }

  // The bucket count to grow from, or 0 if the load factor is fine.
  size_t GrowthNeeded() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    const size_t buckets_now = bucket_count();
    return count > buckets_now + buckets_now / 2 && buckets_now < kMaxBuckets
               ? buckets_now
               : 0;
  }
};

Store::Store(const StoreOptions& options)
    : max_item_size_(options.max_item_size),
      stripe_count_(ChooseStripes(options)),
      stripe_shift_(64 - Log2(stripe_count_)),
      stripe_bits_(Log2(stripe_count_)),
      memory_limit_(ClampLimit(options.memory_limit_bytes)),
      hash_seed_(std::random_device()() * kMix0 ^ std::random_device()()),
      stripes_(new Stripe[stripe_count_]),
      // memory_limit_ is initialized first (declared first): clamped once.
      arena_(new internal::SlabArena(ArenaCap(memory_limit_.load()),
                                     ArenaReserve(memory_limit_.load()))) {
  // Before workers start allocating items: one malloc arena bounds RSS
  // under overfill (malloc_config.h has the measurements).
  ConfigureMallocForCache();
  CHECK_GT(stripe_count_, 0u);
  CHECK_LE(stripe_count_, kMaxStripes);
  CHECK_EQ(stripe_count_ & (stripe_count_ - 1), 0u)
      << "stripes must be a power of two";
  CHECK_LE(max_item_size_, kMaxItemSizeLimit);
  hands_ = std::make_unique<Hand[]>(2);
  for (uint32_t i = 0; i < stripe_count_; ++i) {
    Stripe& stripe = stripes_[i];
    SpinLockHolder holder(&stripe.lock);
    stripe.index = i;
    stripe.arena = arena_;
    stripe.charged = &charged_;
    stripe.charged_mapped = &charged_mapped_;
    stripe.buckets = std::make_unique<uint32_t[]>(kInitialBuckets);
    stripe.bucket_mask = kInitialBuckets - 1;
    stripe.PublishBuckets();
  }
}

Store::~Store() {
  for (uint32_t i = 0; i < stripe_count_; ++i) {
    Stripe& stripe = stripes_[i];
    SpinLockHolder holder(&stripe.lock);
    for (size_t b = 0; b < stripe.bucket_count(); ++b) {
      uint32_t handle = stripe.buckets[b];
      while (handle != 0) {
        Item* item = stripe.At(handle);
        handle = item->hash_next;
        Item::Unref(item);  // Survives if an ItemRef still holds it.
      }
    }
  }
  arena_->Release();
}

void Store::EvictForDrain(Item* item, int64_t now) {
  const uint64_t hash = Hash(item->drain_key());
  Stripe& stripe = StripeFor(hash);
  FreeList free(arena_);
  SpinLockHolder holder(&stripe.lock);
  if (!item->Has(Item::kLinked)) return;  // Replaced, deleted or evicted.
  const uint32_t handle = stripe.HandleOf(item);
  uint32_t* slot = &stripe.buckets[hash & stripe.bucket_mask];
  while (*slot != 0 && *slot != handle) slot = &stripe.At(*slot)->hash_next;
  if (*slot == 0) return;
  // memcached counts slab-move evictions of live items as evictions too,
  // and dead items a hand meets as reclaimed (lru_pull_tail). `now` = 0:
  // only flushes count as dead, the expiry clock is not at hand.
  if (stripe.Dead(item, now)) {
    ++stripe.reclaimed;
    if (!item->fetched()) ++stripe.expired_unfetched;
  } else {
    ++stripe.evictions;
    if (!item->fetched()) ++stripe.evicted_unfetched;
  }
  stripe.Unlink(slot, &free);
}

void Store::Reclaim() {
  // Every thread that finds the arena over its cap reclaims, rather than
  // leaving it to one: a reclaimer that is descheduled must not let the
  // others allocate unchecked (values arrive at GB/s). Concurrent drains
  // are safe: a page is marked draining under its class lock, once.
  std::vector<void*> chunks;
  chunks.reserve(internal::SlabArena::kMaxChunksPerPage);
  int drained = 0;
  for (int releases = 0; drained < kDrainsPerReclaim &&
                         releases < kReleasesPerReclaim && arena_->OverCap();) {
    // Pages nothing uses first: giving them back evicts nothing.
    if (arena_->ReleaseFreePage() || arena_->ReleaseCachedMapping()) {
      ++releases;
      continue;
    }
    chunks.clear();
    if (!arena_->BeginDrain(
            [](void* chunk) { return static_cast<Item*>(chunk)->TryRef(); },
            &chunks)) {
      break;
    }
    ++drained;
    for (void* chunk : chunks) {
      Item* item = static_cast<Item*>(chunk);
      EvictForDrain(item, 0);
      Item::Unref(item);  // Frees it unless an ItemRef still holds it.
    }
  }
}

Item* Store::ClockFind(bool mapped, int64_t now) {
  Hand& hand = hands_[mapped ? 1 : 0];
  SpinLockHolder holder(&hand.lock);
  const auto visit = [now](void* chunk) {
    Item* item = static_cast<Item*>(chunk);
    return item->ClockVisit(IsExpired(item->expiry(), now));
  };
  // Two wraps: one pass may only take every count down by one, a second
  // (a third for items used since) then finds one at 0.
  for (int wraps = 0; wraps <= 3;) {
    bool wrapped = false;
    void* found = mapped
                      ? arena_->MappedClockStep(
                            &hand.cursor, kClockChunksPerHold, visit, &wrapped)
                      : arena_->ClockStep(-1, &hand.cursor, kClockChunksPerHold,
                                          visit, &wrapped);
    if (found != nullptr) return static_cast<Item*>(found);
    if (wrapped) ++wraps;
  }
  return nullptr;
}

bool Store::EvictOne(int64_t now) {
  // Two hands, one order: each sweeps its items at the same rate in bytes
  // (bytes it took / bytes its items are charged), as one hand over all
  // items would, so neither large nor small items are kept while the other
  // kind turns over (a value size shift then frees the old kind's pages).
  const double mapped =
      static_cast<double>(charged_mapped_.load(std::memory_order_relaxed));
  const double paged =
      static_cast<double>(charged_.load(std::memory_order_relaxed)) - mapped;
  const double swept_paged =
      static_cast<double>(swept_[0].load(std::memory_order_relaxed));
  const double swept_mapped =
      static_cast<double>(swept_[1].load(std::memory_order_relaxed));
  bool use_mapped =
      mapped > 0 && (paged <= 0 || swept_mapped * paged < swept_paged * mapped);
  Item* victim = ClockFind(use_mapped, now);
  if (victim == nullptr) {
    use_mapped = !use_mapped;
    victim = ClockFind(use_mapped, now);
  }
  if (victim != nullptr) {
    const uint64_t bytes = SizesOf(victim).charged;
    swept_[use_mapped ? 1 : 0].fetch_add(bytes, std::memory_order_relaxed);
    // Forget history once both hands went round the budget: rates follow
    // the current mix.
    if (swept_[0].load(std::memory_order_relaxed) +
            swept_[1].load(std::memory_order_relaxed) >
        2 * charged_.load(std::memory_order_relaxed)) {
      for (std::atomic<uint64_t>& swept : swept_) {
        swept.store(swept.load(std::memory_order_relaxed) / 2,
                    std::memory_order_relaxed);
      }
    }
    EvictForDrain(victim, now);
    Item::Unref(victim);  // Frees it unless an ItemRef still holds it.
    return true;
  }
  // Nothing the hands can take (items held, or all being stored): the
  // emptiest page of any class (memcached's slab page reassignment).
  std::vector<void*> chunks;
  chunks.reserve(internal::SlabArena::kMaxChunksPerPage);
  if (!arena_->BeginDrain(
          [](void* chunk) { return static_cast<Item*>(chunk)->TryRef(); },
          &chunks)) {
    return false;
  }
  for (void* chunk : chunks) {
    Item* item = static_cast<Item*>(chunk);
    EvictForDrain(item, now);
    Item::Unref(item);
  }
  return !chunks.empty();
}

void Store::MakeRoom(uint64_t needed, int64_t now) {
  // Bounded: a hand that finds nothing twice in a row gives up (items held
  // or racing stores), leaving the budget passed by at most this item.
  for (int misses = 0; OverBudget(needed) && misses < 2;) {
    misses = EvictOne(now) ? 0 : misses + 1;
  }
}

uint64_t Store::Hash(absl::string_view key) const {
  return HashKey(key, hash_seed_);
}

Store::Stripe& Store::StripeFor(uint64_t hash) const {
  // Top bits pick the stripe, low bits the bucket: independent choices.
  return stripes_[stripe_bits_ == 0 ? 0 : hash >> stripe_shift_];
}

void Store::Prefetch(absl::string_view key) const {
  if (key.size() > kMaxKeyLength) return;
  const uint64_t hash = Hash(key);
  const Stripe& stripe = StripeFor(hash);
  const uint32_t* buckets =
      stripe.prefetch_buckets.load(std::memory_order_relaxed);
  const size_t mask = stripe.prefetch_mask.load(std::memory_order_relaxed);
  __builtin_prefetch(buckets + (hash & mask));
}

ItemRef Store::Get(absl::string_view key, int64_t now) {
  if (key.size() > kMaxKeyLength) return ItemRef();
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  FreeList free(arena_);
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  uint32_t* slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return ItemRef();
  Item* item = stripe.At(*slot);
  stripe.Access(item, now);
  item->Ref();
  return ItemRef(item);
}

ItemRef Store::GetAndTouch(absl::string_view key, int64_t expires_at,
                           int64_t now) {
  if (key.size() > kMaxKeyLength) return ItemRef();
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  const uint32_t expiry = ClampExpiry(expires_at);
  FreeList free(arena_);
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  uint32_t* slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return ItemRef();
  Item* item = stripe.At(*slot);
  item->expires_at.store(expiry, std::memory_order_relaxed);
  stripe.NoteExpiry(expiry);
  stripe.Access(item, now);
  item->Ref();
  return ItemRef(item);
}

bool Store::Touch(absl::string_view key, int64_t expires_at, int64_t now) {
  if (key.size() > kMaxKeyLength) return false;
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  const uint32_t expiry = ClampExpiry(expires_at);
  FreeList free(arena_);
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  uint32_t* slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return false;
  Item* item = stripe.At(*slot);
  item->expires_at.store(expiry, std::memory_order_relaxed);
  stripe.NoteExpiry(expiry);
  stripe.Access(item, now);  // memcached's touch bumps, which marks fetched.
  return true;
}

StoreResult Store::Put(StoreMode mode, absl::string_view key, uint32_t flags,
                       int64_t expires_at, absl::string_view value,
                       uint64_t cas_in, int64_t now, uint64_t* cas_out,
                       const PutOptions& options) {
  if (key.size() > kMaxKeyLength) return StoreResult::kNotStored;
  if (Item::NotionalSize(key.size(), value.size(), flags) > max_item_size_) {
    if (mode == StoreMode::kSet) Delete(key, now);
    return StoreResult::kTooLarge;
  }
  if (mode == StoreMode::kAppend || mode == StoreMode::kPrepend) {
    return Concat(mode == StoreMode::kAppend, key, value, cas_in, now, cas_out);
  }
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  const uint32_t expiry = ClampExpiry(expires_at);
  const uint64_t size = AccountedSize(key.size(), value.size(), flags);

  // Build the whole item before taking the lock.
  Item* item = Item::Create(arena_, key, flags, expiry, value.size(),
                            options.key_binary);
  if (!value.empty()) {
    std::memcpy(item->mutable_value(), value.data(), value.size());
  }
  const ItemSizes sizes = SizesOf(item);
  // Evict (outside every stripe lock: a hand locks its victims' stripes)
  // before linking, as memcached's item allocation does: the new item is
  // not yet linked, so the hand cannot take it, and it lands behind the
  // hand. For modes that may not store, look first (a failed add must not
  // evict).
  if (size <= memory_limit_.load(std::memory_order_relaxed) &&
      !IsExpired(item->expiry(), now) && OverBudget(sizes.charged)) {
    bool evict = true;
    if (mode != StoreMode::kSet) {
      FreeList free(arena_);
      SpinLockHolder holder(&stripe.lock);
      stripe.FireFlush(now, stripe_bits_);
      const bool found = stripe.Find(key, hash, now, &free) != nullptr;
      evict = mode == StoreMode::kAdd ? !found : found;
    }
    if (evict) MakeRoom(sizes.charged, now);
  }

  StoreResult result = StoreResult::kNotStored;
  size_t grow_from = 0;
  bool linked = false;
  {
    FreeList free(arena_);  // Released after the lock, before MaybeReclaim.
    SpinLockHolder holder(&stripe.lock);
    stripe.FireFlush(now, stripe_bits_);
    uint32_t* slot = stripe.Find(key, hash, now, &free);
    Item* old = slot != nullptr ? stripe.At(*slot) : nullptr;
    switch (mode) {
      case StoreMode::kSet:
        result = StoreResult::kStored;
        break;
      case StoreMode::kAdd:
        result =
            old == nullptr ? StoreResult::kStored : StoreResult::kNotStored;
        // memcached: a failed add still promotes the existing item.
        if (old != nullptr) stripe.Bump(old);
        break;
      case StoreMode::kReplace:
        result =
            old != nullptr ? StoreResult::kStored : StoreResult::kNotStored;
        break;
      case StoreMode::kCas:
        if (old == nullptr) {
          result = StoreResult::kNotFound;
        } else if (old->cas() != cas_in) {
          result = StoreResult::kExists;
          if (options.allow_stale && cas_in < old->cas()) {
            // memcached's CAS_STALE: store, but as stale, keeping the old
            // expiry and win mark.
            result = StoreResult::kStored;
            item->expires_at.store(old->expiry(), std::memory_order_relaxed);
            item->Set(Item::kStale |
                      (old->Has(Item::kTokenSent) ? Item::kTokenSent : 0));
          }
        } else {
          result = StoreResult::kStored;
        }
        break;
      case StoreMode::kAppend:
      case StoreMode::kPrepend:
        break;  // Handled by Concat.
    }
    if (result == StoreResult::kStored &&
        size > memory_limit_.load(std::memory_order_relaxed)) {
      result = StoreResult::kOutOfMemory;
      if (mode == StoreMode::kSet && old != nullptr) stripe.Unlink(slot, &free);
    } else if (result == StoreResult::kStored) {
      if (old != nullptr) stripe.Unlink(slot, &free);
      const uint64_t cas = stripe.NextCas(stripe_bits_);
      if (cas_out != nullptr) *cas_out = cas;
      // Already expired (negative exptime): the store succeeds and the key
      // is gone, as in memcached; do not spend the budget on it.
      if (!IsExpired(item->expiry(), now)) {
        item->set_cas(cas);
        stripe.Link(item, hash, now, sizes);
        item = nullptr;
        linked = true;
        grow_from = stripe.GrowthNeeded();
      }
    }
  }
  if (item != nullptr) Item::Unref(item);
  // Stores racing on other threads may have taken the room meanwhile.
  if (linked && OverBudget(0)) MakeRoom(0, now);
  if (grow_from != 0) MaybeGrow(stripe, grow_from);
  MaybeReclaim();
  return result;
}

Item* Store::Acquire(Stripe& stripe, absl::string_view key, uint64_t hash,
                     int64_t now) {
  FreeList free(arena_);
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  uint32_t* slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return nullptr;
  Item* item = stripe.At(*slot);
  item->Ref();
  return item;
}

Store::SwapOutcome Store::SwapIfCurrent(Stripe& stripe, absl::string_view key,
                                        uint64_t hash, Item* expected,
                                        Item* replacement, int64_t now,
                                        uint64_t* cas_out,
                                        const int64_t* new_expiry) {
  const uint64_t size = Accounted(replacement);
  // Evicts after the swap, if need be, unlike Put: before it, the hand might
  // take `expected` itself and fail the swap.
  SwapOutcome outcome;
  size_t grow_from = 0;
  {
    FreeList free(arena_);  // Released after the lock, before MaybeReclaim.
    SpinLockHolder holder(&stripe.lock);
    stripe.FireFlush(now, stripe_bits_);
    uint32_t* slot = stripe.Find(key, hash, now, &free);
    if (slot == nullptr || stripe.At(*slot) != expected) {
      outcome = SwapOutcome::kChanged;
    } else if (size > memory_limit_.load(std::memory_order_relaxed)) {
      outcome = SwapOutcome::kOutOfMemory;
    } else {
      // A Touch may have moved the expiry since `expected` was read.
      replacement->expires_at.store(
          new_expiry != nullptr ? ClampExpiry(*new_expiry) : expected->expiry(),
          std::memory_order_relaxed);
      if (expected->key_binary()) replacement->Set(Item::kKeyBinary);
      stripe.Unlink(slot, &free);
      replacement->set_cas(stripe.NextCas(stripe_bits_));
      if (cas_out != nullptr) *cas_out = replacement->cas();
      stripe.Link(replacement, hash, now, SizesOf(replacement));
      replacement = nullptr;
      grow_from = stripe.GrowthNeeded();
      outcome = SwapOutcome::kSwapped;
    }
  }
  if (replacement != nullptr) Item::Unref(replacement);
  if (outcome == SwapOutcome::kSwapped && OverBudget(0)) MakeRoom(0, now);
  if (grow_from != 0) MaybeGrow(stripe, grow_from);
  MaybeReclaim();
  return outcome;
}

StoreResult Store::Concat(bool append, absl::string_view key,
                          absl::string_view value, uint64_t cas_in, int64_t now,
                          uint64_t* cas_out) {
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  for (;;) {
    Item* old = Acquire(stripe, key, hash, now);
    if (old == nullptr) return StoreResult::kNotStored;
    if (cas_in != 0 && old->cas() != cas_in) {
      Item::Unref(old);
      return StoreResult::kExists;
    }
    const size_t value_len = size_t{old->value_len()} + value.size();
    // memcached answers NOT_STORED when the combined item cannot be made.
    if (Item::NotionalSize(key.size(), value_len, old->flags()) >
        max_item_size_) {
      Item::Unref(old);
      return StoreResult::kNotStored;
    }
    Item* item =
        Item::Create(arena_, key, old->flags(), old->expiry(), value_len);
    char* out = item->mutable_value();
    const absl::string_view first = append ? old->value() : value;
    const absl::string_view second = append ? value : old->value();
    if (!first.empty()) std::memcpy(out, first.data(), first.size());
    if (!second.empty()) {
      std::memcpy(out + first.size(), second.data(), second.size());
    }
    const SwapOutcome outcome =
        SwapIfCurrent(stripe, key, hash, old, item, now, cas_out);
    Item::Unref(old);
    switch (outcome) {
      case SwapOutcome::kSwapped:
        return StoreResult::kStored;
      case SwapOutcome::kOutOfMemory:
        return StoreResult::kNotStored;
      case SwapOutcome::kChanged:
        break;  // Raced with another writer: start over from the new item.
    }
  }
}

bool Store::Delete(absl::string_view key, int64_t now) {
  if (key.size() > kMaxKeyLength) return false;
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  FreeList free(arena_);
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  uint32_t* slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return false;
  stripe.Unlink(slot, &free);
  return true;
}

DeltaResult Store::Delta(absl::string_view key, bool increment, uint64_t delta,
                         int64_t now, uint64_t* new_value, uint64_t* cas_out) {
  DeltaOutcome outcome;
  const DeltaResult result =
      Delta(key, increment, delta, DeltaOptions(), now, &outcome);
  if (result == DeltaResult::kOk) {
    if (new_value != nullptr) *new_value = outcome.value;
    if (cas_out != nullptr) *cas_out = outcome.cas;
  }
  return result;
}

DeltaResult Store::Delta(absl::string_view key, bool increment, uint64_t delta,
                         const DeltaOptions& options, int64_t now,
                         DeltaOutcome* outcome) {
  if (key.size() > kMaxKeyLength) return DeltaResult::kNotFound;
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  for (;;) {
    Item* old = Acquire(stripe, key, hash, now);
    if (old == nullptr) return DeltaResult::kNotFound;
    // CAS is immutable: a later change of item fails the swap and retries.
    if (options.check_cas && old->cas() != options.cas_in) {
      Item::Unref(old);
      return DeltaResult::kExists;
    }
    // The value is immutable: parse it outside the lock.
    uint64_t value = 0;
    if (!ParseCounter(old->value(), &value)) {
      Item::Unref(old);
      return DeltaResult::kNonNumeric;
    }
    if (increment) {
      value += delta;  // Wraps at 2^64, as in memcached.
    } else {
      value = delta > value ? 0 : value - delta;
    }
    char digits[20];
    const size_t digit_count =
        std::to_chars(digits, digits + sizeof(digits), value).ptr - digits;
    // memcached rewrites in place when the number fits, padding with spaces,
    // so the length never shrinks; it only grows when the number does.
    const size_t value_len = std::max<size_t>(digit_count, old->value_len());
    Item* item =
        Item::Create(arena_, key, old->flags(), old->expiry(), value_len);
    char* out = item->mutable_value();
    std::memcpy(out, digits, digit_count);
    std::memset(out + digit_count, ' ', value_len - digit_count);
    const int64_t expiry_before = old->expiry();
    const SwapOutcome swap =
        SwapIfCurrent(stripe, key, hash, old, item, now, &outcome->cas,
                      options.set_expiry ? &options.expires_at : nullptr);
    Item::Unref(old);
    switch (swap) {
      case SwapOutcome::kSwapped:
        outcome->value = value;
        outcome->expiry_before = expiry_before;
        outcome->expires_at = options.set_expiry
                                  ? ClampExpiry(options.expires_at)
                                  : expiry_before;
        return DeltaResult::kOk;
      case SwapOutcome::kOutOfMemory:
        return DeltaResult::kOutOfMemory;
      case SwapOutcome::kChanged:
        break;  // Raced with another writer: recompute from the new value.
    }
  }
}

DeleteResult Store::DeleteIf(absl::string_view key, bool check_cas,
                             uint64_t cas_in, int64_t now) {
  if (key.size() > kMaxKeyLength) return DeleteResult::kNotFound;
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  FreeList free(arena_);
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  uint32_t* slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return DeleteResult::kNotFound;
  if (check_cas && stripe.At(*slot)->cas() != cas_in) {
    return DeleteResult::kExists;
  }
  stripe.Unlink(slot, &free);
  return DeleteResult::kDeleted;
}

DeleteResult Store::Invalidate(absl::string_view key, bool check_cas,
                               uint64_t cas_in, bool set_expiry,
                               int64_t expires_at, int64_t now) {
  if (key.size() > kMaxKeyLength) return DeleteResult::kNotFound;
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  for (;;) {
    Item* old = Acquire(stripe, key, hash, now);
    if (old == nullptr) return DeleteResult::kNotFound;
    if (check_cas && old->cas() != cas_in) {
      Item::Unref(old);
      return DeleteResult::kExists;
    }
    // The CAS must change and items are immutable: link a stale copy.
    Item* item = Item::Create(arena_, key, old->flags(), old->expiry(),
                              old->value_len());
    if (old->value_len() != 0) {
      std::memcpy(item->mutable_value(), old->value().data(), old->value_len());
    }
    item->Set(Item::kStale);  // and no win handed out yet
    const SwapOutcome swap =
        SwapIfCurrent(stripe, key, hash, old, item, now, nullptr,
                      set_expiry ? &expires_at : nullptr);
    Item::Unref(old);
    switch (swap) {
      case SwapOutcome::kSwapped:
        return DeleteResult::kDeleted;
      case SwapOutcome::kOutOfMemory:
        return DeleteResult::kNotFound;  // cannot happen: same size
      case SwapOutcome::kChanged:
        break;
    }
  }
}

ItemRef Store::MetaGet(absl::string_view key, const MetaGetOptions& options,
                       int64_t now, ItemMeta* meta) {
  *meta = ItemMeta();
  if (key.size() > kMaxKeyLength) return ItemRef();
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  // A vivified item is built before the lock, in case it is needed.
  Item* fresh = nullptr;
  if (options.vivify) {
    const int64_t expiry = options.set_expiry && !options.vivify_after_ttl
                               ? options.expires_at
                               : options.vivify_expires_at;
    fresh = Item::Create(arena_, key, 0, ClampExpiry(expiry), 0,
                         options.key_binary);
  }
  Item* item = nullptr;
  size_t grow_from = 0;
  {
    FreeList free(arena_);
    SpinLockHolder holder(&stripe.lock);
    stripe.FireFlush(now, stripe_bits_);
    uint32_t* slot = stripe.Find(key, hash, now, &free);
    if (slot != nullptr) {
      item = stripe.At(*slot);
      meta->expiry_before = item->expiry();
      meta->fetched = item->fetched();
      meta->last_access = item->last_access;
      if (options.set_expiry) {
        const uint32_t expiry = ClampExpiry(options.expires_at);
        item->expires_at.store(expiry, std::memory_order_relaxed);
        stripe.NoteExpiry(expiry);
      }
    } else if (fresh != nullptr && !IsExpired(fresh->expiry(), now) &&
               Accounted(fresh) <=
                   memory_limit_.load(std::memory_order_relaxed)) {
      item = fresh;
      fresh = nullptr;
      item->set_cas(stripe.NextCas(stripe_bits_));
      stripe.Link(item, hash, now, SizesOf(item));
      meta->created = true;
      meta->last_access = now;
      grow_from = stripe.GrowthNeeded();
    }
    if (item != nullptr) {
      meta->token_sent = item->Has(Item::kTokenSent);
      meta->stale = item->Has(Item::kStale);
      if (meta->created) {
        meta->won = true;
      } else if (options.recache && !meta->token_sent) {
        const int64_t expiry = options.recache_after_ttl && options.set_expiry
                                   ? ClampExpiry(options.expires_at)
                                   : meta->expiry_before;
        if (expiry != 0 && expiry < options.recache_below) meta->won = true;
      }
      if (meta->stale && !meta->token_sent) meta->won = true;
      if (meta->won) item->Set(Item::kTokenSent);
      if (options.bump) stripe.Access(item, now);
      item->Ref();
    }
  }
  if (fresh != nullptr) Item::Unref(fresh);
  if (grow_from != 0) MaybeGrow(stripe, grow_from);
  if (meta->created) {
    // Evicts after linking (vivifying is rare, and the new item, empty, is
    // small): the new item has its CLOCK pass like any.
    if (OverBudget(0)) MakeRoom(0, now);
    MaybeReclaim();
  }
  return ItemRef(item);
}

ItemRef Store::Peek(absl::string_view key, int64_t now, ItemMeta* meta) {
  *meta = ItemMeta();
  if (key.size() > kMaxKeyLength) return ItemRef();
  const uint64_t hash = Hash(key);
  Stripe& stripe = StripeFor(hash);
  FreeList free(arena_);
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  uint32_t* slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return ItemRef();
  Item* item = stripe.At(*slot);
  meta->expiry_before = item->expiry();
  meta->fetched = item->fetched();
  meta->last_access = item->last_access;
  meta->stale = item->Has(Item::kStale);
  meta->token_sent = item->Has(Item::kTokenSent);
  item->Ref();
  return ItemRef(item);
}

void Store::FlushAll(int64_t at_time, int64_t now) {
  for (uint32_t i = 0; i < stripe_count_; ++i) {
    Stripe& stripe = stripes_[i];
    SpinLockHolder holder(&stripe.lock);
    if (at_time <= now) {
      stripe.FlushNow(stripe_bits_);
    } else {
      stripe.pending_flush_at = at_time;
    }
  }
}

void Store::SetMemoryLimit(uint64_t bytes) {
  bytes = ClampLimit(bytes);
  memory_limit_.store(bytes, std::memory_order_relaxed);
  arena_->set_cap(ArenaCap(bytes));
  // now = 0: expiry is not judged here, only flushes; everything counts as
  // an eviction.
  MakeRoom(0, 0);
  MaybeReclaim();
}

void Store::MaybeGrow(Stripe& stripe, size_t bucket_count) {
  // Allocated before, and the old array freed after, the critical section.
  auto buckets = std::make_unique<uint32_t[]>(bucket_count * 2);
  SpinLockHolder holder(&stripe.lock);
  if (stripe.bucket_count() != bucket_count) return;  // Someone else grew it.
  // Rehashing is O(items in the stripe) under the lock, about once per
  // doubling; stripes are small because there are many of them.
  const size_t mask = bucket_count * 2 - 1;
  for (size_t b = 0; b < bucket_count; ++b) {
    uint32_t handle = stripe.buckets[b];
    while (handle != 0) {
      Item* item = stripe.At(handle);
      const uint32_t next = item->hash_next;
      uint32_t* bucket = &buckets[Hash(item->key()) & mask];
      item->hash_next = *bucket;
      *bucket = handle;
      handle = next;
    }
  }
  stripe.buckets.swap(buckets);
  stripe.bucket_mask = mask;
  stripe.PublishBuckets();
  ++stripe.resize_generation;
  // `holder` unlocks before `buckets` (now the old array) is freed.
}

size_t Store::SweepStripe(Stripe& stripe, int64_t now, size_t max_items) {
  uint64_t generation = 0;
  {
    SpinLockHolder holder(&stripe.lock);
    stripe.FireFlush(now, stripe_bits_);
    if (!stripe.unswept_flush && stripe.earliest_expiry > now) return 0;
    // Recomputed by this scan; items linked or touched meanwhile lower it
    // through NoteExpiry.
    stripe.earliest_expiry = kNoExpiry;
    stripe.unswept_flush = false;
    generation = stripe.resize_generation;
  }
  size_t reclaimed = 0;
  size_t cursor = 0;
  for (;;) {
    FreeList free(arena_);
    SpinLockHolder holder(&stripe.lock);
    if (stripe.resize_generation != generation) {
      // Buckets moved under the cursor: leave the rest for the next sweep.
      stripe.earliest_expiry = 0;
      return reclaimed;
    }
    stripe.FireFlush(now, stripe_bits_);
    const size_t end =
        std::min(cursor + kSweepBucketsPerHold, stripe.bucket_count());
    for (; cursor < end; ++cursor) {
      uint32_t* slot = &stripe.buckets[cursor];
      while (*slot != 0) {
        Item* item = stripe.At(*slot);
        if (reclaimed == max_items) {
          stripe.earliest_expiry = 0;  // Not finished: scan again next time.
          return reclaimed;
        }
        if (stripe.Dead(item, now)) {
          ++stripe.crawler_reclaimed;
          if (!item->fetched()) ++stripe.expired_unfetched;
          stripe.Unlink(slot, &free);
          ++reclaimed;
        } else {
          stripe.NoteExpiry(item->expiry());
          slot = &item->hash_next;
        }
      }
    }
    if (cursor == stripe.bucket_count()) return reclaimed;
  }
}

size_t Store::SweepExpired(uint32_t first_stripe, uint32_t stripe_count,
                           int64_t now, size_t max_items) {
  size_t reclaimed = 0;
  const uint64_t end =
      std::min<uint64_t>(uint64_t{first_stripe} + stripe_count, stripe_count_);
  for (uint64_t i = first_stripe; i < end && reclaimed < max_items; ++i) {
    reclaimed += SweepStripe(stripes_[i], now, max_items - reclaimed);
  }
  return reclaimed;
}

StoreStats Store::GetStats() const {
  StoreStats stats;
  stats.limit_maxbytes = memory_limit_.load(std::memory_order_relaxed);
  stats.stripes = stripe_count_;
  stats.arena_bytes = arena_->footprint();
  stats.arena_cap = arena_->cap();
  stats.slabs_moved = arena_->drained_pages();
  for (uint32_t i = 0; i < stripe_count_; ++i) {
    Stripe& stripe = stripes_[i];
    SpinLockHolder holder(&stripe.lock);
    stats.curr_items += stripe.count;
    stats.total_items += stripe.total_items;
    stats.bytes += stripe.bytes;
    stats.evictions += stripe.evictions;
    stats.evicted_unfetched += stripe.evicted_unfetched;
    stats.reclaimed += stripe.reclaimed;
    stats.expired_unfetched += stripe.expired_unfetched;
    stats.get_expired += stripe.get_expired;
    stats.get_flushed += stripe.get_flushed;
    stats.crawler_reclaimed += stripe.crawler_reclaimed;
    stats.hash_bytes += stripe.bucket_count() * sizeof(uint32_t);
  }
  return stats;
}

}  // namespace memshard::cache
