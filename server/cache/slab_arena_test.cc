#include "server/cache/slab_arena.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace memshard::cache::internal {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(SlabArenaTest, ClassesCoverEverySizeUpToTheLargestChunk) {
  size_t previous = 0;
  for (size_t size = 1; size <= SlabArena::kMaxChunk; ++size) {
    const size_t chunk = SlabArena::ChunkSizeFor(size);
    ASSERT_GE(chunk, size);
    ASSERT_GE(chunk, previous);
    ASSERT_EQ(chunk % 4, 0u);
    // Rounding: one 4-byte step up to 256 B, then classes ~8% apart,
    // widened to split the page evenly (at most 1/per_page more).
    const size_t per_page = (SlabArena::kPageSize - SlabArena::kPageHeader) /
                            std::max<size_t>(size, 48);
    ASSERT_LE(chunk,
              std::max<size_t>(48, size + 8) * (108 + 100 / per_page) / 100 + 8)
        << size;
    previous = chunk;
  }
  EXPECT_EQ(SlabArena::ChunkSizeFor(SlabArena::kMaxChunk + 1), 0u);
  // Issue #10's S6 item: 48-byte header, 32 B key, 100 B value, CRLF.
  EXPECT_EQ(SlabArena::ChunkSizeFor(182), 184u);
  // ... and with the 28-byte header.
  EXPECT_EQ(SlabArena::ChunkSizeFor(162), 164u);
}

TEST(SlabArenaTest, AllocatesDistinctChunksAndReusesFreedOnes) {
  auto* arena = new SlabArena(64 * kMiB, 64 * kMiB);
  std::set<void*> seen;
  std::vector<void*> chunks;
  for (int i = 0; i < 2000; ++i) {
    bool mapped = true;
    void* p = arena->Allocate(100, &mapped);
    EXPECT_FALSE(mapped);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4, 0u);
    EXPECT_TRUE(seen.insert(p).second);
    std::memset(p, 0xab, 100);
    chunks.push_back(p);
  }
  // 2000 chunks of 104 bytes: a few pages.
  EXPECT_LE(arena->footprint(), 5 * SlabArena::kPageSize);
  for (void* p : chunks) SlabArena::Free(p, false);
  const uint64_t footprint = arena->footprint();
  // Freed pages stay resident for reuse until released.
  EXPECT_EQ(footprint, arena->footprint());
  bool mapped = true;
  void* again = arena->Allocate(100, &mapped);
  EXPECT_TRUE(seen.count(again));
  SlabArena::Free(again, false);
  while (arena->ReleaseFreePage()) {
  }
  EXPECT_EQ(arena->footprint(), 0u);
  arena->Release();
}

