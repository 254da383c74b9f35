#pragma once

// ExpirySweeper: one worker's share of the store's incremental expiry sweep.
//
// Thread-safety: none; lives on its worker's thread. The store is
// thread-safe.
//
// Worker w of W owns stripes w, w+W, w+2W, ... At an epoch boundary, if
// kMinStepInterval has passed since its last step, it visits one of them,
// reclaiming at most kItemsPerEpoch dead items and looking at at most
// kVisitsPerStep items, so the cost per loop iteration stays small and
// bounded whatever the stripe's size (a stripe's pass goes on at its next
// visit). Without the visit bound, a stripe of 2,000 items where a few had
// expired was scanned whole, every step: with 1M items whose TTLs run from
// 3 s to 50 min beside S4's 1M, S4's server CPU per request went from 14.5
// to 30-32 us and its p99 from 81 us to 633 us; with the bound, 17-21 us
// and 78-83 us. A full pass then takes (items / 64) ms per worker.
//
// The interval matters when iterations are short: a worker serving many
// mostly idle connections runs one iteration per request, and a step per
// iteration cost ~100 instructions per request (callgrind, S4) for a sweep
// no faster than expiry needs. A one-second timer keeps the sweep going on
// a worker that has no traffic (and so no epochs), slowly: with no traffic
// nothing needs the memory back soon.

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "core/event_loop.h"
#include "server/cache/store.h"

namespace memshard {

class ExpirySweeper {
 public:
  static constexpr size_t kItemsPerEpoch = 32;
  // About 15 us of cache misses a step (one per item).
  static constexpr size_t kVisitsPerStep = 64;
  // At most one step per this much loop time (up to 1000 stripes a second).
  static constexpr absl::Duration kMinStepInterval = absl::Milliseconds(1);

  ExpirySweeper(EventLoop* loop, cache::Store* store, int worker, int workers);

  // One bounded step, whenever called; returns the items reclaimed.
  size_t Step();

 private:
  // The epoch hook: Step() unless one ran less than kMinStepInterval ago.
  void OnEpoch();
  void ArmTick();

  EventLoop* const loop_;
  cache::Store* const store_;
  const uint32_t first_;
  const uint32_t stride_;
  uint32_t next_;
  // Loop time before which OnEpoch() does not step.
  absl::Time next_step_ = absl::InfinitePast();
};

}  // namespace memshard
