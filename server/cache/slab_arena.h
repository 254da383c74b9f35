// SlabArena: the store's item memory, in 64 KiB pages carved into size
// classes, with a resident-memory cap enforced by draining whole pages.
//
// Why not malloc: the store's budget bounds live bytes, but when value sizes
// shift (small, then large) the items evicted are scattered over the
// heap, so every page keeps a few survivors and stays resident while the
// large items grow the heap beside them (tools/soak: 140 MiB at a 64 MiB
// limit). Here memory is counted in pages the arena owns, and when that
// footprint passes the cap the store evicts every item on the emptiest page
// (memcached's slab page reassignment, done inline), which returns the page
// for any class to reuse, or to the kernel.
//
// Layout: one reserved range of address space, 64 KiB aligned, advised to
// use transparent huge pages (a region with a page given back to the kernel
// stops using them). A page's first
// 16 bytes point back to the arena, so a chunk is freed from its address
// alone; its bookkeeping lives in a side array. Allocations larger than
// kMaxChunk (or made when the range is used up) are mapped one by one. A
// freed mapping of up to kMaxCachedMapping is kept for reuse by a request
// of its size (or up to 1/8 smaller), so a stream of large values does not
// pay mmap, munmap and page faults per item; kept mappings count in the
// footprint and are unmapped first when it passes the cap.
//
// Thread-safety: Allocate, Free and the reclaim calls may run concurrently
// from any thread. Each class has its own lock; the page pool has one;
// locks are taken class then pool, never the other way. madvise and munmap
// run outside every lock. The arena frees itself when its owner has called
// Release() and the last chunk or mapping is gone, so chunks may outlive the
// owner (items held by ItemRefs after the Store is destroyed).
//
// Draining contract: a chunk carved from a page for the first time has its
// first kZeroedPrefix bytes zeroed under the class lock, and a freed chunk
// keeps them except the first 8 (the free-list link). The owner's BeginDrain
// callback may read bytes 8 to kZeroedPrefix of every carved chunk of the
// page (under the class lock) to tell a live object from a dead one; so may
// the ForEachChunk and ForEachMapped callbacks (the owner's CLOCK hands).
//
// Handles: every allocation has a 32-bit handle (HandleOf / Resolve), so the
// owner's links cost 4 bytes instead of 8. Chunks are 4-byte aligned and the
// page range is at most kMaxPageRange: a chunk's handle is its offset from
// the range's base / 4 (never 0: offset 0 is a page header). A mapping's
// handle is kMappedHandleBase + its slot in a side table, reserved up front
// (address space only) and taken or given back under the mapping lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "server/cache/spin_lock.h"

namespace memshard::cache::internal {

namespace slab_internal {

constexpr size_t kPageSize = size_t{64} << 10;
constexpr size_t kPageHeader = 16;
constexpr size_t kUsable = kPageSize - kPageHeader;
constexpr size_t kMaxChunk = (kUsable / 4) & ~size_t{15};
constexpr size_t kMinChunk = 48;
constexpr int kMaxClasses = 128;

// Chunk sizes: 4-byte steps to 256 B (small items are the common case and
// the most numerous; issue #10's S6 item, 162 bytes, takes 164), then about
// 8% apart. Each size is then widened to
// split the page evenly, so no class wastes a page's tail. Computed at
// compile time, so the request path's lookup is two loads.
struct ClassTable {
  uint32_t sizes[kMaxClasses] = {};
  int count = 0;
  // Class for a request of n bytes: by_quarter[(n + 3) / 4].
  uint8_t by_quarter[kMaxChunk / 4 + 1] = {};
};

constexpr ClassTable MakeClassTable() {
  ClassTable table;
  size_t s = kMinChunk;
  for (;;) {
    const size_t per_page = kUsable / s;
    const size_t widened = (kUsable / per_page) & ~size_t{3};
    if (table.count == 0 || widened > table.sizes[table.count - 1]) {
      table.sizes[table.count++] = static_cast<uint32_t>(widened);
    }
    if (s >= kMaxChunk) break;
    s = s < 256 ? s + 4 : ((s * 108 / 100 + 7) & ~size_t{7});
    if (s > kMaxChunk) s = kMaxChunk;
  }
  int c = 0;
  for (size_t e = 0; e <= kMaxChunk / 4; ++e) {
    while (table.sizes[c] < e * 4) ++c;
    table.by_quarter[e] = static_cast<uint8_t>(c);
  }
  return table;
}

inline constexpr ClassTable kClassTable = MakeClassTable();
static_assert(kClassTable.count < kMaxClasses, "raise kMaxClasses");
static_assert(kClassTable.count < 256, "classes are indexed by uint8_t");
static_assert(kClassTable.sizes[kClassTable.count - 1] >= kMaxChunk,
              "the largest class must serve kMaxChunk");

}  // namespace slab_internal

class SlabArena {
 public:
  static constexpr size_t kPageSize = slab_internal::kPageSize;
  // The back pointer to the arena at the start of every page.
  static constexpr size_t kPageHeader = slab_internal::kPageHeader;
  // Largest chunk: four per page. Bigger allocations are mapped.
  static constexpr size_t kMaxChunk = slab_internal::kMaxChunk;
  // Also the smallest chunk.
  static constexpr size_t kZeroedPrefix = slab_internal::kMinChunk;
  // Handles at or above this name mappings (slots of the side table).
  static constexpr uint32_t kMappedHandleBase = 0xff000000u;
  static constexpr uint32_t kMaxMappedHandles =
      ~uint32_t{0} - kMappedHandleBase;
  // Largest page range chunk handles can address (offset / 4 below
  // kMappedHandleBase), less a page for the base's alignment.
  static constexpr uint64_t kMaxPageRange =
      uint64_t{kMappedHandleBase} * 4 - slab_internal::kPageSize;

