// memshard --mode=proxy in front of real memcached backends (Debian's
// /usr/bin/memcached on free ports): placement parity with libmemcached,
// multigets across backends, the text, meta and binary protocols, and
// backend failures (error and eject policies, dead and silent backends).

#include <libmemcached/memcached.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/socket.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

// memcached on a given port (a restart on the port it had before).
absl::StatusOr<std::unique_ptr<ServerProcess>> MemcachedOnPort(int port) {
  ServerProcess::Options options;
  options.binary = MemcachedProcess::kBinary;
  options.port = port;
  options.start_timeout = absl::Seconds(5);
  options.stop_signal = SIGKILL;
  options.args = {"-p", absl::StrCat(port), "-U", "0", "-l", "127.0.0.1"};
  if (geteuid() == 0) {
    options.args.push_back("-u");
    options.args.push_back("root");
  }
  return ServerProcess::Start(std::move(options));
}

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  }

  // Starts `weights.size()` memcacheds and memshard --mode=proxy over them.
  void Start(const std::vector<int>& weights,
             const std::vector<std::string>& extra = {}) {
    std::vector<std::string> backends;
    for (size_t i = 0; i < weights.size(); ++i) {
      auto m = MemcachedProcess::Start();
      ASSERT_TRUE(m.ok()) << m.status();
      backends.push_back(
          absl::StrCat("127.0.0.1:", (*m)->port(), ":", weights[i]));
      weights_.push_back(weights[i]);
      memcacheds_.push_back(*std::move(m));
    }
    std::vector<std::string> args = {
        "--workers=2", "--mode=proxy",
        absl::StrCat("--backends=", absl::StrJoin(backends, ","))};
    args.insert(args.end(), extra.begin(), extra.end());
    auto memshard = ServerProcess::StartMemshard(args);
    ASSERT_TRUE(memshard.ok()) << memshard.status();
    memshard_ = *std::move(memshard);
  }

  std::unique_ptr<BlockingClient> Client() {
    auto c = memshard_->Connect();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
  std::unique_ptr<BlockingClient> Direct(int backend) {
    auto c = memcacheds_[backend]->Connect();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // libmemcached with weighted ketama over the same backends.
  memcached_st* Libmemcached() {
    memcached_st* memc = memcached_create(nullptr);
    EXPECT_EQ(
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
        MEMCACHED_SUCCESS);
    for (size_t i = 0; i < memcacheds_.size(); ++i) {
      EXPECT_EQ(memcached_server_add_with_weight(
                    memc, "127.0.0.1", memcacheds_[i]->port(), weights_[i]),
                MEMCACHED_SUCCESS);
    }
    return memc;
  }

  // The backend libmemcached would place `key` on.
  int Owner(memcached_st* memc, absl::string_view key) {
    memcached_return_t rc;
    const memcached_instance_st* server =
        memcached_server_by_key(memc, key.data(), key.size(), &rc);
    for (size_t i = 0; i < memcacheds_.size(); ++i) {
      if (memcached_server_port(server) ==
          static_cast<in_port_t>(memcacheds_[i]->port())) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  std::vector<int> weights_;
  std::vector<std::unique_ptr<ServerProcess>> memcacheds_;
  std::unique_ptr<ServerProcess> memshard_;
};

TEST_F(ProxyTest, TextCommandsGoToTheBackends) {
  Start({1, 2, 3});
  auto c = Client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Set("a", "alpha", 5), "STORED");
  EXPECT_EQ(c->Get("a"), "alpha");
  EXPECT_EQ(c->Get("missing"), std::nullopt);

  // gets / cas go to the same backend.
  ASSERT_TRUE(c->Send("gets a\r\n"));
  std::string value_line = c->ReadLine();
  ASSERT_TRUE(absl::StartsWith(value_line, "VALUE a 5 5 ")) << value_line;
  std::string cas = value_line.substr(12);
  EXPECT_EQ(c->ReadLine(), "alpha");
  EXPECT_EQ(c->ReadLine(), "END");
  EXPECT_EQ(c->Command(absl::StrCat("cas a 0 0 1 ", cas, "\r\nb")), "STORED");
  EXPECT_EQ(c->Command(absl::StrCat("cas a 0 0 1 ", cas, "\r\nc")), "EXISTS");

  EXPECT_EQ(c->Command("add a 0 0 1\r\nx"), "NOT_STORED");
  EXPECT_EQ(c->Command("replace nope 0 0 1\r\nx"), "NOT_STORED");
  EXPECT_EQ(c->Command("append a 0 0 2\r\n!!"), "STORED");
  EXPECT_EQ(c->Get("a"), "b!!");
  EXPECT_EQ(c->Set("n", "41"), "STORED");
  EXPECT_EQ(c->Command("incr n 1"), "42");
  EXPECT_EQ(c->Command("decr n 100"), "0");
  EXPECT_EQ(c->Command("incr a 1"),
            "CLIENT_ERROR cannot increment or decrement non-numeric value");
  EXPECT_EQ(c->Command("incr nope 1"), "NOT_FOUND");
  EXPECT_EQ(c->Command("touch a 100"), "TOUCHED");
  EXPECT_EQ(c->Command("touch nope 100"), "NOT_FOUND");
  ASSERT_TRUE(c->Send("gat 100 a nope\r\n"));
  EXPECT_EQ(c->ReadLine(), "VALUE a 0 3");
  EXPECT_EQ(c->ReadLine(), "b!!");
  EXPECT_EQ(c->ReadLine(), "END");
  EXPECT_EQ(c->Delete("a"), "DELETED");
  EXPECT_EQ(c->Delete("a"), "NOT_FOUND");
  EXPECT_TRUE(absl::StartsWith(c->Command("version"), "VERSION "));
  EXPECT_EQ(c->Command("verbosity 1"), "OK");
  // noreply: nothing comes back, and the next reply is the next request's.
  ASSERT_TRUE(c->Send("set q 0 0 1 noreply\r\nq\r\ndelete nope noreply\r\n"));
  EXPECT_EQ(c->Get("q"), "q");

  EXPECT_EQ(c->Set("f", "x"), "STORED");
  EXPECT_EQ(c->Command("flush_all"), "OK");
  EXPECT_EQ(c->Get("f"), std::nullopt);
  for (int b = 0; b < 3; ++b) {
    auto d = Direct(b);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->Get("n"), std::nullopt);
  }
  EXPECT_EQ(c->Command("bogus"), "ERROR");
}

// Keys written by libmemcached (weighted ketama) straight to the three
// memcacheds are hits through memshard, and the reverse.
TEST_F(ProxyTest, PlacementParityWithLibmemcached) {
  Start({1, 3, 2});
  memcached_st* memc = Libmemcached();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  const int kKeys = 2000;
  for (int i = 0; i < kKeys; ++i) {
    std::string k = absl::StrCat("libmemcached:", i);
    ASSERT_EQ(memcached_set(memc, k.data(), k.size(), k.data(), k.size(), 0, 0),
              MEMCACHED_SUCCESS);
  }
  // Pipelined in batches.
  int hits = 0;
  for (int i = 0; i < kKeys; i += 100) {
    std::vector<std::string> keys;
    for (int j = i; j < i + 100; ++j) {
      keys.push_back(absl::StrCat("libmemcached:", j));
    }
    ASSERT_TRUE(
        c->Send(absl::StrCat("get ", absl::StrJoin(keys, " "), "\r\n")));
    for (;;) {
      std::string line = c->ReadLine();
      if (line == "END" || line.empty()) break;
      ++hits;
      c->ReadLine();
    }
  }
  EXPECT_EQ(hits, kKeys);
  std::string batch;
  for (int i = 0; i < kKeys; ++i) {
    std::string k = absl::StrCat("memshard:", i);
    absl::StrAppend(&batch, "set ", k, " 0 0 ", k.size(), " noreply\r\n", k,
                    "\r\n");
  }
  ASSERT_TRUE(c->Send(batch));
  EXPECT_TRUE(absl::StartsWith(c->Command("version"), "VERSION"));
  int found = 0;
  for (int i = 0; i < kKeys; ++i) {
    std::string k = absl::StrCat("memshard:", i);
    size_t len = 0;
    uint32_t flags = 0;
    memcached_return_t rc;
    char* v = memcached_get(memc, k.data(), k.size(), &len, &flags, &rc);
    if (rc == MEMCACHED_SUCCESS && std::string(v, len) == k) ++found;
    free(v);
  }
  EXPECT_EQ(found, kKeys);
  memcached_free(memc);
}

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

TEST_F(ProxyTest, MetaCommandsAreRelayed) {
  Start({1, 2});
  auto c = Client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Command("ms mk 2 F3 T100 c\r\nhi").substr(0, 4), "HD c");
  ASSERT_TRUE(c->Send("mg mk v f t k Oxy\r\n"));
  EXPECT_EQ(c->ReadLine(), "VA 2 f3 t100 kmk Oxy");
  EXPECT_EQ(c->ReadLine(), "hi");
  // q hides the nominal replies (HD of ms, EN of mg), in order; mn ends it.
  ASSERT_TRUE(
      c->Send("ms mq 1 q\r\nx\r\nmg nope v q\r\nmg mq v q\r\nmd nope q\r\n"
              "mn\r\n"));
  EXPECT_EQ(c->ReadLine(), "VA 1");
  EXPECT_EQ(c->ReadLine(), "x");
  EXPECT_EQ(c->ReadLine(), "NF");
  EXPECT_EQ(c->ReadLine(), "MN");
  EXPECT_EQ(c->Command("ma cnt N0 J5 v"), "VA 1");
  EXPECT_EQ(c->ReadLine(), "5");
  // base64 keys are placed by the decoded key: text sees the same item.
  EXPECT_EQ(c->Command("ms YjY0 2 b\r\nok"), "HD");
  EXPECT_EQ(c->Get("b64"), "ok");
  // Everything reached a backend.
  auto d0 = Direct(0);
  auto d1 = Direct(1);
  EXPECT_TRUE(d0->Get("mk").has_value() || d1->Get("mk").has_value());
}

