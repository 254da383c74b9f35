// ConfigureMallocForCache: threads started afterwards share one glibc arena
// (malloc_info lists one <heap>), which is what keeps fragmentation, and so
// RSS, bounded under overfill (see malloc_config.h).

#include "server/cache/malloc_config.h"

#include <malloc.h>
#include <stdio.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

namespace memshard::cache {
namespace {

int HeapCount() {
  char* text = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&text, &size);
  malloc_info(0, out);
  fclose(out);
  const std::string xml(text, size);
  free(text);
  int heaps = 0;
  for (size_t at = xml.find("<heap nr="); at != std::string::npos;
       at = xml.find("<heap nr=", at + 1)) {
    ++heaps;
  }
  return heaps;
}

TEST(MallocConfigTest, ThreadsStartedAfterwardsShareOneArena) {
  if (kSanitized) GTEST_SKIP() << "sanitizer allocators ignore mallopt";
  ASSERT_TRUE(ConfigureMallocForCache());
  EXPECT_TRUE(ConfigureMallocForCache());  // idempotent
  constexpr int kThreads = 8;
  std::vector<void*> blocks(kThreads);
  std::atomic<int> allocated{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    // Each thread allocates (without one arena, busy threads each get their
    // own) and stays alive until all have, so no arena is handed down from
    // a finished thread.
    threads.emplace_back([&blocks, &allocated, i] {
      blocks[i] = malloc(4096 + i);
      allocated.fetch_add(1);
      while (allocated.load() < kThreads) std::this_thread::yield();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(HeapCount(), 1);
  for (void* block : blocks) free(block);
}

}  // namespace
}  // namespace memshard::cache
