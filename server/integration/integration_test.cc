// The text protocol of the real memshard binary, over real sockets.
//
// Protocol tests are parameterized over memshard and Debian's memcached: the
// memcached run proves each expectation is memcached's behaviour, so a
// memshard failure is a memshard bug, not a wrong test.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/memshard_fixture.h"
#include "testing/peer.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

class ProtocolTest : public PeerTest {
 protected:
  ProtocolTest() : PeerTest({"--workers=2"}) {}

  void SetUp() override {
    PeerTest::SetUp();
    if (server_ == nullptr) return;
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
  }

  std::unique_ptr<BlockingClient> Connect() {
    auto client = server_->Connect();
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  std::unique_ptr<BlockingClient> client_;
};

INSTANTIATE_TEST_SUITE_P(Peers, ProtocolTest, ::testing::ValuesIn(kPeers),
                         PeerTestName);

TEST_P(ProtocolTest, Version) {
  std::string reply = client_->Command("version");
  EXPECT_TRUE(absl::StartsWith(reply, "VERSION ")) << reply;
  EXPECT_GT(reply.size(), 8u) << reply;
}

TEST_P(ProtocolTest, SetGetDeleteRoundTrip) {
  EXPECT_EQ(client_->Get("alpha"), std::nullopt);
  EXPECT_EQ(client_->Set("alpha", "one"), "STORED");
  EXPECT_EQ(client_->Get("alpha"), "one");
  EXPECT_EQ(client_->Set("alpha", "a longer second value"), "STORED");
  EXPECT_EQ(client_->Get("alpha"), "a longer second value");
  EXPECT_EQ(client_->Delete("alpha"), "DELETED");
  EXPECT_EQ(client_->Get("alpha"), std::nullopt);
  EXPECT_EQ(client_->Delete("alpha"), "NOT_FOUND");
}

TEST_P(ProtocolTest, FlagsAndBinaryValuesSurvive) {
  const std::string value("\r\nEND\r\n\0\xff", 9);
  EXPECT_EQ(client_->Set("bin", value, 4294967295u), "STORED");
  ASSERT_TRUE(client_->Send("get bin\r\n"));
  // The value itself contains "\r\nEND\r\n": read by length, not by marker.
  const std::string expected =
      absl::StrCat("VALUE bin 4294967295 9\r\n", value, "\r\nEND\r\n");
  EXPECT_EQ(client_->ReadExactly(expected.size()), expected);
  EXPECT_EQ(client_->Get("bin"), value);
  EXPECT_EQ(client_->Set("empty", ""), "STORED");
  EXPECT_EQ(client_->Get("empty"), "");
}

TEST_P(ProtocolTest, ValuesVisibleAcrossConnections) {
  EXPECT_EQ(client_->Set("shared", "v1", 3), "STORED");
  auto other = Connect();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->Get("shared"), "v1");
  EXPECT_EQ(other->Delete("shared"), "DELETED");
  EXPECT_EQ(client_->Get("shared"), std::nullopt);
}

TEST_P(ProtocolTest, MultiGetAnswersHitsInRequestOrder) {
  EXPECT_EQ(client_->Set("a", "1", 1), "STORED");
  EXPECT_EQ(client_->Set("c", "333", 3), "STORED");
  ASSERT_TRUE(client_->Send("get a b c nope a\r\n"));
  EXPECT_EQ(client_->ReadUntil("END\r\n"),
            "VALUE a 1 1\r\n1\r\n"
            "VALUE c 3 3\r\n333\r\n"
            "VALUE a 1 1\r\n1\r\n"
            "END\r\n");
  ASSERT_TRUE(client_->Send("get x y z\r\n"));
  EXPECT_EQ(client_->ReadUntil("END\r\n"), "END\r\n");
}

TEST_P(ProtocolTest, LargeValueRoundTrip) {
  std::string value;
  for (int i = 0; value.size() < 500 * 1024; ++i) {
    absl::StrAppend(&value, i, ",");
  }
  EXPECT_EQ(client_->Set("large", value), "STORED");
  EXPECT_EQ(client_->Get("large"), value);
}

TEST_P(ProtocolTest, ErrorsAnswerAndTheConnectionGoesOn) {
  EXPECT_EQ(client_->Command("frobnicate x"), "ERROR");
  EXPECT_EQ(client_->Command(absl::StrCat("get ", std::string(251, 'k'))),
            "CLIENT_ERROR bad command line format");
  const std::string key250(250, 'k');
  EXPECT_EQ(client_->Set(key250, "max key"), "STORED");
  EXPECT_EQ(client_->Get(key250), "max key");
  EXPECT_TRUE(absl::StartsWith(client_->Command("version"), "VERSION "));
}

