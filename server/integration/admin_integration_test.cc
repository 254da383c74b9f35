// The admin HTTP endpoint of the real memshard binary: /metrics (validated
// with promtool, names memcached_exporter uses, values that agree with
// `stats`), /healthz, 404, --admin_port semantics, and that it stays off the
// request path.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "metrics/promtool.h"
#include "testing/blocking_client.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

int ConnectTo(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

struct HttpReply {
  int status = 0;
  std::string head;
  std::string body;
};

// One HTTP/1.1 request; the server closes after its response.
HttpReply Http(int port, absl::string_view method, absl::string_view path) {
  HttpReply reply;
  const int fd = ConnectTo(port);
  if (fd < 0) return reply;
  const std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: localhost\r\n\r\n");
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string all;
  char buffer[16384];
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    all.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  const size_t end = all.find("\r\n\r\n");
  if (end == std::string::npos) return reply;
  reply.head = all.substr(0, end);
  reply.body = all.substr(end + 4);
  std::vector<std::string> first = absl::StrSplit(reply.head, ' ');
  if (first.size() >= 2) absl::SimpleAtoi(first[1], &reply.status);
  return reply;
}

// "name{labels}" -> value, for every sample line of an exposition.
absl::flat_hash_map<std::string, double> Samples(const std::string& text) {
  absl::flat_hash_map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos ||
        !absl::SimpleAtod(line.substr(space + 1), &value)) {
      ADD_FAILURE() << "bad sample line: " << line;
      continue;
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

class AdminTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    admin_port_file_ = TestTempPath("admin_port");
    std::vector<std::string> args = {
        "--workers=2", "--admin_port=-1",
        absl::StrCat("--admin_port_file=", admin_port_file_)};
    args.insert(args.end(), extra.begin(), extra.end());
    auto server = ServerProcess::StartMemshard(args);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    // Written before the main port file, which Start() waited for.
    ASSERT_TRUE(absl::SimpleAtoi(
        absl::StripAsciiWhitespace(ReadWholeFile(admin_port_file_)),
        &admin_port_))
        << "no admin port file";
    ASSERT_GT(admin_port_, 0);
  }

  std::unique_ptr<ServerProcess> server_;
  std::string admin_port_file_;
  int admin_port_ = 0;
};