// A hand-made binary client: header + extras + key + value.
std::string BinaryPacket(uint8_t opcode, absl::string_view key,
                         absl::string_view extras, absl::string_view value,
                         uint32_t opaque) {
  std::string p(24, '\0');
  p[0] = static_cast<char>(0x80);
  p[1] = static_cast<char>(opcode);
  absl::big_endian::Store16(&p[2], static_cast<uint16_t>(key.size()));
  p[4] = static_cast<char>(extras.size());
  absl::big_endian::Store32(
      &p[8], static_cast<uint32_t>(extras.size() + key.size() + value.size()));
  memcpy(&p[12], &opaque, 4);
  p.append(extras.data(), extras.size());
  p.append(key.data(), key.size());
  p.append(value.data(), value.size());
  return p;
}

struct BinaryResponse {
  uint8_t opcode = 0;
  uint16_t status = 0;
  uint32_t opaque = 0;
  uint64_t cas = 0;
  std::string key;
  std::string value;
};

BinaryResponse ReadBinary(BlockingClient& c) {
  BinaryResponse r;
  std::string h = c.ReadExactly(24);
  if (h.size() != 24) return r;
  r.opcode = static_cast<uint8_t>(h[1]);
  const uint16_t key_length = absl::big_endian::Load16(&h[2]);
  const uint8_t extras = static_cast<uint8_t>(h[4]);
  r.status = absl::big_endian::Load16(&h[6]);
  const uint32_t body = absl::big_endian::Load32(&h[8]);
  memcpy(&r.opaque, &h[12], 4);
  r.cas = absl::big_endian::Load64(&h[16]);
  std::string b = c.ReadExactly(body);
  r.key = b.substr(extras, key_length);
  r.value = b.substr(extras + key_length);
  return r;
}

