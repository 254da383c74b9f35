// memshard --mode=proxy multigets and pipelining over real memcached
// backends: request order across backends, multigets a window at a time
// (many keys, slow readers, a failure in a later window), and the limits on
// backend requests in flight.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/integration/proxy_fixture.h"
#include "testing/blocking_client.h"

namespace memshard {
namespace {

TEST_F(ProxyTest, MultigetAcrossThreeBackendsKeepsRequestOrder) {
  Start({1, 1, 1});
  auto c = Client();
  ASSERT_NE(c, nullptr);
  memcached_st* memc = Libmemcached();
  std::vector<std::string> keys;
  std::vector<int> owners(3);
  for (int i = 0; i < 120; ++i) {
    keys.push_back(absl::StrCat("order:", i));
    ++owners[Owner(memc, keys.back())];
    EXPECT_EQ(c->Set(keys.back(), absl::StrCat("value-", i), i), "STORED");
  }
  memcached_free(memc);
  for (int n : owners) EXPECT_GT(n, 10);  // every backend holds some
  // Reversed, with misses and a repeat in between.
  std::vector<std::string> wanted;
  for (int i = 119; i >= 0; --i) {
    wanted.push_back(keys[i]);
    if (i % 10 == 0) wanted.push_back(absl::StrCat("absent:", i));
  }
  wanted.push_back(keys[7]);
  ASSERT_TRUE(
      c->Send(absl::StrCat("get ", absl::StrJoin(wanted, " "), "\r\n")));
  for (const std::string& k : wanted) {
    if (absl::StartsWith(k, "absent:")) continue;
    const int i = std::stoi(k.substr(6));
    EXPECT_EQ(c->ReadLine(), absl::StrCat("VALUE ", k, " ", i, " ",
                                          absl::StrCat("value-", i).size()));
    EXPECT_EQ(c->ReadLine(), absl::StrCat("value-", i));
  }
  EXPECT_EQ(c->ReadLine(), "END");
}

// A multiget of more keys than a backend connection takes in flight
// (BackendOptions::max_in_flight, 4096) goes a window at a time: every
// value, in order, then END; and the request pipelined behind it waits.
TEST_F(ProxyTest, MultigetOfManyKeysIsAnsweredInOrder) {
  Start({1});  // one backend connection per worker takes every key
  auto c = Client();
  ASSERT_NE(c, nullptr);
  constexpr int kKeys = 6000;
  std::string sets;
  for (int i = 0; i < kKeys; i += 3) {  // every third key is absent
    const std::string value = absl::StrCat("v", i);
    absl::StrAppend(&sets, "set m:", i, " ", i, " 0 ", value.size(),
                    " noreply\r\n", value, "\r\n");
  }
  ASSERT_TRUE(c->Send(sets));
  EXPECT_EQ(c->Command("version").substr(0, 8), "VERSION ");
  std::string get = "gets";
  for (int i = 0; i < kKeys; ++i) absl::StrAppend(&get, " m:", i);
  ASSERT_TRUE(c->Send(absl::StrCat(get, "\r\nget m:0\r\n")));
  for (int i = 0; i < kKeys; i += 3) {
    const std::string line = c->ReadLine();
    const std::string want = absl::StrCat("VALUE m:", i, " ", i, " ",
                                          absl::StrCat("v", i).size(), " ");
    ASSERT_EQ(line.substr(0, want.size()), want) << "key " << i;
    ASSERT_EQ(c->ReadLine(), absl::StrCat("v", i));
  }
  EXPECT_EQ(c->ReadLine(), "END");
  EXPECT_EQ(c->ReadLine(), "VALUE m:0 0 2");
  EXPECT_EQ(c->ReadLine(), "v0");
  EXPECT_EQ(c->ReadLine(), "END");
  const StatsMap stats = c->Stats();
  EXPECT_EQ(stats.at("get_hits"), absl::StrCat(kKeys / 3 + 1));
  EXPECT_EQ(stats.at("get_misses"), absl::StrCat(kKeys - kKeys / 3));
}

// Pipelined multigets: each sends a window of keys at once, and 40 of 256
// keys are 10,240 backend requests, past a backend connection's
// max_in_flight (4096). The connection stops taking requests while
// ProxySession::kMaxKeysInFlight are in flight, so every get is answered
// (before, 24 of the 40 were "SERVER_ERROR backend busy").
TEST_F(ProxyTest, PipelinedMultigetsStayWithinTheBackendsInFlightLimit) {
  Start({1});  // one backend connection per worker takes every key
  auto c = Client();
  ASSERT_NE(c, nullptr);
  constexpr int kKeys = 256;
  constexpr int kGets = 40;
  for (int i = 0; i < kKeys; i += 2) {
    ASSERT_EQ(c->Set(absl::StrCat("p:", i), absl::StrCat("v", i)), "STORED");
  }
  std::string get = "get";
  for (int i = 0; i < kKeys; ++i) absl::StrAppend(&get, " p:", i);
  absl::StrAppend(&get, "\r\n");
  std::string gets;
  for (int g = 0; g < kGets; ++g) gets += get;
  ASSERT_TRUE(c->Send(gets));
  for (int g = 0; g < kGets; ++g) {
    for (int i = 0; i < kKeys; i += 2) {
      ASSERT_EQ(c->ReadLine(),
                absl::StrCat("VALUE p:", i, " 0 ", absl::StrCat("v", i).size()))
          << "get " << g << " key " << i;
      ASSERT_EQ(c->ReadLine(), absl::StrCat("v", i));
    }
    ASSERT_EQ(c->ReadLine(), "END") << "get " << g;
  }
  const StatsMap stats = c->Stats();
  EXPECT_EQ(stats.at("get_hits"), absl::StrCat(kGets * kKeys / 2));
}

// Several such clients on one worker share its backend connection: while
// it holds three quarters of max_in_flight (BackendPool::crowded()), a
// client connection with requests in flight takes no more, so these six
// (up to 1,280 keys each) still get every answer.
TEST_F(ProxyTest, PipelinedMultigetsOfSeveralClientsShareTheLimit) {
  Start({1}, {"--workers=1"});
  constexpr int kClients = 6;
  constexpr int kKeys = 256;
  constexpr int kGets = 40;
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Client());
    ASSERT_NE(clients.back(), nullptr);
  }
  ASSERT_EQ(clients[0]->Set("s:0", "v"), "STORED");
  std::string get = "get";
  for (int i = 0; i < kKeys; ++i) absl::StrAppend(&get, " s:", i % 2);
  absl::StrAppend(&get, "\r\n");
  std::string gets;
  for (int g = 0; g < kGets; ++g) gets += get;
  for (auto& c : clients) ASSERT_TRUE(c->Send(gets));
  for (int i = 0; i < kClients; ++i) {
    for (int g = 0; g < kGets; ++g) {
      for (int k = 0; k < kKeys; k += 2) {
        ASSERT_EQ(clients[i]->ReadLine(), "VALUE s:0 0 1")
            << "client " << i << " get " << g << " key " << k;
        ASSERT_EQ(clients[i]->ReadLine(), "v");
      }
      ASSERT_EQ(clients[i]->ReadLine(), "END");
    }
  }
}

