// BackendPool when backends fail: dead, silent, killed and restarted,
// hanging on connect, dying with requests in flight (real memcached
// processes on free ports, and sockets that misbehave on purpose).

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/socket.h"
#include "gtest/gtest.h"
#include "server/backend/backend_pool.h"
#include "server/backend/backend_pool_test_util.h"
#include "server/backend/backend_test_harness.h"
#include "testing/blocking_client.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace backend {
namespace {

using S = BackendStatus;

// The first of "<prefix>0", "<prefix>1", ... that the pool places on
// backend `backend`.
std::string KeyOwnedBy(PoolHarness& h, int backend, absl::string_view prefix) {
  std::string key;
  h.OnWorker([&](BackendPool& pool) {
    for (int i = 0; key.empty(); ++i) {
      std::string k = absl::StrCat(prefix, i);
      if (pool.BackendFor(k) == backend) key = k;
    }
  });
  return key;
}

TEST_F(BackendPoolTest, DeadBackendFailsFast) {
  absl::StatusOr<int> port = PickUnusedPort();
  ASSERT_TRUE(port.ok());
  BackendOptions options;
  options.backends = {Local(*port)};
  options.timeout = absl::Seconds(2);
  PoolHarness h(options);
  for (int i = 0; i < 20; ++i) {
    Result r = h.Call(Get("k"));
    EXPECT_EQ(r.status, S::kUnavailable);
    EXPECT_LT(r.elapsed, absl::Milliseconds(500));
  }
  BackendSummary s = h.stats().Summarize(0);
  EXPECT_EQ(s.state, BackendState::kDown);
  EXPECT_EQ(s.errors, 20u);
  EXPECT_EQ(s.in_flight, 0);
}

// A socket that accepts (in the kernel's backlog) but never answers.
TEST_F(BackendPoolTest, SilentBackendTimesOut) {
  absl::StatusOr<int> silent = ListenTcp("127.0.0.1", 0, false, 16);
  ASSERT_TRUE(silent.ok());
  absl::StatusOr<uint16_t> port = BoundPort(*silent);
  BackendOptions options;
  options.backends = {Local(*port)};
  options.timeout = absl::Milliseconds(200);
  PoolHarness h(options);
  std::vector<Result> results =
      h.Call(std::vector<BackendRequest>(5, Get("k")));
  for (const Result& r : results) {
    EXPECT_EQ(r.status, S::kTimeout);
    EXPECT_GE(r.elapsed, absl::Milliseconds(150));
    EXPECT_LT(r.elapsed, absl::Seconds(1));
  }
  BackendSummary s = h.stats().Summarize(0);
  EXPECT_EQ(s.timeouts, 5u);
  EXPECT_EQ(s.state, BackendState::kDown);
  EXPECT_EQ(s.in_flight, 0);
  close(*silent);
}

TEST_F(BackendPoolTest, SilentBackendIsEjectedAndItsKeysMove) {
  StartMemcacheds(1);
  absl::StatusOr<int> silent = ListenTcp("127.0.0.1", 0, false, 16);
  ASSERT_TRUE(silent.ok());
  absl::StatusOr<uint16_t> port = BoundPort(*silent);
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port()), Local(*port)};
  options.timeout = absl::Milliseconds(100);
  options.failure = FailurePolicy::kEject;
  options.failure_limit = 2;
  options.retry_interval = absl::Milliseconds(200);
  PoolHarness h(options);
  // A key the silent backend owns.
  const std::string key = KeyOwnedBy(h, 1, "s");
  Result r = h.CallUntil(
      Set(key, "moved"), [](const Result& r) { return r.status == S::kStored; },
      absl::Seconds(5));
  EXPECT_EQ(r.status, S::kStored);
  EXPECT_EQ(h.Call(Get(key)).value, "moved");
  auto direct = memcacheds_[0]->Connect();
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*direct)->Get(key), "moved");
  BackendSummary s = h.stats().Summarize(1);
  EXPECT_EQ(s.state, BackendState::kEjected);
  EXPECT_GE(s.ejections, 1u);
  EXPECT_GE(s.timeouts, 2u);
  // Probes keep timing out: it stays ejected.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(h.stats().Summarize(1).state, BackendState::kEjected);
  close(*silent);
}

// eject: a killed backend leaves the ring, its keys move; restarted, it
// answers the probe and gets its keys back.
TEST_F(BackendPoolTest, KilledBackendIsEjectedAndRestored) {
  StartMemcacheds(2);
  const int port_b = memcacheds_[1]->port();
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port()), Local(port_b)};
  options.failure = FailurePolicy::kEject;
  options.failure_limit = 3;
  options.retry_interval = absl::Milliseconds(200);
  PoolHarness h(options);
  const std::string key = KeyOwnedBy(h, 1, "b");
  EXPECT_EQ(h.Call(Set(key, "on-b")).status, S::kStored);

  memcacheds_[1]->Stop();
  Result r = h.CallUntil(
      Set(key, "on-a"), [](const Result& r) { return r.status == S::kStored; },
      absl::Seconds(5));
  ASSERT_EQ(r.status, S::kStored);
  EXPECT_EQ(h.stats().Summarize(1).state, BackendState::kEjected);
  auto a = memcacheds_[0]->Connect();
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->Get(key), "on-a");

  auto restarted = MemcachedProcess::StartOnPort(port_b);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  // Back in the ring: a miss from the fresh B, not a hit from A.
  r = h.CallUntil(
      Get(key), [](const Result& r) { return r.status == S::kMiss; },
      absl::Seconds(5));
  EXPECT_EQ(r.status, S::kMiss);
  BackendSummary s = h.stats().Summarize(1);
  EXPECT_EQ(s.state, BackendState::kUp);
  EXPECT_EQ(s.ejections, 1u);
}

