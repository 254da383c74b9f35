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
#include "server/cache/store_internal.h"

namespace memshard::cache {

using internal::Item;
using store_internal::Accounted;
using store_internal::ClampExpiry;
using store_internal::IsExpired;
using store_internal::ItemSizes;
using store_internal::kMix0;
using store_internal::SizesOf;

namespace {

constexpr uint32_t kDefaultStripes = 1024;
constexpr uint32_t kMaxStripes = 1 << 16;
constexpr uint64_t kMaxItemSizeLimit = uint64_t{1} << 30;
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

}  // namespace

Store::Store(const StoreOptions& options)
    : max_item_size_(options.max_item_size),
      stripe_count_(ChooseStripes(options)),
      stripe_shift_(64 - Log2(stripe_count_)),
      stripe_bits_(Log2(stripe_count_)),
      memory_limit_(ClampLimit(options.memory_limit_bytes)),
      hash_seed_(std::random_device()() * kMix0 ^ std::random_device()()),
      stripes_(new Stripe[stripe_count_]),
      table_(stripe_count_,
             options.reserved_buckets != 0
                 ? options.reserved_buckets
                 : internal::BucketTable::kDefaultReservedBuckets),
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
    stripe.table = table_.Bucket(i, 0);
    stripe.line_stride_bits = static_cast<uint8_t>(table_.line_stride_bits());
    stripe.bucket_mask = internal::BucketTable::kInitialBuckets - 1;
    // A lookup reads the stripe's first line only (store_internal.h).
    DCHECK_LE(reinterpret_cast<const char*>(&stripe.earliest_expiry + 1) -
                  reinterpret_cast<const char*>(&stripe),
              64);
  }
}

Store::~Store() {
  for (uint32_t i = 0; i < stripe_count_; ++i) {
    Stripe& stripe = stripes_[i];
    SpinLockHolder holder(&stripe.lock);
    for (size_t b = 0; b < stripe.bucket_count(); ++b) {
      uint32_t handle = *stripe.Bucket(b);
      while (handle != 0) {
        Item* item = stripe.At(handle);
        handle = item->hash_next;
        Item::Unref(item);  // Survives if an ItemRef still holds it.
      }
    }
  }
  arena_->Release();
}

uint64_t Store::Prefetch(absl::string_view key) const {
  if (key.size() > kMaxKeyLength) return 0;
  const uint64_t hash = Hash(key);
  PrefetchBucket(hash);
  return hash;
}

void Store::PrefetchItem(uint64_t token) const {
  Stripe& stripe = StripeFor(token);
  uint32_t handle = 0;
  {
    SpinLockHolder holder(&stripe.lock);
    handle = *stripe.Bucket(token & stripe.bucket_mask);
  }
  if (handle == 0 || handle >= internal::SlabArena::kMappedHandleBase) return;
  // A chunk's address is arithmetic on the handle, and arena pages stay
  // mapped: at worst this prefetches a chunk freed meanwhile.
  const char* item = static_cast<const char*>(stripe.arena->Resolve(handle));
  __builtin_prefetch(item);
  __builtin_prefetch(item + 64);
}

ItemRef Store::Get(absl::string_view key, int64_t now) {
  return FindLive(key, now, ItemRef(),
                  [now](Stripe& stripe, uint32_t* slot, FreeList*) {
                    Item* item = stripe.At(*slot);
                    stripe.Access(item, now);
                    item->Ref();
                    return ItemRef(item);
                  });
}

ItemRef Store::GetAndTouch(absl::string_view key, int64_t expires_at,
                           int64_t now) {
  const uint32_t expiry = ClampExpiry(expires_at);
  return FindLive(key, now, ItemRef(),
                  [expiry, now](Stripe& stripe, uint32_t* slot, FreeList*) {
                    Item* item = stripe.At(*slot);
                    item->expires_at.store(expiry, std::memory_order_relaxed);
                    stripe.NoteExpiry(expiry);
                    stripe.Access(item, now);
                    item->Ref();
                    return ItemRef(item);
                  });
}

