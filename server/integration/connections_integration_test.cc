// memshard's connection handling with many real sockets: thousands of
// concurrent clients, the spread over workers, --max_connections and
// --idle_timeout.

#include <cstdio>
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
#include "testing/server_process.h"

namespace memshard {
namespace {

class ConnectionsTest : public MemshardFixture {};

std::string ValueFor(int i) {
  return absl::StrCat("value-", i, "-",
                      std::string(i % 97, static_cast<char>('a' + i % 26)));
}

TEST_F(ConnectionsTest, FiveThousandConcurrentClientsEachSeeTheirOwnKey) {
  constexpr int kClients = 5000;
  ASSERT_GE(RaiseOpenFileLimit(), kClients + 100u);
  ASSERT_NO_FATAL_FAILURE(Start({"--workers=2", "--max_connections=6000"}));

  // Open every connection before any of them speaks.
  std::vector<std::unique_ptr<BlockingClient>> clients =
      ConnectMany(server_->port(), kClients);
  ASSERT_EQ(clients.size(), static_cast<size_t>(kClients));

  // All sets in flight at once, then all replies.
  for (int i = 0; i < kClients; ++i) {
    std::string value = ValueFor(i);
    ASSERT_TRUE(clients[i]->Send(absl::StrCat(
        "set conn", i, " ", i, " 0 ", value.size(), "\r\n", value, "\r\n")))
        << "client " << i;
  }
  int wrong = 0;
  for (int i = 0; i < kClients; ++i) {
    std::string reply = clients[i]->ReadLine();
    if (reply != "STORED" && ++wrong <= 10) {
      ADD_FAILURE() << "client " << i << " set replied \"" << reply << "\"";
    }
  }
  ASSERT_EQ(wrong, 0);

  // All gets in flight at once, then all replies.
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i]->Send(absl::StrCat("get conn", i, "\r\n")))
        << "client " << i;
  }
  for (int i = 0; i < kClients; ++i) {
    std::string value = ValueFor(i);
    std::string expected =
        absl::StrCat("VALUE conn", i, " ", i, " ", value.size(), "\r\n", value,
                     "\r\nEND\r\n");
    std::string reply = clients[i]->ReadUntil("END\r\n");
    if (reply != expected && ++wrong <= 10) {
      ADD_FAILURE() << "client " << i << " got \"" << absl::CEscape(reply)
                    << "\", expected \"" << absl::CEscape(expected) << "\"";
    }
  }
  EXPECT_EQ(wrong, 0) << "clients with a wrong reply";

  StatsMap stats = clients[0]->Stats();
  EXPECT_EQ(StatInt(stats, "curr_connections"), kClients);
  EXPECT_EQ(StatInt(stats, "rejected_connections"), 0);
  EXPECT_EQ(StatInt(stats, "get_hits"), kClients);
}

TEST_F(ConnectionsTest, ConnectionsSpreadOverWorkers) {
  constexpr int kClients = 200;
  ASSERT_NO_FATAL_FAILURE(Start({"--workers=2"}));
  std::vector<std::unique_ptr<BlockingClient>> clients =
      ConnectMany(server_->port(), kClients, /*round_trip=*/true);
  ASSERT_EQ(clients.size(), static_cast<size_t>(kClients));

  // Asked over one of the 200, so the count is exact.
  StatsMap workers = clients[0]->Stats("workers");
  int64_t sum = 0;
  for (int w = 0; w < 2; ++w) {
    int64_t curr = StatInt(workers, absl::StrCat(w, ":curr_connections"));
    int64_t total = StatInt(workers, absl::StrCat(w, ":total_connections"));
    EXPECT_GT(curr, 0) << "worker " << w << " serves no connection";
    EXPECT_GE(total, curr) << "worker " << w;
    sum += curr;
  }
  EXPECT_EQ(sum, kClients);
  EXPECT_FALSE(workers.contains("2:curr_connections"))
      << "stats workers lists a third worker";
  EXPECT_EQ(StatInt(clients[0]->Stats(), "curr_connections"), kClients);
}

