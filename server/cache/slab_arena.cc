#include "server/cache/slab_arena.h"

#include <sanitizer/asan_interface.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "glog/logging.h"

namespace memshard::cache::internal {
namespace {

// Pages examined per BeginDrain for the one with the fewest live bytes.
constexpr uint32_t kDrainWindow = 64;

// x86-64's transparent huge page (PMD) size.
constexpr uintptr_t kHugePageSize = uintptr_t{2} << 20;

}  // namespace

SlabArena::SlabArena(uint64_t cap, uint64_t reserve) : cap_(cap) {
  const slab_internal::ClassTable& table = slab_internal::kClassTable;
  class_count_ = table.count;
  classes_ = std::make_unique<Class[]>(class_count_);
  for (int i = 0; i < class_count_; ++i) {
    classes_[i].size = table.sizes[i];
    classes_[i].per_page =
        static_cast<uint32_t>((kPageSize - kPageHeader) / table.sizes[i]);
  }
  const uint64_t pages = std::max<uint64_t>(
      std::min<uint64_t>(reserve, kMaxPageRange) / kPageSize, 1);
  // Address space only: a slot is touched when a mapping first takes it.
  void* handle_table =
      mmap(nullptr, size_t{kMaxMappedHandles} * sizeof(uintptr_t),
           PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
           -1, 0);
  CHECK(handle_table != MAP_FAILED) << "cannot reserve the mapping handles";
  mapped_table_ = static_cast<uintptr_t*>(handle_table);
  page_count_ = static_cast<uint32_t>(std::min<uint64_t>(pages, kNone - 1));
  // The reservation costs address space only: pages are touched when first
  // carved, and given back with madvise.
  reserved_bytes_ = size_t{page_count_} * kPageSize + kPageSize;
  void* mapping = mmap(nullptr, reserved_bytes_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping == MAP_FAILED) {
    LOG(WARNING) << "cannot reserve " << reserved_bytes_
                 << " bytes for the cache's pages; mapping items one by one";
    page_count_ = 0;
    return;
  }
  mapping_ = static_cast<char*>(mapping);
  // Transparent huge pages where the kernel allows them (its `madvise`
  // mode, Debian's default, gives them only to ranges that ask): a lookup
  // touches a bucket and an item scattered over the whole cache, and with
  // 4 KiB pages each costs a TLB miss and a page walk too. Issue #10's S1
  // (1M items, depth 1), 4 alternating windows each: 6.97 us of server CPU
  // per request with them, 7.45 without (PR_SET_THP_DISABLE).
  // Pages are carved in address order, so at most the 2 MiB region at the
  // end of the carved range is resident beyond the footprint.
  madvise(mapping_, reserved_bytes_, MADV_HUGEPAGE);
  const uintptr_t aligned =
      (reinterpret_cast<uintptr_t>(mapping_) + kPageSize - 1) &
      ~(uintptr_t{kPageSize} - 1);
  base_ = reinterpret_cast<char*>(aligned);
  pages_ = std::make_unique<PageInfo[]>(page_count_);
  resident_free_.reserve(page_count_);
  cold_free_.reserve(page_count_);
}

SlabArena::~SlabArena() {
  while (ReleaseCachedMapping()) {
  }
  if (mapping_ != nullptr) {
    ASAN_UNPOISON_MEMORY_REGION(base_, size_t{next_unused_} * kPageSize);
    munmap(mapping_, reserved_bytes_);
  }
  munmap(mapped_table_, size_t{kMaxMappedHandles} * sizeof(uintptr_t));
}

void SlabArena::Release() { Unref(); }

void SlabArena::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void SlabArena::PartialPush(Class& c, uint32_t page) {
  PageInfo& info = pages_[page];
  info.prev = kNone;
  info.next = c.partial_head;
  if (c.partial_head != kNone) pages_[c.partial_head].prev = page;
  c.partial_head = page;
  info.partial = true;
}

void SlabArena::PartialRemove(Class& c, uint32_t page) {
  PageInfo& info = pages_[page];
  if (info.prev != kNone) {
    pages_[info.prev].next = info.next;
  } else {
    c.partial_head = info.next;
  }
  if (info.next != kNone) pages_[info.next].prev = info.prev;
  info.prev = info.next = kNone;
  info.partial = false;
}

void* SlabArena::AllocateMapped(size_t size, bool* mapped) {
  const size_t length =
      (size + sizeof(MappedHeader) + kMappedAlign - 1) & ~(kMappedAlign - 1);
  MappedHeader* header = nullptr;
  if (length <= kMaxCachedMapping) {
    const size_t first = length / kMappedAlign;
    const size_t last =
        std::min(first + first / 8, kMappedBuckets - 1);  // <= 1/8 waste
    SpinLockHolder holder(&mapped_lock_);
    for (size_t b = first; b <= last && mapped_cached_count_ > 0; ++b) {
      if (mapped_cache_[b] != nullptr) {
        header = mapped_cache_[b];
        mapped_cache_[b] = header->next;
        --mapped_cached_count_;
        break;
      }
    }
  }
  if (header == nullptr) {
    void* memory = mmap(nullptr, length, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(memory != MAP_FAILED) << "mmap of " << length << " bytes failed";
    header = static_cast<MappedHeader*>(memory);
    header->arena = this;
    header->length = length;
    mapped_bytes_.fetch_add(length, std::memory_order_relaxed);
  }
  ASAN_UNPOISON_MEMORY_REGION(header + 1, length - sizeof(MappedHeader));
  header->next = nullptr;
  header->user = 0;
  {
    SpinLockHolder holder(&mapped_lock_);
    uint32_t slot;
    if (mapped_free_slot_ != 0) {
      slot = mapped_free_slot_ - 1;
      mapped_free_slot_ = static_cast<uint32_t>(mapped_table_[slot] >> 1);
    } else {
      CHECK_LT(mapped_slots_used_, kMaxMappedHandles)
          << "too many large items at once";
      slot = mapped_slots_used_++;
    }
    mapped_table_[slot] = reinterpret_cast<uintptr_t>(header);
    header->handle = kMappedHandleBase + slot;
  }
  refs_.fetch_add(1, std::memory_order_relaxed);
  *mapped = true;
  return header + 1;
}

void SlabArena::FreeMapped(MappedHeader* header) {
  const size_t length = header->length;
  {
    // Out of the table first: a CLOCK hand must not find it any more.
    SpinLockHolder holder(&mapped_lock_);
    const uint32_t slot = header->handle - kMappedHandleBase;
    mapped_table_[slot] = (uintptr_t{mapped_free_slot_} << 1) | 1;
    mapped_free_slot_ = slot + 1;
    header->handle = 0;
  }
  if (length <= kMaxCachedMapping) {
    SpinLockHolder holder(&mapped_lock_);
    header->next = mapped_cache_[length / kMappedAlign];
    mapped_cache_[length / kMappedAlign] = header;
    ASAN_POISON_MEMORY_REGION(header + 1, length - sizeof(MappedHeader));
    ++mapped_cached_count_;
  } else {
    munmap(header, length);
    mapped_bytes_.fetch_sub(length, std::memory_order_relaxed);
  }
  Unref();  // The last touch of the arena: it may delete it.
}

bool SlabArena::ReleaseCachedMapping() {
  MappedHeader* header = nullptr;
  {
    SpinLockHolder holder(&mapped_lock_);
    for (size_t b = kMappedBuckets; b-- > 0 && mapped_cached_count_ > 0;) {
      if (mapped_cache_[b] != nullptr) {
        header = mapped_cache_[b];
        mapped_cache_[b] = header->next;
        --mapped_cached_count_;
        break;
      }
    }
  }
  if (header == nullptr) return false;
  const size_t length = header->length;
  // ASan keeps the poison of unmapped memory; a later mapping may land here.
  ASAN_UNPOISON_MEMORY_REGION(header + 1, length - sizeof(MappedHeader));
  munmap(header, length);
  mapped_bytes_.fetch_sub(length, std::memory_order_relaxed);
  return true;
}

void* SlabArena::Allocate(size_t size, bool* mapped) {
  static_assert(sizeof(MappedHeader) % 16 == 0,
                "keeps mapped items 16-aligned");
  static_assert(kZeroedPrefix % 4 == 0,
                "chunks are 4-byte aligned for handles");
  if (size > kMaxChunk || base_ == nullptr) {
    return AllocateMapped(size, mapped);
  }
  *mapped = false;
  const uint8_t index = slab_internal::kClassTable.by_quarter[(size + 3) / 4];
  Class& c = classes_[index];
  uint32_t page = kNone;
  for (;;) {
    {
      SpinLockHolder holder(&c.lock);
      if (page != kNone) {
        PageInfo& info = pages_[page];
        info.free = nullptr;
        info.carved = 0;
        info.live.store(0, std::memory_order_relaxed);
        info.draining.store(false, std::memory_order_relaxed);
        info.cls.store(index, std::memory_order_relaxed);
        PartialPush(c, page);
        // Chunks of the page's previous class may have left poison anywhere.
        ASAN_UNPOISON_MEMORY_REGION(PageBase(page) + kPageHeader,
                                    kPageSize - kPageHeader);
      }
      if (c.partial_head != kNone) {
        const uint32_t from = c.partial_head;
        PageInfo& info = pages_[from];
        char* chunk;
        if (info.free != nullptr) {
          chunk = info.free;
          std::memcpy(&info.free, chunk, sizeof(char*));
        } else {
          chunk = PageBase(from) + kPageHeader + size_t{info.carved} * c.size;
          ++info.carved;
          std::memset(chunk, 0, kZeroedPrefix);
        }
        // Under ASan a free chunk's bytes past the prefix are poisoned, so
        // a use after free of an item's key or value is still reported.
        ASAN_UNPOISON_MEMORY_REGION(chunk + kZeroedPrefix,
                                    c.size - kZeroedPrefix);
        const uint32_t live = info.live.load(std::memory_order_relaxed) + 1;
        info.live.store(live, std::memory_order_relaxed);
        if (info.free == nullptr && info.carved == c.per_page) {
          PartialRemove(c, from);
        }
        return chunk;
      }
    }
    // No room in the class: take a page from the pool, outside the class
    // lock (its first write may fault it in).
    page = AcquirePage();
    if (page == kNone) return AllocateMapped(size, mapped);
    SlabArena* self = this;
    std::memcpy(PageBase(page), &self, sizeof(self));
    refs_.fetch_add(1, std::memory_order_relaxed);
  }
}

void SlabArena::Free(void* memory, bool mapped) {
  if (mapped) {
    auto* header = static_cast<MappedHeader*>(memory) - 1;
    header->arena->FreeMapped(header);
    return;
  }
  const auto page_base =
      reinterpret_cast<uintptr_t>(memory) & ~(uintptr_t{kPageSize} - 1);
  SlabArena* arena;
  std::memcpy(&arena, reinterpret_cast<void*>(page_base), sizeof(arena));
  arena->FreeChunk(memory);
}

void SlabArena::FreeChunk(void* memory) {
  const uint32_t page = PageOf(memory);
  PageInfo& info = pages_[page];
  // The page keeps its class while this chunk is live.
  Class& c = classes_[info.cls.load(std::memory_order_relaxed)];
  bool empty = false;
  {
    SpinLockHolder holder(&c.lock);
    std::memcpy(memory, &info.free, sizeof(char*));
    info.free = static_cast<char*>(memory);
    ASAN_POISON_MEMORY_REGION(static_cast<char*>(memory) + kZeroedPrefix,
                              c.size - kZeroedPrefix);
    const uint32_t live = info.live.load(std::memory_order_relaxed) - 1;
    info.live.store(live, std::memory_order_relaxed);
    if (live == 0) {
      if (info.partial) PartialRemove(c, page);
      info.cls.store(kNoClass, std::memory_order_relaxed);
      info.draining.store(false, std::memory_order_relaxed);
      empty = true;
    } else if (!info.partial &&
               !info.draining.load(std::memory_order_relaxed)) {
      PartialPush(c, page);
    }
  }
  if (empty) {
    ReturnPage(page);
    Unref();  // The last touch of the arena: it may delete it.
  }
}

uint32_t SlabArena::AcquirePage() {
  SpinLockHolder holder(&pool_lock_);
  if (!resident_free_.empty()) {
    const uint32_t page = resident_free_.back();
    resident_free_.pop_back();
    return page;
  }
  uint32_t page = kNone;
  if (!cold_free_.empty()) {
    page = cold_free_.back();
    cold_free_.pop_back();
  } else if (next_unused_ < page_count_) {
    page = next_unused_++;
    carved_pages_.store(next_unused_, std::memory_order_relaxed);
  } else {
    return kNone;
  }
  resident_pages_.fetch_add(1, std::memory_order_relaxed);
  return page;
}

void SlabArena::ReturnPage(uint32_t page) {
  SpinLockHolder holder(&pool_lock_);
  resident_free_.push_back(page);  // Capacity reserved: never allocates.
}

bool SlabArena::ReleaseFreePage() {
  uint32_t page;
  {
    SpinLockHolder holder(&pool_lock_);
    if (resident_free_.empty()) return false;
    page = resident_free_.back();
    resident_free_.pop_back();
  }
  // khugepaged would fill the hole again with a whole huge page: the
  // page's region takes no huge pages from now on.
  const uintptr_t region =
      reinterpret_cast<uintptr_t>(PageBase(page)) & ~(kHugePageSize - 1);
  const uintptr_t start =
      std::max(region, reinterpret_cast<uintptr_t>(mapping_));
  const uintptr_t end =
      std::min(region + kHugePageSize,
               reinterpret_cast<uintptr_t>(mapping_) + reserved_bytes_);
  madvise(reinterpret_cast<void*>(start), end - start, MADV_NOHUGEPAGE);
  madvise(PageBase(page), kPageSize, MADV_DONTNEED);
  SpinLockHolder holder(&pool_lock_);
  cold_free_.push_back(page);
  resident_pages_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

std::vector<SlabArena::ClassUsage> SlabArena::Usage() const {
  std::vector<ClassUsage> usage(static_cast<size_t>(class_count_));
  for (int i = 0; i < class_count_; ++i) {
    usage[i].chunk_size = classes_[i].size;
    usage[i].chunks_per_page = classes_[i].per_page;
  }
  const uint32_t pages = carved_pages_.load(std::memory_order_relaxed);
  for (uint32_t page = 0; page < pages; ++page) {
    const PageInfo& info = pages_[page];
    const uint16_t cls = info.cls.load(std::memory_order_relaxed);
    if (cls == kNoClass) continue;
    SpinLockHolder holder(&classes_[cls].lock);
    // It may have emptied (or emptied and changed class) since.
    if (info.cls.load(std::memory_order_relaxed) != cls) continue;
    ClassUsage& u = usage[cls];
    ++u.pages;
    u.carved += info.carved;
    u.live += info.live.load(std::memory_order_relaxed);
  }
  return usage;
}

bool SlabArena::BeginDrain(absl::FunctionRef<bool(void*)> try_ref,
                           std::vector<void*>* chunks) {
  const uint32_t pages = carved_pages_.load(std::memory_order_relaxed);
  if (pages == 0) return false;
  const uint32_t start =
      drain_cursor_.fetch_add(kDrainWindow, std::memory_order_relaxed) % pages;
  uint32_t best = kNone;
  uint16_t best_class = kNoClass;
  uint64_t best_bytes = ~uint64_t{0};
  for (uint32_t i = 0; i < std::min(kDrainWindow, pages); ++i) {
    const uint32_t page = (start + i) % pages;
    const PageInfo& info = pages_[page];
    const uint16_t cls = info.cls.load(std::memory_order_relaxed);
    if (cls == kNoClass || info.draining.load(std::memory_order_relaxed)) {
      continue;
    }
    const uint64_t bytes = uint64_t{info.live.load(std::memory_order_relaxed)} *
                           classes_[cls].size;
    if (bytes < best_bytes) {
      best = page;
      best_class = cls;
      best_bytes = bytes;
    }
  }
  if (best == kNone) return false;
  Class& c = classes_[best_class];
  SpinLockHolder holder(&c.lock);
  PageInfo& info = pages_[best];
  // It may have emptied or changed class since the unlocked look.
  if (info.cls.load(std::memory_order_relaxed) != best_class ||
      info.draining.load(std::memory_order_relaxed)) {
    return true;
  }
  info.draining.store(true, std::memory_order_relaxed);
  drained_pages_.fetch_add(1, std::memory_order_relaxed);
  if (info.partial) PartialRemove(c, best);
  char* chunk = PageBase(best) + kPageHeader;
  for (uint32_t k = 0; k < info.carved; ++k, chunk += c.size) {
    if (try_ref(chunk)) chunks->push_back(chunk);
  }
  return true;
}

void* SlabArena::ClockStep(int cls, uint64_t* cursor, size_t budget,
                           absl::FunctionRef<bool(void*)> visit,
                           bool* wrapped) {
  *wrapped = false;
  const uint32_t pages = carved_pages_.load(std::memory_order_relaxed);
  if (pages == 0) {
    *wrapped = true;
    return nullptr;
  }
  uint32_t page = static_cast<uint32_t>(*cursor >> 32);
  uint32_t k = static_cast<uint32_t>(*cursor);
  // The next page of the class, unlocked (re-checked under the lock).
  bool found_page = false;
  for (uint32_t scanned = 0; scanned <= pages; ++scanned, ++page, k = 0) {
    if (page >= pages) {
      page = 0;
      k = 0;
      *wrapped = true;
    }
    const uint16_t page_class =
        pages_[page].cls.load(std::memory_order_relaxed);
    if (cls >= 0 ? page_class == cls : page_class != kNoClass) {
      if (cls < 0) cls = page_class;
      found_page = true;
      break;
    }
  }
  if (!found_page) {
    *cursor = 0;
    *wrapped = true;
    return nullptr;
  }
  Class& c = classes_[cls];
  void* found = nullptr;
  {
    SpinLockHolder holder(&c.lock);
    PageInfo& info = pages_[page];
    if (info.cls.load(std::memory_order_relaxed) == cls) {
      char* chunk = PageBase(page) + kPageHeader + size_t{k} * c.size;
      for (size_t n = 0; k < info.carved && n < budget;
           ++k, ++n, chunk += c.size) {
        if (visit(chunk)) {
          found = chunk;
          ++k;
          break;
        }
      }
      if (k >= info.carved) k = c.per_page;
    } else {
      k = c.per_page;
    }
    if (k >= c.per_page) {
      ++page;
      k = 0;
    }
  }
  *cursor = (uint64_t{page} << 32) | k;
  return found;
}

void* SlabArena::MappedClockStep(uint64_t* cursor, size_t budget,
                                 absl::FunctionRef<bool(void*)> visit,
                                 bool* wrapped) {
  *wrapped = false;
  SpinLockHolder holder(&mapped_lock_);
  if (*cursor >= mapped_slots_used_) {
    *cursor = 0;
    *wrapped = true;
  }
  for (size_t n = 0; n < budget && *cursor < mapped_slots_used_; ++n) {
    const uintptr_t entry = mapped_table_[(*cursor)++];
    if ((entry & 1) != 0) continue;
    void* memory = reinterpret_cast<MappedHeader*>(entry) + 1;
    if (visit(memory)) return memory;
  }
  return nullptr;
}

}  // namespace memshard::cache::internal