  // `cap`: footprint above which OverCap() is true. `reserve`: address space
  // for pages (rounded up to pages, at most kMaxPageRange).
  SlabArena(uint64_t cap, uint64_t reserve);
  SlabArena(const SlabArena&) = delete;
  SlabArena& operator=(const SlabArena&) = delete;

  // The owner's reference: the arena is deleted once this was called and
  // nothing allocated from it remains.
  void Release();

  // Memory for `size` bytes, 4-byte aligned (mappings: 16); *mapped tells
  // whether it was
  // mapped on its own (pass it back to Free). Never fails (CHECKs mmap).
  void* Allocate(size_t size, bool* mapped);
  // Frees what Allocate returned. Any thread, no lock held needed.
  static void Free(void* memory, bool mapped);

  // The 32-bit handle of what Allocate returned (never 0), and back. Resolve
  // is valid while the allocation is live.
  uint32_t HandleOf(const void* memory, bool mapped) const {
    if (mapped) return (static_cast<const MappedHeader*>(memory) - 1)->handle;
    return static_cast<uint32_t>((static_cast<const char*>(memory) - base_) >>
                                 2);
  }
  void* Resolve(uint32_t handle) const {
    if (handle < kMappedHandleBase) return base_ + (uint64_t{handle} << 2);
    return reinterpret_cast<MappedHeader*>(
               mapped_table_[handle - kMappedHandleBase]) +
           1;
  }
  // A 64-bit word the owner may use in a mapping's header (the item keeps
  // its full value length there).
  static uint64_t* MappedWord(void* memory) {
    return &(static_cast<MappedHeader*>(memory) - 1)->user;
  }
  static uint64_t MappedWord(const void* memory) {
    return (static_cast<const MappedHeader*>(memory) - 1)->user;
  }

  // CLOCK support. A hand over class `cls`'s chunks (every class's if
  // `cls` < 0) in address order: calls visit(chunk) under the class lock
  // for each carved chunk from *cursor (a chunk index in the page range,
  // kept by the caller) on, at most `budget` chunks and never past one page,
  // and returns the chunk for which visit returns true, or null. *cursor
  // moves past the chunks visited; *wrapped is set when it went round to the
  // range's start.
  void* ClockStep(int cls, uint64_t* cursor, size_t budget,
                  absl::FunctionRef<bool(void*)> visit, bool* wrapped);
  // The same over live mappings, in slot order (under the mapping lock).
  void* MappedClockStep(uint64_t* cursor, size_t budget,
                        absl::FunctionRef<bool(void*)> visit, bool* wrapped);

  // Resident bytes: pages in use or kept for reuse, plus mappings.
  uint64_t footprint() const {
    return resident_pages_.load(std::memory_order_relaxed) * kPageSize +
           mapped_bytes_.load(std::memory_order_relaxed);
  }
  uint64_t cap() const { return cap_.load(std::memory_order_relaxed); }
  void set_cap(uint64_t cap) { cap_.store(cap, std::memory_order_relaxed); }
  bool OverCap() const { return footprint() > cap(); }
  // Pages BeginDrain has taken out of use (memcached's slabs_moved).
  uint64_t drained_pages() const {
    return drained_pages_.load(std::memory_order_relaxed);
  }

  // One size class's share of the pages, for `stats slabs` and `stats
  // items`. A page belongs to a class from its first chunk until its last
  // is freed.
  struct ClassUsage {
    uint32_t chunk_size = 0;
    uint32_t chunks_per_page = 0;
    uint64_t pages = 0;   // assigned to the class now (draining ones too)
    uint64_t carved = 0;  // chunks of those pages ever handed out
    uint64_t live = 0;    // chunks allocated now
  };
  // Every class's usage, indexed by class (smallest chunks first). Each
  // page is read under its class's lock, one page at a time: exact per
  // page, not a snapshot of the whole arena.
  std::vector<ClassUsage> Usage() const;

  // Returns one unused resident page to the kernel; false if there is none.
  bool ReleaseFreePage();
  // Unmaps one kept mapping (the largest); false if there is none.
  bool ReleaseCachedMapping();
  // Picks the page with the fewest live bytes among a window of pages,
  // stops allocating from it, and calls try_ref on each of its carved chunks
  // under the class lock, collecting those for which it returns true (the
  // caller then evicts them; the page returns to the pool when its last
  // chunk is freed). False if no page qualifies.
  bool BeginDrain(absl::FunctionRef<bool(void*)> try_ref,
                  std::vector<void*>* chunks);

