// `stats` and its groups on the real memshard binary: the general fields
// match memcached's list, settings, reset, conns, workers and latency.

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/memcached_process.h"
#include "testing/memshard_fixture.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

double StatDouble(const StatsMap& stats, absl::string_view name) {
  auto it = stats.find(name);
  double value = -1;
  if (it == stats.end() || !absl::SimpleAtod(it->second, &value)) {
    ADD_FAILURE() << "stat " << name << " missing or not a number";
  }
  return value;
}

class StatsTest : public MemshardFixture {
 protected:
  std::unique_ptr<BlockingClient> Connect() {
    auto client = server_->Connect();
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }
};

// memcached_exporter and other tools read memcached's field names; every
// one memcached 1.6 prints must be there, as a number where memcached's is.
TEST_F(StatsTest, EveryGeneralFieldOfMemcachedIsThere) {
  if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  auto memcached = MemcachedProcess::Start();
  ASSERT_TRUE(memcached.ok()) << memcached.status();
  const StatsMap reference = (*memcached)->Stats();
  ASSERT_GT(reference.size(), 50u);
  ASSERT_NO_FATAL_FAILURE(Start());
  const StatsMap stats = server_->Stats();
  for (const auto& [name, value] : reference) {
    auto it = stats.find(name);
    if (it == stats.end()) {
      ADD_FAILURE() << "memshard's stats lack \"" << name << "\"";
      continue;
    }
    double ignored;
    if (absl::SimpleAtod(value, &ignored)) {
      EXPECT_TRUE(absl::SimpleAtod(it->second, &ignored))
          << name << " = " << it->second;
    }
  }
  EXPECT_EQ(StatInt(stats, "pid"), server_->pid());
  EXPECT_EQ(StatInt(stats, "threads"), 2);
  EXPECT_EQ(stats.at("libevent"), "none");
  EXPECT_EQ(StatInt(stats, "pointer_size"), 64);
  EXPECT_NEAR(StatInt(stats, "time"), absl::ToUnixSeconds(absl::Now()), 5);
  EXPECT_GE(StatDouble(stats, "rusage_user"), 0);
  EXPECT_EQ(StatInt(stats, "limit_maxbytes"), 64 << 20);
  EXPECT_EQ(StatInt(stats, "accepting_conns"), 1);
  // The server's own buffers: idle, but the stats connection borrowed one.
  EXPECT_EQ(StatInt(stats, "read_buf_bytes"),
            StatInt(stats, "read_buf_count") * 16384);
}

TEST_F(StatsTest, SettingsAreRealAndSpaceFree) {
  ASSERT_NO_FATAL_FAILURE(
      Start({"--workers=2", "--max_connections=777", "--max_item_size=2097152",
             "--memory_limit_mb=32"}));
  const StatsMap settings = server_->Stats("settings");
  EXPECT_EQ(StatInt(settings, "maxconns"), 777);
  EXPECT_EQ(StatInt(settings, "maxbytes"), 32 << 20);
  EXPECT_EQ(StatInt(settings, "item_size_max"), 2097152);
  EXPECT_EQ(StatInt(settings, "num_threads"), 2);
  EXPECT_EQ(StatInt(settings, "tcpport"), 0) << "--port=0 as configured";
  EXPECT_EQ(settings.at("evictions"), "on");
  for (const auto& [name, value] : settings) {
    // memcached_exporter splits "STAT name value" on spaces.
    EXPECT_FALSE(absl::StrContains(value, ' ')) << name << " = " << value;
    EXPECT_FALSE(value.empty()) << name;
  }
}

TEST_F(StatsTest, ResetClearsCountersAndLatencyButNotLevels) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Set("k", "v"), "STORED");
  EXPECT_EQ(client->Get("k"), "v");
  EXPECT_EQ(client->Get("missing"), std::nullopt);
  StatsMap before = client->Stats();
  ASSERT_EQ(StatInt(before, "cmd_get"), 2);

  EXPECT_EQ(client->Command("stats reset"), "RESET");
  StatsMap after = client->Stats();
  for (const char* counter : {"cmd_get", "cmd_set", "get_hits", "get_misses",
                              "total_items", "total_connections"}) {
    EXPECT_EQ(StatInt(after, counter), 0) << counter;
  }
  // Levels and process clocks stay.
  EXPECT_EQ(StatInt(after, "curr_items"), 1);
  EXPECT_GE(StatInt(after, "curr_connections"), 1);
  EXPECT_GE(StatInt(after, "uptime"), StatInt(before, "uptime"));
  EXPECT_GT(StatInt(after, "bytes_written"), 0) << "the reset reply itself";
  StatsMap latency = client->Stats("latency");
  EXPECT_EQ(StatInt(latency, "get:count"), 0);
  EXPECT_EQ(StatInt(latency, "set:count"), 0);
  StatsMap workers = client->Stats("workers");
  EXPECT_EQ(StatInt(workers, "0:cmd_get") + StatInt(workers, "1:cmd_get"), 0);

  // Counting goes on from the reset.
  EXPECT_EQ(client->Get("k"), "v");
  after = client->Stats();
  EXPECT_EQ(StatInt(after, "cmd_get"), 1);
  EXPECT_EQ(StatInt(after, "get_hits"), 1);
  EXPECT_EQ(StatInt(client->Stats("latency"), "get:count"), 1);
}

