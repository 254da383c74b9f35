// Hostile text-protocol clients against the real memshard binary (issue
// #9): over-long lines, a 100,000-key multiget, lying storage lengths,
// oversized values and clients that vanish mid-value. Each case runs while
// a well-behaved client does set/get (hostile_util.h) and checks the reply
// memcached gives, the hostile connection's fate, the well-behaved client's
// p99 and the server's RSS. Replies that memshard shares with memcached are
// also checked against Debian's memcached.

#include <sys/socket.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/integration/hostile_util.h"
#include "testing/blocking_client.h"
#include "testing/peer.h"
#include "testing/server_process.h"

namespace memshard {
namespace hostile {
namespace {

// Sends `bytes` in `chunk`-sized writes; false as soon as a write fails
// (the server closed).
bool SendInChunks(BlockingClient& client, absl::string_view bytes,
                  size_t chunk) {
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    if (!client.TrySend(bytes.substr(at, chunk)).ok()) return false;
  }
  return true;
}

// Counts non-overlapping occurrences of `needle`.
int64_t Count(absl::string_view haystack, absl::string_view needle) {
  int64_t n = 0;
  for (size_t at = haystack.find(needle); at != haystack.npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

using HostileTextTest = HostileTest;

TEST_F(HostileTextTest, UnterminatedLinesAreClosedAtTheirLimit) {
  ASSERT_NO_FATAL_FAILURE(StartServer());

  // An ordinary line: 2048 bytes without a newline are still waited for,
  // the 2049th closes the connection without a reply, like memcached.
  RepeatFor(absl::Seconds(2), [&] {
    auto plain = Connect();
    ASSERT_NE(plain, nullptr);
    ASSERT_TRUE(SendInChunks(*plain, std::string(2048, 'x'), 512));
    EXPECT_FALSE(plain->PeerClosed(absl::Milliseconds(100)))
        << "closed at 2048 bytes, before the limit";
    ASSERT_TRUE(plain->Send("x"));
    EXPECT_TRUE(plain->PeerClosed(absl::Seconds(3)))
        << "a 2049-byte line without a newline was not closed (or answered)";
  });

  // A multiget line may grow to 1 MiB (memcached lets it grow without
  // bound). Four at once, each sent 64 KiB at a time to 1 MiB + 64 KiB:
  // each is closed without a reply.
  constexpr int kLines = 4;
  std::string line = "get";
  while (line.size() < 1024 * 1024 + 64 * 1024) {
    absl::StrAppend(&line, " multiget-key-", line.size());
  }
  std::vector<std::unique_ptr<BlockingClient>> multigets;
  for (int i = 0; i < kLines; ++i) {
    multigets.push_back(Connect());
    ASSERT_NE(multigets.back(), nullptr);
  }
  for (size_t at = 0; at < line.size(); at += 64 * 1024) {
    for (auto& c : multigets) (void)c->TrySend(line.substr(at, 64 * 1024));
  }
  for (int i = 0; i < kLines; ++i) {
    EXPECT_TRUE(multigets[i]->PeerClosed(absl::Seconds(5)))
        << "multiget line " << i << " over 1 MiB was not closed";
  }

  // Each held the line in an input buffer that doubles as it fills: up to
  // 2 MiB, plus the 1 MiB one it was copied from. 4 MiB of slack for the
  // allocator.
  ExpectServerUnharmed("unterminated lines", kLines * 3 * kMiB + 4 * kMiB);
}

// One 100,000-key get answered in one turn of the only worker took ~130 ms
// and the well-behaved client's p99 with it (150-200 ms); now it is
// answered a slice of 1024 keys per turn (server/connection.h). Issue #9.
TEST_F(HostileTextTest, RetrievalLineWith100000Keys) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(client->Set(absl::StrCat("h", i), absl::StrCat("v", i)),
              "STORED");
  }
  constexpr int kKeys = 100000;
  // Mostly misses: h0..h9 hit, h10..h99999 miss (~690 KB of line).
  std::string misses = "get";
  // Every key hits (h0..h9 over and over): 100,000 VALUE blocks, ~1.8 MB.
  std::string hits = "get";
  for (int i = 0; i < kKeys; ++i) {
    absl::StrAppend(&misses, " h", i);
    absl::StrAppend(&hits, " h", i % 10);
  }
  absl::StrAppend(&misses, "\r\n");
  absl::StrAppend(&hits, "\r\n");

  // Back to back for 3 s, as fast as the replies are read.
  const int rounds = RepeatFor(absl::Seconds(3), [&] {
    ASSERT_TRUE(client->Send(misses));
    std::string reply = client->ReadUntil("END\r\n");
    EXPECT_EQ(Count(reply, "VALUE "), 10);
    EXPECT_TRUE(absl::StartsWith(reply, "VALUE h0 0 2\r\nv0\r\n"));
    ASSERT_TRUE(client->Send(hits));
    reply = client->ReadUntil("END\r\n");
    EXPECT_EQ(Count(reply, "VALUE "), kKeys);
    EXPECT_EQ(reply.size(), kKeys * 18 + 5u);
    // The connection goes on.
    EXPECT_TRUE(absl::StartsWith(client->Command("version"), "VERSION "));
  });
  std::printf("100,000-key multiget: %d rounds of two\n", rounds);
  // The reply to one request is composed whole: an entry per key (header
  // text, a reference on the item) of up to ~200 bytes, 19 MiB here, on
  // top of the line's buffer and its 1.6 MB of key views. memcached needs
  // ~1.2 KiB per key for the same line (126 MiB measured). 256 bytes per
  // key and 4 MiB of slack.
  ExpectServerUnharmed("100,000-key multiget", kKeys * 256 + 4 * kMiB);
}

TEST_F(HostileTextTest, SetWithHostileLengths) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  // memcached 1.6.18 reads 2^32 through a 64-bit strtol and truncates it to
  // 0, so it answers "CLIENT_ERROR bad data chunk" on the next bytes;
  // memshard refuses the length itself.
  for (const char* length : {"4294967296", "18446744073709551615", "-1", "abc",
                             "12abc", "0x10", "2147483646", ""}) {
    EXPECT_EQ(
        client->Command(absl::StrCat("set k 0 0 ", length)),
        length[0] == '\0' ? "ERROR" : "CLIENT_ERROR bad command line format")
        << "length \"" << length << "\"";
    EXPECT_TRUE(absl::StartsWith(client->Command("version"), "VERSION "))
        << "length \"" << length << "\"";
  }
  // Data sent after a refused line is read as a command, as by memcached.
  ASSERT_TRUE(client->Send("set k 0 0 -1\r\nhello\r\n"));
  EXPECT_EQ(client->ReadLine(), "CLIENT_ERROR bad command line format");
  EXPECT_EQ(client->ReadLine(), "ERROR");

