// Item: one cached key/value pair in a single chunk of the store's
// SlabArena (slab_arena.h).
//
// Layout: a 28-byte header of 4-byte words (issue #10: per-item metadata),
// the client flags (4 bytes, only when non-zero, as memcached's ITEM_CFLAGS),
// the key bytes, the value bytes and "\r\n", so a writer can send
// value+CRLF as one iovec. Links are 32-bit arena handles
// (SlabArena::HandleOf), and there are no LRU links: the store evicts by
// CLOCK over the arena's pages (store.h), with one bit per item.
//
// Thread-safety and invariants:
//  - key, value, flags and CAS are immutable once the item is linked into a
//    stripe; readers holding a reference may read them without any lock.
//    The CAS is written once, under the stripe lock, before linking; it is
//    only read under that lock or through a reference taken after it (a
//    CLOCK hand or page drain never reads it without the lock), so it is a
//    plain 8-byte field copied with memcpy (the header is 4-byte aligned).
//  - `lens` (key length, and the value length of chunk items) is written
//    before the item is published and never changes: a page drain or CLOCK
//    hand reads the key length in its own word, without the stripe lock.
//  - expires_at is the only field that changes while readers may hold the
//    item (touch / gat), so it is a relaxed atomic.
//  - last_access changes while the item is linked, only under the stripe
//    lock, and is read only under it.
//  - hash_next belongs to the owning stripe and is touched only under its
//    lock (after unlinking, it is reused as the link of the stripe's local
//    free list, still by the single unlinking thread).
//  - `state` holds the reference count (low 23 bits) and the item's bits
//    (high 9). The count covers the stripe's hash table (one reference while
//    linked) plus every ItemRef; the item is freed by whoever drops the last
//    reference, so an item evicted, replaced or deleted while a connection is
//    still writing its bytes stays valid until that connection lets go.
//    kHasFlags, kKeyBinary and kMapped are set before the item is linked and
//    never change. kFetched, kStale, kTokenSent and kLinked change while
//    the item is linked, only under the stripe lock; the CLOCK count is
//    raised under the stripe lock and lowered by a hand without it. They
//    share the word with the count, which ItemRefs change without the lock,
//    so they are set and cleared with atomic read-modify-writes.
//  - A page drain or CLOCK hand (Store::Reclaim, Store::EvictOne) finds
//    items by address, not through the table: it takes a reference only
//    with TryRef (never on a zero count), then reads the key, which Create
//    published with its release store of `state`, and unlinks the item under
//    its stripe lock if still linked.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "absl/strings/string_view.h"
#include "glog/logging.h"
#include "server/cache/slab_arena.h"

namespace memshard::cache::internal {

struct Item {
  // Largest key memcached accepts (KEY_MAX_LENGTH); key_len fits a byte.
  static constexpr size_t kMaxKeyLength = 250;
  static constexpr int kKeyLenBits = 8;
  // Chunk items keep their value length in the 24 high bits of `lens`
  // (chunks are at most SlabArena::kMaxChunk); mapped ones in their mapping.
  static constexpr uint32_t kMaxChunkValueLen = (1u << 24) - 1;
  static_assert(SlabArena::kMaxChunk <= kMaxChunkValueLen, "lens too small");
  // memcached's item header (with CAS): `bytes`, -I and the meta size count
  // items as memcached would (NotionalSize), so they compare with it and
  // the largest value a -I accepts does not depend on our header.
  static constexpr size_t kNotionalHeader = 48;

  // `state` bits. 23 bits of count allow 8M simultaneous references to one
  // item (a reference is a reply in flight on some connection).
  static constexpr uint32_t kCountMask = (1u << 23) - 1;
  // In a stripe's table (a hint for a CLOCK hand, which re-checks under the
  // stripe lock).
  static constexpr uint32_t kLinked = 1u << 23;
  // Read since it was stored (memcached's ITEM_FETCHED, for *_unfetched).
  static constexpr uint32_t kFetched = 1u << 24;
  // Meta protocol marks (memcached's ITEM_STALE and ITEM_TOKEN_SENT).
  static constexpr uint32_t kStale = 1u << 25;
  static constexpr uint32_t kTokenSent = 1u << 26;
  // The key came base64-encoded (meta "b") and is returned that way.
  static constexpr uint32_t kKeyBinary = 1u << 27;
  // Non-zero client flags are stored after the header.
  static constexpr uint32_t kHasFlags = 1u << 28;
  // Mapped on its own by the arena (SlabArena::Allocate's *mapped).
  static constexpr uint32_t kMapped = 1u << 29;
  // CLOCK's reference count (bits 30-31, memcached's "recently used" in a
  // generalized CLOCK): 1 when linked, 2 on every hit or bump; a hand
  // passing over the item takes one off, and evicts it at 0. So a new item
  // survives one pass of the hand and a used one two: an item read before
  // the hand last went by goes before one stored since (LRU order, which
  // the store's tests pin).
  static constexpr int kClockShift = 30;
  static constexpr uint32_t kClockOne = 1u << kClockShift;
  static constexpr uint32_t kClockMask = 3u << kClockShift;

