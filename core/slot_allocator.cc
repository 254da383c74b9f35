#include "core/slot_allocator.h"

#include <cstdlib>
#include <mutex>
#include <vector>

#include "glog/logging.h"

namespace memshard {
namespace {

static_assert(SlotAllocator::kSlotSize % SlotAllocator::kAlignment == 0);
static_assert(SlotAllocator::kBlockSize % SlotAllocator::kSlotSize == 0);

struct FreeSlot {
  FreeSlot* next;
};

// This thread's free slots, and the untouched rest of its newest block.
struct ThreadSlots {
  FreeSlot* free = nullptr;
  char* carve = nullptr;
  char* carve_end = nullptr;
};

thread_local ThreadSlots slots;

// Every block ever allocated, so that slots stay reachable after the
// thread holding them in its free list exits. Leaked on purpose.
std::mutex& BlocksMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::vector<void*>& Blocks() {
  static auto* blocks = new std::vector<void*>;
  return *blocks;
}

}  // namespace

void* SlotAllocator::Allocate() {
  ThreadSlots& s = slots;
  if (s.free != nullptr) {
    FreeSlot* slot = s.free;
    s.free = slot->next;
    return slot;
  }
  if (s.carve == s.carve_end) {
    void* block = std::aligned_alloc(kAlignment, kBlockSize);
    CHECK(block != nullptr) << "out of memory for connection slots";
    {
      std::lock_guard<std::mutex> lock(BlocksMutex());
      Blocks().push_back(block);
    }
    s.carve = static_cast<char*>(block);
    s.carve_end = s.carve + kBlockSize;
  }
  void* slot = s.carve;
  s.carve += kSlotSize;
  return slot;
}

void SlotAllocator::Free(void* slot) {
  if (slot == nullptr) return;
  ThreadSlots& s = slots;
  auto* free_slot = static_cast<FreeSlot*>(slot);
  free_slot->next = s.free;
  s.free = free_slot;
}

}  // namespace memshard