TEST_F(ProxyTest, BinaryCommandsAreTranslated) {
  Start({1, 1});
  auto c = Client();
  ASSERT_NE(c, nullptr);
  std::string set_extras(8, '\0');
  absl::big_endian::Store32(&set_extras[0], 7);  // flags
  ASSERT_TRUE(c->Send(BinaryPacket(0x01, "bk", set_extras, "bin", 1)));
  BinaryResponse r = ReadBinary(*c);
  EXPECT_EQ(r.opcode, 0x01);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.opaque, 1u);
  // GetKQ hit, GetKQ miss (silent), GetK miss, Noop: in order.
  ASSERT_TRUE(c->Send(BinaryPacket(0x0d, "bk", "", "", 2) +
                      BinaryPacket(0x0d, "nope", "", "", 3) +
                      BinaryPacket(0x0c, "nope", "", "", 4) +
                      BinaryPacket(0x0a, "", "", "", 5)));
  r = ReadBinary(*c);
  EXPECT_EQ(r.opaque, 2u);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.key, "bk");
  EXPECT_EQ(r.value, "bin");
  r = ReadBinary(*c);
  EXPECT_EQ(r.opaque, 4u);
  EXPECT_EQ(r.status, 1);  // not found
  EXPECT_EQ(r.key, "nope");
  r = ReadBinary(*c);
  EXPECT_EQ(r.opcode, 0x0a);
  EXPECT_EQ(r.opaque, 5u);
  // Increment creates with the initial value, then adds; each reply
  // carries the item's new CAS, as memcached's does (memccapable checks).
  std::string incr_extras(20, '\0');
  absl::big_endian::Store64(&incr_extras[0], 3);   // delta
  absl::big_endian::Store64(&incr_extras[8], 10);  // initial
  ASSERT_TRUE(c->Send(BinaryPacket(0x05, "bn", incr_extras, "", 6)));
  r = ReadBinary(*c);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(absl::big_endian::Load64(r.value.data()), 10u);
  const uint64_t created_cas = r.cas;
  EXPECT_NE(created_cas, 0u);
  ASSERT_TRUE(c->Send(BinaryPacket(0x05, "bn", incr_extras, "", 7)));
  r = ReadBinary(*c);
  EXPECT_EQ(absl::big_endian::Load64(r.value.data()), 13u);
  EXPECT_NE(r.cas, 0u);
  EXPECT_NE(r.cas, created_cas);
  auto text = Client();  // a connection speaks one protocol
  ASSERT_NE(text, nullptr);
  ASSERT_TRUE(text->Send("gets bn\r\n"));
  EXPECT_EQ(text->ReadLine(), absl::StrCat("VALUE bn 0 2 ", r.cas));
  EXPECT_EQ(text->ReadLine(), "13");
  EXPECT_EQ(text->ReadLine(), "END");
  // Delete, then Get misses.
  ASSERT_TRUE(c->Send(BinaryPacket(0x04, "bk", "", "", 8) +
                      BinaryPacket(0x00, "bk", "", "", 9)));
  r = ReadBinary(*c);
  EXPECT_EQ(r.status, 0);
  r = ReadBinary(*c);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.value, "Not found");
}

