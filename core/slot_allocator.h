#pragma once

// SlotAllocator: fixed-size, cache-line-aligned slots for small objects a
// thread creates and destroys at a high rate (connections).
//
// Why not malloc: an object that is cold at every use (a connection whose
// client sends now and then) costs a cache miss per line it touches, so its
// hot fields must start a line; malloc aligns to 16 bytes, and aligned new
// goes through memalign, which costs hundreds of instructions per call and
// fragments the heap. Slots are carved from 64 KiB blocks and recycled
// through a free list per thread: a pop or a push, no header, no lock.
//
// Thread-safety: Allocate and Free may be called from any thread. Each
// thread has its own free list; a slot freed on another thread than the
// one that allocated it joins the freeing thread's list (still correct, it
// only moves the memory). Blocks are never returned to the system, like
// memcached's connection structures: they stay bounded by the most slots
// ever in use at once, and stay reachable (leak checkers see them).

#include <cstddef>

namespace memshard {

class SlotAllocator {
 public:
  static constexpr size_t kSlotSize = 128;
  static constexpr size_t kAlignment = 64;
  static constexpr size_t kBlockSize = 64 * 1024;

  // A kSlotSize-byte slot aligned to kAlignment. Never null (aborts when
  // out of memory, as operator new would throw).
  static void* Allocate();
  // Takes back a slot from Allocate (null is a no-op).
  static void Free(void* slot);
};

}  // namespace memshard
