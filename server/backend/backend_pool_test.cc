// BackendPool against real memcached processes (Debian's /usr/bin/memcached)
// started on free ports: every operation, placement, pipelining, and
// memshard as a backend. Failures: backend_pool_failure_test.cc.

#include "server/backend/backend_pool.h"

#include <libmemcached/memcached.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/backend/backend_pool_test_util.h"
#include "server/backend/backend_test_harness.h"
#include "testing/blocking_client.h"
#include "testing/memcached_process.h"
#include "testing/notification.h"
#include "testing/server_process.h"

namespace memshard {
namespace backend {
namespace {

using S = BackendStatus;

// --- Every operation, over meta and over text. ---

class BackendProtocolTest
    : public BackendPoolTest,
      public ::testing::WithParamInterface<BackendProtocol> {};

TEST_P(BackendProtocolTest, EveryOperation) {
  StartMemcacheds(1);
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port())};
  options.protocol = GetParam();
  const bool meta = GetParam() == BackendProtocol::kMeta;
  PoolHarness h(options);

  EXPECT_EQ(h.Call(Set("k", "value", 5, 100)).status, S::kStored);
  Result r = h.Call(Get("k"));
  EXPECT_EQ(r.status, S::kHit);
  EXPECT_EQ(r.value, "value");
  EXPECT_EQ(r.flags, 5u);
  if (meta) {
    EXPECT_GE(r.ttl, 98);
    EXPECT_LE(r.ttl, 100);
  } else {
    EXPECT_EQ(r.ttl, kTtlUnknown);
  }
  EXPECT_EQ(h.Call(Get("missing")).status, S::kMiss);
  EXPECT_EQ(h.Call(Set("forever", "x")).status, S::kStored);
  if (meta) {
    EXPECT_EQ(h.Call(Get("forever")).ttl, kTtlNever);
  }

  // gets / cas
  Result gets = h.Call(Op(BackendOp::kGets, "k"));
  EXPECT_EQ(gets.status, S::kHit);
  EXPECT_NE(gets.cas, 0u);
  BackendRequest cas = Set("k", "v2");
  cas.op = BackendOp::kCas;
  cas.cas = gets.cas;
  EXPECT_EQ(h.Call(cas).status, S::kStored);
  EXPECT_EQ(h.Call(cas).status, S::kExists);
  cas.key = "nope";
  EXPECT_EQ(h.Call(cas).status, S::kNotFound);

  // add / replace / append / prepend
  BackendRequest add = Set("k", "x");
  add.op = BackendOp::kAdd;
  EXPECT_EQ(h.Call(add).status, S::kNotStored);
  add.key = "fresh";
  EXPECT_EQ(h.Call(add).status, S::kStored);
  BackendRequest replace = Set("absent", "x");
  replace.op = BackendOp::kReplace;
  EXPECT_EQ(h.Call(replace).status, S::kNotStored);
  replace.key = "fresh";
  replace.value = "mid";
  EXPECT_EQ(h.Call(replace).status, S::kStored);
  BackendRequest append = Set("fresh", ">");
  append.op = BackendOp::kAppend;
  EXPECT_EQ(h.Call(append).status, S::kStored);
  BackendRequest prepend = Set("fresh", "<");
  prepend.op = BackendOp::kPrepend;
  EXPECT_EQ(h.Call(prepend).status, S::kStored);
  prepend.key = "absent";
  EXPECT_EQ(h.Call(prepend).status, S::kNotStored);
  EXPECT_EQ(h.Call(Get("fresh")).value, "<mid>");

  // incr / decr
  EXPECT_EQ(h.Call(Set("n", "10")).status, S::kStored);
  BackendRequest incr = Op(BackendOp::kIncr, "n");
  incr.delta = 5;
  r = h.Call(incr);
  EXPECT_EQ(r.status, S::kNumber);
  EXPECT_EQ(r.value, "15");
  BackendRequest decr = Op(BackendOp::kDecr, "n");
  decr.delta = 100;
  r = h.Call(decr);
  EXPECT_EQ(r.status, S::kNumber);
  EXPECT_EQ(r.value, "0");
  incr.key = "k";
  r = h.Call(incr);
  EXPECT_EQ(r.status, S::kClientError);
  EXPECT_EQ(r.value, "cannot increment or decrement non-numeric value");
  incr.key = "absent";
  EXPECT_EQ(h.Call(incr).status, S::kNotFound);

