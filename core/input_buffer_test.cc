#include "core/input_buffer.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace memshard {
namespace {

void Fill(InputBuffer& in, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    absl::Span<char> space = in.WritableSpace();
    size_t n = std::min(space.size(), bytes.size() - done);
    memcpy(space.data(), bytes.data() + done, n);
    in.Commit(n);
    done += n;
  }
}

TEST(InputBufferTest, HoldsNoMemoryWhenEmpty) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  EXPECT_FALSE(in.holds_memory());
  Fill(in, "get a\r\n");
  EXPECT_TRUE(in.holds_memory());
  EXPECT_EQ(pool.stats().in_use, 1u);
  EXPECT_EQ(in.readable(), "get a\r\n");
  in.Consume(4);
  EXPECT_EQ(in.readable(), "a\r\n");
  in.Consume(3);
  EXPECT_FALSE(in.holds_memory());
  EXPECT_EQ(pool.stats().in_use, 0u);
}

TEST(InputBufferTest, CompactsAndGrowsPastAPooledBuffer) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  std::string big(1000, 'v');
  Fill(in, "x");
  in.Consume(0);
  Fill(in, big);
  EXPECT_EQ(in.readable(), "x" + big);
  // Grown onto the heap: the pooled buffer went back.
  EXPECT_EQ(pool.stats().in_use, 0u);
  in.Consume(1);
  EXPECT_EQ(in.readable(), big);
  in.Consume(big.size());
  EXPECT_FALSE(in.holds_memory());
}

TEST(InputBufferTest, ReserveKeepsUnconsumedBytes) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  Fill(in, "0123456789");
  in.Consume(5);
  in.Reserve(500);
  EXPECT_GE(in.capacity(), 500u);
  EXPECT_EQ(in.readable(), "56789");
  EXPECT_GE(in.WritableSpace().size(), 495u);
}

TEST(InputBufferTest, KeepModeHoldsItsPooledBufferWhenDrained) {
  BufferPool pool(64);
  InputBuffer shared(&pool, InputBuffer::WhenDrained::kKeep);
  Fill(shared, "get a\r\n");
  const char* first = shared.readable().data();
  shared.Consume(7);
  EXPECT_TRUE(shared.empty());
  EXPECT_TRUE(shared.holds_memory());
  EXPECT_EQ(pool.stats().in_use, 1u);
  // Reused from the start, not borrowed again.
  Fill(shared, "get b\r\n");
  EXPECT_EQ(shared.readable().data(), first);
  shared.Release();
  EXPECT_EQ(pool.stats().in_use, 0u);
}

TEST(InputBufferTest, KeepModeStillFreesAHeapBlock) {
  BufferPool pool(64);
  InputBuffer shared(&pool, InputBuffer::WhenDrained::kKeep);
  Fill(shared, std::string(200, 'v'));
  shared.Consume(200);
  EXPECT_FALSE(shared.holds_memory());
}

TEST(InputBufferTest, TakeFromMovesBytesAndMemory) {
  BufferPool pool(64);
  InputBuffer shared(&pool, InputBuffer::WhenDrained::kKeep);
  InputBuffer own(&pool);
  Fill(shared, "get a\r\nget b");
  shared.Consume(7);
  own.TakeFrom(&shared);
  EXPECT_EQ(own.readable(), "get b");
  EXPECT_TRUE(shared.empty());
  EXPECT_FALSE(shared.holds_memory());
  EXPECT_EQ(pool.stats().in_use, 1u);
  // More bytes append to the taken-over buffer.
  Fill(own, "\r\n");
  EXPECT_EQ(own.readable(), "get b\r\n");
  // The connection's own buffer goes back when drained.
  own.Consume(7);
  EXPECT_FALSE(own.holds_memory());
  EXPECT_EQ(pool.stats().in_use, 0u);
}

}  // namespace
}  // namespace memshard
