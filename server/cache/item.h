// Item: one cached key/value pair in a single heap allocation.
//
// Layout: a 56-byte header followed by the key bytes, the value bytes and
// "\r\n", so a writer can send value+CRLF as one iovec.
//
// Thread-safety and invariants:
//  - key, value, flags and CAS are immutable once the item is linked into a
//    stripe; readers holding a reference may read them without any lock.
//  - expires_at is the only field that changes while readers may hold the
//    item (touch / gat), so it is a relaxed atomic.
//  - last_access and meta_state (the meta protocol's stale and win marks)
//    change while the item is linked, only under the stripe lock, and are
//    read only under it. key_binary is immutable once linked.
//  - hash_next and the LRU links belong to the owning stripe and are touched
//    only under its lock (after unlinking, hash_next is reused as the link of
//    the stripe's local free list, still by the single unlinking thread).
//  - refs counts the stripe's hash table (one reference while linked) plus
//    every ItemRef. The item is freed by whoever drops the last reference, so
//    an item evicted, replaced or deleted while a connection is still writing
//    its bytes stays valid until that connection lets go.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "absl/strings/string_view.h"

namespace memshard::cache::internal {

struct Item {
  // Largest key memcached accepts (KEY_MAX_LENGTH); key_len fits a byte.
  static constexpr size_t kMaxKeyLength = 250;
  // Low 31 bits of refs are the count; the top bit records that the item was
  // read since it was stored (memcached's ITEM_FETCHED, for the
  // *_unfetched stats). It is set under the stripe lock but shares the word
  // with the count, so it is set with an atomic OR.
  static constexpr uint32_t kFetchedBit = 1u << 31;
  static constexpr uint32_t kCountMask = kFetchedBit - 1;
  // CAS shares a word with key_len: 56 bits of CAS are ~7e16 mutations.
  static constexpr int kKeyLenBits = 8;
  static constexpr uint64_t kMaxCas = (uint64_t{1} << (64 - kKeyLenBits)) - 1;

  Item* hash_next;  // Bucket chain; guarded by the stripe lock.
  Item* lru_prev;   // Towards the most recently used end; stripe lock.
  Item* lru_next;   // Towards the least recently used end; stripe lock.
  uint64_t cas_and_key_len;  // cas << 8 | key_len. Immutable once linked.
  std::atomic<uint32_t> refs;
  std::atomic<uint32_t> expires_at;  // Unix seconds, 0 = never.
  uint32_t flags;
  uint32_t value_len;  // Without the trailing CRLF.
  // Unix seconds of the last store or bump (meta "l", "me" la); stripe lock.
  uint32_t last_access;
  uint8_t meta_state;  // kStale | kTokenSent; stripe lock.
  // The key came base64-encoded (meta "b") and is returned that way.
  bool key_binary;

  // meta_state bits (memcached's ITEM_STALE and ITEM_TOKEN_SENT).
  static constexpr uint8_t kStale = 1;
  static constexpr uint8_t kTokenSent = 2;

  // Bytes of the single allocation holding an item with these lengths.
  static constexpr size_t AllocSize(size_t key_len, size_t value_len) {
    return sizeof(Item) + key_len + value_len + 2;
  }

  // Allocates an item with one reference (the caller's), the key copied in,
  // CRLF after the value, and the value bytes left for the caller to fill
  // via mutable_value(). CAS is 0 until the stripe assigns one when linking.
  static Item* Create(absl::string_view key, uint32_t flags,
                      uint32_t expires_at, size_t value_len) {
    void* memory = ::operator new(AllocSize(key.size(), value_len));
    Item* item = new (memory) Item;
    item->hash_next = nullptr;
    item->lru_prev = nullptr;
    item->lru_next = nullptr;
    item->cas_and_key_len = key.size();
    item->refs.store(1, std::memory_order_relaxed);
    item->expires_at.store(expires_at, std::memory_order_relaxed);
    item->flags = flags;
    item->value_len = static_cast<uint32_t>(value_len);
    item->last_access = 0;
    item->meta_state = 0;
    item->key_binary = false;
    char* data = item->data();
    if (!key.empty()) std::memcpy(data, key.data(), key.size());
    data[key.size() + value_len] = '\r';
    data[key.size() + value_len + 1] = '\n';
    return item;
  }

  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }

  size_t key_len() const {
    return cas_and_key_len & ((uint64_t{1} << kKeyLenBits) - 1);
  }
  absl::string_view key() const { return {data(), key_len()}; }
  absl::string_view value() const { return {data() + key_len(), value_len}; }
  absl::string_view value_with_crlf() const {
    return {data() + key_len(), size_t{value_len} + 2};
  }
  char* mutable_value() { return data() + key_len(); }
  size_t alloc_size() const { return AllocSize(key_len(), value_len); }

  uint64_t cas() const { return cas_and_key_len >> kKeyLenBits; }
  void set_cas(uint64_t cas) {
    cas_and_key_len = (cas << kKeyLenBits) | key_len();
  }

  uint32_t expiry() const { return expires_at.load(std::memory_order_relaxed); }

  bool fetched() const {
    return (refs.load(std::memory_order_relaxed) & kFetchedBit) != 0;
  }
  void MarkFetched() {
    if (!fetched()) refs.fetch_or(kFetchedBit, std::memory_order_relaxed);
  }

  // Taking a reference needs no ordering: the caller already holds one or
  // holds the stripe lock while the table holds one.
  void Ref() { refs.fetch_add(1, std::memory_order_relaxed); }

  // acq_rel: every other holder's reads happen before the free.
  static void Unref(Item* item) {
    const uint32_t before = item->refs.fetch_sub(1, std::memory_order_acq_rel);
    if ((before & kCountMask) == 1) {
      item->~Item();
      ::operator delete(static_cast<void*>(item));
    }
  }
};

static_assert(sizeof(Item) == 56, "keep the item header compact");

}  // namespace memshard::cache::internal