  // touch / gat / gats
  BackendRequest touch = Op(BackendOp::kTouch, "k");
  touch.exptime = 200;
  EXPECT_EQ(h.Call(touch).status, S::kTouched);
  if (meta) {
    EXPECT_GE(h.Call(Get("k")).ttl, 198);
  }
  touch.key = "absent";
  EXPECT_EQ(h.Call(touch).status, S::kNotFound);
  BackendRequest gat = Op(BackendOp::kGat, "k");
  gat.exptime = 300;
  r = h.Call(gat);
  EXPECT_EQ(r.status, S::kHit);
  EXPECT_EQ(r.value, "v2");
  if (meta) {
    EXPECT_GE(r.ttl, 298);
  }
  gat.op = BackendOp::kGats;
  r = h.Call(gat);
  EXPECT_EQ(r.status, S::kHit);
  EXPECT_NE(r.cas, 0u);
  gat.key = "absent";
  EXPECT_EQ(h.Call(gat).status, S::kMiss);

  // An exptime in the past expires at once.
  EXPECT_EQ(h.Call(Set("gone", "x", 0, -1)).status, S::kStored);
  EXPECT_EQ(h.Call(Get("gone")).status, S::kMiss);

  // delete
  EXPECT_EQ(h.Call(Op(BackendOp::kDelete, "k")).status, S::kDeleted);
  EXPECT_EQ(h.Call(Op(BackendOp::kDelete, "k")).status, S::kNotFound);
  EXPECT_EQ(h.Call(Get("k")).status, S::kMiss);

  // Empty and big values (the reply outgrows a pooled buffer).
  EXPECT_EQ(h.Call(Set("empty", "")).status, S::kStored);
  r = h.Call(Get("empty"));
  EXPECT_EQ(r.status, S::kHit);
  EXPECT_EQ(r.value, "");
  std::string big(700 * 1024, 'b');
  for (size_t i = 0; i < big.size(); i += 997) big[i] = 'a' + i % 26;
  EXPECT_EQ(h.Call(Set("big", big)).status, S::kStored);
  r = h.Call(Get("big"));
  EXPECT_EQ(r.status, S::kHit);
  EXPECT_TRUE(r.value == big);
  // Too big for memcached's 1 MB items: its error passes through.
  std::string huge(2 * 1024 * 1024, 'h');
  r = h.Call(Set("huge", huge));
  EXPECT_EQ(r.status, S::kServerError);
  EXPECT_EQ(h.Call(Get("k2")).status, S::kMiss);  // still in sync

  // version / flush_all
  r = h.Call(Op(BackendOp::kVersion, ""));
  EXPECT_EQ(r.status, S::kVersion);
  EXPECT_TRUE(absl::StartsWith(r.value, "1.")) << r.value;
  EXPECT_EQ(h.Call(Op(BackendOp::kFlushAll, "")).status, S::kOk);
  EXPECT_EQ(h.Call(Get("fresh")).status, S::kMiss);

  BackendSummary s = h.stats().Summarize(0);
  EXPECT_EQ(s.state, BackendState::kUp);
  EXPECT_EQ(s.errors, 0u);
  EXPECT_EQ(s.timeouts, 0u);
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_GT(s.requests, 30u);
  EXPECT_EQ(s.rtt_count, s.requests);
}

INSTANTIATE_TEST_SUITE_P(Protocols, BackendProtocolTest,
                         ::testing::Values(BackendProtocol::kMeta,
                                           BackendProtocol::kText),
                         [](const auto& info) {
                           return info.param == BackendProtocol::kMeta ? "Meta"
                                                                       : "Text";
                         });

// --- Placement and multigets across three weighted backends. ---

class ThreeBackendsTest : public BackendPoolTest {
 protected:
  void SetUp() override {
    BackendPoolTest::SetUp();
    if (IsSkipped()) return;
    StartMemcacheds(3);
    options_.backends = {Local(memcacheds_[0]->port(), 1),
                         Local(memcacheds_[1]->port(), 2),
                         Local(memcacheds_[2]->port(), 5)};
  }

  BackendOptions options_;
};

TEST_F(ThreeBackendsTest, KeysLiveWhereTheRingSaysAndMultigetKeepsOrder) {
  PoolHarness h(options_);
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) keys.push_back(absl::StrCat("key:", i));
  std::vector<std::string> values;
  for (const std::string& k : keys) values.push_back("v-" + k);
  std::vector<BackendRequest> sets;
  for (size_t i = 0; i < keys.size(); ++i)
    sets.push_back(Set(keys[i], values[i]));
  for (const Result& r : h.Call(sets)) ASSERT_EQ(r.status, S::kStored);