  uint32_t hash_next;  // Handle of the next in the bucket; stripe lock.
  uint32_t lens;       // key_len | value_len << 8 (chunk items). Immutable.
  std::atomic<uint32_t> state;       // Reference count and bits (above).
  std::atomic<uint32_t> expires_at;  // Unix seconds, 0 = never.
  // Unix seconds of the last store or bump (meta "l", "me" la); stripe lock.
  uint32_t last_access;
  char cas_bytes[8];  // See cas().

  // Bytes of the single allocation holding an item with these lengths.
  static constexpr size_t AllocSize(size_t key_len, size_t value_len,
                                    uint32_t flags = 0) {
    return sizeof(Item) + (flags != 0 ? sizeof(uint32_t) : 0) + key_len +
           value_len + 2;
  }
  // What memcached's item of these lengths takes (kNotionalHeader).
  static constexpr size_t NotionalSize(size_t key_len, size_t value_len,
                                       uint32_t flags = 0) {
    return kNotionalHeader + (flags != 0 ? sizeof(uint32_t) : 0) + key_len +
           value_len + 2;
  }

  // Allocates an item from `arena` with one reference (the caller's), the
  // flags and key copied in, CRLF after the value, and the value bytes left
  // for the caller to fill via mutable_value(). CAS is 0 until the stripe
  // assigns one when linking.
  //
  // `state` is stored last, with release: a page drain (Store::Reclaim) may
  // look at the chunk concurrently, and takes a reference only once the
  // count is non-zero (TryRef), after which the key is readable.
  static Item* Create(SlabArena* arena, absl::string_view key, uint32_t flags,
                      uint32_t expires_at, size_t value_len,
                      bool key_binary = false) {
    bool mapped = false;
    void* memory =
        arena->Allocate(AllocSize(key.size(), value_len, flags), &mapped);
    Item* item = new (memory) Item;
    item->hash_next = 0;
    if (mapped) {
      *SlabArena::MappedWord(memory) = value_len;
      item->lens = static_cast<uint32_t>(key.size());
    } else {
      item->lens = static_cast<uint32_t>(key.size() | (value_len << 8));
    }
    item->expires_at.store(expires_at, std::memory_order_relaxed);
    item->last_access = 0;
    std::memset(item->cas_bytes, 0, sizeof(item->cas_bytes));
    char* data = reinterpret_cast<char*>(item + 1) + (flags != 0 ? 4 : 0);
    if (flags != 0) std::memcpy(item->tail(), &flags, sizeof(flags));
    if (!key.empty()) std::memcpy(data, key.data(), key.size());
    data[key.size() + value_len] = '\r';
    data[key.size() + value_len + 1] = '\n';
    item->state.store(1 | (flags != 0 ? kHasFlags : 0) |
                          (key_binary ? kKeyBinary : 0) |
                          (mapped ? kMapped : 0),
                      std::memory_order_release);
    return item;
  }

  // Takes a reference unless the count is zero (the chunk is free, being
  // freed, or not yet made an item). For page drains, which find items by
  // address rather than through a reference or the table.
  bool TryRef() {
    uint32_t s = state.load(std::memory_order_acquire);
    while ((s & kCountMask) != 0) {
      if (state.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
        return true;
      }
    }
    return false;
  }

