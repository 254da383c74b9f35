#include "core/input_buffer.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

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

TEST(InputBufferTest, ReserveGivesRoomAtOnceFromAnEmptyBuffer) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  in.Reserve(1000);
  EXPECT_GE(in.capacity(), 1000u);
  EXPECT_GE(in.WritableSpace().size(), 1000u);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

// A client announcing a big value holds what it sent, not what it
// announced (the slow-sender attack of issue #9).
TEST(InputBufferTest, ExpectAllocatesNothingUpFront) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  Fill(in, "set k 0 0 1000000\r\n");
  in.Expect(1000000 + 21);
  EXPECT_EQ(in.capacity(), 64u);
  Fill(in, "vvvv");
  EXPECT_EQ(in.capacity(), 64u);
  EXPECT_EQ(pool.stats().in_use, 1u);
}

// As bytes arrive a full buffer grows by at most kMaxAhead (or doubles),
// never past the expected size: it never runs far ahead of what arrived,
// and the copying stays linear.
TEST(InputBufferTest, GrowsTowardTheExpectedSizeInBoundedSteps) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  const size_t total = 1000000;
  const size_t ahead = InputBuffer::kMaxAhead;
  in.Expect(total);
  std::vector<size_t> capacities;
  std::string sent;
  while (sent.size() < total) {
    absl::Span<char> space = in.WritableSpace();
    if (capacities.empty() || capacities.back() != in.capacity()) {
      capacities.push_back(in.capacity());
    }
    EXPECT_LE(in.capacity(),
              std::max<size_t>({64, 2 * sent.size(), sent.size() + ahead}));
    EXPECT_LE(in.capacity(), total);
    const size_t n =
        std::min<size_t>({space.size(), total - sent.size(), 4096});
    for (size_t i = 0; i < n; ++i) space[i] = static_cast<char>('a' + i % 26);
    sent.append(space.data(), n);
    in.Commit(n);
  }
  EXPECT_TRUE(in.readable() == sent);
  EXPECT_EQ(capacities,
            (std::vector<size_t>{64, 64 + ahead, 2 * (64 + ahead), total}));
}

TEST(InputBufferTest, GrowsNoFurtherThanASmallExpectedSize) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  Fill(in, std::string(64, 'a'));
  in.Expect(100);
  EXPECT_EQ(in.WritableSpace().size(), 36u);
  EXPECT_EQ(in.capacity(), 100u);
}

TEST(InputBufferTest, GrowsByDoublingWhenTheSizeIsUnknown) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  Fill(in, std::string(300, 'v'));
  EXPECT_EQ(in.capacity(), 512u);
  EXPECT_EQ(in.readable(), std::string(300, 'v'));
}

TEST(InputBufferTest, ConsumingForgetsTheExpectedSize) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  Fill(in, std::string(64, 'a'));
  in.Expect(70);
  in.Consume(1);
  // A new front request of unknown size: full doubling, not 70.
  Fill(in, std::string(40, 'b'));
  EXPECT_EQ(in.capacity(), 128u);
}

TEST(InputBufferTest, CompactsWhenTheExpectedRequestFitsOnceMoved) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  Fill(in, std::string(64, 'a'));
  in.Consume(10);  // 54 bytes left, at offset 10
  in.Expect(60);
  const char* before = in.readable().data();
  EXPECT_EQ(in.WritableSpace().size(), 10u);
  EXPECT_EQ(in.capacity(), 64u);
  EXPECT_NE(in.readable().data(), before);
  EXPECT_EQ(in.readable(), std::string(54, 'a'));
}

TEST(InputBufferTest, GrowsRatherThanCompactingForALittleRoom) {
  BufferPool pool(64);
  InputBuffer in(&pool);
  Fill(in, std::string(64, 'a'));
  in.Consume(2);  // 62 bytes left: moving them would free only 2
  EXPECT_EQ(in.WritableSpace().size(), 128u - 62u);
  EXPECT_EQ(in.readable(), std::string(62, 'a'));
}

TEST(InputBufferTest, TakeFromCarriesTheExpectedSize) {
  BufferPool pool(64);
  InputBuffer shared(&pool, InputBuffer::WhenDrained::kKeep);
  InputBuffer own(&pool);
  Fill(shared, std::string(64, 'a'));
  shared.Expect(100);
  own.TakeFrom(&shared);
  const absl::Span<char> space = own.WritableSpace();
  EXPECT_EQ(own.capacity(), 100u);
  EXPECT_EQ(space.size(), 36u);
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