  // Each key is on exactly the backend the ring names.
  std::vector<std::unique_ptr<BlockingClient>> direct;
  for (auto& m : memcacheds_) {
    auto c = m->Connect();
    ASSERT_TRUE(c.ok());
    direct.push_back(std::move(*c));
  }
  std::vector<int> per_backend(3);
  h.OnWorker([&](BackendPool& pool) {
    for (size_t i = 0; i < keys.size(); ++i) {
      ++per_backend[pool.BackendFor(keys[i])];
    }
  });
  int checked = 0;
  h.OnWorker([&](BackendPool& pool) {
    for (size_t i = 0; i < keys.size(); i += 7) {
      int owner = pool.BackendFor(keys[i]);
      for (int b = 0; b < 3; ++b) {
        std::optional<std::string> v = direct[b]->Get(keys[i]);
        EXPECT_EQ(v.has_value(), b == owner) << keys[i];
      }
      ++checked;
    }
  });
  EXPECT_GT(checked, 40);
  for (int n : per_backend) EXPECT_GT(n, 20);  // all three are used

  // A multiget (with misses and a repeated key) comes back in key order.
  std::vector<std::string> wanted;
  for (int i = 299; i >= 0; i -= 3) {
    wanted.push_back(keys[i]);
    if (i % 30 == 0) wanted.push_back(absl::StrCat("absent:", i));
  }
  wanted.push_back(keys[0]);
  wanted.push_back(keys[0]);

  struct Assembler : ReplySink {
    explicit Assembler(size_t n) : collector(n) {}
    void OnBackendReply(uint64_t tag, const BackendReply& reply) override {
      std::lock_guard<std::mutex> lock(mu);
      if (collector.Set(tag, reply)) done.Notify();
    }
    std::mutex mu;
    RetrievalCollector collector ABSL_GUARDED_BY(mu);
    Notification done;
  } assembler(wanted.size());
  h.OnWorker([&](BackendPool& pool) {
    for (size_t i = 0; i < wanted.size(); ++i) {
      BackendStatus failure;
      ASSERT_TRUE(pool.Send(Get(wanted[i]), 0, &assembler, i, &failure));
    }
  });
  ASSERT_TRUE(assembler.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::lock_guard<std::mutex> lock(assembler.mu);
  for (size_t i = 0; i < wanted.size(); ++i) {
    const RetrievalCollector::Entry& e = assembler.collector.entry(i);
    EXPECT_TRUE(e.done);
    if (absl::StartsWith(wanted[i], "absent:")) {
      EXPECT_EQ(e.status, S::kMiss) << wanted[i];
    } else {
      EXPECT_EQ(e.status, S::kHit) << wanted[i];
      EXPECT_EQ(e.value, "v-" + wanted[i]);
    }
  }
}

// Keys written by libmemcached (weighted ketama) straight to the three
// memcacheds are hits through the pool, and the reverse.
TEST_F(ThreeBackendsTest, PlacementParityWithLibmemcached) {
  memcached_st* memc = memcached_create(nullptr);
  ASSERT_EQ(memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
            MEMCACHED_SUCCESS);
  for (const BackendAddress& a : options_.backends) {
    ASSERT_EQ(memcached_server_add_with_weight(memc, a.host.c_str(), a.port,
                                               a.weight),
              MEMCACHED_SUCCESS);
  }
  PoolHarness h(options_);
  const int kKeys = 1000;
  std::vector<std::string> theirs, ours;
  for (int i = 0; i < kKeys; ++i) {
    theirs.push_back(absl::StrCat("libmemcached:", i));
    ours.push_back(absl::StrCat("memshard:", i));
  }
  for (const std::string& k : theirs) {
    ASSERT_EQ(memcached_set(memc, k.data(), k.size(), k.data(), k.size(), 0, 0),
              MEMCACHED_SUCCESS);
  }
  std::vector<BackendRequest> gets, sets;
  for (const std::string& k : theirs) gets.push_back(Get(k));
  for (const std::string& k : ours) sets.push_back(Set(k, k));
  int hits = 0;
  for (const Result& r : h.Call(gets)) hits += r.status == S::kHit;
  EXPECT_EQ(hits, kKeys);
  for (const Result& r : h.Call(sets)) ASSERT_EQ(r.status, S::kStored);
  int found = 0;
  for (const std::string& k : ours) {
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

// --- Pipelining and its bound. ---

TEST_F(BackendPoolTest, PipelinesThousandsOfRequestsOnOneConnection) {
  StartMemcacheds(1);
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port())};
  options.max_in_flight = 20000;
  PoolHarness h(options);
  const int kN = 5000;
  std::vector<std::string> keys;
  for (int i = 0; i < kN; ++i) keys.push_back(absl::StrCat("p", i));
  std::vector<BackendRequest> batch;
  for (int i = 0; i < kN; ++i) {
    batch.push_back(Set(keys[i], keys[i]));
    batch.push_back(Get(keys[i]));
  }
  std::vector<Result> results = h.Call(batch);
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(results[2 * i].status, S::kStored);
    ASSERT_EQ(results[2 * i + 1].status, S::kHit);
    ASSERT_EQ(results[2 * i + 1].value, keys[i]);
  }
}

