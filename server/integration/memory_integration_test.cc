// What an idle connection costs memshard in resident memory. The design
// says an idle connection holds no buffer, only its small state object; this
// holds the server to 512 bytes of RSS per idle connection.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/server_process.h"

// --config=asan builds the server with the test: redzones and quarantine
// inflate RSS, so the budget only holds for plain builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

namespace memshard {
namespace {

TEST(MemoryTest, IdleConnectionsCostAtMost512BytesOfRss) {
  constexpr int kClients = 5000;
  constexpr int64_t kBudgetPerConnection = 512;
  ASSERT_GE(RaiseOpenFileLimit(), kClients + 100u);
  auto server =
      ServerProcess::StartMemshard({"--workers=2", "--max_connections=6000"});
  ASSERT_TRUE(server.ok()) << server.status();

  // Warm up both workers' pools and allocators so one-off costs are not
  // charged to the connections.
  {
    std::vector<std::unique_ptr<BlockingClient>> warm =
        ConnectMany((*server)->port(), 50, /*round_trip=*/true);
    ASSERT_EQ(warm.size(), 50u);
    for (size_t i = 0; i < warm.size(); ++i) {
      EXPECT_EQ(warm[i]->Get(absl::StrCat("idle", i)), std::nullopt);
    }
  }
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t before = (*server)->RssBytes();

  // Each connection goes through the full read path once (a request read,
  // parsed, answered), then stays idle.
  std::vector<std::unique_ptr<BlockingClient>> clients =
      ConnectMany((*server)->port(), kClients);
  ASSERT_EQ(clients.size(), static_cast<size_t>(kClients));
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i]->Send(absl::StrCat("get idle", i, "\r\n")));
  }
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(clients[i]->ReadLine(), "END") << "client " << i;
  }
  absl::SleepFor(absl::Seconds(1));
  const int64_t after = (*server)->RssBytes();

  const int64_t per_connection = (after - before) / kClients;
  std::printf(
      "RSS per idle connection: %lld bytes (RSS %lld -> %lld bytes, %d "
      "connections, --workers=2)\n",
      static_cast<long long>(per_connection), static_cast<long long>(before),
      static_cast<long long>(after), kClients);
  std::fflush(stdout);
  RecordProperty("rss_per_idle_connection_bytes",
                 static_cast<int>(per_connection));
  if (!kSanitized) {
    EXPECT_LE(per_connection, kBudgetPerConnection);
  }

  // All still served.
  EXPECT_EQ(StatInt(clients[0]->Stats(), "curr_connections"), kClients);
}

}  // namespace
}  // namespace memshard
