#include "server/cache/store.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/hash/hash.h"
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
constexpr size_t kEvictionsPerHold = 64;
// Pages a Reclaim drains at most (each is SlabArena::kPageSize): enough to
// keep up with a stream of the largest items, bounded per request.
constexpr int kDrainsPerReclaim = 8;
// Unused pages or kept mappings a Reclaim gives back at most (syscalls).
constexpr int kReleasesPerReclaim = 64;
// "No item in the stripe expires" for Stripe::earliest_expiry.
constexpr int64_t kNoExpiry = std::numeric_limits<int64_t>::max();

uint64_t HashKey(absl::string_view key) {
  return absl::Hash<absl::string_view>{}(key);
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
                            uint64_t{1} << 40);
}

uint64_t Accounted(const Item* item) {
  return Store::AccountedSize(item->key_len(), item->value_len, item->flags());
}

// An item's sizes for the stripe's two counters, from one look at it:
// Accounted() for `bytes` (the stat), and what the LRU budget charges: the
// memory the item really holds (its chunk or mapping) plus its hash slot.
// Charging chunks rather than Accounted() keeps the arena's footprint within
// the limit plus partly used pages, as memcached's -m limits slab pages
// rather than item bytes.
struct ItemSizes {
  uint64_t accounted;
  uint64_t charged;
};

ItemSizes SizesOf(const Item* item) {
  const uint32_t state = item->state.load(std::memory_order_relaxed);
  const size_t alloc = sizeof(Item) +
                       ((state & Item::kHasFlags) != 0 ? sizeof(uint32_t) : 0) +
                       item->key_len() + item->value_len + 2;
  const size_t occupied = internal::SlabArena::OccupiedSize(
      item, alloc, (state & Item::kMapped) != 0);
  return {alloc + sizeof(Item*), occupied + sizeof(Item*)};
}

}  // namespace

// Items unlinked under a stripe lock, released after it is dropped: freeing
// (possibly a munmap for a large value) must not happen in the critical
// section. Chained through Item::hash_next, which an unlinked item no longer
// uses, so collecting them never allocates. Declare it before the lock holder
// so that it is destroyed after the unlock.
struct Store::FreeList {
  FreeList() = default;
  FreeList(const FreeList&) = delete;
  FreeList& operator=(const FreeList&) = delete;
  ~FreeList() {
    while (head != nullptr) {
      Item* next = head->hash_next;
      Item::Unref(head);
      head = next;
    }
  }
  void Push(Item* item) {
    item->hash_next = head;
    head = item;
  }
  Item* head = nullptr;
};

// One stripe: a chained hash table (intrusive, through Item::hash_next) and
// an exact LRU list (intrusive, doubly linked). CLOCK would cost a bit per
// item instead of two links, but with malloc'd items LRU is what keeps RSS
// bounded: under overfill the LRU tail is the oldest allocation, so
// evictions free neighbouring blocks that coalesce, while CLOCK over the
// hash table evicts in hash order and leaves holes everywhere
// (//tools/memcheck overfill at 64 MiB with value sizes shifting from small
// to large: peak RSS 137 MiB with CLOCK, 93 with LRU; bound 102.4). Removal
// (delete, replace, lazy expiry) needs the back link anyway, and exact order
// makes eviction predictable for operators and tests.
//
// Aligned to a cache line so neighbouring stripes' locks do not false-share.
struct alignas(64) Store::Stripe {
  SpinLock lock;
  std::unique_ptr<Item*[]> buckets ABSL_GUARDED_BY(lock);
  size_t bucket_mask ABSL_GUARDED_BY(lock) = 0;
  Item* lru_head ABSL_GUARDED_BY(lock) = nullptr;  // Most recently used.
  Item* lru_tail ABSL_GUARDED_BY(lock) = nullptr;  // Least recently used.
  uint64_t limit ABSL_GUARDED_BY(lock) = 0;        // This stripe's share.
  uint64_t bytes ABSL_GUARDED_BY(lock) = 0;    // ItemSizes::accounted, stats
  uint64_t charged ABSL_GUARDED_BY(lock) = 0;  // ItemSizes::charged, budget
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

