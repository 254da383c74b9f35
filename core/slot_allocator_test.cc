#include "core/slot_allocator.h"

#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace memshard {
namespace {

uintptr_t Address(void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(SlotAllocatorTest, SlotsAreAlignedDistinctAndWritable) {
  // More than one block's worth, so carving crosses into a new block.
  const size_t n = 3 * SlotAllocator::kBlockSize / SlotAllocator::kSlotSize;
  std::vector<void*> slots;
  std::set<uintptr_t> seen;
  for (size_t i = 0; i < n; ++i) {
    void* p = SlotAllocator::Allocate();
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(Address(p) % SlotAllocator::kAlignment, 0u);
    std::memset(p, static_cast<int>(i & 0xff), SlotAllocator::kSlotSize);
    slots.push_back(p);
    seen.insert(Address(p));
  }
  EXPECT_EQ(seen.size(), n);
  // No slot overlaps the next one: each still holds its own pattern.
  for (size_t i = 0; i < n; ++i) {
    const auto* bytes = static_cast<const unsigned char*>(slots[i]);
    EXPECT_EQ(bytes[0], i & 0xff);
    EXPECT_EQ(bytes[SlotAllocator::kSlotSize - 1], i & 0xff);
  }
  for (void* p : slots) SlotAllocator::Free(p);
}

TEST(SlotAllocatorTest, FreedSlotsAreReusedBeforeNewMemory) {
  void* a = SlotAllocator::Allocate();
  void* b = SlotAllocator::Allocate();
  SlotAllocator::Free(a);
  SlotAllocator::Free(b);
  // Last freed, first reused.
  EXPECT_EQ(SlotAllocator::Allocate(), b);
  EXPECT_EQ(SlotAllocator::Allocate(), a);
  SlotAllocator::Free(a);
  SlotAllocator::Free(b);
  SlotAllocator::Free(nullptr);
}

TEST(SlotAllocatorTest, ASlotMayBeFreedOnAnotherThread) {
  void* p = nullptr;
  std::thread([&p] { p = SlotAllocator::Allocate(); }).join();
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x5a, SlotAllocator::kSlotSize);
  SlotAllocator::Free(p);
  // It joined this thread's free list.
  EXPECT_EQ(SlotAllocator::Allocate(), p);
  SlotAllocator::Free(p);
}

}  // namespace
}  // namespace memshard