  // The largest length memcached accepts (INT_MAX - 2) is over the item
  // limit: refused at once and its 2 GB swallowed as they arrive, never
  // buffered. 32 MiB of it arrive here.
  auto swallower = Connect();
  ASSERT_NE(swallower, nullptr);
  ASSERT_TRUE(swallower->Send("set huge 0 0 2147483645\r\n"));
  EXPECT_EQ(swallower->ReadLine(), "SERVER_ERROR object too large for cache");
  const std::string chunk(256 * 1024, 'z');
  for (int i = 0; i < 128; ++i) ASSERT_TRUE(swallower->Send(chunk));
  // Still swallowing: "version" is data.
  ASSERT_TRUE(swallower->Send("version\r\n"));
  EXPECT_FALSE(swallower->HasData(absl::Milliseconds(300)));
  EXPECT_EQ(client->Get("huge"), std::nullopt);
  // 4 MiB of slack: nothing in this case should be buffered.
  ExpectServerUnharmed("hostile set lengths", 4 * kMiB);
}

TEST_F(HostileTextTest, ValueLargerThanTheItemLimit) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  const std::string too_big(1024 * 1024 + 1, 'b');
  RepeatFor(absl::Seconds(2), [&] {
    ASSERT_EQ(client->Set("big", "small"), "STORED");
    ASSERT_TRUE(client->Send(
        absl::StrCat("set big 0 0 ", too_big.size(), "\r\n", too_big, "\r\n")));
    EXPECT_EQ(client->ReadLine(), "SERVER_ERROR object too large for cache");
    // Like memcached, a refused set also drops the old value, and the
    // connection goes on after the swallowed block.
    EXPECT_EQ(client->Get("big"), std::nullopt);
  });
  // Swallowed as they arrive: 4 MiB of slack, no value-sized buffers.
  ExpectServerUnharmed("value over the item limit", 4 * kMiB);
}

