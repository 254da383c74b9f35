// Checks the fixtures against the reference peer: real memcached, spoken to
// with BlockingClient. If these pass, a failing memshard integration test
// points at memshard, not at the fixtures.

#include "testing/memcached_process.h"

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

class MemcachedProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!MemcachedProcess::IsInstalled()) {
      GTEST_SKIP() << MemcachedProcess::kBinary << " is not installed";
    }
    auto process = MemcachedProcess::Start();
    ASSERT_TRUE(process.ok()) << process.status();
    memcached_ = *std::move(process);
  }

  std::unique_ptr<BlockingClient> Connect() {
    auto client = memcached_->Connect();
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  std::unique_ptr<ServerProcess> memcached_;
};

TEST_F(MemcachedProcessTest, SetGetDeleteRoundTrip) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Get("alpha"), std::nullopt);
  EXPECT_EQ(client->Set("alpha", "one", 3, 0), "STORED");
  EXPECT_EQ(client->Get("alpha"), "one");
  std::string binary_value("a\r\nb\0c", 6);
  EXPECT_EQ(client->Set("beta", binary_value), "STORED");
  EXPECT_EQ(client->Get("beta"), binary_value);
  EXPECT_EQ(client->Delete("alpha"), "DELETED");
  EXPECT_EQ(client->Delete("alpha"), "NOT_FOUND");
  EXPECT_EQ(client->Get("alpha"), std::nullopt);
}

TEST_F(MemcachedProcessTest, MultiGetAndRawReplies) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Set("a", "1", 5), "STORED");
  ASSERT_TRUE(client->Send("get a missing a\r\n"));
  EXPECT_EQ(client->ReadUntil("END\r\n"),
            "VALUE a 5 1\r\n1\r\nVALUE a 5 1\r\n1\r\nEND\r\n");
  EXPECT_EQ(client->Command("bogus"), "ERROR");
  EXPECT_EQ(client->Command(absl::StrCat("get ", std::string(251, 'k'))),
            "CLIENT_ERROR bad command line format");
  EXPECT_EQ(client->Command("version").substr(0, 8), "VERSION ");
}

TEST_F(MemcachedProcessTest, StatsAndRss) {
  StatsMap stats = memcached_->Stats();
  EXPECT_EQ(stats["pid"], absl::StrCat(memcached_->pid()));
  int64_t connections = 0;
  EXPECT_TRUE(absl::SimpleAtoi(stats["curr_connections"], &connections));
  EXPECT_GE(connections, 1);
  StatsMap settings = memcached_->Stats("settings");
  EXPECT_EQ(settings["tcpport"], absl::StrCat(memcached_->port()));
  EXPECT_GT(memcached_->RssBytes(), 0);
}

TEST_F(MemcachedProcessTest, QuitClosesTheConnection) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send("quit\r\n"));
  EXPECT_TRUE(client->PeerClosed(absl::Seconds(2)));
}

TEST_F(MemcachedProcessTest, StopTerminatesMemcached) {
  pid_t pid = memcached_->pid();
  memcached_->Stop();
  EXPECT_FALSE(memcached_->IsRunning());
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_FALSE(
      BlockingClient::ConnectTcp(memcached_->port(), absl::Milliseconds(500))
          .ok());
}

TEST_F(MemcachedProcessTest, AHungServerTimesOutInsteadOfHanging) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  client->set_timeout(absl::Milliseconds(300));
  ASSERT_TRUE(memcached_->Pause());
  EXPECT_NONFATAL_FAILURE(client->Command("version"), "timed out");
  ASSERT_TRUE(memcached_->Resume());
  // The late reply to the first version is still queued.
  client->set_timeout(absl::Seconds(5));
  EXPECT_EQ(client->ReadLine().substr(0, 8), "VERSION ");
}

TEST(MemcachedProcessManyTest, SeveralInstancesGetDistinctPorts) {
  if (!MemcachedProcess::IsInstalled()) GTEST_SKIP();
  std::vector<std::unique_ptr<ServerProcess>> fleet;
  for (int i = 0; i < 4; ++i) {
    auto process = MemcachedProcess::Start({"-m", "16"});
    ASSERT_TRUE(process.ok()) << process.status();
    fleet.push_back(*std::move(process));
  }
  for (size_t i = 0; i < fleet.size(); ++i) {
    auto client = fleet[i]->Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    EXPECT_EQ((*client)->Set("who", absl::StrCat(i)), "STORED");
  }
  for (size_t i = 0; i < fleet.size(); ++i) {
    auto client = fleet[i]->Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    EXPECT_EQ((*client)->Get("who"), absl::StrCat(i));
  }
}

}  // namespace
}  // namespace memshard