  // Under the stripe lock: a hit or bump sets the CLOCK count to 2 (and the
  // other `bits`); a no-op load on most hits.
  void Touch(uint32_t bits) {
    const uint32_t want = bits | (2u << kClockShift);
    uint32_t s = state.load(std::memory_order_relaxed);
    while ((s & (bits | kClockMask)) != want) {
      if (state.compare_exchange_weak(s, (s & ~kClockMask) | want,
                                      std::memory_order_relaxed,
                                      std::memory_order_relaxed)) {
        return;
      }
    }
  }

  bool Has(uint32_t bit) const {
    return (state.load(std::memory_order_relaxed) & bit) != 0;
  }
  // Under the stripe lock (see the header comment). Setting skips the atomic
  // read-modify-write when the bits are already there, as on most hits.
  void Set(uint32_t bits) {
    if ((state.load(std::memory_order_relaxed) & bits) != bits) {
      state.fetch_or(bits, std::memory_order_relaxed);
    }
  }
  void Clear(uint32_t bits) {
    state.fetch_and(~bits, std::memory_order_relaxed);
  }

  // The bytes after the header: flags (if any), key, value, CRLF.
  char* tail() { return reinterpret_cast<char*>(this + 1); }
  const char* tail() const { return reinterpret_cast<const char*>(this + 1); }
  char* data() { return tail() + (Has(kHasFlags) ? 4 : 0); }
  const char* data() const { return tail() + (Has(kHasFlags) ? 4 : 0); }

  uint32_t flags() const {
    uint32_t flags = 0;
    if (Has(kHasFlags)) std::memcpy(&flags, tail(), sizeof(flags));
    return flags;
  }
  bool key_binary() const { return Has(kKeyBinary); }
  bool fetched() const { return Has(kFetched); }

  size_t key_len() const { return lens & ((1u << kKeyLenBits) - 1); }
  size_t value_len() const {
    if (Has(kMapped)) return SlabArena::MappedWord(this);
    return lens >> kKeyLenBits;
  }
  absl::string_view key() const { return {data(), key_len()}; }
  // key() for a page drain or CLOCK hand (a reference, no stripe lock):
  // `lens` is immutable, so this is key().
  absl::string_view drain_key() const { return key(); }
  absl::string_view value() const { return {data() + key_len(), value_len()}; }
  absl::string_view value_with_crlf() const {
    return {data() + key_len(), value_len() + 2};
  }
  char* mutable_value() { return data() + key_len(); }
  size_t alloc_size() const {
    return AllocSize(key_len(), value_len(), flags());
  }
  size_t notional_size() const {
    return NotionalSize(key_len(), value_len(), flags());
  }
  // What it takes from the arena: alloc_size() rounded up to its chunk or
  // mapping.
  size_t occupied_size() const {
    return SlabArena::OccupiedSize(this, alloc_size(), Has(kMapped));
  }

  uint64_t cas() const {
    uint64_t cas;
    std::memcpy(&cas, cas_bytes, sizeof(cas));
    return cas;
  }
  void set_cas(uint64_t cas) { std::memcpy(cas_bytes, &cas, sizeof(cas)); }

  uint32_t expiry() const { return expires_at.load(std::memory_order_relaxed); }

  // Taking a reference needs no ordering: the caller already holds one or
  // holds the stripe lock while the table holds one.
  void Ref() {
    const uint32_t before = state.fetch_add(1, std::memory_order_relaxed);
    DCHECK_LT(before & kCountMask, kCountMask) << "reference count overflow";
  }

  // Drops `n` references in one atomic (an eviction drops the table's and
  // the hand's together). acq_rel: every other holder's reads happen
  // before the free.
  static void Unref(Item* item, uint32_t n = 1) {
    const uint32_t before = item->state.fetch_sub(n, std::memory_order_acq_rel);
    if ((before & kCountMask) == n) {
      item->~Item();
      SlabArena::Free(item, (before & kMapped) != 0);
    }
  }
};

static_assert(sizeof(Item) == 28, "keep the item header compact");
static_assert(alignof(Item) == 4, "chunks are 4-byte aligned");
// A page drain reads `state` of chunks that may be free or half-built: it
// must lie in the prefix the arena zeroes and keeps (slab_arena.h).
static_assert(offsetof(Item, state) >= sizeof(void*) &&
                  offsetof(Item, state) + sizeof(uint32_t) <=
                      SlabArena::kZeroedPrefix,
              "state must be in the arena's zeroed prefix");

}  // namespace memshard::cache::internal