TEST_F(StatsTest, ConnsListsEveryConnectionWithItsAddress) {
  ASSERT_NO_FATAL_FAILURE(Start());
  std::vector<std::unique_ptr<BlockingClient>> clients =
      ConnectMany(server_->port(), 3, /*round_trip=*/true);
  ASSERT_EQ(clients.size(), 3u);
  const StatsMap conns = clients[0]->Stats("conns");
  std::vector<std::string> addresses;
  for (const auto& [name, value] : conns) {
    if (absl::EndsWith(name, ":addr")) addresses.push_back(value);
  }
  ASSERT_EQ(addresses.size(), 3u);
  for (auto& client : clients) {
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    ASSERT_EQ(
        getsockname(client->fd(), reinterpret_cast<sockaddr*>(&local), &len),
        0);
    const std::string expected =
        absl::StrCat("tcp:127.0.0.1:", ntohs(local.sin_port));
    EXPECT_NE(std::find(addresses.begin(), addresses.end(), expected),
              addresses.end())
        << expected;
  }
  for (const auto& [name, value] : conns) {
    if (absl::EndsWith(name, ":state")) {
      EXPECT_TRUE(value == "conn_waiting" || value == "conn_mwrite" ||
                  value == "conn_nread")
          << value;
    }
    if (absl::EndsWith(name, ":secs_since_last_cmd")) {
      int64_t idle = -1;
      EXPECT_TRUE(absl::SimpleAtoi(value, &idle) && idle >= 0 && idle < 10);
    }
    if (absl::EndsWith(name, ":worker")) {
      EXPECT_TRUE(value == "0" || value == "1") << value;
    }
  }
  // A closed connection leaves the list.
  clients.pop_back();
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  size_t listed = 3;
  while (listed != 2 && absl::Now() < deadline) {
    listed = 0;
    for (const auto& [name, value] : clients[0]->Stats("conns")) {
      if (absl::EndsWith(name, ":addr")) ++listed;
    }
  }
  EXPECT_EQ(listed, 2u);
}