TEST_F(HostileTextTest, ClientsThatDisconnectMidValue) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  constexpr int kClients = 100;
  constexpr int kValue = 100000;
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Connect());
    ASSERT_NE(clients.back(), nullptr);
    auto& c = *clients.back();
    switch (i % 4) {
      case 0:  // half a value
      case 1:
        ASSERT_TRUE(c.Send(absl::StrCat("set mid", i, " 0 0 ", kValue, "\r\n",
                                        std::string(kValue / 2, 'm'))));
        break;
      case 2:  // the whole value but not its "\r\n"
        ASSERT_TRUE(c.Send(absl::StrCat("set mid", i, " 0 0 ", kValue, "\r\n",
                                        std::string(kValue, 'm'))));
        break;
      case 3:  // half a line
        ASSERT_TRUE(c.Send(absl::StrCat("set mid", i, " 0 0 ")));
        break;
    }
  }
  absl::SleepFor(absl::Milliseconds(300));
  // Every one waits for the rest, silently.
  for (int i = 0; i < kClients; ++i) {
    EXPECT_FALSE(clients[i]->HasData(absl::ZeroDuration())) << "client " << i;
  }
  // Peak while they wait: each holds a buffer for its whole request
  // (~100 KB). 4 MiB of slack.
  ExpectRssWithin(*server_, baseline_rss_, kClients * 128 * kKiB + 4 * kMiB,
                  "mid-value, waiting");
  // Half leave with a FIN, half with a RST (SO_LINGER 0).
  for (int i = 0; i < kClients; ++i) {
    if (i % 2 == 1) {
      struct linger abort_now = {1, 0};
      setsockopt(clients[i]->fd(), SOL_SOCKET, SO_LINGER, &abort_now,
                 sizeof(abort_now));
    }
    clients[i]->Close();
  }
  // The server notices every close and stores nothing.
  auto checker = Connect();
  ASSERT_NE(checker, nullptr);
  int64_t open = -1;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    open = StatInt(checker->Stats(), "curr_connections");
    if (open <= 2) break;  // the well-behaved client and the checker
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(open, 2) << "connections left open after their peers vanished";
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(checker->Get(absl::StrCat("mid", i)), std::nullopt)
        << "a half-sent value was stored: mid" << i;
  }
  ExpectServerUnharmed("mid-value disconnects",
                       kClients * 128 * kKiB + 4 * kMiB);
}

// --- The replies above, from memshard and memcached alike -------------------

class HostileRepliesTest : public ConnectedPeerTest {
 protected:
  HostileRepliesTest() : ConnectedPeerTest({"--workers=1"}) {}
};

TEST_P(HostileRepliesTest, LyingLengths) {
  for (const char* length : {"18446744073709551615", "-1", "abc"}) {
    EXPECT_EQ(client_->Command(absl::StrCat("set k 0 0 ", length)),
              "CLIENT_ERROR bad command line format");
  }
  ASSERT_TRUE(client_->Send("set k 0 0 -1\r\nhello\r\n"));
  EXPECT_EQ(client_->ReadLine(), "CLIENT_ERROR bad command line format");
  EXPECT_EQ(client_->ReadLine(), "ERROR");
  // A block that does not end where its length says.
  ASSERT_TRUE(client_->Send("set k 0 0 5\r\nhelloXY\r\n"));
  EXPECT_EQ(client_->ReadLine(), "CLIENT_ERROR bad data chunk");
  // The block was "hello" + "XY": the "\r\n" after it is an empty line.
  EXPECT_EQ(client_->ReadLine(), "ERROR");
  EXPECT_TRUE(absl::StartsWith(client_->Command("version"), "VERSION "));
}

