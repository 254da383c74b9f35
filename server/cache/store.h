// Store: the embedded memcached-style cache shared by all worker threads.
//
// Thread-safety: every Store method may be called concurrently from any
// thread. The store is split into a power-of-two number of stripes (chosen by
// the top bits of the key's hash), each with its own lock, hash table (its
// buckets in one internal::BucketTable) and CAS counter. A call takes one
// stripe lock at a time (FlushAll, SetMemoryLimit, SweepExpired and GetStats
// visit stripes one after another; an eviction locks the victim's stripe after
// dropping its own). Critical sections make no syscalls, do no logging and do
// not allocate: new items are built before the lock is taken, and replaced or
// evicted items are released after it is dropped.
//
// Lifetime: an ItemRef keeps its item alive by reference count, independently
// of the store: it stays valid after the item is replaced, deleted, evicted or
// flushed, and even after the Store is destroyed. Its bytes never change
// (only expires_at() may move, through Touch/GetAndTouch).
//
// Time: every `now` and `expires_at` is absolute unix seconds (positive)
// supplied by the caller; the protocol layer converts memcached's relative
// exptimes. expires_at == 0 means never; an item is dead once
// expires_at != 0 && expires_at <= now. Negative expires_at means already
// dead; values beyond 2^32-1 are clamped (year 2106).
//
// Memory: memory_limit_bytes is a budget on linked items, shared by the
// whole store (one atomic counter): each item is charged the larger of its
// AccountedSize() (memcached's item size plus an 8-byte hash slot, as
// `bytes` reports it) and what it really holds (its arena chunk or mapping
// plus a 4-byte hash slot; a table doubles when its load factor passes 1.5).
// A store that would pass the budget first evicts by CLOCK (item.h): a hand
// walks the arena's pages in address order, every class (so items of
// neighbouring sizes compete, as in one LRU: a hand per class would never
// let a 137-byte item push out an older 136-byte one), large items have
// their own hand, moved at the same rate in bytes, and when neither finds
// anything the emptiest page of any class is drained. A hand's search is
// bounded (kMaxClockVisits; store_eviction.cc has the policy), so a writer
// at full memory never walks the whole store under its lock. Stores racing
// on other threads may pass it by an item each, until they evict in turn.
// Items that are unlinked but still held by ItemRefs are not counted: they
// are in flight to a socket.
//
// Resident memory: items live in a SlabArena (slab_arena.h) whose footprint
// (pages it holds plus large items mapped one by one) is capped at
// limit + limit/16 + 8 MiB (less for limits under 32 MiB). Past the cap, the
// store evicts every item on the pages with the fewest live bytes, out of
// CLOCK order (memcached's slab page reassignment): when value sizes shift,
// that is what keeps RSS within limit x 1.10 + 32 MiB, since a chunk the
// CLOCK hands free serves only its own class.
//
// The arena addresses items with 32-bit handles, so its page range is at
// most SlabArena::kMaxPageRange (~16 GiB): memory limits above
// kMaxMemoryLimit are clamped to it (with a warning).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/cache/bucket_table.h"
#include "server/cache/item.h"
#include "server/cache/slab_arena.h"

namespace memshard::cache {

// A counted reference to an immutable item. Copyable (adds a reference) and
// movable; empty by default.
class ItemRef {
 public:
  ItemRef() = default;
  ItemRef(const ItemRef& other) : item_(other.item_) {
    if (item_ != nullptr) item_->Ref();
  }
  ItemRef(ItemRef&& other) noexcept
      : item_(std::exchange(other.item_, nullptr)) {}
  ItemRef& operator=(const ItemRef& other) {
    ItemRef copy(other);
    std::swap(item_, copy.item_);
    return *this;
  }
  ItemRef& operator=(ItemRef&& other) noexcept {
    ItemRef moved(std::move(other));
    std::swap(item_, moved.item_);
    return *this;
  }
  ~ItemRef() {
    if (item_ != nullptr) internal::Item::Unref(item_);
  }

