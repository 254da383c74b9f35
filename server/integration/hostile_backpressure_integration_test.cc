// A client that pipelines a million gets and does not read the replies,
// against the real memshard binary (issue #9). The server must stop reading
// from it once its replies back up (output back-pressure,
// ConnectionTable::kOutputHighWatermark) instead of buffering ~150 MB of
// replies, keep serving a well-behaved client on the same worker, and
// still answer every one of the million gets, in order, once the client
// reads.

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/integration/hostile_util.h"
#include "testing/blocking_client.h"

namespace memshard {
namespace hostile {
namespace {

using HostileBackpressureTest = HostileTest;

TEST_F(HostileBackpressureTest, MillionPipelinedGetsNeverRead) {
  constexpr int64_t kGets = 1000 * 1000;
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string key = "backpressure-key-with-a-longish-name";
  const std::string value(100, 'v');
  auto setter = Connect();
  ASSERT_NE(setter, nullptr);
  ASSERT_EQ(setter->Set(key, value), "STORED");
  const std::string request = absl::StrCat("get ", key, "\r\n");
  const std::string reply = absl::StrCat("VALUE ", key, " 0 ", value.size(),
                                         "\r\n", value, "\r\nEND\r\n");
  const int64_t request_bytes = kGets * static_cast<int64_t>(request.size());
  const int64_t reply_bytes = kGets * static_cast<int64_t>(reply.size());

  auto hostile = Connect();
  ASSERT_NE(hostile, nullptr);
  const int fd = hostile->fd();  // non-blocking

  // The sender writes every request as fast as the socket takes them, on
  // its own thread; the test thread reads (later) from the same socket.
  std::atomic<int64_t> sent{0};
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    std::string chunk;
    for (int i = 0; i < 2000; ++i) chunk += request;  // whole requests
    while (sent.load() < request_bytes && !stop.load()) {
      const int64_t left = request_bytes - sent.load();
      const size_t offset = sent.load() % chunk.size();
      const size_t n =
          static_cast<size_t>(std::min<int64_t>(left, chunk.size() - offset));
      ssize_t w = send(fd, chunk.data() + offset, n, MSG_NOSIGNAL);
      if (w > 0) {
        sent.fetch_add(w);
      } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
        pollfd p = {fd, POLLOUT, 0};
        poll(&p, 1, 100);
      } else {
        return;  // the test thread reports the shortfall
      }
    }
  });

  // Hold: the client reads nothing for 4 s. The server must stop reading
  // once its output backs up, so the sender stalls far from the end.
  absl::SleepFor(absl::Seconds(4));
  const int64_t sent_while_held = sent.load();
  const int64_t rss_held = ProcStatusBytes(server_->pid(), "VmRSS");
  std::printf(
      "back-pressure: %.1f of %.1f MB of gets accepted while not reading; "
      "server RSS %.1f MiB (baseline %.1f MiB)\n",
      sent_while_held / 1e6, request_bytes / 1e6, rss_held / double{kMiB},
      baseline_rss_ / double{kMiB});
  EXPECT_LT(sent_while_held, request_bytes / 2)
      << "the server kept reading requests whose replies nobody reads";
  // Its replies stop at the 256 KiB high watermark (plus one turn of
  // replies) and its input at one buffer; socket buffers are the
  // kernel's. 8 MiB of slack, against ~150 MB of replies if buffered.
  ExpectRssWithin(*server_, baseline_rss_, 8 * kMiB, "not reading");

  // Now read: every reply, in order, byte for byte.
  int64_t received = 0;
  int64_t mismatches = 0;
  std::string buffer(1 << 20, '\0');
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (received < reply_bytes && absl::Now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    ssize_t r = recv(fd, buffer.data(), buffer.size(), 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) break;
    if (r < 0) continue;
    size_t at = static_cast<size_t>(received % reply.size());
    for (ssize_t i = 0; i < r; ++i) {
      if (buffer[i] != reply[at]) ++mismatches;
      if (++at == reply.size()) at = 0;
    }
    received += r;
  }
  stop.store(true);
  sender.join();
  EXPECT_EQ(sent.load(), request_bytes) << "not every get was sent";
  EXPECT_EQ(received, reply_bytes) << "not every get was answered";
  EXPECT_EQ(mismatches, 0) << "replies out of order or wrong";
  EXPECT_FALSE(hostile->HasData(absl::Milliseconds(100)));
  // The connection is still usable.
  EXPECT_EQ(hostile->Get(key), value);

  ExpectServerUnharmed("a million gets never read", 8 * kMiB);
}

}  // namespace
}  // namespace hostile
}  // namespace memshard