TEST_F(StatsTest, WorkersAddUpToTheTotals) {
  ASSERT_NO_FATAL_FAILURE(Start());
  std::vector<std::unique_ptr<BlockingClient>> clients =
      ConnectMany(server_->port(), 8, /*round_trip=*/true);
  ASSERT_EQ(clients.size(), 8u);
  for (size_t i = 0; i < clients.size(); ++i) {
    EXPECT_EQ(clients[i]->Set(absl::StrCat("w", i), "value"), "STORED");
    EXPECT_EQ(clients[i]->Get(absl::StrCat("w", i)), "value");
  }
  // A worker that no connection landed on (SO_REUSEPORT hashes them) ends
  // its first loop iteration only when its timer fires, about a second in.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    const StatsMap workers = clients[0]->Stats("workers");
    if (StatInt(workers, "0:epochs") > 0 && StatInt(workers, "1:epochs") > 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  const StatsMap workers = clients[0]->Stats("workers");
  const StatsMap totals = clients[0]->Stats();
  for (const char* name : {"cmd_get", "cmd_set", "get_hits",
                           "total_connections", "curr_connections"}) {
    EXPECT_EQ(StatInt(workers, absl::StrCat("0:", name)) +
                  StatInt(workers, absl::StrCat("1:", name)),
              StatInt(totals, name))
        << name;
  }
  for (int w = 0; w < 2; ++w) {
    const std::string p = absl::StrCat(w, ":");
    EXPECT_GT(StatInt(workers, p + "epochs"), 0);
    EXPECT_GE(StatInt(workers, p + "buffers_allocated"),
              StatInt(workers, p + "buffers_in_use"));
    EXPECT_EQ(StatInt(workers, p + "buffer_bytes"),
              (StatInt(workers, p + "buffers_in_use") +
               StatInt(workers, p + "buffers_free")) *
                  16384);
  }
  // ops: every executed request (8 version round trips, 8 sets, 8 gets, and
  // the stats commands themselves).
  EXPECT_GE(StatInt(workers, "0:ops") + StatInt(workers, "1:ops"), 24);
}

TEST_F(StatsTest, LatencyCountsEveryRequestByFamily) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(client->Set(absl::StrCat("k", i), "1"), "STORED");
  }
  for (int i = 0; i < 10; ++i) client->Get(absl::StrCat("k", i % 7));
  EXPECT_EQ(client->Command("incr k0 2"), "3");
  EXPECT_EQ(client->Command("decr k0 1"), "2");
  EXPECT_EQ(client->Command("touch k1 100"), "TOUCHED");
  EXPECT_EQ(client->Delete("k2"), "DELETED");
  const StatsMap latency = client->Stats("latency");
  EXPECT_EQ(StatInt(latency, "get:count"), 10);
  EXPECT_EQ(StatInt(latency, "set:count"), 5);
  EXPECT_EQ(StatInt(latency, "incr_decr:count"), 2);
  EXPECT_EQ(StatInt(latency, "touch:count"), 1);
  EXPECT_EQ(StatInt(latency, "delete:count"), 1);
  EXPECT_EQ(StatInt(latency, "meta:count"), 0);
  for (const char* family : {"get", "set", "incr_decr", "touch", "delete"}) {
    const std::string f = family;
    const double p50 = StatDouble(latency, f + ":p50_us");
    const double p99 = StatDouble(latency, f + ":p99_us");
    const double max = StatDouble(latency, f + ":max_us");
    EXPECT_GT(p50, 0) << family;
    EXPECT_LE(p50, StatDouble(latency, f + ":p90_us")) << family;
    EXPECT_LE(p99, StatDouble(latency, f + ":p999_us")) << family;
    EXPECT_LE(StatDouble(latency, f + ":p999_us"), max) << family;
    EXPECT_LT(max, 10e6) << family << ": under 10 s";
  }
}

// A stat name with its slab class id taken out: "items:7:number" ->
// "items::number", "7:chunk_size" -> ":chunk_size".
std::string WithoutClass(absl::string_view name) {
  std::vector<std::string> parts = absl::StrSplit(name, ':');
  for (std::string& part : parts) {
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
          return c >= '0' && c <= '9';
        })) {
      part.clear();
    }
  }
  return absl::StrJoin(parts, ":");
}