  // The link pointing at `key`'s item, or null. A dead item found on the way
  // is unlinked (lazy reclaim) and reported as missing.
  Item** Find(absl::string_view key, uint64_t hash, int64_t now, FreeList* free)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    Item** slot = &buckets[hash & bucket_mask];
    while (Item* item = *slot) {
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

  // The link pointing at an item known to be linked.
  Item** SlotOf(Item* item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    Item** slot = &buckets[HashKey(item->key()) & bucket_mask];
    while (*slot != item) {
      DCHECK(*slot != nullptr);
      slot = &(*slot)->hash_next;
    }
    return slot;
  }

  void LruRemove(Item* item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    if (item->lru_prev != nullptr) {
      item->lru_prev->lru_next = item->lru_next;
    } else {
      lru_head = item->lru_next;
    }
    if (item->lru_next != nullptr) {
      item->lru_next->lru_prev = item->lru_prev;
    } else {
      lru_tail = item->lru_prev;
    }
    item->lru_prev = nullptr;
    item->lru_next = nullptr;
  }

  void LruPushFront(Item* item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    item->lru_prev = nullptr;
    item->lru_next = lru_head;
    if (lru_head != nullptr) {
      lru_head->lru_prev = item;
    } else {
      lru_tail = item;
    }
    lru_head = item;
  }

  // A read: most recently used, fetched, accessed now.
  void Access(Item* item, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    Bump(item);
    item->Set(Item::kFetched);
    item->last_access = ClampTime(now);
  }

  void Bump(Item* item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    if (lru_head == item) return;
    LruRemove(item);
    LruPushFront(item);
  }

  void NoteExpiry(uint32_t expiry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    if (expiry != 0 && expiry < earliest_expiry) earliest_expiry = expiry;
  }

  // Takes over the caller's reference as the table's reference.
  void Link(Item* item, uint64_t hash, int64_t now, const ItemSizes& sizes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    item->last_access = ClampTime(now);
    Item** bucket = &buckets[hash & bucket_mask];
    item->hash_next = *bucket;
    *bucket = item;
    LruPushFront(item);
    ++count;
    ++total_items;
    bytes += sizes.accounted;
    charged += sizes.charged;
    NoteExpiry(item->expiry());
  }

  // Moves the table's reference to `free`.
  void Unlink(Item** slot, FreeList* free) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    Item* item = *slot;
    *slot = item->hash_next;
    LruRemove(item);
    --count;
    const ItemSizes sizes = SizesOf(item);
    bytes -= sizes.accounted;
    charged -= sizes.charged;
    free->Push(item);
  }

  // Drops the least recently used item, counting it as reclaimed if it was
  // dead anyway and as an eviction otherwise (memcached's lru_pull_tail).
  void EvictTail(int64_t now, FreeList* free)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    Item* victim = lru_tail;
    if (Dead(victim, now)) {
      ++reclaimed;
      if (!victim->fetched()) ++expired_unfetched;
    } else {
      ++evictions;
      if (!victim->fetched()) ++evicted_unfetched;
    }
    Unlink(SlotOf(victim), free);
  }

  // Evicts until `needed` more charged bytes (ItemSizes) fit. The caller
  // checked that the item's Accounted() size is within the limit.
  void MakeRoom(uint64_t needed, int64_t now, FreeList* free)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock) {
    while (charged + needed > limit && lru_tail != nullptr) {
      EvictTail(now, free);
    }
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
      memory_limit_(options.memory_limit_bytes),
      stripes_(new Stripe[stripe_count_]),
      arena_(
          new internal::SlabArena(ArenaCap(options.memory_limit_bytes),
                                  ArenaReserve(options.memory_limit_bytes))) {
  // Before workers start allocating items: one malloc arena bounds RSS
  // under overfill (malloc_config.h has the measurements).
  ConfigureMallocForCache();
  CHECK_GT(stripe_count_, 0u);
  CHECK_LE(stripe_count_, kMaxStripes);
  CHECK_EQ(stripe_count_ & (stripe_count_ - 1), 0u)
      << "stripes must be a power of two";
  CHECK_LE(max_item_size_, kMaxItemSizeLimit);
  const uint64_t share = StripeLimit(options.memory_limit_bytes);
  for (uint32_t i = 0; i < stripe_count_; ++i) {
    Stripe& stripe = stripes_[i];
    SpinLockHolder holder(&stripe.lock);
    stripe.index = i;
    stripe.limit = share;
    stripe.buckets = std::make_unique<Item*[]>(kInitialBuckets);
    stripe.bucket_mask = kInitialBuckets - 1;
  }
}

Store::~Store() {
  for (uint32_t i = 0; i < stripe_count_; ++i) {
    Stripe& stripe = stripes_[i];
    SpinLockHolder holder(&stripe.lock);
    for (size_t b = 0; b < stripe.bucket_count(); ++b) {
      Item* item = stripe.buckets[b];
      while (item != nullptr) {
        Item* next = item->hash_next;
        Item::Unref(item);  // Survives if an ItemRef still holds it.
        item = next;
      }
    }
  }
  arena_->Release();
}

void Store::EvictForDrain(Item* item) {
  const uint64_t hash = HashKey(item->drain_key());
  Stripe& stripe = StripeFor(hash);
  FreeList free;
  SpinLockHolder holder(&stripe.lock);
  Item** slot = &stripe.buckets[hash & stripe.bucket_mask];
  while (*slot != nullptr && *slot != item) slot = &(*slot)->hash_next;
  if (*slot == nullptr) return;  // Replaced, deleted or evicted meanwhile.
  // Same accounting as an LRU eviction (memcached counts slab-move
  // evictions of live items as evictions too); `now` = 0: only flushes
  // count as dead here, the expiry clock is not at hand.
  if (stripe.Flushed(item)) {
    ++stripe.reclaimed;
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
      EvictForDrain(item);
      Item::Unref(item);  // Frees it unless an ItemRef still holds it.
    }
  }
}

