// Store's CLOCK eviction, page drains (Reclaim) and expiry sweep: the
// memory side of the store (store.h has the policy; store.cc the request
// path).
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "server/cache/item.h"
#include "server/cache/slab_arena.h"
#include "server/cache/spin_lock.h"
#include "server/cache/store.h"
#include "server/cache/store_internal.h"

namespace memshard::cache {

using internal::Item;
using store_internal::IsExpired;
using store_internal::kNoExpiry;

namespace {

// Bounds on the work done per lock hold by the maintenance paths, so that
// request-path operations on the same stripe never wait long behind them.
constexpr size_t kSweepBucketsPerHold = 64;
// Chunks a CLOCK hand visits per class-lock hold (at most one page's).
constexpr size_t kClockChunksPerHold = 64;
// Linked items, and chunks (or mapped slots) of any kind, one ClockFind
// examines at most (see there). Free chunks and items in flight cost a load
// each: a run of them, such as a class's pages emptied by deletes, should
// not end a search early, since a hand that finds nothing makes EvictOne
// drain a whole page.
constexpr size_t kClockItemsPerFind = Store::kMaxClockVisits;
constexpr size_t kClockChunksPerFind = 16 * Store::kMaxClockVisits;
// Pages a Reclaim drains at most (each is SlabArena::kPageSize): enough to
// keep up with a stream of the largest items, bounded per request.
constexpr int kDrainsPerReclaim = 8;
// Unused pages or kept mappings a Reclaim gives back at most (syscalls).
constexpr int kReleasesPerReclaim = 64;

// One bounded CLOCK search's state (Store::ClockFind).
struct ClockSearch {
  explicit ClockSearch(int64_t now) : now(now) {}

  // A CLOCK hand's visit, on a chunk it holds the class lock of (so the
  // chunk is not reallocated meanwhile, and a live count means an item),
  // noting candidates: takes a reference on (returns true for) a linked item
  // that is dead or whose CLOCK count is 0, else takes one off the count. The
  // first item it brings to 0, and the first it brings to 1, are kept in
  // seen[0] and seen[1], with a reference taken in the same atomic, and end the
  // step too (returns true with `noted` set), so that the hand's cursor is then
  // just past them.
  bool Visit(Item* item) {
    ++chunks;
    uint32_t s = item->state.load(std::memory_order_acquire);
    if ((s & Item::kCountMask) == 0 || (s & Item::kLinked) == 0) {
      ++skipped;
      return false;
    }
    const bool dead = IsExpired(item->expiry(), now);
    for (;;) {
      const uint32_t count = (s & Item::kClockMask) >> Item::kClockShift;
      if (dead || count == 0) {
        if (item->state.compare_exchange_weak(s, s + 1,
                                              std::memory_order_acquire,
                                              std::memory_order_acquire)) {
          return true;
        }
      } else {
        const bool keep = count <= 2 && seen[count - 1] == nullptr;
        if (item->state.compare_exchange_weak(s, s - Item::kClockOne + keep,
                                              std::memory_order_acquire,
                                              std::memory_order_acquire)) {
          if (!keep) return false;
          seen[count - 1] = item;
          noted = true;
          return true;
        }
      }
      // Raced (the CAS reloaded s): freed or unlinked meanwhile?
      if ((s & Item::kCountMask) == 0 || (s & Item::kLinked) == 0) {
        return false;
      }
    }
  }

  const int64_t now;
  size_t chunks = 0;   // visited: free, unlinked or linked
  size_t skipped = 0;  // free or unlinked among them
  bool noted = false;  // the last Visit returning true noted a candidate
  // Linked items visited (the rest cost a load each; counted apart so that
  // the common visit, of a linked item, updates one counter).
  size_t items() const { return chunks - skipped; }
  Item* seen[2] = {nullptr, nullptr};
};

}  // namespace

uint64_t Store::EvictForDrain(Item* item, int64_t now) {
  const uint64_t hash = Hash(item->drain_key());
  Stripe& stripe = StripeFor(hash);
  uint64_t charged = 0;
  bool unlinked = false;
  {
    SpinLockHolder holder(&stripe.lock);
    // Not linked: replaced, deleted or evicted meanwhile.
    uint32_t* slot = nullptr;
    if (item->Has(Item::kLinked)) {
      const uint32_t handle = stripe.HandleOf(item);
      slot = stripe.Bucket(hash & stripe.bucket_mask);
      while (*slot != 0 && *slot != handle) slot = &stripe.At(*slot)->hash_next;
    }
    if (slot != nullptr && *slot != 0) {
      // memcached counts slab-move evictions of live items as evictions
      // too, and dead items a hand meets as reclaimed (lru_pull_tail).
      // `now` = 0: only flushes count as dead, the expiry clock is not at
      // hand.
      if (stripe.Dead(item, now)) {
        ++stripe.reclaimed;
        if (!item->fetched()) ++stripe.expired_unfetched;
      } else {
        ++stripe.evictions;
        if (!item->fetched()) ++stripe.evicted_unfetched;
      }
      // The table's reference comes to us (no FreeList): dropped below with
      // the caller's, in one atomic.
      charged = stripe.Unlink(slot, nullptr).charged;
      unlinked = true;
    }
  }
  // Frees it unless an ItemRef still holds it.
  Item::Unref(item, unlinked ? 2 : 1);
  return charged;
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
      EvictForDrain(static_cast<Item*>(chunk), 0);
    }
  }
}

