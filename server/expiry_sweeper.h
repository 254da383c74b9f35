#pragma once

// ExpirySweeper: one worker's share of the store's incremental expiry sweep.
//
// Thread-safety: none; lives on its worker's thread. The store is
// thread-safe.
//
// Worker w of W owns stripes w, w+W, w+2W, ... At each epoch boundary it
// visits one of them and reclaims at most kItemsPerEpoch dead items, so the
// cost per loop iteration stays small and bounded. A one-second timer keeps
// the sweep going on a worker that has no traffic (and so no epochs).

#include <cstddef>
#include <cstdint>

#include "core/event_loop.h"
#include "server/cache/store.h"

namespace memshard {

class ExpirySweeper {
 public:
  static constexpr size_t kItemsPerEpoch = 32;

  ExpirySweeper(EventLoop* loop, cache::Store* store, int worker, int workers);

  // One bounded step; returns the items reclaimed.
  size_t Step();

 private:
  void ArmTick();

  EventLoop* const loop_;
  cache::Store* const store_;
  const uint32_t first_;
  const uint32_t stride_;
  uint32_t next_;
};

}  // namespace memshard
