// Store's meta-protocol commands (mg, me, md with I or C): lookups that
// report and change an item's meta state under its stripe lock.
#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"
#include "server/cache/item.h"
#include "server/cache/spin_lock.h"
#include "server/cache/store.h"
#include "server/cache/store_internal.h"

namespace memshard::cache {

using internal::Item;
using store_internal::Accounted;
using store_internal::ClampExpiry;
using store_internal::IsExpired;
using store_internal::SizesOf;

DeleteResult Store::DeleteIf(absl::string_view key, bool check_cas,
                             uint64_t cas_in, int64_t now) {
  return FindLive(
      key, now, DeleteResult::kNotFound,
      [check_cas, cas_in](Stripe& stripe, uint32_t* slot, FreeList* free) {
        if (check_cas && stripe.At(*slot)->cas() != cas_in) {
          return DeleteResult::kExists;
        }
        stripe.Unlink(slot, free);
        return DeleteResult::kDeleted;
      });
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
      grow_from = stripe.GrowthNeeded(table_.max_buckets_per_stripe());
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
  return FindLive(key, now, ItemRef(),
                  [meta](Stripe& stripe, uint32_t* slot, FreeList*) {
                    Item* item = stripe.At(*slot);
                    meta->expiry_before = item->expiry();
                    meta->fetched = item->fetched();
                    meta->last_access = item->last_access;
                    meta->stale = item->Has(Item::kStale);
                    meta->token_sent = item->Has(Item::kTokenSent);
                    item->Ref();
                    return ItemRef(item);
                  });
}

}  // namespace memshard::cache
