#include "server/admin/connection_directory.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

// A connected TCP pair on 127.0.0.1: {client, server-side accepted}.
struct TcpPair {
  int client = -1;
  int server = -1;
  uint16_t client_port = 0;
  ~TcpPair() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
  }
};

std::unique_ptr<TcpPair> Connect() {
  auto pair = std::make_unique<TcpPair>();
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  EXPECT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  pair->client = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(
      connect(pair->client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
      0);
  pair->server = accept(listener, nullptr, nullptr);
  close(listener);
  sockaddr_in mine{};
  len = sizeof(mine);
  getsockname(pair->client, reinterpret_cast<sockaddr*>(&mine), &len);
  pair->client_port = ntohs(mine.sin_port);
  return pair;
}

TEST(ConnectionDirectoryTest, RecordsPeerAddressStateAndActivity) {
  auto pair = Connect();
  ConnectionDirectory directory;
  ConnectionRecord record;
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  directory.Link(&record, pair->server, now);
  EXPECT_EQ(directory.size(), 1u);
  int visits = 0;
  directory.ForEach([&](const ConnectionRecord& r) {
    ++visits;
    EXPECT_EQ(r.fd(), pair->server);
    EXPECT_EQ(r.Address(""), absl::StrCat("tcp:127.0.0.1:", pair->client_port));
    EXPECT_EQ(r.state(), ConnectionState::kWaiting);
    EXPECT_EQ(r.last_active(), now);
  });
  EXPECT_EQ(visits, 1);
  record.SetState(ConnectionState::kWriting);
  EXPECT_EQ(ConnectionStateName(record.state()), "conn_mwrite");
  directory.Unlink(&record);
  directory.Unlink(&record);  // not linked: no-op
  EXPECT_EQ(directory.size(), 0u);
}

TEST(ConnectionDirectoryTest, TakesThePeerAddressAcceptReturned) {
  ConnectionDirectory directory;
  ConnectionRecord v4;
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(4242);
  ASSERT_EQ(inet_pton(AF_INET, "10.1.2.3", &in.sin_addr), 1);
  // No socket behind fd -1: the address must come from `peer` alone.
  directory.Link(&v4, -1, absl::Now(), reinterpret_cast<sockaddr*>(&in),
                 sizeof(in));
  EXPECT_EQ(v4.Address(""), "tcp:10.1.2.3:4242");
  ConnectionRecord v6;
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(11211);
  ASSERT_EQ(inet_pton(AF_INET6, "fd00::7", &in6.sin6_addr), 1);
  directory.Link(&v6, -1, absl::Now(), reinterpret_cast<sockaddr*>(&in6),
                 sizeof(in6));
  EXPECT_EQ(v6.Address(""), "tcp6:[fd00::7]:11211");
  // A truncated address is not read past its length.
  ConnectionRecord truncated;
  directory.Link(&truncated, -1, absl::Now(), reinterpret_cast<sockaddr*>(&in),
                 sizeof(sa_family_t) + 2);
  EXPECT_EQ(truncated.Address(""), "tcp:0.0.0.0:0");
  directory.Unlink(&v4);
  directory.Unlink(&v6);
  directory.Unlink(&truncated);
}

TEST(ConnectionDirectoryTest, UnixPeersShowTheServerPath) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ConnectionDirectory directory;
  ConnectionRecord record;
  directory.Link(&record, fds[0], absl::Now());
  EXPECT_EQ(record.Address("/run/memshard.sock"), "unix:/run/memshard.sock");
  directory.Unlink(&record);
  close(fds[0]);
  close(fds[1]);
}

TEST(ConnectionDirectoryTest, UnlinkInAnyOrderKeepsTheRest) {
  ConnectionDirectory directory;
  std::vector<std::unique_ptr<ConnectionRecord>> records;
  for (int i = 0; i < 5; ++i) {
    records.push_back(std::make_unique<ConnectionRecord>());
    directory.Link(records.back().get(), 100 + i, absl::Now());
  }
  directory.Unlink(records[0].get());
  directory.Unlink(records[4].get());
  directory.Unlink(records[2].get());
  std::vector<int> fds;
  directory.ForEach([&](const ConnectionRecord& r) { fds.push_back(r.fd()); });
  EXPECT_EQ(fds, (std::vector<int>{101, 103}));
}

// The owner links, updates and unlinks while a reader walks the directory:
// the reader only ever sees linked, live records (asan/tsan would object
// otherwise).
TEST(ConnectionDirectoryTest, ReadersRaceTheOwnerSafely) {
  ConnectionDirectory directory;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      directory.ForEach([](const ConnectionRecord& r) {
        EXPECT_GE(r.fd(), 1000);
        (void)ConnectionStateName(r.state());
        (void)r.last_active();
      });
    }
  });
  for (int round = 0; round < 2000; ++round) {
    auto record = std::make_unique<ConnectionRecord>();
    directory.Link(record.get(), 1000 + round, absl::Now());
    record->SetState(ConnectionState::kReading);
    record->SetLastActive(absl::Now());
    directory.Unlink(record.get());
  }
  done = true;
  reader.join();
  EXPECT_EQ(directory.size(), 0u);
}

}  // namespace
}  // namespace memshard