  explicit operator bool() const { return item_ != nullptr; }
  absl::string_view key() const { return item_->key(); }
  // The value without the trailing CRLF.
  absl::string_view value() const { return item_->value(); }
  // The value followed by "\r\n", contiguous: one iovec for a text reply.
  absl::string_view value_with_crlf() const { return item_->value_with_crlf(); }
  uint32_t flags() const { return item_->flags(); }
  uint64_t cas() const { return item_->cas(); }
  int64_t expires_at() const { return item_->expiry(); }
  // Stored with a base64 key (meta "b"): return the key base64-encoded.
  bool key_binary() const { return item_->key_binary(); }
  // Item::NotionalSize() of this item: memcached's size for it (meta "me"
  // size).
  size_t alloc_size() const { return item_->notional_size(); }

 private:
  friend class Store;
  // Adopts one reference the caller already took.
  explicit ItemRef(internal::Item* item) : item_(item) {}

  internal::Item* item_ = nullptr;
};

enum class StoreMode { kSet, kAdd, kReplace, kAppend, kPrepend, kCas };

enum class StoreResult {
  kStored,
  kNotStored,
  kExists,
  kNotFound,
  kTooLarge,     // memcached: "SERVER_ERROR object too large for cache"
  kOutOfMemory,  // memcached: "SERVER_ERROR out of memory storing object"
};

enum class DeltaResult {
  kOk,
  kNotFound,
  kNonNumeric,   // "CLIENT_ERROR cannot increment or decrement non-numeric
                 // value"
  kOutOfMemory,  // "SERVER_ERROR out of memory"; only if the memory limit is
                 // smaller than the new item (tiny or shrunk memory limit).
  kExists,       // DeltaOptions::check_cas and the CAS differs.
};

enum class DeleteResult {
  kDeleted,
  kNotFound,
  kExists,  // the item's CAS differs from the one the client gave
};

// Optional parts of Put, for the meta and binary protocols.
struct PutOptions {
  // meta ms with I and C: a CAS lower than the item's still stores, but the
  // new item is marked stale and keeps the old expiry and win mark
  // (memcached's CAS_STALE).
  bool allow_stale = false;
  // meta b: the key is returned base64-encoded.
  bool key_binary = false;
};

// Optional parts of Delta, for the meta and binary protocols.
struct DeltaOptions {
  // Apply only if the item's CAS equals cas_in (else kExists).
  bool check_cas = false;
  uint64_t cas_in = 0;
  // Give the new item this expiry instead of keeping the old one (meta T).
  bool set_expiry = false;
  int64_t expires_at = 0;
};

// What Delta did, besides its result.
struct DeltaOutcome {
  uint64_t value = 0;
  uint64_t cas = 0;
  int64_t expiry_before = 0;  // of the item the delta was applied to
  int64_t expires_at = 0;     // of the new item
};

// What a meta lookup saw, read under the stripe lock.
struct ItemMeta {
  bool fetched = false;       // read before this command (meta h)
  int64_t last_access = 0;    // last store or read before this command (l)
  bool stale = false;         // marked stale by meta invalidation (X)
  bool token_sent = false;    // a win was handed out before this command (Z)
  bool won = false;           // this command wins the right to recache (W)
  bool created = false;       // vivified by this command (N)
  int64_t expiry_before = 0;  // before this command changed it
};

// The meta get's modifiers (mg N, R, T, u). Times are absolute.
struct MetaGetOptions {
  bool bump = true;         // false for mg u: no LRU bump, not marked fetched
  bool set_expiry = false;  // T
  int64_t expires_at = 0;
  bool vivify = false;  // N: on a miss, link an empty item and win
  int64_t vivify_expires_at = 0;
  bool key_binary = false;  // of a vivified item
  // R: win if no win was handed out yet and the item expires before this.
  bool recache = false;
  int64_t recache_below = 0;
  // Token order matters in memcached: R judges the expiry T already set if
  // T came first, and a vivified item keeps whichever of N and T came last.
  bool recache_after_ttl = false;
  bool vivify_after_ttl = true;
};

struct StoreOptions {
  uint64_t memory_limit_bytes = 64ull << 20;
  // Largest Item::NotionalSize() (memcached's 48-byte header + flags + key +
  // value + CRLF) accepted, like memcached's -I. At most 1 GiB.
  uint64_t max_item_size = 1 << 20;
  // Power of two, at most 65536; 0 = auto: 1024, halved (down to 1) until
  // limit / stripes holds at least 4 max-size items.
  uint32_t stripes = 0;
  // Address space for the hash buckets, in buckets, shared by the stripes
  // (internal::BucketTable); 0: its default (1 GiB). A stripe's table stops
  // growing at its share, and its chains grow longer from there.
  size_t reserved_buckets = 0;
};

// Field names follow memcached's `stats` / `stats items` where one exists.
// Hits and misses are counted by the caller, who knows the command.
struct StoreStats {
  uint64_t curr_items = 0;
  uint64_t total_items = 0;  // Items ever linked (set, append, incr, ...).
  uint64_t bytes = 0;        // Accounted bytes of linked items.
  uint64_t limit_maxbytes = 0;
  uint64_t evictions = 0;          // Live items evicted to make room.
  uint64_t evicted_unfetched = 0;  // ... of which never read.
  // ... taken by a CLOCK hand although used since it last went by: its
  // bounded search (kMaxClockVisits) found no item that was not.
  uint64_t evicted_active = 0;
  uint64_t reclaimed = 0;  // Dead items reclaimed by a CLOCK hand for room.
  uint64_t expired_unfetched = 0;  // Dead items reclaimed that were never read.
  uint64_t get_expired = 0;        // Commands that found the key expired.
  uint64_t get_flushed = 0;        // Commands that found the key flushed.
  uint64_t crawler_reclaimed = 0;  // Dead items reclaimed by SweepExpired.
  uint64_t hash_bytes = 0;         // Bucket table in use (not in `bytes`).
  // Item memory the process holds: the arena's pages (in use or kept for
  // reuse) and large items' mappings (slab_arena.h).
  uint64_t arena_bytes = 0;
  uint64_t arena_cap = 0;    // Past it, pages are drained (see Memory above).
  uint64_t slabs_moved = 0;  // Pages drained (their items evicted) so far.
  // Chunks and mapped slots the CLOCK hands examined (eviction work).
  uint64_t clock_visits = 0;
  uint64_t stripes = 0;
};

// One chunk size class of the item arena (`stats slabs`, `stats items`):
// items up to SlabArena::kMaxChunk bytes live in the class that fits them;
// larger ones are mapped one by one and belong to none.
using SlabClassStats = internal::SlabArena::ClassUsage;

class Store {
 public:
  explicit Store(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Starts loading the cache line of key's hash bucket, without the lock
  // and without any effect: a multiget calls it for the keys it is about
  // to look up, so their bucket misses overlap. Returns a token for
  // PrefetchItem (the key's hash).
  uint64_t Prefetch(absl::string_view key) const;
  // Prefetch's second stage, once the bucket's line has had time to arrive:
  // starts loading the first item chained in the bucket of Prefetch's
  // `token` (its header, key and value start: the key's own item unless
  // the bucket chains several). It reads the bucket under the stripe lock,
  // since a resize frees the old array, and skips large (mapped) items,
  // whose memory is unmapped when they are freed. No other effect.
  void PrefetchItem(uint64_t token) const;
  // Returns the live item for key, or an empty ref. Marks it used (CLOCK).
  ItemRef Get(absl::string_view key, int64_t now);
  // Get that also sets the expiry (memcached gat). The CAS is unchanged.
  ItemRef GetAndTouch(absl::string_view key, int64_t expires_at, int64_t now);
  // Sets the expiry of a live item; false if missing. The CAS is unchanged,
  // as in memcached.
  bool Touch(absl::string_view key, int64_t expires_at, int64_t now);

  // memcached set/add/replace/append/prepend/cas. For kCas, cas_in is the
  // client's unique: kExists if it differs, kNotFound if the key is missing.
  // append/prepend keep the existing flags and expiry and ignore the given
  // ones; they return kNotStored (as memcached does) when the key is missing
  // or the combined item is too large or cannot fit. A failed kSet (too large,
  // out of memory) removes the old item, as memcached does, so a stale value
  // does not outlive a write the client believes failed. A store whose
  // expires_at is already past succeeds but leaves the key absent. On
  // success *cas_out (if non-null) gets the new CAS. Keys longer than
  // kMaxKeyLength are never stored (kNotStored); callers validate keys.
  //
  // append/prepend with a non-zero cas_in store only if it matches the
  // item's CAS (kExists otherwise), as memcached does for meta and binary.
  StoreResult Put(StoreMode mode, absl::string_view key, uint32_t flags,
                  int64_t expires_at, absl::string_view value, uint64_t cas_in,
                  int64_t now, uint64_t* cas_out = nullptr,
                  const PutOptions& options = PutOptions());

  // Removes a live item; false if missing.
  bool Delete(absl::string_view key, int64_t now);
  // Delete that, with check_cas, removes only an item whose CAS is cas_in.
  DeleteResult DeleteIf(absl::string_view key, bool check_cas, uint64_t cas_in,
                        int64_t now);
  // meta md I: replaces the live item by a copy marked stale, with a new CAS,
  // no win handed out yet, and (with set_expiry) a new expiry. The value and
  // flags stay. kDeleted means marked.
  DeleteResult Invalidate(absl::string_view key, bool check_cas,
                          uint64_t cas_in, bool set_expiry, int64_t expires_at,
                          int64_t now);

  // meta mg: a lookup that reports the item's meta state and applies mg's
  // modifiers atomically (exactly one client wins a recache). Empty ref on a
  // miss that did not vivify.
  ItemRef MetaGet(absl::string_view key, const MetaGetOptions& options,
                  int64_t now, ItemMeta* meta);
  // meta me: the live item and its meta state, changing nothing.
  ItemRef Peek(absl::string_view key, int64_t now, ItemMeta* meta);

  // memcached incr/decr. The value must parse like memcached's safe_strtoull:
  // optional leading whitespace, optional sign, decimal digits that fit in 64
  // bits, then whitespace or the end ("-0" is 0; negative values are
  // non-numeric). incr wraps at 2^64, decr floors at 0. The result replaces
  // the item with a new CAS, keeping flags and expiry; like memcached, a
  // result with fewer digits than the old value is padded with spaces to the
  // old length ("10" decr 1 reads back as "9 ").
  DeltaResult Delta(absl::string_view key, bool increment, uint64_t delta,
                    int64_t now, uint64_t* new_value,
                    uint64_t* cas_out = nullptr);
  // Delta with a CAS check (kExists on mismatch) and an expiry update.
  DeltaResult Delta(absl::string_view key, bool increment, uint64_t delta,
                    const DeltaOptions& options, int64_t now,
                    DeltaOutcome* outcome);

  // memcached flush_all. at_time <= now: every item stored before this call
  // becomes invalid at once. Otherwise items stored before at_time become
  // invalid once now >= at_time; items stored later are unaffected. A new
  // FlushAll replaces a pending delayed one (as in memcached). Invalid items
  // are reclaimed lazily (on access, eviction or SweepExpired), so curr_items
  // and bytes drop as that happens, as in memcached.
  void FlushAll(int64_t at_time, int64_t now);

  // memcached cache_memlimit. Shrinking evicts eagerly, by the CLOCK hands,
  // so `bytes` is within the new limit on return. The stripe count does not
  // change; items bigger than the new limit get kOutOfMemory. Clamped to
  // kMaxMemoryLimit.
  void SetMemoryLimit(uint64_t bytes);

  // Reclaims expired and flushed items in stripes
  // [first_stripe, first_stripe + stripe_count) (clipped to the store) and
  // returns how many. Stripes known to hold nothing that can be dead yet are
  // skipped in O(1); others are scanned holding the stripe lock for a
  // bounded number of buckets at a time. In each stripe the scan stops once
  // max_items were reclaimed in all, or after max_visits items (or 16 times
  // as many buckets) in that stripe; the next call on the stripe goes on
  // from there, so a pass over a large stripe whose items expire here and
  // there is spread over many short calls. Workers call this with a
  // rotating slice of stripes to bound their work.
  size_t SweepExpired(uint32_t first_stripe, uint32_t stripe_count, int64_t now,
                      size_t max_items, size_t max_visits = SIZE_MAX);

  uint32_t stripe_count() const { return stripe_count_; }
  uint64_t max_item_size() const { return max_item_size_; }

  // Sums the stripes, taking each lock briefly: not an atomic snapshot.
  StoreStats GetStats() const;
  // The arena's size classes, smallest chunks first, one page at a time
  // (SlabArena::Usage): not an atomic snapshot either.
  std::vector<SlabClassStats> GetSlabStats() const { return arena_->Usage(); }

  // Bytes `bytes` counts for an item of these lengths and client flags
  // (non-zero flags take 4 bytes): memcached's item size plus a pointer-size
  // hash slot, whatever our own header costs (the budget charges at least
  // this; see Memory above).
  static constexpr uint64_t AccountedSize(size_t key_len, size_t value_len,
                                          uint32_t flags = 0) {
    return internal::Item::NotionalSize(key_len, value_len, flags) +
           sizeof(void*);
  }
  static constexpr size_t kMaxKeyLength = internal::Item::kMaxKeyLength;
  // Largest memory limit the arena's 32-bit handles can serve: its cap (the
  // limit + 1/16 + 8 MiB) and some slack within SlabArena::kMaxPageRange.
  static constexpr uint64_t kMaxMemoryLimit = uint64_t{12} << 30;
  // Most linked items one CLOCK search examines, besides 16 times as many
  // chunks of any kind (store_eviction.cc, Store::ClockFind, has the
  // policy): bounds a writer's eviction work at full memory, whatever the
  // store's size.
  static constexpr size_t kMaxClockVisits = 256;

 private:
  struct Stripe;
  struct FreeList;
  size_t StripeIndex(uint64_t hash) const;
  Stripe& StripeFor(uint64_t hash) const;
  // Starts loading the bucket `hash` falls in, at an address computed from
  // the hash alone, so that the load overlaps the miss on the stripe's
  // lock instead of following it.
  void PrefetchBucket(uint64_t hash) const;
  // PrefetchBucket, and the stripe's first line (its lock) beside it.
  void PrefetchStripeAndBucket(const Stripe& stripe, uint64_t hash) const;
  uint64_t Hash(absl::string_view key) const;
  // The lookup every single-key operation starts with: under the stripe
  // lock (after a due flush_all), calls hit(stripe, slot, &free) with the
  // slot of `key`'s live item and returns what it returns, or returns
  // `miss` when the key is too long or has no live item (Find unlinks an
  // expired or flushed one). What hit unlinks into `free` is freed after
  // the lock. Defined in store_internal.h.
  template <typename R, typename Hit>
  R FindLive(absl::string_view key, int64_t now, const R& miss, Hit&& hit);
  template <typename R, typename Hit>
  R FindLive(Stripe& stripe, absl::string_view key, uint64_t hash, int64_t now,
             const R& miss, Hit&& hit);

  // Concat and Delta replace an item by one derived from it: read it under
  // the lock, build the new one outside, then link it if the key still maps
  // to the same item (else retry).
  StoreResult Concat(bool append, absl::string_view key,
                     absl::string_view value, uint64_t cas_in, int64_t now,
                     uint64_t* cas_out);
  // Takes a reference on the live item for key (or returns null).
  internal::Item* Acquire(Stripe& stripe, absl::string_view key, uint64_t hash,
                          int64_t now);
  enum class SwapOutcome { kSwapped, kChanged, kOutOfMemory };
  // Links `replacement` in place of `expected` if that is still the live item
  // for key (kChanged otherwise), giving it `expected`'s current expiry (or
  // *new_expiry if given) and a new CAS (stored to *cas_out). Always consumes
  // the caller's reference on `replacement`.
  SwapOutcome SwapIfCurrent(Stripe& stripe, absl::string_view key,
                            uint64_t hash, internal::Item* expected,
                            internal::Item* replacement, int64_t now,
                            uint64_t* cas_out,
                            const int64_t* new_expiry = nullptr);
  void MaybeGrow(Stripe& stripe, size_t bucket_count);
  size_t SweepStripe(Stripe& stripe, int64_t now, size_t max_items,
                     size_t max_visits);
  // Called outside every stripe lock, by Put before it allocates its item
  // (a drain never takes the page of the item being stored) and by the
  // other writers after linking theirs: when the arena's footprint passed
  // its cap, gives back unused pages and drains the emptiest ones (evicting
  // their items) until it is within, boundedly.
  void MaybeReclaim() {
    if (arena_->OverCap()) Reclaim();
  }
  void Reclaim();
  // Unlinks `item` if it is still linked, counting an eviction (or a
  // reclaim if it is dead at `now`; 0: only flushed items count as dead),
  // and drops the reference the caller holds on it. Returns the charged
  // bytes it freed (0 if the item was no longer linked).
  uint64_t EvictForDrain(internal::Item* item, int64_t now);

  // CLOCK eviction, outside every stripe lock. Whether `needed` more
  // charged bytes pass the budget.
  bool OverBudget(uint64_t needed) const {
    return charged_.load(std::memory_order_relaxed) + needed >
           memory_limit_.load(std::memory_order_relaxed);
  }
  // Evicts until `needed` more bytes fit or nothing can be evicted.
  void MakeRoom(uint64_t needed, int64_t now);
  // Evicts one item (or drains one page); false if it found nothing.
  bool EvictOne(int64_t now);
  // One hand's sweep for a victim, with a reference taken: the pages' hand
  // or the mapped items'. Bounded by kMaxClockVisits.
  internal::Item* ClockFind(bool mapped, int64_t now);

  const uint64_t max_item_size_;
  const uint32_t stripe_count_;
  const int stripe_shift_;  // hash >> stripe_shift_ = stripe index.
  const int stripe_bits_;   // log2(stripe_count_), low bits of every CAS.
  std::atomic<uint64_t> memory_limit_;
  // Charged bytes of linked items (see Memory above), store-wide, and of
  // those mapped.
  std::atomic<uint64_t> charged_{0};
  std::atomic<uint64_t> charged_mapped_{0};
  // Charged bytes the pages' and the mapped items' hands evicted (halved
  // now and then): EvictOne keeps their rates equal.
  std::atomic<uint64_t> swept_[2] = {};
  const uint64_t hash_seed_;
  std::unique_ptr<Stripe[]> stripes_;
  // Every stripe's buckets (guarded by the stripe's lock).
  internal::BucketTable table_;
  struct Hand;
  // CLOCK hands: the arena pages', then the mapped items'.
  std::unique_ptr<Hand[]> hands_;
  // Item memory. The store holds one reference (released in ~Store); items
  // still held by ItemRefs keep it alive after that.
  internal::SlabArena* const arena_;
};

}  // namespace memshard::cache