TEST_P(HostileRepliesTest, TooLargeDropsTheOldValue) {
  ASSERT_EQ(client_->Set("big", "small"), "STORED");
  const std::string too_big(1024 * 1024 + 1, 'b');
  ASSERT_TRUE(client_->Send(
      absl::StrCat("set big 0 0 ", too_big.size(), "\r\n", too_big, "\r\n")));
  EXPECT_EQ(client_->ReadLine(), "SERVER_ERROR object too large for cache");
  EXPECT_EQ(client_->Get("big"), std::nullopt);
}

TEST_P(HostileRepliesTest, LongLines) {
  std::string keys = "get";
  for (int i = 0; i < 100000; ++i) absl::StrAppend(&keys, " miss", i);
  EXPECT_EQ(client_->Command(keys), "END");
  ASSERT_TRUE(client_->Send(std::string(2048, 'x')));
  EXPECT_FALSE(client_->PeerClosed(absl::Milliseconds(300)));
  ASSERT_TRUE(client_->Send("x"));
  EXPECT_TRUE(client_->PeerClosed(absl::Seconds(3)));
}

// Multigets with more keys than one turn answers (server/connection.h)
// come back byte for byte as memcached sends them, in order with what was
// pipelined around them: END only after the last key, and nothing of the
// next request before it.
TEST_P(HostileRepliesTest, ManyKeyMultigetsKeepTheirOrder) {
  constexpr int kStored = 10;
  std::vector<std::string> cas(kStored + 2);
  for (int i = 0; i < kStored; ++i) {
    ASSERT_EQ(
        client_->Command(absl::StrCat("set h", i, " ", i, " 0 ",
                                      absl::StrCat("v", i).size(), "\r\nv", i)),
        "STORED");
    const std::string header = client_->Command(absl::StrCat("gets h", i));
    cas[i] = header.substr(header.rfind(' ') + 1);
    ASSERT_EQ(client_->ReadLine(), absl::StrCat("v", i));
    ASSERT_EQ(client_->ReadLine(), "END");
  }
  // h10 and h11 miss.
  bool h3_deleted = false;
  auto value = [&](int k, bool with_cas) {
    if (k >= kStored || (k == 3 && h3_deleted)) return std::string();
    return absl::StrCat("VALUE h", k, " ", k, " ", absl::StrCat("v", k).size(),
                        with_cas ? absl::StrCat(" ", cas[k]) : "", "\r\nv", k,
                        "\r\n");
  };
  std::string request, expected;
  auto multiget = [&](absl::string_view command, int keys, bool with_cas) {
    absl::StrAppend(&request, command);
    for (int i = 0; i < keys; ++i) {
      absl::StrAppend(&request, " h", i % (kStored + 2));
      absl::StrAppend(&expected, value(i % (kStored + 2), with_cas));
    }
    absl::StrAppend(&request, "\r\n");
    absl::StrAppend(&expected, "END\r\n");
  };
  multiget("get", 5000, false);
  multiget("get", 1, false);
  multiget("gets", 3001, true);
  absl::StrAppend(&request, "delete h3\r\n");
  absl::StrAppend(&expected, "DELETED\r\n");
  h3_deleted = true;
  // memcached closes a gat line longer than 2048 bytes that is not all in
  // its buffer yet (only get and gets may grow), so only memshard is sent
  // one in a pipeline.
  if (GetParam() == Peer::kMemshard) {
    multiget("gat 0", 2500, false);
    multiget("gats 0", 1500, true);
  }
  // Many middling ones, each over a request's share of the turn.
  for (int i = 0; i < 100; ++i) multiget("get", 40 + i, false);
  ASSERT_TRUE(client_->Send(request));
  const std::string reply = client_->ReadExactly(expected.size());
  size_t differ = 0;
  while (differ < reply.size() && reply[differ] == expected[differ]) ++differ;
  EXPECT_EQ(differ, expected.size())
      << "first difference: \"" << reply.substr(differ, 80)
      << "\" instead of \"" << expected.substr(differ, 80) << "\"";
  EXPECT_FALSE(client_->HasData(absl::Milliseconds(100)));
}

INSTANTIATE_TEST_SUITE_P(Peers, HostileRepliesTest, ::testing::ValuesIn(kPeers),
                         PeerTestName);

}  // namespace
}  // namespace hostile
}  // namespace memshard