// The index in `usage` of the class serving `size` bytes; -1 if none.
int ClassOf(const std::vector<SlabArena::ClassUsage>& usage, size_t size) {
  for (size_t i = 0; i < usage.size(); ++i) {
    if (usage[i].chunk_size == SlabArena::ChunkSizeFor(size)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

TEST(SlabArenaTest, UsageCountsEachClassesPagesAndChunks) {
  auto* arena = new SlabArena(64 * kMiB, 64 * kMiB);
  std::vector<SlabArena::ClassUsage> usage = arena->Usage();
  ASSERT_GT(usage.size(), 1u);
  for (size_t i = 0; i < usage.size(); ++i) {
    EXPECT_EQ(usage[i].pages, 0u) << i;
    if (i > 0) {
      EXPECT_GT(usage[i].chunk_size, usage[i - 1].chunk_size);
    }
  }
  const int small = ClassOf(usage, 100);
  const int large = ClassOf(usage, 5000);
  ASSERT_GE(small, 0);
  ASSERT_GE(large, 0);
  const uint32_t per_page = usage[small].chunks_per_page;
  EXPECT_EQ(per_page, (SlabArena::kPageSize - SlabArena::kPageHeader) /
                          SlabArena::ChunkSizeFor(100));
  // A page and a half of small chunks, three large ones.
  std::vector<void*> chunks;
  bool mapped;
  for (uint32_t i = 0; i < per_page + per_page / 2; ++i) {
    chunks.push_back(arena->Allocate(100, &mapped));
  }
  std::vector<void*> big;
  for (int i = 0; i < 3; ++i) big.push_back(arena->Allocate(5000, &mapped));
  // A mapped allocation belongs to no class.
  void* huge = arena->Allocate(SlabArena::kMaxChunk + 1, &mapped);
  ASSERT_TRUE(mapped);
  usage = arena->Usage();
  EXPECT_EQ(usage[small].pages, 2u);
  EXPECT_EQ(usage[small].live, per_page + per_page / 2);
  EXPECT_EQ(usage[small].carved, per_page + per_page / 2);
  EXPECT_EQ(usage[large].pages, 1u);
  EXPECT_EQ(usage[large].live, 3u);
  uint64_t pages = 0;
  uint64_t live = 0;
  for (const SlabArena::ClassUsage& u : usage) {
    pages += u.pages;
    live += u.live;
  }
  EXPECT_EQ(pages, 3u);
  EXPECT_EQ(live, per_page + per_page / 2 + 3);
  // Freed chunks stay carved; a page whose last chunk goes leaves the class.
  for (size_t i = 0; i < 10; ++i) SlabArena::Free(chunks[i], false);
  for (void* p : big) SlabArena::Free(p, false);
  usage = arena->Usage();
  EXPECT_EQ(usage[small].live, per_page + per_page / 2 - 10);
  EXPECT_EQ(usage[small].carved, per_page + per_page / 2);
  EXPECT_EQ(usage[large].pages, 0u);
  EXPECT_EQ(usage[large].live, 0u);
  for (size_t i = 10; i < chunks.size(); ++i) {
    SlabArena::Free(chunks[i], false);
  }
  SlabArena::Free(huge, true);
  for (const SlabArena::ClassUsage& u : arena->Usage()) {
    EXPECT_EQ(u.pages, 0u);
    EXPECT_EQ(u.live, 0u);
  }
  arena->Release();
}

// The VmFlags of the mapping holding `address` (/proc/self/smaps), e.g.
// "rd wr mr mw me ac hg"; empty if none holds it.
std::string VmFlagsAt(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const uintptr_t a = reinterpret_cast<uintptr_t>(address);
  bool inside = false;
  std::string line;
  while (std::getline(smaps, line)) {
    uintptr_t start, end;
    // A mapping's first line is "start-end perms ..."; its attribute lines
    // ("Size:", "AnonHugePages:", ...) never scan as two numbers.
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &start, &end) ==
        2) {
      inside = start <= a && a < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line.substr(8) + " ";
    }
  }
  return "";
}

TEST(SlabArenaTest, PagesAskForHugePagesUntilOneIsGivenBack) {
  auto* arena = new SlabArena(64 * kMiB, 64 * kMiB);
  bool mapped = true;
  void* chunk = arena->Allocate(100, &mapped);
  ASSERT_FALSE(mapped);
  // Lookups land all over the cache: huge pages spare a TLB miss each.
  EXPECT_NE(VmFlagsAt(chunk).find(" hg "), std::string::npos)
      << VmFlagsAt(chunk);
  // A page given back leaves a hole khugepaged would fill again with a
  // whole huge page: its region stops asking.
  SlabArena::Free(chunk, false);
  ASSERT_TRUE(arena->ReleaseFreePage());
  EXPECT_NE(VmFlagsAt(chunk).find(" nh "), std::string::npos)
      << VmFlagsAt(chunk);
  // The rest of the range still asks.
  EXPECT_NE(VmFlagsAt(static_cast<char*>(chunk) + 8 * kMiB).find(" hg "),
            std::string::npos);
  arena->Release();
}

TEST(SlabArenaTest, LargeAllocationsAreMappedAndKeptForReuse) {
  auto* arena = new SlabArena(64 * kMiB, 64 * kMiB);
  bool mapped = false;
  void* p = arena->Allocate(100 << 10, &mapped);
  EXPECT_TRUE(mapped);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
  std::memset(p, 1, 100 << 10);
  EXPECT_GE(arena->footprint(), uint64_t{100} << 10);
  SlabArena::Free(p, true);
  // Kept: a slightly smaller request reuses it.
  void* q = arena->Allocate(95 << 10, &mapped);
  EXPECT_EQ(p, q);
  SlabArena::Free(q, true);
  EXPECT_TRUE(arena->ReleaseCachedMapping());
  EXPECT_FALSE(arena->ReleaseCachedMapping());
  EXPECT_EQ(arena->footprint(), 0u);
  arena->Release();
}

TEST(SlabArenaTest, HandlesRoundTrip) {
  auto* arena = new SlabArena(64 * kMiB, 64 * kMiB);
  std::vector<std::pair<void*, bool>> held;
  std::set<uint32_t> handles;
  for (size_t size : {30, 100, 162, 1000, 16000, 20000, 300000}) {
    for (int i = 0; i < 3; ++i) {
      bool mapped = false;
      void* p = arena->Allocate(size, &mapped);
      EXPECT_EQ(mapped, size > SlabArena::kMaxChunk) << size;
      const uint32_t handle = arena->HandleOf(p, mapped);
      EXPECT_NE(handle, 0u);
      EXPECT_EQ(mapped, handle >= SlabArena::kMappedHandleBase);
      EXPECT_TRUE(handles.insert(handle).second);
      EXPECT_EQ(arena->Resolve(handle), p);
      held.emplace_back(p, mapped);
    }
  }
  // A freed mapping's slot is given to the next one.
  const uint32_t freed = arena->HandleOf(held.back().first, true);
  SlabArena::Free(held.back().first, true);
  held.pop_back();
  bool mapped = false;
  void* again = arena->Allocate(500000, &mapped);
  EXPECT_EQ(arena->HandleOf(again, true), freed);
  EXPECT_EQ(arena->Resolve(freed), again);
  held.emplace_back(again, true);
  for (auto [p, m] : held) SlabArena::Free(p, m);
  arena->Release();
}

TEST(SlabArenaTest, ChunksOutliveTheOwner) {
  auto* arena = new SlabArena(kMiB, 16 * kMiB);
  bool mapped = false;
  void* small = arena->Allocate(64, &mapped);
  void* large = arena->Allocate(1 << 20, &mapped);
  arena->Release();
  // Still usable; the last free deletes the arena (ASan checks it).
  std::memset(small, 2, 64);
  std::memset(large, 3, 1 << 20);
  SlabArena::Free(small, false);
  SlabArena::Free(large, true);
}

TEST(SlabArenaTest, DrainOffersEveryLiveChunkOfTheEmptiestPage) {
  auto* arena = new SlabArena(kMiB, 16 * kMiB);
  // Two pages of one class: fill both, then free most of the second.
  const size_t per_page = (SlabArena::kPageSize - SlabArena::kPageHeader) /
                          SlabArena::ChunkSizeFor(1000);
  std::vector<void*> chunks;
  bool mapped = false;
  for (size_t i = 0; i < 2 * per_page; ++i) {
    void* p = arena->Allocate(1000, &mapped);
    uint32_t live = 1;
    std::memcpy(static_cast<char*>(p) + 8, &live, sizeof(live));
    chunks.push_back(p);
  }
  // Free all but 3 chunks of the later page (zero their "live" word, as an
  // item's count drops to zero before it is freed).
  for (size_t i = per_page + 3; i < 2 * per_page; ++i) {
    std::memset(static_cast<char*>(chunks[i]) + 8, 0, 4);
    SlabArena::Free(chunks[i], false);
  }
  std::vector<void*> offered;
  ASSERT_TRUE(arena->BeginDrain(
      [](void* chunk) {
        uint32_t live;
        std::memcpy(&live, static_cast<char*>(chunk) + 8, sizeof(live));
        return live != 0;
      },
      &offered));
  ASSERT_EQ(offered.size(), 3u);
  EXPECT_EQ(offered[0], chunks[per_page]);
  // A draining page takes no new chunks: the next ones come from elsewhere.
  void* fresh = arena->Allocate(1000, &mapped);
  const auto page = [](void* p) {
    return reinterpret_cast<uintptr_t>(p) / SlabArena::kPageSize;
  };
  EXPECT_NE(page(fresh), page(offered[0]));
  // Freeing the offered chunks returns the page to the pool.
  const uint64_t before = arena->footprint();
  for (void* p : offered) SlabArena::Free(p, false);
  EXPECT_EQ(arena->footprint(), before);  // resident until released
  EXPECT_TRUE(arena->ReleaseFreePage());
  EXPECT_LT(arena->footprint(), before);
  for (size_t i = 0; i < per_page; ++i) SlabArena::Free(chunks[i], false);
  SlabArena::Free(fresh, false);
  arena->Release();
}

#if defined(__SANITIZE_ADDRESS__)
// Items no longer come from malloc, so the arena poisons free chunks itself.
TEST(SlabArenaDeathTest, AsanReportsUseOfAFreedChunk) {
  auto* arena = new SlabArena(kMiB, 16 * kMiB);
  bool mapped = false;
  char* p = static_cast<char*>(arena->Allocate(200, &mapped));
  char* keep = static_cast<char*>(arena->Allocate(200, &mapped));
  SlabArena::Free(p, false);
  EXPECT_DEATH(
      {
        volatile char c = p[100];
        (void)c;
      },
      "use-after-poison");
  SlabArena::Free(keep, false);
  arena->Release();
}
#endif

TEST(SlabArenaTest, ConcurrentAllocateAndFree) {
  auto* arena = new SlabArena(64 * kMiB, 64 * kMiB);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([arena, t] {
      std::vector<std::pair<void*, bool>> held;
      for (int i = 0; i < 20000; ++i) {
        const size_t size = 48 + (i * 7919 + t) % 3000;
        bool mapped = false;
        void* p = arena->Allocate(size, &mapped);
        std::memset(p, t, 48);
        held.emplace_back(p, mapped);
        if (held.size() > 100) {
          SlabArena::Free(held.front().first, held.front().second);
          held.erase(held.begin());
        }
      }
      for (auto [p, mapped] : held) SlabArena::Free(p, mapped);
    });
  }
  for (std::thread& t : threads) t.join();
  arena->Release();
}

}  // namespace
}  // namespace memshard::cache::internal
