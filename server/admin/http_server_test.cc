#include "server/admin/http_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

// Connects to 127.0.0.1:port, sends `request`, and returns everything the
// server sent until it closed (or `wait` passed).
std::string Exchange(uint16_t port, absl::string_view request,
                     bool shutdown_write = false,
                     absl::Duration wait = absl::Seconds(5)) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "<connect failed>";
  }
  if (!request.empty()) {
    ssize_t n = send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    EXPECT_EQ(n, static_cast<ssize_t>(request.size()));
  }
  if (shutdown_write) shutdown(fd, SHUT_WR);
  std::string reply;
  const absl::Time deadline = absl::Now() + wait;
  char buffer[4096];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    reply.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

class AdminHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = AdminHttpServer::Bind("127.0.0.1", 0);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_NE(server_->port(), 0);
    server_->Start([this](absl::string_view method, absl::string_view path) {
      ++calls_;
      AdminHttpServer::Response r;
      if (path == "/hello") {
        r.body = absl::StrCat("hello via ", method, "\n");
      } else {
        r.status = 404;
        r.body = "nope\n";
      }
      return r;
    });
  }

  std::unique_ptr<AdminHttpServer> server_;
  std::atomic<int> calls_{0};
};

TEST_F(AdminHttpServerTest, ServesGetWithLengthAndClose) {
  const std::string reply =
      Exchange(server_->port(), "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "Content-Length: 14\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "Connection: close\r\n")) << reply;
  EXPECT_TRUE(absl::EndsWith(reply, "\r\n\r\nhello via GET\n")) << reply;
}

TEST_F(AdminHttpServerTest, IgnoresTheQueryString) {
  const std::string reply =
      Exchange(server_->port(), "GET /hello?x=1 HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
}

TEST_F(AdminHttpServerTest, HeadSendsHeadersOnly) {
  const std::string reply =
      Exchange(server_->port(), "HEAD /hello HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "Content-Length: 15\r\n")) << reply;
  EXPECT_TRUE(absl::EndsWith(reply, "\r\n\r\n")) << reply;
}

TEST_F(AdminHttpServerTest, UnknownPathIs404AndOtherMethods405) {
  EXPECT_TRUE(
      absl::StartsWith(Exchange(server_->port(), "GET /other HTTP/1.1\r\n\r\n"),
                       "HTTP/1.1 404 Not Found\r\n"));
  const std::string post =
      Exchange(server_->port(), "POST /hello HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(post, "HTTP/1.1 405 Method Not Allowed\r\n"))
      << post;
  EXPECT_TRUE(absl::StrContains(post, "Allow: GET, HEAD\r\n")) << post;
}

TEST_F(AdminHttpServerTest, MalformedRequestIs400) {
  EXPECT_TRUE(absl::StartsWith(Exchange(server_->port(), "hello\r\n\r\n"),
                               "HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(server_->port(), "GET relative HTTP/1.1\r\n\r\n"),
      "HTTP/1.1 400 Bad Request\r\n"));
}

TEST_F(AdminHttpServerTest, OversizedHeadIs431) {
  std::string huge = "GET /hello HTTP/1.1\r\nX: ";
  huge.append(AdminHttpServer::kMaxRequestBytes + 10, 'a');
  EXPECT_TRUE(
      absl::StartsWith(Exchange(server_->port(), huge), "HTTP/1.1 431 "));
}

TEST_F(AdminHttpServerTest, ClientThatLeavesEarlyDoesNotStopService) {
  EXPECT_EQ(Exchange(server_->port(), "GET /hel", /*shutdown_write=*/true), "");
  EXPECT_TRUE(
      absl::StartsWith(Exchange(server_->port(), "GET /hello HTTP/1.1\r\n\r\n"),
                       "HTTP/1.1 200 OK\r\n"));
}

TEST_F(AdminHttpServerTest, StopJoinsAndRefusesNewClients) {
  server_->Stop();
  server_->Stop();  // idempotent
  const int before = calls_.load();
  // The socket is still bound (until destruction) but nobody serves it.
  EXPECT_FALSE(
      absl::StartsWith(Exchange(server_->port(), "GET /hello HTTP/1.1\r\n\r\n",
                                false, absl::Milliseconds(300)),
                       "HTTP/1.1"));
  EXPECT_EQ(calls_.load(), before);
}

TEST(AdminHttpServerBindTest, PortInUseFailsBeforeServing) {
  auto first = AdminHttpServer::Bind("127.0.0.1", 0);
  ASSERT_TRUE(first.ok());
  auto second = AdminHttpServer::Bind("127.0.0.1", (*first)->port());
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "admin endpoint"))
      << second.status();
}

}  // namespace
}  // namespace memshard