TEST_F(BackendPoolTest, InFlightLimitAnswersBusy) {
  StartMemcacheds(1);
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port())};
  options.max_in_flight = 10;
  PoolHarness h(options);
  std::vector<BackendRequest> batch(25, Get("x"));
  std::vector<Result> results = h.Call(batch);
  for (int i = 0; i < 25; ++i) {
    if (i < 10) {
      EXPECT_EQ(results[i].status, S::kMiss);
    } else {
      EXPECT_EQ(results[i].status, S::kBusy);
      EXPECT_TRUE(results[i].refused);
    }
  }
  // Once they are answered there is room again.
  EXPECT_EQ(h.Call(Get("x")).status, S::kMiss);
}

// crowded(): some connection holds three quarters of max_in_flight (here
// 6 of 8), counted as requests are sent and answered.
TEST_F(BackendPoolTest, CrowdedFromThreeQuartersOfTheInFlightLimit) {
  StartMemcacheds(1);
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port())};
  options.max_in_flight = 8;
  PoolHarness h(options);
  CollectingSink sink(6);
  std::vector<bool> crowded;
  h.OnWorker([&](BackendPool& pool) {
    EXPECT_EQ(pool.crowd_threshold(), 6u);
    for (int i = 0; i < 6; ++i) {
      crowded.push_back(pool.crowded());
      BackendStatus failure;
      ASSERT_TRUE(pool.Send(Get("c"), 0, &sink, i, &failure));
    }
    crowded.push_back(pool.crowded());
  });
  EXPECT_EQ(crowded, std::vector<bool>(
                         {false, false, false, false, false, false, true}));
  ASSERT_TRUE(sink.Wait(absl::Seconds(5)));
  bool after = true;
  h.OnWorker([&](BackendPool& pool) { after = pool.crowded(); });
  EXPECT_FALSE(after);
}

TEST_F(BackendPoolTest, CancelledRepliesAreDropped) {
  StartMemcacheds(1);
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port())};
  PoolHarness h(options);
  CollectingSink cancelled(100);
  h.OnWorker([&](BackendPool& pool) {
    for (int i = 0; i < 100; ++i) {
      BackendStatus failure;
      ASSERT_TRUE(pool.Send(Get("c"), 0, &cancelled, i, &failure));
    }
    pool.Cancel(&cancelled);
  });
  // Later requests on the same connection still get their own replies.
  EXPECT_EQ(h.Call(Set("c", "after")).status, S::kStored);
  EXPECT_EQ(h.Call(Get("c")).value, "after");
  EXPECT_EQ(cancelled.answered(), 0u);
  EXPECT_EQ(h.stats().Summarize(0).in_flight, 0);
}

// Several connections per backend: each affinity keeps its order.
TEST_F(BackendPoolTest, AffinityKeepsOneClientsRequestsInOrder) {
  StartMemcacheds(1);
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port())};
  options.connections = 4;
  PoolHarness h(options);
  for (uint32_t affinity = 0; affinity < 8; ++affinity) {
    std::string key = absl::StrCat("a", affinity);
    std::vector<std::string> values;
    for (int i = 0; i < 50; ++i) values.push_back(absl::StrCat(i));
    std::vector<BackendRequest> batch;
    for (int i = 0; i < 50; ++i) {
      batch.push_back(Set(key, values[i]));
      batch.push_back(Get(key));
    }
    std::vector<Result> results = h.Call(batch, affinity);
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(results[2 * i + 1].value, values[i]);
    }
  }
}

// memshard itself as a backend, over a unix socket, in text.
TEST(BackendPoolMemshardTest, MemshardOverUnixSocket) {
  std::string path = TestTempPath("memshard_backend.sock");
  auto memshard = ServerProcess::StartMemshard(
      {absl::StrCat("--unix_socket=", path), "--workers=1"});
  ASSERT_TRUE(memshard.ok()) << memshard.status();
  BackendOptions options;
  BackendAddress a;
  a.host = path;
  options.backends = {a};
  options.protocol = BackendProtocol::kText;
  PoolHarness h(options);
  EXPECT_EQ(h.Call(Set("u", "over-unix", 3)).status, S::kStored);
  Result r = h.Call(Get("u"));
  EXPECT_EQ(r.status, S::kHit);
  EXPECT_EQ(r.value, "over-unix");
  EXPECT_EQ(r.flags, 3u);
  auto c = (*memshard)->Connect();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Get("u"), "over-unix");
}

}  // namespace
}  // namespace backend
}  // namespace memshard