// error: keys of a dead backend fail fast, the others are unaffected; when
// it comes back, so does its traffic.
TEST_F(BackendPoolTest, ErrorPolicyFailsItsKeysUntilTheBackendReturns) {
  StartMemcacheds(2);
  const int port_b = memcacheds_[1]->port();
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port()), Local(port_b)};
  options.retry_interval = absl::Milliseconds(200);
  options.timeout = absl::Seconds(2);
  PoolHarness h(options);
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) keys.push_back(absl::StrCat("e", i));
  std::vector<int> owner(keys.size());
  h.OnWorker([&](BackendPool& pool) {
    for (size_t i = 0; i < keys.size(); ++i)
      owner[i] = pool.BackendFor(keys[i]);
  });
  std::vector<BackendRequest> sets;
  for (const std::string& k : keys) sets.push_back(Set(k, k));
  for (const Result& r : h.Call(sets)) ASSERT_EQ(r.status, S::kStored);

  memcacheds_[1]->Stop();
  absl::SleepFor(absl::Milliseconds(50));
  std::vector<BackendRequest> gets;
  for (const std::string& k : keys) gets.push_back(Get(k));
  for (int round = 0; round < 3; ++round) {
    std::vector<Result> results = h.Call(gets);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (owner[i] == 1) {
        EXPECT_EQ(results[i].status, S::kUnavailable) << keys[i];
        EXPECT_LT(results[i].elapsed, absl::Seconds(1));
      } else {
        EXPECT_EQ(results[i].status, S::kHit) << keys[i];
      }
    }
  }
  EXPECT_EQ(h.stats().Summarize(1).state, BackendState::kDown);
  EXPECT_EQ(h.stats().Summarize(1).ejections, 0u);

  auto restarted = MemcachedProcess::StartOnPort(port_b);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  size_t b_key = 0;
  while (owner[b_key] != 1) ++b_key;
  Result r = h.CallUntil(
      Set(keys[b_key], "back"),
      [](const Result& r) { return r.status == S::kStored; }, absl::Seconds(5));
  EXPECT_EQ(r.status, S::kStored);
  EXPECT_EQ(h.Call(Get(keys[b_key])).value, "back");
  // The reconnect's version probe marks it healthy.
  absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (h.stats().Summarize(1).state != BackendState::kUp &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(h.stats().Summarize(1).state, BackendState::kUp);
}

// A listener whose accept queue is full drops our SYNs: the connect hangs
// and the connect timeout answers what was queued behind it.
TEST_F(BackendPoolTest, HangingConnectTimesOut) {
  absl::StatusOr<int> full = ListenTcp("127.0.0.1", 0, false, 0);
  ASSERT_TRUE(full.ok());
  absl::StatusOr<uint16_t> port = BoundPort(*full);
  // Fill the accept queue (backlog 0 still admits one).
  std::vector<std::unique_ptr<BlockingClient>> fillers;
  for (int i = 0; i < 3; ++i) {
    auto c = BlockingClient::ConnectTcp(*port, absl::Milliseconds(200));
    if (c.ok()) fillers.push_back(std::move(*c));
  }
  BackendOptions options;
  options.backends = {Local(*port)};
  options.connect_timeout = absl::Milliseconds(200);
  options.timeout = absl::Seconds(5);
  PoolHarness h(options);
  Result r = h.Call(Get("k"));
  if (r.refused) GTEST_SKIP() << "the kernel refused instead of dropping";
  EXPECT_EQ(r.status, S::kTimeout);
  EXPECT_LT(r.elapsed, absl::Seconds(1));
  EXPECT_EQ(h.stats().Summarize(0).state, BackendState::kDown);
  close(*full);
}

// Killed with requests in flight: they are answered (never left hanging).
TEST_F(BackendPoolTest, RequestsInFlightWhenTheBackendDiesAreAnswered) {
  StartMemcacheds(1);
  BackendOptions options;
  options.backends = {Local(memcacheds_[0]->port())};
  options.timeout = absl::Seconds(3);
  PoolHarness h(options);
  ASSERT_TRUE(memcacheds_[0]->Pause());
  CollectingSink sink(200);
  h.OnWorker([&](BackendPool& pool) {
    for (int i = 0; i < 200; ++i) {
      BackendStatus failure;
      if (!pool.Send(Get("k"), 0, &sink, i, &failure)) {
        sink.Refused(i, failure);
      }
    }
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(sink.answered(), 0u);
  memcacheds_[0]->Stop();  // SIGKILL: the kernel resets the connection
  ASSERT_TRUE(sink.Wait(absl::Seconds(2)));
  for (const Result& r : sink.results()) {
    EXPECT_EQ(r.status, S::kUnavailable);
    EXPECT_LT(r.elapsed, absl::Seconds(2));
  }
}

}  // namespace
}  // namespace backend
}  // namespace memshard