bool Store::Touch(absl::string_view key, int64_t expires_at, int64_t now) {
  const uint32_t expiry = ClampExpiry(expires_at);
  return FindLive(key, now, false,
                  [expiry, now](Stripe& stripe, uint32_t* slot, FreeList*) {
                    Item* item = stripe.At(*slot);
                    item->expires_at.store(expiry, std::memory_order_relaxed);
                    stripe.NoteExpiry(expiry);
                    // memcached's touch bumps, which marks fetched.
                    stripe.Access(item, now);
                    return true;
                  });
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
  // Both arrive while the item is built.
  PrefetchStripeAndBucket(stripe, hash);
  const uint32_t expiry = ClampExpiry(expires_at);
  const uint64_t size = AccountedSize(key.size(), value.size(), flags);

  // The previous stores' reclaim, before this item is allocated: a page
  // drain then never takes the page this store's item goes on (the
  // emptiest page is often the one a class just started, holding only
  // the newest item).
  MaybeReclaim();
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
        grow_from = stripe.GrowthNeeded(table_.max_buckets_per_stripe());
      }
    }
  }
  if (item != nullptr) Item::Unref(item);
  // Stores racing on other threads may have taken the room meanwhile.
  if (linked && OverBudget(0)) MakeRoom(0, now);
  if (grow_from != 0) MaybeGrow(stripe, grow_from);
  return result;
}

Item* Store::Acquire(Stripe& stripe, absl::string_view key, uint64_t hash,
                     int64_t now) {
  return FindLive(stripe, key, hash, now, static_cast<Item*>(nullptr),
                  [](Stripe& stripe, uint32_t* slot, FreeList*) {
                    Item* item = stripe.At(*slot);
                    item->Ref();
                    return item;
                  });
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
      grow_from = stripe.GrowthNeeded(table_.max_buckets_per_stripe());
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
  return FindLive(key, now, false,
                  [](Stripe& stripe, uint32_t* slot, FreeList* free) {
                    stripe.Unlink(slot, free);
                    return true;
                  });
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
  SpinLockHolder holder(&stripe.lock);
  if (stripe.bucket_count() != bucket_count) return;  // Someone else grew it.
  // Doubling in place (BucketTable's layout): bucket b's chain splits
  // between b and b + bucket_count, never used before and so still zero.
  // O(items in the stripe) under the lock, about once per doubling;
  // stripes are small because there are many of them. The new buckets'
  // pages fault in here (zero pages: no syscall, no allocation).
  for (size_t b = 0; b < bucket_count; ++b) {
    uint32_t* low = stripe.Bucket(b);
    uint32_t* high = stripe.Bucket(b + bucket_count);
    DCHECK_EQ(*high, 0u);
    uint32_t handle = *low;
    while (handle != 0) {
      Item* item = stripe.At(handle);
      const uint32_t next = item->hash_next;
      uint32_t*& tail = (Hash(item->key()) & bucket_count) != 0 ? high : low;
      *tail = handle;
      tail = &item->hash_next;
      handle = next;
    }
    *low = 0;
    *high = 0;
  }
  stripe.bucket_mask = bucket_count * 2 - 1;
  table_.NoteMask(stripe.bucket_mask);
  ++stripe.resize_generation;
}

StoreStats Store::GetStats() const {
  StoreStats stats;
  stats.limit_maxbytes = memory_limit_.load(std::memory_order_relaxed);
  stats.stripes = stripe_count_;
  stats.arena_bytes = arena_->footprint();
  stats.hash_bytes = table_.bytes_in_use();
  stats.arena_cap = arena_->cap();
  stats.slabs_moved = arena_->drained_pages();
  for (int i = 0; i < 2; ++i) {
    stats.clock_visits += hands_[i].visits.load(std::memory_order_relaxed);
    stats.evicted_active +=
        hands_[i].taken_active.load(std::memory_order_relaxed);
  }
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
  }
  return stats;
}

}  // namespace memshard::cache