Store::Stripe& Store::StripeFor(uint64_t hash) const {
  // Top bits pick the stripe, low bits the bucket: independent choices.
  return stripes_[stripe_bits_ == 0 ? 0 : hash >> stripe_shift_];
}

ItemRef Store::Get(absl::string_view key, int64_t now) {
  if (key.size() > kMaxKeyLength) return ItemRef();
  const uint64_t hash = HashKey(key);
  Stripe& stripe = StripeFor(hash);
  FreeList free;
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  Item** slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return ItemRef();
  Item* item = *slot;
  stripe.Access(item, now);
  item->Ref();
  return ItemRef(item);
}

ItemRef Store::GetAndTouch(absl::string_view key, int64_t expires_at,
                           int64_t now) {
  if (key.size() > kMaxKeyLength) return ItemRef();
  const uint64_t hash = HashKey(key);
  Stripe& stripe = StripeFor(hash);
  const uint32_t expiry = ClampExpiry(expires_at);
  FreeList free;
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  Item** slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return ItemRef();
  Item* item = *slot;
  item->expires_at.store(expiry, std::memory_order_relaxed);
  stripe.NoteExpiry(expiry);
  stripe.Access(item, now);
  item->Ref();
  return ItemRef(item);
}

bool Store::Touch(absl::string_view key, int64_t expires_at, int64_t now) {
  if (key.size() > kMaxKeyLength) return false;
  const uint64_t hash = HashKey(key);
  Stripe& stripe = StripeFor(hash);
  const uint32_t expiry = ClampExpiry(expires_at);
  FreeList free;
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  Item** slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return false;
  Item* item = *slot;
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
  if (Item::AllocSize(key.size(), value.size(), flags) > max_item_size_) {
    if (mode == StoreMode::kSet) Delete(key, now);
    return StoreResult::kTooLarge;
  }
  if (mode == StoreMode::kAppend || mode == StoreMode::kPrepend) {
    return Concat(mode == StoreMode::kAppend, key, value, cas_in, now, cas_out);
  }
  const uint64_t hash = HashKey(key);
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

  StoreResult result = StoreResult::kNotStored;
  size_t grow_from = 0;
  {
    FreeList free;  // Released after the lock, before MaybeReclaim.
    SpinLockHolder holder(&stripe.lock);
    stripe.FireFlush(now, stripe_bits_);
    Item** slot = stripe.Find(key, hash, now, &free);
    Item* old = slot != nullptr ? *slot : nullptr;
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
    if (result == StoreResult::kStored && size > stripe.limit) {
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
        stripe.MakeRoom(sizes.charged, now, &free);
        stripe.Link(item, hash, now, sizes);
        item = nullptr;
        grow_from = stripe.GrowthNeeded();
      }
    }
  }
  if (item != nullptr) Item::Unref(item);
  if (grow_from != 0) MaybeGrow(stripe, grow_from);
  MaybeReclaim();
  return result;
}

