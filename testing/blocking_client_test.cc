#include "testing/blocking_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

// An in-process peer: a listening socket whose accepted end the test drives
// by hand, so every byte and every close is under the test's control.
class FakePeer {
 public:
  FakePeer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(listen(listen_fd_, 16), 0);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~FakePeer() {
    if (conn_fd_ >= 0) close(conn_fd_);
    close(listen_fd_);
  }

  int port() const { return port_; }

  // Connects a client and accepts its server end.
  std::unique_ptr<BlockingClient> Connect(
      absl::Duration timeout = absl::Milliseconds(300)) {
    absl::StatusOr<std::unique_ptr<BlockingClient>> client =
        BlockingClient::ConnectTcp(port_, timeout);
    EXPECT_TRUE(client.ok()) << client.status();
    conn_fd_ = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    EXPECT_GE(conn_fd_, 0);
    return client.ok() ? *std::move(client) : nullptr;
  }
  void Write(absl::string_view bytes) {
    ASSERT_EQ(write(conn_fd_, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  std::string ReadSome() {
    char buf[4096];
    ssize_t n = read(conn_fd_, buf, sizeof(buf));
    return n > 0 ? std::string(buf, n) : "";
  }
  void CloseConnection() {
    close(conn_fd_);
    conn_fd_ = -1;
  }

 private:
  int listen_fd_ = -1;
  int conn_fd_ = -1;
  int port_ = 0;
};

TEST(BlockingClientTest, ReadLineStripsCrlfAndKeepsTheRest) {
  FakePeer peer;
  auto client = peer.Connect();
  ASSERT_NE(client, nullptr);
  peer.Write("STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(client->ReadLine(), "STORED");
  EXPECT_EQ(client->ReadLine(), "VALUE a 0 1");
  EXPECT_EQ(client->ReadExactly(3), "x\r\n");
  EXPECT_EQ(client->ReadUntil("END\r\n"), "END\r\n");
}

TEST(BlockingClientTest, ReadsAssembleAcrossSeparateArrivals) {
  FakePeer peer;
  auto client = peer.Connect();
  ASSERT_NE(client, nullptr);
  peer.Write("VALUE a 0 5\r");
  peer.Write("\nhel");
  peer.Write("lo\r\nE");
  peer.Write("ND\r\n");
  EXPECT_EQ(client->ReadUntil("END\r\n"), "VALUE a 0 5\r\nhello\r\nEND\r\n");
}

TEST(BlockingClientTest, ReadLineTimeoutFailsTheTestWithoutHanging) {
  FakePeer peer;
  auto client = peer.Connect(absl::Milliseconds(200));
  ASSERT_NE(client, nullptr);
  peer.Write("partial line");
  absl::Time start = absl::Now();
  std::string line;
  EXPECT_NONFATAL_FAILURE(line = client->ReadLine(), "timed out");
  EXPECT_EQ(line, "");
  absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Seconds(2));
}

TEST(BlockingClientTest, ReadExactlyAndReadUntilTimeOut) {
  FakePeer peer;
  auto client = peer.Connect(absl::Milliseconds(100));
  ASSERT_NE(client, nullptr);
  peer.Write("abc");
  EXPECT_NONFATAL_FAILURE(client->ReadExactly(4), "have 3 of 4 bytes");
  EXPECT_NONFATAL_FAILURE(client->ReadUntil("END\r\n"), "timed out");
  absl::StatusOr<std::string> line = client->TryReadLine();
  EXPECT_TRUE(absl::IsDeadlineExceeded(line.status())) << line.status();
}

TEST(BlockingClientTest, BareNewlineIsAFramingError) {
  FakePeer peer;
  auto client = peer.Connect();
  ASSERT_NE(client, nullptr);
  peer.Write("STORED\n");
  absl::StatusOr<std::string> line = client->TryReadLine();
  EXPECT_TRUE(absl::IsDataLoss(line.status())) << line.status();
}

TEST(BlockingClientTest, EofIsReportedNotWaitedOut) {
  FakePeer peer;
  auto client = peer.Connect(absl::Seconds(30));
  ASSERT_NE(client, nullptr);
  peer.Write("VER");
  peer.CloseConnection();
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> line = client->TryReadLine();
  EXPECT_TRUE(absl::IsUnavailable(line.status())) << line.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(BlockingClientTest, PeerClosed) {
  FakePeer peer;
  auto client = peer.Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->PeerClosed(absl::Milliseconds(50)));
  peer.Write("x");
  EXPECT_FALSE(client->PeerClosed(absl::Milliseconds(50)));
  EXPECT_TRUE(client->HasData(absl::ZeroDuration()));
  EXPECT_EQ(client->ReadExactly(1), "x");
  peer.CloseConnection();
  EXPECT_TRUE(client->PeerClosed(absl::Seconds(2)));
}

TEST(BlockingClientTest, SendTimesOutWhenThePeerDoesNotRead) {
  FakePeer peer;
  auto client = peer.Connect(absl::Milliseconds(200));
  ASSERT_NE(client, nullptr);
  const std::string big(64 << 20, 'x');
  bool sent = true;
  EXPECT_NONFATAL_FAILURE(sent = client->Send(big), "bytes unsent");
  EXPECT_FALSE(sent);
}

TEST(BlockingClientTest, CommandHelpersSpeakTheTextProtocol) {
  FakePeer peer;
  auto client = peer.Connect();
  ASSERT_NE(client, nullptr);

  peer.Write("STORED\r\n");
  EXPECT_EQ(client->Set("k", "hello", 7, 0), "STORED");
  EXPECT_EQ(peer.ReadSome(), "set k 7 0 5\r\nhello\r\n");

  peer.Write("VALUE k 7 5\r\nhello\r\nEND\r\n");
  EXPECT_EQ(client->Get("k"), "hello");
  EXPECT_EQ(peer.ReadSome(), "get k\r\n");

  peer.Write("END\r\n");
  EXPECT_EQ(client->Get("missing"), std::nullopt);

  peer.Write("DELETED\r\n");
  EXPECT_EQ(client->Delete("k"), "DELETED");
  peer.ReadSome();

  peer.Write("STAT pid 42\r\nSTAT version 1.6.18 x\r\nEND\r\n");
  StatsMap stats = client->Stats();
  EXPECT_EQ(stats["pid"], "42");
  EXPECT_EQ(stats["version"], "1.6.18 x");
}

TEST(BlockingClientTest, GetRejectsAMalformedReply) {
  FakePeer peer;
  auto client = peer.Connect();
  ASSERT_NE(client, nullptr);
  peer.Write("VALUE other 0 1\r\nx\r\nEND\r\n");
  EXPECT_NONFATAL_FAILURE(client->Get("k"), "unexpected reply line");
}

TEST(BlockingClientTest, ConnectFailsFastOnAClosedPort) {
  absl::StatusOr<int> port = PickUnusedPort();
  ASSERT_TRUE(port.ok()) << port.status();
  auto client = BlockingClient::ConnectTcp(*port, absl::Seconds(2));
  EXPECT_FALSE(client.ok());
}

TEST(BlockingClientTest, ConnectsToAUnixSocket) {
  std::string path = TestTempPath("bc_unix");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << path;
  ASSERT_EQ(listen(fd, 4), 0);
  auto client = BlockingClient::ConnectUnix(path);
  ASSERT_TRUE(client.ok()) << client.status();
  int conn = accept(fd, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  ASSERT_EQ(write(conn, "VERSION 1\r\n", 11), 11);
  EXPECT_EQ((*client)->ReadLine(), "VERSION 1");
  close(conn);
  close(fd);
  unlink(path.c_str());
}

}  // namespace
}  // namespace memshard
