#include "server/output_chain.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace memshard {
namespace {

std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

TEST(OutputChainTest, CopiesSmallBytesAndReferencesItemValues) {
  BufferPool pool(64);
  cache::Store store(cache::StoreOptions{});
  ASSERT_EQ(store.Put(cache::StoreMode::kSet, "k", 0, 0, "hello", 0, 100),
            cache::StoreResult::kStored);
  OutputChain out(&pool);
  EXPECT_TRUE(out.empty());
  out.Append("VALUE k 0 5\r\n");
  cache::ItemRef item = store.Get("k", 100);
  ASSERT_TRUE(item);
  absl::string_view bytes = item.value_with_crlf();
  out.AppendItem(std::move(item), bytes);
  // The value stays alive through the chain even after a delete.
  EXPECT_TRUE(store.Delete("k", 100));
  out.Append("END\r\n");
  EXPECT_EQ(out.PendingForTest(), "VALUE k 0 5\r\nhello\r\nEND\r\n");

  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  size_t written = 0;
  EXPECT_EQ(out.Flush(fds[0], &written), OutputChain::FlushResult::kDone);
  EXPECT_EQ(written, 25u);
  EXPECT_EQ(ReadAll(fds[1]), "VALUE k 0 5\r\nhello\r\nEND\r\n");
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(pool.stats().in_use, 0u);  // an idle chain holds nothing
  close(fds[0]);
  close(fds[1]);
}

TEST(OutputChainTest, PartialWritesResumeWhereTheyStopped) {
  BufferPool pool(4096);
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  int small = 4096;
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  OutputChain out(&pool);
  std::string expected;
  // Many segments, more than fit in one pooled segment array, and more bytes
  // than the socket buffer holds.
  cache::Store store(cache::StoreOptions{});
  for (int i = 0; i < 2000; ++i) {
    std::string line = "line " + std::to_string(i) + "\r\n";
    out.Append(line);
    expected += line;
    std::string key = "k" + std::to_string(i);
    store.Put(cache::StoreMode::kSet, key, 0, 0, std::string(50, 'a' + i % 26),
              0, 100);
    cache::ItemRef item = store.Get(key, 100);
    absl::string_view bytes = item.value_with_crlf();
    expected += std::string(bytes);
    out.AppendItem(std::move(item), bytes);
  }
  std::string received;
  for (int round = 0; round < 100000 && !out.empty(); ++round) {
    size_t written = 0;
    OutputChain::FlushResult r = out.Flush(fds[0], &written);
    ASSERT_NE(r, OutputChain::FlushResult::kError);
    received += ReadAll(fds[1]);
  }
  received += ReadAll(fds[1]);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(received, expected);
  EXPECT_EQ(pool.stats().in_use, 0u);
  close(fds[0]);
  close(fds[1]);
}

TEST(OutputChainTest, CopiesSmallValuesIntoOnePiece) {
  BufferPool pool(4096);
  cache::Store store(cache::StoreOptions{});
  ASSERT_EQ(store.Put(cache::StoreMode::kSet, "k", 0, 0, std::string(100, 'v'),
                      0, 100),
            cache::StoreResult::kStored);
  OutputChain out(&pool);
  out.Append("VALUE k 0 100\r\n");
  cache::ItemRef item = store.Get("k", 100);
  absl::string_view bytes = item.value_with_crlf();
  out.AppendItem(std::move(item), bytes);
  out.Append("END\r\n");
  EXPECT_EQ(out.SegmentsForTest(), 1u);
  EXPECT_EQ(out.PendingForTest(),
            "VALUE k 0 100\r\n" + std::string(100, 'v') + "\r\nEND\r\n");
}

TEST(OutputChainTest, ReferencesLargeValues) {
  BufferPool pool(4096);
  cache::Store store(cache::StoreOptions{});
  const std::string value(OutputChain::kCopyValueMax, 'v');  // + "\r\n"
  ASSERT_EQ(store.Put(cache::StoreMode::kSet, "k", 0, 0, value, 0, 100),
            cache::StoreResult::kStored);
  OutputChain out(&pool);
  out.Append("VALUE k 0 512\r\n");
  cache::ItemRef item = store.Get("k", 100);
  absl::string_view bytes = item.value_with_crlf();
  out.AppendItem(std::move(item), bytes);
  out.Append("END\r\n");
  EXPECT_EQ(out.SegmentsForTest(), 3u);
  // Still readable after the item is gone from the store.
  EXPECT_TRUE(store.Delete("k", 100));
  EXPECT_EQ(out.PendingForTest(), "VALUE k 0 512\r\n" + value + "\r\nEND\r\n");
}

TEST(OutputChainTest, KeepModeReusesItsMemoryAcrossReplies) {
  BufferPool pool(4096);
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  OutputChain shared(&pool, OutputChain::Memory::kKeep);
  for (int i = 0; i < 3; ++i) {
    shared.Append("STORED\r\n");
    size_t written = 0;
    ASSERT_EQ(shared.Flush(fds[0], &written), OutputChain::FlushResult::kDone);
    EXPECT_EQ(written, 8u);
    EXPECT_TRUE(shared.empty());
    // One data buffer and the segment array stay borrowed.
    EXPECT_EQ(pool.stats().in_use, 2u);
    EXPECT_EQ(pool.stats().allocated, 2u);
  }
  EXPECT_EQ(ReadAll(fds[1]), "STORED\r\nSTORED\r\nSTORED\r\n");
  shared.Clear();
  EXPECT_EQ(pool.stats().in_use, 2u);
  close(fds[0]);
  close(fds[1]);
}

TEST(OutputChainTest, TakeFromMovesWhatTheSocketDidNotTake) {
  BufferPool pool(4096);
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  int small = 4096;
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  cache::Store store(cache::StoreOptions{});
  const std::string value(3000, 'v');
  ASSERT_EQ(store.Put(cache::StoreMode::kSet, "k", 0, 0, value, 0, 100),
            cache::StoreResult::kStored);
  OutputChain shared(&pool, OutputChain::Memory::kKeep);
  std::string expected;
  for (int i = 0; i < 20; ++i) {
    shared.Append("VALUE k 0 3000\r\n");
    cache::ItemRef item = store.Get("k", 100);
    absl::string_view bytes = item.value_with_crlf();
    shared.AppendItem(std::move(item), bytes);
    expected += "VALUE k 0 3000\r\n" + value + "\r\n";
  }
  size_t written = 0;
  ASSERT_EQ(shared.Flush(fds[0], &written), OutputChain::FlushResult::kBlocked);
  OutputChain own(&pool);
  own.TakeFrom(&shared);
  EXPECT_TRUE(shared.empty());
  EXPECT_EQ(own.pending_bytes(), expected.size() - written);
  // The shared chain is usable at once for another connection.
  shared.Append("END\r\n");
  EXPECT_EQ(shared.PendingForTest(), "END\r\n");
  shared.Clear();
  std::string received = ReadAll(fds[1]);
  for (int round = 0; round < 100000 && !own.empty(); ++round) {
    size_t n = 0;
    ASSERT_NE(own.Flush(fds[0], &n), OutputChain::FlushResult::kError);
    received += ReadAll(fds[1]);
  }
  received += ReadAll(fds[1]);
  EXPECT_EQ(received, expected);
  EXPECT_TRUE(own.empty());
  close(fds[0]);
  close(fds[1]);
}

TEST(OutputChainTest, ComposesInPlace) {
  BufferPool pool(64);
  OutputChain out(&pool);
  out.Append("0123456789");
  char* p = out.PrepareAppend(60);  // does not fit after those: new buffer
  ASSERT_NE(p, nullptr);
  memcpy(p, "abc", 3);
  out.CommitAppend(3);
  out.Append("def");
  EXPECT_EQ(out.PendingForTest(), "0123456789abcdef");
  EXPECT_EQ(out.pending_bytes(), 16u);
  EXPECT_EQ(pool.stats().in_use, 3u);  // two data buffers, one segment array
  // More than a pooled buffer: the caller composes elsewhere.
  EXPECT_EQ(out.PrepareAppend(65), nullptr);
  out.Clear();
  EXPECT_EQ(pool.stats().in_use, 0u);
}

TEST(OutputChainTest, AppendsAcrossBufferBoundaries) {
  BufferPool pool(64);
  OutputChain out(&pool);
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    std::string piece(i % 13 + 1, static_cast<char>('a' + i % 26));
    out.Append(piece);
    expected += piece;
  }
  EXPECT_EQ(out.PendingForTest(), expected);
  EXPECT_EQ(out.pending_bytes(), expected.size());
}

}  // namespace
}  // namespace memshard