// A client that takes its multiget's values slowly: the proxy waits for it
// between windows (output above kStreamHighWatermark) and every byte
// arrives. Replies of a request pipelined behind are not mixed in.
TEST_F(ProxyTest, MultigetToASlowReaderWaitsForIt) {
  Start({1, 1});
  auto c = Client();
  ASSERT_NE(c, nullptr);
  constexpr int kKeys = 600;
  auto value_of = [](int i) {
    return std::string(20000 + i, static_cast<char>('a' + i % 26));
  };
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_EQ(c->Set(absl::StrCat("big:", i), value_of(i)), "STORED");
  }
  std::string get = "get";
  for (int i = 0; i < kKeys; ++i) absl::StrAppend(&get, " big:", i);
  ASSERT_TRUE(c->Send(absl::StrCat(get, "\r\nset after 0 0 1\r\nx\r\n")));
  // ~12 MB of values: far more than the socket buffers hold while we wait.
  absl::SleepFor(absl::Milliseconds(300));
  for (int i = 0; i < kKeys; ++i) {
    const std::string value = value_of(i);
    ASSERT_EQ(c->ReadLine(),
              absl::StrCat("VALUE big:", i, " 0 ", value.size()));
    ASSERT_EQ(c->ReadExactly(value.size() + 2), value + "\r\n");
  }
  EXPECT_EQ(c->ReadLine(), "END");
  EXPECT_EQ(c->ReadLine(), "STORED");
}