Item* Store::Acquire(Stripe& stripe, absl::string_view key, uint64_t hash,
                     int64_t now) {
  FreeList free;
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  Item** slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return nullptr;
  (*slot)->Ref();
  return *slot;
}

Store::SwapOutcome Store::SwapIfCurrent(Stripe& stripe, absl::string_view key,
                                        uint64_t hash, Item* expected,
                                        Item* replacement, int64_t now,
                                        uint64_t* cas_out,
                                        const int64_t* new_expiry) {
  const uint64_t size = Accounted(replacement);
  SwapOutcome outcome;
  size_t grow_from = 0;
  {
    FreeList free;  // Released after the lock, before MaybeReclaim.
    SpinLockHolder holder(&stripe.lock);
    stripe.FireFlush(now, stripe_bits_);
    Item** slot = stripe.Find(key, hash, now, &free);
    if (slot == nullptr || *slot != expected) {
      outcome = SwapOutcome::kChanged;
    } else if (size > stripe.limit) {
      outcome = SwapOutcome::kOutOfMemory;
    } else {
      // A Touch may have moved the expiry since `expected` was read.
      replacement->expires_at.store(
          new_expiry != nullptr ? ClampExpiry(*new_expiry) : expected->expiry(),
          std::memory_order_relaxed);
      if (expected->key_binary()) replacement->Set(Item::kKeyBinary);
      stripe.Unlink(slot, &free);
      const ItemSizes sizes = SizesOf(replacement);
      stripe.MakeRoom(sizes.charged, now, &free);
      replacement->set_cas(stripe.NextCas(stripe_bits_));
      if (cas_out != nullptr) *cas_out = replacement->cas();
      stripe.Link(replacement, hash, now, sizes);
      replacement = nullptr;
      grow_from = stripe.GrowthNeeded();
      outcome = SwapOutcome::kSwapped;
    }
  }
  if (replacement != nullptr) Item::Unref(replacement);
  if (grow_from != 0) MaybeGrow(stripe, grow_from);
  MaybeReclaim();
  return outcome;
}