TEST_P(ProtocolTest, RequestSplitAcrossManyWrites) {
  const std::string request =
      "set split 5 0 11\r\nhello world\r\nget split\r\n";
  for (char c : request) {
    ASSERT_TRUE(client_->Send(std::string(1, c)));
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(client_->ReadLine(), "STORED");
  EXPECT_EQ(client_->ReadUntil("END\r\n"),
            "VALUE split 5 11\r\nhello world\r\nEND\r\n");
}

// Builds `count` requests (sets, gets, multi-gets, deletes, version and an
// unknown command) and the replies a correct server gives, in order.
void BuildPipeline(int count, std::string* requests, std::string* replies) {
  std::map<std::string, std::string> model;
  auto get_reply = [&](const std::vector<std::string>& keys) {
    std::string out;
    for (const std::string& key : keys) {
      auto it = model.find(key);
      if (it == model.end()) continue;
      absl::StrAppend(&out, "VALUE ", key, " 7 ", it->second.size(), "\r\n",
                      it->second, "\r\n");
    }
    return absl::StrCat(out, "END\r\n");
  };
  for (int i = 0; i < count; ++i) {
    std::string key = absl::StrCat("pipe", i % 37);
    std::string prev = absl::StrCat("pipe", (i + 11) % 37);
    switch (i % 6) {
      case 0:
      case 3: {
        std::string value = absl::StrCat("value-", i, std::string(i % 50, 'x'));
        absl::StrAppend(requests, "set ", key, " 7 0 ", value.size(), "\r\n",
                        value, "\r\n");
        absl::StrAppend(replies, "STORED\r\n");
        model[key] = value;
        break;
      }
      case 1:
        absl::StrAppend(requests, "get ", key, "\r\n");
        absl::StrAppend(replies, get_reply({key}));
        break;
      case 2:
        absl::StrAppend(requests, "get ", prev, " ", key, " missing", i,
                        "\r\n");
        absl::StrAppend(replies,
                        get_reply({prev, key, absl::StrCat("missing", i)}));
        break;
      case 4:
        absl::StrAppend(requests, "delete ", prev, "\r\n");
        absl::StrAppend(replies,
                        model.erase(prev) ? "DELETED\r\n" : "NOT_FOUND\r\n");
        break;
      case 5:
        if (i % 60 == 5) {
          absl::StrAppend(requests, "bogus_command ", i, "\r\n");
          absl::StrAppend(replies, "ERROR\r\n");
        } else {
          absl::StrAppend(requests, "get ", key, "\r\n");
          absl::StrAppend(replies, get_reply({key}));
        }
        break;
    }
  }
}

TEST_P(ProtocolTest, PipelinedRequestsInOneWriteAnsweredInOrder) {
  std::string requests, replies;
  BuildPipeline(3000, &requests, &replies);
  // A large send buffer lets one non-blocking write(2) take everything.
  int sndbuf = 8 << 20;
  setsockopt(client_->fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  ASSERT_EQ(write(client_->fd(), requests.data(), requests.size()),
            static_cast<ssize_t>(requests.size()))
      << "the pipeline did not fit in one write";
  std::string got = client_->ReadExactly(replies.size());
  // Compare line by line first: the first divergence says more than a
  // 100 KB diff.
  size_t pos = 0;
  while (pos < got.size() && pos < replies.size() && got[pos] == replies[pos]) {
    ++pos;
  }
  size_t line_start = replies.rfind('\n', pos == 0 ? 0 : pos - 1);
  line_start = line_start == std::string::npos ? 0 : line_start + 1;
  EXPECT_EQ(got, replies) << "first difference at byte " << pos
                          << "; expected from there: \""
                          << absl::CEscape(replies.substr(line_start, 120))
                          << "\"; got: \""
                          << absl::CEscape(got.substr(line_start, 120)) << "\"";
  EXPECT_FALSE(client_->HasData(absl::Milliseconds(100)))
      << "extra bytes after the last reply";
}

TEST_P(ProtocolTest, QuitClosesOnlyThatConnection) {
  auto other = Connect();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->Send("quit\r\n"));
  EXPECT_TRUE(other->PeerClosed(absl::Seconds(2)));
  EXPECT_TRUE(absl::StartsWith(client_->Command("version"), "VERSION "));
}

TEST_P(ProtocolTest, StatsCountCommands) {
  StatsMap before = client_->Stats();
  EXPECT_EQ(client_->Set("s1", "x"), "STORED");
  EXPECT_EQ(client_->Set("s2", "y"), "STORED");
  EXPECT_EQ(client_->Get("s1"), "x");
  EXPECT_EQ(client_->Get("nope"), std::nullopt);
  // A multi-get counts once per key, as memcached does.
  ASSERT_TRUE(client_->Send("get s1 s2 nope2\r\n"));
  client_->ReadUntil("END\r\n");
  StatsMap after = client_->Stats();
  for (const auto& [name, delta] :
       std::vector<std::pair<std::string, int>>{{"cmd_set", 2},
                                                {"cmd_get", 5},
                                                {"get_hits", 3},
                                                {"get_misses", 2}}) {
    EXPECT_EQ(StatInt(after, name) - StatInt(before, name), delta) << name;
  }
  EXPECT_EQ(StatInt(after, "pid"), server_->pid());
  int64_t now = absl::ToUnixSeconds(absl::Now());
  EXPECT_NEAR(StatInt(after, "time"), now, 2);
  EXPECT_GE(StatInt(after, "uptime"), 0);
  EXPECT_LT(StatInt(after, "uptime"), 60);
  EXPECT_FALSE(after["version"].empty());
}

// Waits until `client` sees `want` connections (closes are noticed
// asynchronously); returns the last count seen.
int64_t AwaitCurrConnections(BlockingClient& client, int64_t want) {
  absl::Time deadline = absl::Now() + absl::Seconds(3);
  int64_t curr = -1;
  while (absl::Now() < deadline) {
    curr = StatInt(client.Stats(), "curr_connections");
    if (curr == want) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return curr;
}

TEST_P(ProtocolTest, StatsCountConnections) {
  // Only this test's connection (a start-up probe may still be closing).
  ASSERT_EQ(AwaitCurrConnections(*client_, 1), 1);
  StatsMap before = client_->Stats();
  std::vector<std::unique_ptr<BlockingClient>> more =
      ConnectMany(server_->port(), 3, /*round_trip=*/true);
  ASSERT_EQ(more.size(), 3u);
  StatsMap during = client_->Stats();
  EXPECT_EQ(StatInt(during, "curr_connections"),
            StatInt(before, "curr_connections") + 3);
  EXPECT_EQ(StatInt(during, "total_connections"),
            StatInt(before, "total_connections") + 3);
  more.clear();
  EXPECT_EQ(AwaitCurrConnections(*client_, 1), 1);
  EXPECT_EQ(StatInt(client_->Stats(), "rejected_connections"), 0);
}

// memshard only from here on.

class MemshardTest : public MemshardFixture {};

TEST_F(MemshardTest, StatsThreadsMatchesWorkers) {
  ASSERT_NO_FATAL_FAILURE(Start({"--workers=3"}));
  StatsMap stats = server_->Stats();
  EXPECT_EQ(StatInt(stats, "threads"), 3);
  for (const char* name :
       {"pid", "uptime", "time", "version", "curr_connections",
        "total_connections", "rejected_connections", "cmd_get", "cmd_set",
        "get_hits", "get_misses", "threads"}) {
    EXPECT_TRUE(stats.contains(name)) << "stats lacks " << name;
  }
}

TEST_F(MemshardTest, UnixSocketRoundTrip) {
  std::string path = TestTempPath("memshard_sock");
  ASSERT_NO_FATAL_FAILURE(
      Start({"--workers=2", absl::StrCat("--unix_socket=", path)}));
  // The port file says TCP is ready; give the unix socket the same grace.
  std::unique_ptr<BlockingClient> client;
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  absl::Status last;
  while (client == nullptr && absl::Now() < deadline) {
    auto c = BlockingClient::ConnectUnix(path);
    if (c.ok()) {
      client = *std::move(c);
    } else {
      last = c.status();
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ASSERT_NE(client, nullptr) << last;
  struct stat st = {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));

  EXPECT_TRUE(absl::StartsWith(client->Command("version"), "VERSION "));
  EXPECT_EQ(client->Set("via_unix", "u", 9), "STORED");
  EXPECT_EQ(client->Get("via_unix"), "u");
  // One cache behind both listeners.
  auto tcp = server_->Connect();
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_EQ((*tcp)->Get("via_unix"), "u");
  EXPECT_EQ((*tcp)->Set("via_tcp", "t"), "STORED");
  EXPECT_EQ(client->Get("via_tcp"), "t");

  // Several unix clients at once, replies not mixed up.
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < 20; ++i) {
    auto c = BlockingClient::ConnectUnix(path);
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(*std::move(c));
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(clients[i]->Set(absl::StrCat("u", i), absl::StrCat("v", i)),
              "STORED");
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(clients[i]->Get(absl::StrCat("u", i)), absl::StrCat("v", i));
  }
}

// Operators write modes in octal, as with memcached's -a; gflags reads
// int32 flags in decimal, so "0600" must not turn into 600 (= 01130).
TEST_F(MemshardTest, UnixSocketModeIsOctal) {
  std::string path = TestTempPath("memshard_sock");
  ASSERT_NO_FATAL_FAILURE(
      Start({"--workers=1", absl::StrCat("--unix_socket=", path),
             "--unix_socket_mode=0660"}));
  struct stat st = {};
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (stat(path.c_str(), &st) != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(S_ISSOCK(st.st_mode)) << path;
  EXPECT_EQ(st.st_mode & 07777, 0660u)
      << "mode is 0" << std::oct << (st.st_mode & 07777);
}

// systemd counts both exit(0) and death by SIGTERM as a clean stop; what
// must not happen is needing SIGKILL or crashing.
TEST_F(MemshardTest, StopsOnSigterm) {
  ASSERT_NO_FATAL_FAILURE(Start({"--workers=2"}));
  auto client = server_->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->Set("k", "v"), "STORED");
  int status = server_->Stop(absl::Seconds(5));
  EXPECT_TRUE((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
              (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM))
      << DescribeWaitStatus(status) << "\n"
      << server_->ReadLog();
  EXPECT_TRUE((*client)->PeerClosed(absl::Seconds(1)));
}

}  // namespace
}  // namespace memshard