// Many requests in one write, to different backends, with local commands
// in between: the replies come back in request order.
TEST_F(ProxyTest, PipelinedRepliesStayInOrder) {
  Start({1, 2});
  auto c = Client();
  ASSERT_NE(c, nullptr);
  std::string batch;
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    const std::string k = absl::StrCat("p", i);
    absl::StrAppend(&batch, "set ", k, " 0 0 ", k.size(), "\r\n", k, "\r\n");
    absl::StrAppend(&expected, "STORED\r\n");
    absl::StrAppend(&batch, "get ", k, "\r\n");
    absl::StrAppend(&expected, "VALUE ", k, " 0 ", k.size(), "\r\n", k,
                    "\r\nEND\r\n");
    if (i % 50 == 0) {
      batch += "version\r\nmn\r\nbogus\r\n";
      absl::StrAppend(&expected,
                      "VERSION 1.6.0-memshard-0.1\r\nMN\r\nERROR\r\n");
    }
  }
  ASSERT_TRUE(c->Send(batch));
  EXPECT_EQ(c->ReadExactly(expected.size()), expected);
  // stats waits for the replies before it: still in order.
  ASSERT_TRUE(c->Send("get p1\r\nstats backends\r\n"));
  EXPECT_EQ(c->ReadLine(), "VALUE p1 0 2");
  EXPECT_EQ(c->ReadLine(), "p1");
  EXPECT_EQ(c->ReadLine(), "END");
  StatsMap stats;
  for (;;) {
    std::string line = c->ReadLine();
    if (line == "END" || line.empty()) break;
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 3u) << line;
    stats[parts[1]] = parts[2];
  }
  EXPECT_EQ(stats["backend:0:state"], "up");
  EXPECT_EQ(stats["backend:1:state"], "up");
  EXPECT_EQ(stats["backend:1:weight"], "2");
  EXPECT_EQ(stats["backend:0:address"],
            absl::StrCat("127.0.0.1:", memcacheds_[0]->port()));
  EXPECT_GT(StatInt(stats, "backend:0:requests") +
                StatInt(stats, "backend:1:requests"),
            600);
  EXPECT_EQ(StatInt(stats, "backend:0:errors"), 0);
  EXPECT_EQ(StatInt(stats, "backend:1:in_flight"), 0);
  // quit with replies due: they are written first.
  ASSERT_TRUE(c->Send("get p2\r\nquit\r\n"));
  EXPECT_EQ(c->ReadLine(), "VALUE p2 0 2");
  EXPECT_EQ(c->ReadLine(), "p2");
  EXPECT_EQ(c->ReadLine(), "END");
  EXPECT_TRUE(c->PeerClosed(absl::Seconds(5)));
}

// A multiget whose later window meets a dead backend: the values of the
// windows before stand, and the failure ends the reply in place of that
// window's values and END.
TEST_F(ProxyTest, MultigetFailureAfterTheFirstWindowEndsTheReply) {
  Start({1, 1}, {"--backend_timeout_ms=1000"});
  memcached_st* memc = Libmemcached();
  std::vector<std::string> live, dead;
  for (int i = 0; live.size() < 300 || dead.empty(); ++i) {
    const std::string key = absl::StrCat("later:", i);
    (Owner(memc, key) == 0 ? live : dead).push_back(key);
  }
  memcached_free(memc);
  auto c = Client();
  ASSERT_NE(c, nullptr);
  for (const std::string& k : live) ASSERT_EQ(c->Set(k, "v"), "STORED");
  memcacheds_[1]->Stop();
  // 300 live keys, then one on the dead backend: in the second window
  // (ProxySession::kRetrievalWindow keys each).
  constexpr size_t kWindow = 256;
  ASSERT_TRUE(c->Send(
      absl::StrCat("get ", absl::StrJoin(live, " "), " ", dead[0], "\r\n")));
  for (size_t i = 0; i < kWindow; ++i) {
    ASSERT_EQ(c->ReadLine(), absl::StrCat("VALUE ", live[i], " 0 1"));
    ASSERT_EQ(c->ReadLine(), "v");
  }
  EXPECT_TRUE(absl::StartsWith(c->ReadLine(), "SERVER_ERROR backend"));
  // The connection goes on.
  EXPECT_EQ(c->Get(live[0]), "v");
}

}  // namespace
}  // namespace memshard