// `stats slabs` and `stats items` list the arena's size classes in use,
// under memcached's names, and agree with each other and with `stats`.
TEST_F(StatsTest, SlabsAndItemsListTheClassesInUse) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  // Nothing stored: no class holds a page.
  StatsMap slabs = client->Stats("slabs");
  EXPECT_EQ(StatInt(slabs, "active_slabs"), 0);
  EXPECT_EQ(StatInt(slabs, "total_malloced"), 0);
  EXPECT_EQ(slabs.size(), 2u);
  EXPECT_TRUE(client->Stats("items").empty());

  for (int i = 0; i < 100; ++i) {
    // Keys of one length: items of one size, in one class.
    ASSERT_EQ(
        client->Set(absl::StrCat("small", 100 + i), std::string(100, 's')),
        "STORED");
  }
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(client->Set(absl::StrCat("large", i), std::string(3000, 'l')),
              "STORED");
  }
  slabs = client->Stats("slabs");
  const StatsMap items = client->Stats("items");
  EXPECT_EQ(StatInt(slabs, "active_slabs"), 2);
  EXPECT_EQ(StatInt(slabs, "total_malloced"), 2 * 65536);
  // Two classes, the small items' first.
  std::vector<int> ids;
  for (const auto& [name, value] : items) {
    int id = 0;
    ASSERT_EQ(std::sscanf(name.c_str(), "items:%d:number", &id), 1) << name;
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ASSERT_EQ(ids.size(), 2u);
  int64_t total_items = 0;
  for (int id : ids) {
    const std::string c = absl::StrCat(id, ":");
    const int64_t number = StatInt(items, absl::StrCat("items:", c, "number"));
    total_items += number;
    EXPECT_EQ(StatInt(slabs, c + "used_chunks"), number);
    EXPECT_EQ(StatInt(slabs, c + "total_pages"), 1);
    EXPECT_EQ(StatInt(slabs, c + "total_chunks"),
              StatInt(slabs, c + "chunks_per_page"));
    EXPECT_EQ(StatInt(slabs, c + "free_chunks"),
              StatInt(slabs, c + "total_chunks") - number);
    EXPECT_EQ(StatInt(slabs, c + "free_chunks_end"),
              StatInt(slabs, c + "free_chunks"));
    EXPECT_LE(StatInt(slabs, c + "chunk_size") *
                  StatInt(slabs, c + "chunks_per_page"),
              65536);
  }
  const std::string small = absl::StrCat(ids[0], ":");
  const std::string large = absl::StrCat(ids[1], ":");
  EXPECT_EQ(StatInt(items, absl::StrCat("items:", small, "number")), 100);
  EXPECT_EQ(StatInt(items, absl::StrCat("items:", large, "number")), 5);
  EXPECT_GT(StatInt(slabs, small + "chunk_size"), 100);
  EXPECT_LT(StatInt(slabs, small + "chunk_size"), 200);
  EXPECT_GT(StatInt(slabs, large + "chunk_size"), 3000);
  EXPECT_EQ(total_items, StatInt(client->Stats(), "curr_items"));

  // A deleted item's chunk is free again; the page stays with its class.
  EXPECT_EQ(client->Command("delete large0"), "DELETED");
  slabs = client->Stats("slabs");
  EXPECT_EQ(StatInt(slabs, large + "used_chunks"), 4);
  EXPECT_EQ(StatInt(slabs, large + "free_chunks_end"),
            StatInt(slabs, large + "free_chunks") - 1);

  // Every name is one memcached 1.6 prints for these groups.
  if (!MemcachedProcess::IsInstalled()) return;
  auto memcached = MemcachedProcess::Start();
  ASSERT_TRUE(memcached.ok()) << memcached.status();
  auto peer = (*memcached)->Connect();
  ASSERT_TRUE(peer.ok()) << peer.status();
  ASSERT_EQ((*peer)->Set("small", std::string(100, 's')), "STORED");
  for (const char* group : {"slabs", "items"}) {
    std::set<std::string> known;
    for (const auto& [name, value] : (*peer)->Stats(group)) {
      known.insert(WithoutClass(name));
    }
    for (const auto& [name, value] : client->Stats(group)) {
      EXPECT_TRUE(known.count(WithoutClass(name)))
          << "stats " << group << ": memcached has no \"" << name << "\"";
    }
  }
}

TEST_F(StatsTest, OtherGroups) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Command("stats bogus"), "ERROR");
  EXPECT_EQ(client->Command("version").substr(0, 8), "VERSION ");
}

// The server measures a sub-interval of what a client sees (from the loop
// wakeup that read a request to its reply being composed), so for a client
// with one request in flight every server sample is shorter than the
// client's, and so is every percentile (within the histogram's 1%).
TEST_F(StatsTest, ServerP99NeverExceedsTheClientsP99) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Set("hot", "value"), "STORED");
  EXPECT_EQ(client->Command("stats reset"), "RESET");
  std::vector<int64_t> client_nanos;
  constexpr int kRequests = 3000;
  for (int i = 0; i < kRequests; ++i) {
    const absl::Time start = absl::Now();
    ASSERT_EQ(client->Get("hot"), "value");
    client_nanos.push_back(absl::ToInt64Nanoseconds(absl::Now() - start));
  }
  std::sort(client_nanos.begin(), client_nanos.end());
  const double client_p50 = client_nanos[kRequests / 2 - 1] / 1000.0;
  const double client_p99 = client_nanos[kRequests * 99 / 100 - 1] / 1000.0;
  const StatsMap latency = client->Stats("latency");
  ASSERT_EQ(StatInt(latency, "get:count"), kRequests);
  const double server_p50 = StatDouble(latency, "get:p50_us");
  const double server_p99 = StatDouble(latency, "get:p99_us");
  printf(
      "get latency, %d sequential requests: client p50 %.1f us p99 %.1f "
      "us; server p50 %.1f us p99 %.1f us\n",
      kRequests, client_p50, client_p99, server_p50, server_p99);
  EXPECT_LE(server_p99, client_p99 * 1.01);
  EXPECT_LE(server_p50, client_p50 * 1.01);
  EXPECT_GT(server_p50, 0);
}

}  // namespace
}  // namespace memshard
