// Item: one cached key/value pair in a single heap allocation.
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
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "absl/strings/string_view.h"
#include "glog/logging.h"

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

  Item* hash_next;  // Bucket chain; guarded by the stripe lock.
  Item* lru_prev;   // Towards the most recently used end; stripe lock.
  Item* lru_next;   // Towards the least recently used end; stripe lock.
  uint64_t cas_and_key_len;     // cas << 8 | key_len. Immutable once linked.
  std::atomic<uint32_t> state;  // Reference count and bits (above).
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

  // Allocates an item with one reference (the caller's), the flags and key
  // copied in, CRLF after the value, and the value bytes left for the caller
  // to fill via mutable_value(). CAS is 0 until the stripe assigns one when
  // linking.
  static Item* Create(absl::string_view key, uint32_t flags,
                      uint32_t expires_at, size_t value_len,
                      bool key_binary = false) {
    void* memory = ::operator new(AllocSize(key.size(), value_len, flags));
    Item* item = new (memory) Item;
    item->hash_next = nullptr;
    item->lru_prev = nullptr;
    item->lru_next = nullptr;
    item->cas_and_key_len = key.size();
    item->state.store(
        1 | (flags != 0 ? kHasFlags : 0) | (key_binary ? kKeyBinary : 0),
        std::memory_order_relaxed);
    item->expires_at.store(expires_at, std::memory_order_relaxed);
    item->value_len = static_cast<uint32_t>(value_len);
    item->last_access = 0;
    if (flags != 0) std::memcpy(item->tail(), &flags, sizeof(flags));
    char* data = item->data();
    if (!key.empty()) std::memcpy(data, key.data(), key.size());
    data[key.size() + value_len] = '\r';
    data[key.size() + value_len + 1] = '\n';
    return item;
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
  absl::string_view value() const { return {data() + key_len(), value_len}; }
  absl::string_view value_with_crlf() const {
    return {data() + key_len(), size_t{value_len} + 2};
  }
  char* mutable_value() { return data() + key_len(); }
  size_t alloc_size() const { return AllocSize(key_len(), value_len, flags()); }

  uint64_t cas() const { return cas_and_key_len >> kKeyLenBits; }
  void set_cas(uint64_t cas) {
    cas_and_key_len = (cas << kKeyLenBits) | key_len();
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
      ::operator delete(static_cast<void*>(item));
    }
  }
};

// With CRLF, a 32-byte key and a 100-byte value (issue #10's S6) make a
// 192-byte malloc chunk with any header from 33 to 48 bytes: below that
// takes dropping the LRU links, which store.cc explains we do not do while
// items come from malloc.
static_assert(sizeof(Item) == 48, "keep the item header compact");

}  // namespace memshard::cache::internal