Item* Store::ClockFind(bool mapped, int64_t now) {
  // Bounded work per call. Plain CLOCK may walk every page up to three
  // times (every count from 2 down to 0) before it finds a victim, all
  // under the hand's lock: milliseconds for the writer that meets a full
  // store whose items were all used since the hand went by. So the hand
  // examines at most kMaxClockVisits linked items (memcached's tail pull
  // likewise gives up after 5 items), and 16 times as many chunks. It takes
  // counts down on the way, as plain CLOCK does, and notes the first item it
  // brought to 0: the one plain CLOCK would take on its next pass (unless it is
  // used meanwhile). If the budget runs out before an item already at 0 turns
  // up, that one is the victim, or failing it (every item was used since the
  // hand last passed) the first it brought to 1 (counted in evicted_active);
  // and the hand goes back to just after the victim, so the next calls take its
  // neighbours, which it took down meanwhile. Evictions stay in address
  // order: they free runs of chunks, whole pages any class can reuse,
  // rather than holes scattered over every page, which would push the
  // arena over its cap (page drains). The counts taken down past the victim
  // are work later calls need not do, so the cost per eviction amortizes
  // as in plain CLOCK; an item used since the hand last passed may lose
  // its second pass when it is one of those. In a store of fewer chunks
  // the wraps bound the search as before: a pass may only take every count
  // down by one, a second (a third for items used since) finds one at 0.
  Hand& hand = hands_[mapped ? 1 : 0];
  ClockSearch search(now);
  Item* found = nullptr;
  {
    SpinLockHolder holder(&hand.lock);
    const auto visit = [&search](void* chunk) {
      return search.Visit(static_cast<Item*>(chunk));
    };
    uint64_t after_seen[2] = {0, 0};  // hand.cursor just past seen[i]
    for (int wraps = 0; wraps <= 3 && search.items() < kClockItemsPerFind &&
                        search.chunks < kClockChunksPerFind;) {
      bool wrapped = false;
      const size_t budget =
          std::min({kClockChunksPerHold, kClockItemsPerFind - search.items(),
                    kClockChunksPerFind - search.chunks});
      found = static_cast<Item*>(
          mapped
              ? arena_->MappedClockStep(&hand.cursor, budget, visit, &wrapped)
              : arena_->ClockStep(-1, &hand.cursor, budget, visit, &wrapped));
      if (wrapped) ++wraps;
      if (found == nullptr) continue;
      if (!search.noted) break;
      search.noted = false;
      after_seen[found == search.seen[0] ? 0 : 1] = hand.cursor;
      found = nullptr;
    }
    if (found == nullptr) {
      const int best = search.seen[0] != nullptr ? 0 : 1;
      if (search.seen[best] != nullptr) {
        found = std::exchange(search.seen[best], nullptr);
        hand.cursor = after_seen[best];
        if (best == 1) {
          hand.taken_active.store(
              hand.taken_active.load(std::memory_order_relaxed) + 1,
              std::memory_order_relaxed);
        }
      }
    }
    // Single writer (the lock): no read-modify-write needed.
    hand.visits.store(
        hand.visits.load(std::memory_order_relaxed) + search.chunks,
        std::memory_order_relaxed);
  }
  // Candidates not taken are released outside the hand's lock (the last
  // reference frees).
  if (search.seen[0] != nullptr || search.seen[1] != nullptr) {
    for (Item* candidate : search.seen) {
      if (candidate != nullptr) Item::Unref(candidate);
    }
  }
  return found;
}