StoreResult Store::Concat(bool append, absl::string_view key,
                          absl::string_view value, uint64_t cas_in, int64_t now,
                          uint64_t* cas_out) {
  const uint64_t hash = HashKey(key);
  Stripe& stripe = StripeFor(hash);
  for (;;) {
    Item* old = Acquire(stripe, key, hash, now);
    if (old == nullptr) return StoreResult::kNotStored;
    if (cas_in != 0 && old->cas() != cas_in) {
      Item::Unref(old);
      return StoreResult::kExists;
    }
    const size_t value_len = size_t{old->value_len} + value.size();
    // memcached answers NOT_STORED when the combined item cannot be made.
    if (Item::AllocSize(key.size(), value_len, old->flags()) > max_item_size_) {
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
  const uint64_t hash = HashKey(key);
  Stripe& stripe = StripeFor(hash);
  FreeList free;
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  Item** slot = stripe.Find(key, hash, now, &free);
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
  const uint64_t hash = HashKey(key);
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
    const size_t value_len = std::max<size_t>(digit_count, old->value_len);
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
  const uint64_t hash = HashKey(key);
  Stripe& stripe = StripeFor(hash);
  FreeList free;
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  Item** slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return DeleteResult::kNotFound;
  if (check_cas && (*slot)->cas() != cas_in) return DeleteResult::kExists;
  stripe.Unlink(slot, &free);
  return DeleteResult::kDeleted;
}

DeleteResult Store::Invalidate(absl::string_view key, bool check_cas,
                               uint64_t cas_in, bool set_expiry,
                               int64_t expires_at, int64_t now) {
  if (key.size() > kMaxKeyLength) return DeleteResult::kNotFound;
  const uint64_t hash = HashKey(key);
  Stripe& stripe = StripeFor(hash);
  for (;;) {
    Item* old = Acquire(stripe, key, hash, now);
    if (old == nullptr) return DeleteResult::kNotFound;
    if (check_cas && old->cas() != cas_in) {
      Item::Unref(old);
      return DeleteResult::kExists;
    }
    // The CAS must change and items are immutable: link a stale copy.
    Item* item =
        Item::Create(arena_, key, old->flags(), old->expiry(), old->value_len);
    if (old->value_len != 0) {
      std::memcpy(item->mutable_value(), old->value().data(), old->value_len);
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
  const uint64_t hash = HashKey(key);
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
    FreeList free;
    SpinLockHolder holder(&stripe.lock);
    stripe.FireFlush(now, stripe_bits_);
    Item** slot = stripe.Find(key, hash, now, &free);
    if (slot != nullptr) {
      item = *slot;
      meta->expiry_before = item->expiry();
      meta->fetched = item->fetched();
      meta->last_access = item->last_access;
      if (options.set_expiry) {
        const uint32_t expiry = ClampExpiry(options.expires_at);
        item->expires_at.store(expiry, std::memory_order_relaxed);
        stripe.NoteExpiry(expiry);
      }
    } else if (fresh != nullptr && !IsExpired(fresh->expiry(), now) &&
               Accounted(fresh) <= stripe.limit) {
      item = fresh;
      fresh = nullptr;
      item->set_cas(stripe.NextCas(stripe_bits_));
      const ItemSizes sizes = SizesOf(item);
      stripe.MakeRoom(sizes.charged, now, &free);
      stripe.Link(item, hash, now, sizes);
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
  if (meta->created) MaybeReclaim();
  return ItemRef(item);
}

ItemRef Store::Peek(absl::string_view key, int64_t now, ItemMeta* meta) {
  *meta = ItemMeta();
  if (key.size() > kMaxKeyLength) return ItemRef();
  const uint64_t hash = HashKey(key);
  Stripe& stripe = StripeFor(hash);
  FreeList free;
  SpinLockHolder holder(&stripe.lock);
  stripe.FireFlush(now, stripe_bits_);
  Item** slot = stripe.Find(key, hash, now, &free);
  if (slot == nullptr) return ItemRef();
  Item* item = *slot;
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
  memory_limit_.store(bytes, std::memory_order_relaxed);
  arena_->set_cap(ArenaCap(bytes));
  const uint64_t share = StripeLimit(bytes);
  for (uint32_t i = 0; i < stripe_count_; ++i) {
    Stripe& stripe = stripes_[i];
    bool within = false;
    while (!within) {
      FreeList free;
      SpinLockHolder holder(&stripe.lock);
      stripe.limit = share;
      // now = 0: expiry is not judged here, only flushes; everything counts
      // as an eviction.
      for (size_t n = 0; n < kEvictionsPerHold && stripe.charged > stripe.limit;
           ++n) {
        stripe.EvictTail(0, &free);
      }
      within = stripe.charged <= stripe.limit;
    }
  }
}

void Store::MaybeGrow(Stripe& stripe, size_t bucket_count) {
  // Allocated before, and the old array freed after, the critical section.
  auto buckets = std::make_unique<Item*[]>(bucket_count * 2);
  SpinLockHolder holder(&stripe.lock);
  if (stripe.bucket_count() != bucket_count) return;  // Someone else grew it.
  // Rehashing is O(items in the stripe) under the lock, about once per
  // doubling; stripes are small because there are many of them.
  const size_t mask = bucket_count * 2 - 1;
  for (size_t b = 0; b < bucket_count; ++b) {
    Item* item = stripe.buckets[b];
    while (item != nullptr) {
      Item* next = item->hash_next;
      Item** bucket = &buckets[HashKey(item->key()) & mask];
      item->hash_next = *bucket;
      *bucket = item;
      item = next;
    }
  }
  stripe.buckets.swap(buckets);
  stripe.bucket_mask = mask;
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
    FreeList free;
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
      Item** slot = &stripe.buckets[cursor];
      while (Item* item = *slot) {
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
    stats.hash_bytes += stripe.bucket_count() * sizeof(Item*);
  }
  return stats;
}

}  // namespace memshard::cache