TEST_F(ProxyTest, TextBackendProtocol) {
  Start({1, 2}, {"--backend_protocol=text"});
  auto c = Client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Set("t", "text", 9), "STORED");
  ASSERT_TRUE(c->Send("gets t\r\n"));
  EXPECT_TRUE(absl::StartsWith(c->ReadLine(), "VALUE t 9 4 "));
  EXPECT_EQ(c->ReadLine(), "text");
  EXPECT_EQ(c->ReadLine(), "END");
  EXPECT_EQ(c->Command("mg t v"),
            "SERVER_ERROR meta commands need --backend_protocol=meta");
}

// --backend_failure=error: a dead backend's keys fail fast, the others are
// unaffected, nothing hangs; when it is back, so is its traffic.
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

TEST_F(ProxyTest, DeadBackendErrorsThenRecovers) {
  Start({1, 1, 1}, {"--backend_retry_ms=200", "--backend_timeout_ms=1000"});
  memcached_st* memc = Libmemcached();
  std::vector<std::string> keys;
  std::vector<int> owner;
  for (int i = 0; i < 60; ++i) {
    keys.push_back(absl::StrCat("dead:", i));
    owner.push_back(Owner(memc, keys.back()));
  }
  memcached_free(memc);
  auto c = Client();
  ASSERT_NE(c, nullptr);
  for (const std::string& k : keys) ASSERT_EQ(c->Set(k, k), "STORED");

  const int dead_port = memcacheds_[2]->port();
  memcacheds_[2]->Stop();
  // Mixed requests from several clients at once.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto client = memshard_->Connect();
      if (!client.ok()) {
        ++failures;
        return;
      }
      for (int round = 0; round < 5; ++round) {
        for (size_t i = t; i < keys.size(); i += 4) {
          const absl::Time start = absl::Now();
          std::string reply = (round % 2 == 0)
                                  ? (*client)->Command("get " + keys[i])
                                  : (*client)->Command(absl::StrCat(
                                        "set ", keys[i], " 0 0 1\r\nx"));
          if (reply.empty()) ++failures;  // timeout: a hang
          if (absl::Now() - start > absl::Seconds(2)) ++failures;
          if (owner[i] == 2) {
            if (!absl::StartsWith(reply, "SERVER_ERROR backend")) ++failures;
          } else if (absl::StartsWith(reply, "SERVER_ERROR")) {
            ++failures;
          }
          if (round % 2 == 0 && absl::StartsWith(reply, "VALUE")) {
            (*client)->ReadLine();
            (*client)->ReadLine();
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);

  auto restarted = MemcachedOnPort(dead_port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  size_t k2 = 0;
  while (owner[k2] != 2) ++k2;
  std::string reply;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    reply = c->Command(absl::StrCat("set ", keys[k2], " 0 0 4\r\nback"));
    if (reply == "STORED") break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  EXPECT_EQ(reply, "STORED");
  EXPECT_EQ((*restarted)->Connect().value()->Get(keys[k2]), "back");
}

// --backend_failure=eject: a killed backend leaves the ring and its keys
// move to the others; restarted, it answers the probe and gets them back.
TEST_F(ProxyTest, KilledBackendIsEjectedAndRestored) {
  Start({1, 1}, {"--backend_failure=eject", "--backend_failure_limit=2",
                 "--backend_retry_ms=200", "--workers=1"});
  memcached_st* memc = Libmemcached();
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    std::string k = absl::StrCat("ej", i);
    if (Owner(memc, k) == 1) key = k;
  }
  memcached_free(memc);
  auto c = Client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Set(key, "on-b"), "STORED");
  const int port_b = memcacheds_[1]->port();
  memcacheds_[1]->Stop();
  std::string reply;
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    reply = c->Command(absl::StrCat("set ", key, " 0 0 4\r\non-a"));
    if (reply == "STORED") break;
    EXPECT_TRUE(absl::StartsWith(reply, "SERVER_ERROR backend")) << reply;
    absl::SleepFor(absl::Milliseconds(10));
  } while (absl::Now() < deadline);
  ASSERT_EQ(reply, "STORED");
  EXPECT_EQ(Direct(0)->Get(key), "on-a");
  StatsMap stats = memshard_->Stats("backends");
  EXPECT_EQ(stats["backend:1:state"], "ejected");
  EXPECT_EQ(stats["backend:1:ejections"], "1");

  auto restarted = MemcachedOnPort(port_b);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  // Back in the ring: the key is looked up on the fresh (empty) B again.
  deadline = absl::Now() + absl::Seconds(5);
  std::optional<std::string> v;
  do {
    v = c->Get(key);
    if (!v.has_value()) break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  EXPECT_EQ(v, std::nullopt);
  EXPECT_EQ(memshard_->Stats("backends")["backend:1:state"], "up");
}

// A backend that accepts but never answers: requests for its keys time out
// within --backend_timeout_ms; other keys are unaffected.
TEST_F(ProxyTest, SilentBackendTimesOut) {
  if (!MemcachedProcess::IsInstalled()) GTEST_SKIP();
  auto m = MemcachedProcess::Start();
  ASSERT_TRUE(m.ok());
  memcacheds_.push_back(*std::move(m));
  absl::StatusOr<int> silent = ListenTcp("127.0.0.1", 0, false, 64);
  ASSERT_TRUE(silent.ok());
  const int silent_port = BoundPort(*silent).value();
  auto memshard = ServerProcess::StartMemshard(
      {"--workers=1", "--mode=proxy", "--backend_timeout_ms=300",
       absl::StrCat("--backends=127.0.0.1:", memcacheds_[0]->port(),
                    ",127.0.0.1:", silent_port)});
  ASSERT_TRUE(memshard.ok()) << memshard.status();
  memshard_ = *std::move(memshard);
  weights_ = {1, 1};
  memcached_st* memc = memcached_create(nullptr);
  memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
  memcached_server_add_with_weight(memc, "127.0.0.1", memcacheds_[0]->port(),
                                   1);
  memcached_server_add_with_weight(memc, "127.0.0.1", silent_port, 1);
  std::string silent_key, live_key;
  for (int i = 0; silent_key.empty() || live_key.empty(); ++i) {
    std::string k = absl::StrCat("s", i);
    memcached_return_t rc;
    const memcached_instance_st* s =
        memcached_server_by_key(memc, k.data(), k.size(), &rc);
    (memcached_server_port(s) == silent_port ? silent_key : live_key) = k;
  }
  memcached_free(memc);
  auto c = Client();
  ASSERT_NE(c, nullptr);
  const absl::Time start = absl::Now();
  EXPECT_EQ(c->Command("get " + silent_key), "SERVER_ERROR backend timeout");
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_EQ(c->Set(live_key, "fine"), "STORED");
  EXPECT_EQ(c->Get(live_key), "fine");
  close(*silent);
}

// memshard as a backend of memshard, over a unix socket.
TEST(ProxyChainTest, MemshardBackendOverUnixSocket) {
  const std::string path = TestTempPath("l2.sock");
  auto l2 = ServerProcess::StartMemshard(
      {"--workers=1", absl::StrCat("--unix_socket=", path)});
  ASSERT_TRUE(l2.ok()) << l2.status();
  auto proxy = ServerProcess::StartMemshard(
      {"--workers=1", "--mode=proxy", absl::StrCat("--backends=", path)});
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  auto c = (*proxy)->Connect();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Set("chain", "linked", 4, 100), "STORED");
  ASSERT_TRUE((*c)->Send("mg chain v f t\r\n"));
  EXPECT_EQ((*c)->ReadLine(), "VA 6 f4 t100");
  EXPECT_EQ((*c)->ReadLine(), "linked");
  EXPECT_EQ((*l2)->Connect().value()->Get("chain"), "linked");
}

TEST(ProxyFlagsTest, ProxyNeedsBackends) {
  auto m = ServerProcess::StartMemshard({"--mode=proxy"});
  EXPECT_FALSE(m.ok());
  auto bad = ServerProcess::StartMemshard(
      {"--mode=proxy", "--backends=127.0.0.1:11211:0"});
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace memshard
