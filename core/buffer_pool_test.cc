#include "core/buffer_pool.h"

#include <vector>

#include "gtest/gtest.h"

namespace memshard {
namespace {

TEST(BufferPoolTest, ReusesReleasedBuffers) {
  BufferPool pool(1024);
  Buffer* a = pool.Acquire();
  EXPECT_EQ(a->capacity(), 1024u);
  pool.Release(a);
  Buffer* b = pool.Acquire();
  EXPECT_EQ(a, b);
  EXPECT_EQ(pool.stats().allocated, 1u);
  pool.Release(b);
}

TEST(BufferPoolTest, TrimsTowardRecentDemandAtEpochs) {
  BufferPool pool(256);
  std::vector<Buffer*> held;
  for (int i = 0; i < 100; ++i) held.push_back(pool.Acquire());
  for (Buffer* b : held) pool.Release(b);
  held.clear();
  pool.OnEpoch();
  // The burst just happened: its buffers are kept for reuse.
  EXPECT_EQ(pool.stats().free, 100u);
  // Demand stays at 2 per epoch; the cache decays to about that.
  for (int epoch = 0; epoch < 100; ++epoch) {
    Buffer* x = pool.Acquire();
    Buffer* y = pool.Acquire();
    pool.Release(x);
    pool.Release(y);
    pool.OnEpoch();
  }
  EXPECT_LE(pool.stats().free, 2u);
  EXPECT_EQ(pool.stats().in_use, 0u);
  EXPECT_GE(pool.stats().trimmed, 98u);
  // Without demand, everything goes back.
  for (int epoch = 0; epoch < 100; ++epoch) pool.OnEpoch();
  EXPECT_EQ(pool.stats().free, 0u);
}

TEST(BufferPoolTest, NeverTrimsBorrowedBuffers) {
  BufferPool pool(256);
  Buffer* a = pool.Acquire();
  for (int epoch = 0; epoch < 50; ++epoch) pool.OnEpoch();
  EXPECT_EQ(pool.stats().in_use, 1u);
  a->data()[0] = 'x';  // still ours
  pool.Release(a);
}

}  // namespace
}  // namespace memshard