TEST_F(ConnectionsTest, MaxConnectionsRejectsTheExtraOneOnly) {
  constexpr int kMax = 10;
  ASSERT_NO_FATAL_FAILURE(
      Start({"--workers=2", absl::StrCat("--max_connections=", kMax)}));
  std::vector<std::unique_ptr<BlockingClient>> clients =
      ConnectMany(server_->port(), kMax, /*round_trip=*/true);
  ASSERT_EQ(clients.size(), static_cast<size_t>(kMax));

  // The 11th is told why, without asking, and closed.
  auto extra = server_->Connect();
  ASSERT_TRUE(extra.ok()) << extra.status();
  EXPECT_EQ((*extra)->ReadLine(), "ERROR Too many open connections");
  EXPECT_TRUE((*extra)->PeerClosed(absl::Seconds(2)))
      << "the rejected connection was not closed";

  // The first ten are unaffected.
  for (int i = 0; i < kMax; ++i) {
    EXPECT_EQ(clients[i]->Set(absl::StrCat("m", i), "v"), "STORED")
        << "client " << i;
  }

  // Closing one makes room; the server learns of the close asynchronously,
  // so the replacement may need a few tries.
  clients.back()->Close();
  clients.pop_back();
  std::unique_ptr<BlockingClient> replacement;
  std::string last_reply;
  absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (replacement == nullptr && absl::Now() < deadline) {
    auto c = server_->Connect();
    ASSERT_TRUE(c.ok()) << c.status();
    last_reply = (*c)->Command("version");
    if (absl::StartsWith(last_reply, "VERSION ")) {
      replacement = *std::move(c);
    } else {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ASSERT_NE(replacement, nullptr)
      << "no connection accepted after closing one; last reply: " << last_reply;
  EXPECT_EQ(replacement->Get("m0"), "v");

  StatsMap stats = replacement->Stats();
  EXPECT_EQ(StatInt(stats, "curr_connections"), kMax);
  EXPECT_GE(StatInt(stats, "rejected_connections"), 1);
}

TEST_F(ConnectionsTest, IdleTimeoutClosesIdleConnectionsOnly) {
  ASSERT_NO_FATAL_FAILURE(Start({"--workers=2", "--idle_timeout=1"}));
  // One that spoke once, one that never spoke, one that keeps talking.
  auto spoke = server_->Connect();
  auto silent = server_->Connect();
  auto active = server_->Connect();
  ASSERT_TRUE(spoke.ok() && silent.ok() && active.ok());
  EXPECT_TRUE(absl::StartsWith((*spoke)->Command("version"), "VERSION "));
  absl::Time start = absl::Now();

  absl::Duration spoke_closed = absl::InfiniteDuration();
  absl::Duration silent_closed = absl::InfiniteDuration();
  absl::Time next_command = start;
  while (absl::Now() - start < absl::Milliseconds(3500)) {
    if (absl::Now() >= next_command) {
      std::string reply = (*active)->Command("version");
      ASSERT_TRUE(absl::StartsWith(reply, "VERSION "))
          << "active connection lost after " << (absl::Now() - start)
          << "; reply \"" << reply << "\"";
      next_command += absl::Milliseconds(300);
    }
    if (spoke_closed == absl::InfiniteDuration() &&
        (*spoke)->PeerClosed(absl::Milliseconds(10))) {
      spoke_closed = absl::Now() - start;
    }
    if (silent_closed == absl::InfiniteDuration() &&
        (*silent)->PeerClosed(absl::Milliseconds(10))) {
      silent_closed = absl::Now() - start;
    }
  }
  std::printf("idle connections closed after %s (spoke once) and %s (silent)\n",
              absl::FormatDuration(spoke_closed).c_str(),
              absl::FormatDuration(silent_closed).c_str());
  EXPECT_LE(spoke_closed, absl::Seconds(3)) << "idle connection not closed";
  EXPECT_LE(silent_closed, absl::Seconds(3))
      << "never-used connection not closed";
  // Not before it was idle for (about) the timeout.
  EXPECT_GE(spoke_closed, absl::Milliseconds(900));
  EXPECT_GE(silent_closed, absl::Milliseconds(900));
  EXPECT_TRUE(absl::StartsWith((*active)->Command("version"), "VERSION "));
}

}  // namespace
}  // namespace memshard
