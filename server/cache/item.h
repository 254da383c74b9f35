// Item: one cached key/value pair in a single chunk of the store's
// SlabArena (slab_arena.h).
//
// Layout: a 48-byte header, the client flags (4 bytes, only when non-zero,
// as memcached's ITEM_CFLAGS), the key bytes, the value bytes and "\r\n", so
// a writer can send value+CRLF as one iovec.
//
// Thread-safety and invariants:
//  - key, value, flags and CAS are immutable once the item is linked into a
//    stripe; readers holding a reference may read them without any lock.
//  - expires_at is the only field that changes while readers may hold the
//    item (touch / gat), so it is a relaxed atomic.
//  - last_access changes while the item is linked, only under the stripe
//    lock, and is read only under it.
//  - hash_next and the LRU links belong to the owning stripe and are touched
//    only under its lock (after unlinking, hash_next is reused as the link of
//    the stripe's local free list, still by the single unlinking thread).
//  - `state` holds the reference count (low 24 bits) and the item's bits
//    (high 8). The count covers the stripe's hash table (one reference while
//    linked) plus every ItemRef; the item is freed by whoever drops the last
//    reference, so an item evicted, replaced or deleted while a connection is
//    still writing its bytes stays valid until that connection lets go.
//    kHasFlags and kKeyBinary are set before the item is linked and never
//    change. kFetched, kStale and kTokenSent change while the
//    item is linked, only under the stripe lock, and are read only under it;
//    they share the word with the count, which ItemRefs change without the
//    lock, so they are set and cleared with atomic OR / AND.
//  - A page drain (Store::Reclaim) finds items by address, not through the
//    table: it takes a reference only with TryRef (never on a zero count),
//    then reads the key, which Create published with its release store of
//    `state`, and unlinks the item under its stripe lock if still linked.
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
  // CAS shares a word with key_len: 56 bits of CAS are ~7e16 mutations.
  static constexpr int kKeyLenBits = 8;
  static constexpr uint64_t kMaxCas = (uint64_t{1} << (64 - kKeyLenBits)) - 1;

  // `state` bits. 24 bits of count allow 16M simultaneous references to one
  // item (a reference is a reply in flight on some connection).
  static constexpr uint32_t kCountMask = (1u << 24) - 1;
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

  Item* hash_next;  // Bucket chain; guarded by the stripe lock.
  Item* lru_prev;   // Towards the most recently used end; stripe lock.
  Item* lru_next;   // Towards the least recently used end; stripe lock.
  // cas << 8 | key_len. Immutable once linked. set_cas() and
  // drain_key() access it atomically (relaxed): a page drain reads key_len
  // without the stripe lock while the linking thread sets the CAS bits.
  // Everything else reads it plainly, ordered by the lock or a reference.
  uint64_t cas_and_key_len;
  std::atomic<uint32_t> state;       // Reference count and bits (above).
  std::atomic<uint32_t> expires_at;  // Unix seconds, 0 = never.
  uint32_t value_len;                // Without the trailing CRLF.
  // Unix seconds of the last store or bump (meta "l", "me" la); stripe lock.
  uint32_t last_access;

  // Bytes of the single allocation holding an item with these lengths.
  static constexpr size_t AllocSize(size_t key_len, size_t value_len,
                                    uint32_t flags = 0) {
    return sizeof(Item) + (flags != 0 ? sizeof(uint32_t) : 0) + key_len +
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
    item->hash_next = nullptr;
    item->lru_prev = nullptr;
    item->lru_next = nullptr;
    item->cas_and_key_len = key.size();
    item->expires_at.store(expires_at, std::memory_order_relaxed);
    item->value_len = static_cast<uint32_t>(value_len);
    item->last_access = 0;
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

  size_t key_len() const {
    return cas_and_key_len & ((uint64_t{1} << kKeyLenBits) - 1);
  }
  absl::string_view key() const { return {data(), key_len()}; }
  // key() for a page drain, which holds a reference (TryRef) but not the
  // stripe lock: the linking thread may be setting the CAS meanwhile.
  absl::string_view drain_key() const {
    const uint64_t word = __atomic_load_n(&cas_and_key_len, __ATOMIC_RELAXED);
    return {data(), word & ((uint64_t{1} << kKeyLenBits) - 1)};
  }
  absl::string_view value() const { return {data() + key_len(), value_len}; }
  absl::string_view value_with_crlf() const {
    return {data() + key_len(), size_t{value_len} + 2};
  }
  char* mutable_value() { return data() + key_len(); }
  size_t alloc_size() const { return AllocSize(key_len(), value_len, flags()); }
  // What it takes from the arena: alloc_size() rounded up to its chunk or
  // mapping.
  size_t occupied_size() const {
    return SlabArena::OccupiedSize(this, alloc_size(), Has(kMapped));
  }

  uint64_t cas() const { return cas_and_key_len >> kKeyLenBits; }
  void set_cas(uint64_t cas) {
    __atomic_store_n(&cas_and_key_len, (cas << kKeyLenBits) | key_len(),
                     __ATOMIC_RELAXED);
  }

  uint32_t expiry() const { return expires_at.load(std::memory_order_relaxed); }

  // Taking a reference needs no ordering: the caller already holds one or
  // holds the stripe lock while the table holds one.
  void Ref() {
    const uint32_t before = state.fetch_add(1, std::memory_order_relaxed);
    DCHECK_LT(before & kCountMask, kCountMask) << "reference count overflow";
  }

  // acq_rel: every other holder's reads happen before the free.
  static void Unref(Item* item) {
    const uint32_t before = item->state.fetch_sub(1, std::memory_order_acq_rel);
    if ((before & kCountMask) == 1) {
      item->~Item();
      SlabArena::Free(item, (before & kMapped) != 0);
    }
  }
};

static_assert(sizeof(Item) == 48, "keep the item header compact");
// A page drain reads `state` of chunks that may be free or half-built: it
// must lie in the prefix the arena zeroes and keeps (slab_arena.h).
static_assert(offsetof(Item, state) >= sizeof(void*) &&
                  offsetof(Item, state) + sizeof(uint32_t) <=
                      SlabArena::kZeroedPrefix,
              "state must be in the arena's zeroed prefix");

}  // namespace memshard::cache::internal
