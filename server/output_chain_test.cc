#include "server/output_chain.h"

#include <sys/socket.h>
#include <unistd.h>

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

}  // namespace
}  // namespace memshard
