// memshard --mode=proxy in front of real memcached backends (Debian's
// /usr/bin/memcached on free ports): placement parity with libmemcached,
// the text, meta and binary protocols, and backend failures (error and
// eject policies, dead and silent backends). Multigets and pipelining:
// proxy_multiget_integration_test.cc.

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
#include "absl/time/clock.h"
#include "core/socket.h"
#include "gtest/gtest.h"
#include "server/integration/proxy_fixture.h"
#include "testing/blocking_client.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

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

  auto restarted = MemcachedProcess::StartOnPort(dead_port);
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

  auto restarted = MemcachedProcess::StartOnPort(port_b);
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