bool Store::EvictOne(int64_t now) {
  // Two hands, one order: each sweeps its items at the same rate in bytes
  // (bytes it took / bytes its items are charged), as one hand over all
  // items would, so neither large nor small items are kept while the other
  // kind turns over (a value size shift then frees the old kind's pages).
  // Without mapped items (the common case) the pages' hand is the only
  // choice: skip the rate arithmetic.
  const uint64_t charged_mapped =
      charged_mapped_.load(std::memory_order_relaxed);
  bool use_mapped = false;
  if (charged_mapped != 0) {
    const double mapped = static_cast<double>(charged_mapped);
    const double paged =
        static_cast<double>(charged_.load(std::memory_order_relaxed)) - mapped;
    const double swept_paged =
        static_cast<double>(swept_[0].load(std::memory_order_relaxed));
    const double swept_mapped =
        static_cast<double>(swept_[1].load(std::memory_order_relaxed));
    use_mapped = paged <= 0 || swept_mapped * paged < swept_paged * mapped;
  }
  Item* victim = ClockFind(use_mapped, now);
  if (victim == nullptr) {
    use_mapped = !use_mapped;
    victim = ClockFind(use_mapped, now);
  }
  if (victim != nullptr) {
    // The bytes the unlink freed (0 if the victim was unlinked meanwhile),
    // from the sizes Unlink computes anyway.
    const uint64_t bytes = EvictForDrain(victim, now);
    const uint64_t swept =
        swept_[use_mapped ? 1 : 0].fetch_add(bytes, std::memory_order_relaxed) +
        bytes;
    // Forget history once both hands went round the budget: rates follow
    // the current mix.
    if (swept + swept_[use_mapped ? 0 : 1].load(std::memory_order_relaxed) >
        2 * charged_.load(std::memory_order_relaxed)) {
      for (std::atomic<uint64_t>& each : swept_) {
        each.store(each.load(std::memory_order_relaxed) / 2,
                   std::memory_order_relaxed);
      }
    }
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
    EvictForDrain(static_cast<Item*>(chunk), now);
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

size_t Store::SweepStripe(Stripe& stripe, int64_t now, size_t max_items,
                          size_t max_visits) {
  // Empty buckets cost a little too: at most this many per item visit.
  const size_t max_buckets =
      max_visits > SIZE_MAX / 16 ? SIZE_MAX : max_visits * 16;
  uint64_t generation = 0;
  size_t cursor = 0;
  {
    SpinLockHolder holder(&stripe.lock);
    stripe.FireFlush(now, stripe_bits_);
    if (stripe.sweeping &&
        stripe.sweep_generation == stripe.resize_generation) {
      // A pass under way: go on where the last call stopped.
      cursor = stripe.sweep_cursor;
    } else {
      if (stripe.sweeping) {
        // Buckets moved under the cursor: a new pass, whatever
        // earliest_expiry (partly recomputed) says.
        stripe.earliest_expiry = 0;
      }
      if (!stripe.unswept_flush && stripe.earliest_expiry > now) return 0;
      // Recomputed by this pass; items linked or touched meanwhile lower
      // it through NoteExpiry, so it is a lower bound when the pass ends.
      stripe.earliest_expiry = kNoExpiry;
      stripe.unswept_flush = false;
      stripe.sweeping = true;
      stripe.sweep_generation = stripe.resize_generation;
    }
    generation = stripe.sweep_generation;
  }
  size_t reclaimed = 0;
  size_t visits = 0;
  size_t buckets = 0;
  for (;;) {
    FreeList free(arena_);
    SpinLockHolder holder(&stripe.lock);
    if (stripe.resize_generation != generation) {
      // Buckets moved under the cursor: the next call starts a new pass.
      stripe.sweeping = false;
      stripe.earliest_expiry = 0;
      return reclaimed;
    }
    stripe.FireFlush(now, stripe_bits_);
    const size_t end =
        std::min(cursor + kSweepBucketsPerHold, stripe.bucket_count());
    for (; cursor < end; ++cursor, ++buckets) {
      if (visits >= max_visits || buckets >= max_buckets) {
        stripe.sweep_cursor = cursor;
        return reclaimed;
      }
      uint32_t* slot = stripe.Bucket(cursor);
      while (*slot != 0) {
        if (reclaimed == max_items) {
          // The next call visits this bucket again, from its start.
          stripe.sweep_cursor = cursor;
          return reclaimed;
        }
        Item* item = stripe.At(*slot);
        ++visits;
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
    if (cursor == stripe.bucket_count()) {
      stripe.sweeping = false;  // Pass done: earliest_expiry holds again.
      return reclaimed;
    }
  }
}

size_t Store::SweepExpired(uint32_t first_stripe, uint32_t stripe_count,
                           int64_t now, size_t max_items, size_t max_visits) {
  size_t reclaimed = 0;
  const uint64_t end =
      std::min<uint64_t>(uint64_t{first_stripe} + stripe_count, stripe_count_);
  for (uint64_t i = first_stripe; i < end && reclaimed < max_items; ++i) {
    reclaimed +=
        SweepStripe(stripes_[i], now, max_items - reclaimed, max_visits);
  }
  return reclaimed;
}

}  // namespace memshard::cache