  // The chunk size serving `size` bytes; 0 if such requests are mapped.
  static size_t ChunkSizeFor(size_t size) {
    if (size > kMaxChunk) return 0;
    return slab_internal::kClassTable
        .sizes[slab_internal::kClassTable.by_quarter[(size + 3) / 4]];
  }
  // Bytes `memory` (from Allocate(size, &mapped)) really occupies: its chunk,
  // or its whole mapping.
  static size_t OccupiedSize(const void* memory, size_t size, bool mapped) {
    if (mapped) return (static_cast<const MappedHeader*>(memory) - 1)->length;
    return ChunkSizeFor(size);
  }
  // Most chunks a page holds (BeginDrain's output never exceeds it).
  static constexpr size_t kMaxChunksPerPage =
      (kPageSize - kPageHeader) / kZeroedPrefix;

 private:
  static constexpr uint32_t kNone = ~uint32_t{0};
  static constexpr uint16_t kNoClass = 0xffff;

  struct PageInfo {
    char* free = nullptr;   // freed chunks (link in their first 8 bytes)
    uint32_t prev = kNone;  // partial list of the class
    uint32_t next = kNone;
    uint32_t carved = 0;  // chunks handed out from the page's start so far
    std::atomic<uint32_t> live{0};
    std::atomic<uint16_t> cls{kNoClass};
    std::atomic<bool> draining{false};
    bool partial = false;  // on its class's partial list
  };
  struct alignas(64) Class {
    SpinLock lock;
    uint32_t size = 0;
    uint32_t per_page = 0;
    uint32_t partial_head = kNone;  // pages with room
  };
  struct MappedHeader {
    SlabArena* arena;
    size_t length;
    MappedHeader* next;  // in mapped_cache_
    uint32_t handle;     // kMappedHandleBase + slot; 0 while kept
    uint32_t unused;
    uint64_t user;     // MappedWord()
    uint64_t unused2;  // keeps the item 16-byte aligned
  };
  static constexpr size_t kMappedAlign = 4096;
  static constexpr size_t kMaxCachedMapping = (size_t{1} << 20) + kMappedAlign;
  static constexpr size_t kMappedBuckets = kMaxCachedMapping / kMappedAlign + 1;

  ~SlabArena();
  void Unref();
  char* PageBase(uint32_t page) const { return base_ + page * kPageSize; }
  uint32_t PageOf(const void* p) const {
    return static_cast<uint32_t>((static_cast<const char*>(p) - base_) /
                                 kPageSize);
  }
  void* AllocateMapped(size_t size, bool* mapped);
  void FreeChunk(void* memory);
  void FreeMapped(MappedHeader* header);
  uint32_t AcquirePage();          // pool lock; kNone if exhausted
  void ReturnPage(uint32_t page);  // pool lock
  void PartialPush(Class& c, uint32_t page);
  void PartialRemove(Class& c, uint32_t page);

  char* base_ = nullptr;
  size_t reserved_bytes_ = 0;  // of the mapping at base_ (with alignment)
  char* mapping_ = nullptr;
  uint32_t page_count_ = 0;
  std::unique_ptr<PageInfo[]> pages_;
  std::unique_ptr<Class[]> classes_;
  int class_count_ = 0;

  SpinLock pool_lock_;
  std::vector<uint32_t> resident_free_;    // pool_lock_; reserved up front
  std::vector<uint32_t> cold_free_;        // pool_lock_; madvised
  uint32_t next_unused_ = 0;               // pool_lock_
  std::atomic<uint32_t> carved_pages_{0};  // next_unused_, for BeginDrain
  std::atomic<uint32_t> drain_cursor_{0};
  std::atomic<uint64_t> drained_pages_{0};

  SpinLock mapped_lock_;
  // Kept mappings by length / kMappedAlign; mapped_lock_.
  MappedHeader* mapped_cache_[kMappedBuckets] = {};
  size_t mapped_cached_count_ = 0;  // mapped_lock_
  // Side table of live mappings by slot (address space reserved up front):
  // a MappedHeader*, or (next free slot << 1 | 1). Written under
  // mapped_lock_; Resolve reads a live mapping's slot without it (the owner
  // orders that read after the write, e.g. by its own lock).
  uintptr_t* mapped_table_ = nullptr;
  uint32_t mapped_slots_used_ = 0;  // mapped_lock_
  uint32_t mapped_free_slot_ = 0;   // mapped_lock_; 1 + slot, 0 = none

  std::atomic<uint64_t> cap_;
  std::atomic<uint64_t> resident_pages_{0};
  std::atomic<uint64_t> mapped_bytes_{0};  // live and kept mappings
  // 1 for the owner + pages assigned to classes + live mappings.
  std::atomic<uint64_t> refs_{1};
};

}  // namespace memshard::cache::internal