TEST_F(AdminTest, MetricsPassPromtoolAndAgreeWithStats) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto client = server_->Connect();
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Set("a", "1"), "STORED");
  EXPECT_EQ((*client)->Get("a"), "1");
  EXPECT_EQ((*client)->Get("b"), std::nullopt);
  EXPECT_EQ((*client)->Command("cas a 0 0 1 1\r\n2"), "EXISTS");

  const HttpReply reply = Http(admin_port_, "GET", "/metrics");
  ASSERT_EQ(reply.status, 200) << reply.head;
  EXPECT_TRUE(absl::StrContains(
      reply.head, "Content-Type: text/plain; version=0.0.4; charset=utf-8"))
      << reply.head;

  if (PromtoolPath().empty()) {
    printf("promtool not installed: /metrics not linted\n");
  } else {
    const absl::Status checked = PromtoolCheckMetrics(reply.body);
    EXPECT_TRUE(checked.ok()) << checked;
  }

  const StatsMap stats = (*client)->Stats();
  const auto samples = Samples(reply.body);
  auto sample = [&](const std::string& key) {
    auto it = samples.find(key);
    if (it == samples.end()) {
      ADD_FAILURE() << "no sample " << key;
      return -1.0;
    }
    return it->second;
  };
  EXPECT_EQ(sample("memcached_up"), 1);
  EXPECT_EQ(sample("memcached_commands_total{command=\"get\",status=\"hit\"}"),
            StatInt(stats, "get_hits"));
  EXPECT_EQ(sample("memcached_commands_total{command=\"get\",status=\"miss\"}"),
            StatInt(stats, "get_misses"));
  EXPECT_EQ(
      sample("memcached_commands_total{command=\"cas\",status=\"badval\"}"), 1);
  // set/hit leaves out the cas commands, as memcached_exporter does.
  EXPECT_EQ(sample("memcached_commands_total{command=\"set\",status=\"hit\"}"),
            1);
  EXPECT_EQ(sample("memcached_current_items"), 1);
  EXPECT_EQ(sample("memcached_items_evicted_total"), 0);
  EXPECT_EQ(sample("memcached_limit_bytes"), 64 << 20);
  EXPECT_EQ(sample("memcached_max_connections"), 4096);
  EXPECT_GE(sample("memcached_current_connections"), 1);
  EXPECT_EQ(sample(absl::StrCat("memcached_version{version=\"",
                                stats.at("version"), "\"}")),
            1);
  // Per-worker series add up to the total.
  EXPECT_EQ(sample("memshard_worker_cmd_get_total{worker=\"0\"}") +
                sample("memshard_worker_cmd_get_total{worker=\"1\"}"),
            StatInt(stats, "cmd_get"));
  // Latency histogram: cumulative, and +Inf equals the count.
  const std::string get = "memshard_request_duration_seconds";
  EXPECT_EQ(sample(get + "_count{family=\"get\"}"), 2);
  EXPECT_EQ(sample(get + "_bucket{family=\"get\",le=\"+Inf\"}"), 2);
  EXPECT_LE(sample(get + "_bucket{family=\"get\",le=\"1e-06\"}"),
            sample(get + "_bucket{family=\"get\",le=\"60\"}"));
  EXPECT_GT(sample(get + "_sum{family=\"get\"}"), 0);
  EXPECT_EQ(sample(get + "_count{family=\"set\"}"), 2);
}

TEST_F(AdminTest, HealthzHeadAndNotFound) {
  ASSERT_NO_FATAL_FAILURE(Start());
  HttpReply health = Http(admin_port_, "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  HttpReply head = Http(admin_port_, "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(Http(admin_port_, "GET", "/").status, 404);
  EXPECT_EQ(Http(admin_port_, "GET", "/metricsx").status, 404);
  EXPECT_EQ(Http(admin_port_, "POST", "/metrics").status, 405);
}

// A scrape client that connects and says nothing holds only the admin
// thread: cache requests go on at full speed meanwhile.
TEST_F(AdminTest, AStalledScrapeDoesNotTouchTheRequestPath) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const int stalled = ConnectTo(admin_port_);
  ASSERT_GE(stalled, 0);
  auto client = server_->Connect();
  ASSERT_TRUE(client.ok());
  const absl::Time start = absl::Now();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ((*client)->Set("k", "v"), "STORED");
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  close(stalled);
}

TEST(AdminPortTest, ZeroDisablesTheEndpoint) {
  const std::string file = TestTempPath("admin_port");
  auto server = ServerProcess::StartMemshard(
      {"--admin_port=0", absl::StrCat("--admin_port_file=", file)});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_NE(access(file.c_str(), F_OK), 0) << "no endpoint, no port file";
  EXPECT_FALSE(absl::StrContains((*server)->ReadLog(), "admin endpoint on"));
}

TEST(AdminPortTest, APortInUseStopsTheServerWithAClearMessage) {
  // Hold a port the way another process would.
  const int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len);
  ServerProcess::Options options;
  options.binary = ServerProcess::MemshardBinary();
  options.port_file = TestTempPath("memshard_port");
  options.args = {"--listen=127.0.0.1", "--port=0",
                  absl::StrCat("--port_file=", options.port_file),
                  absl::StrCat("--admin_port=", ntohs(addr.sin_port))};
  options.start_timeout = absl::Seconds(5);
  auto server = ServerProcess::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_TRUE(absl::StrContains(server.status().message(), "admin endpoint"))
      << server.status();
  close(holder);
}

}  // namespace
}  // namespace memshard
