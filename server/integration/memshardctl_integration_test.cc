// tools/memshardctl against a running memshard (TCP and unix socket), against
// memcached, and against nothing at all.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

std::string CtlBinary() {
  const std::string relative = "tools/memshardctl/memshardctl";
  if (access(relative.c_str(), X_OK) == 0) return relative;
  const char* srcdir = getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/memshard/", relative);
}

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs memshardctl with `args` (no shell expansion in them: they are
// simple flags) and captures its output and exit status.
Result Ctl(const std::vector<std::string>& args) {
  const std::string out = TestTempPath("ctl_out");
  const std::string err = TestTempPath("ctl_err");
  const std::string command = absl::StrCat(
      CtlBinary(), " ", absl::StrJoin(args, " "), " >", out, " 2>", err);
  const int status = std::system(command.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadWholeFile(out);
  r.err = ReadWholeFile(err);
  unlink(out.c_str());
  unlink(err.c_str());
  return r;
}

class MemshardctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = TestTempPath("ctl_sock");
    auto server = ServerProcess::StartMemshard(
        {"--workers=2", absl::StrCat("--unix_socket=", socket_)});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    port_flag_ = absl::StrCat("--port=", server_->port());
  }

  std::unique_ptr<ServerProcess> server_;
  std::string socket_;
  std::string port_flag_;
};

TEST_F(MemshardctlTest, EveryViewWorks) {
  auto client = server_->Connect();
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Set("k", "v"), "STORED");
  EXPECT_EQ((*client)->Get("k"), "v");

  Result stats = Ctl({port_flag_, "stats"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_TRUE(absl::StrContains(stats.out, "cmd_get")) << stats.out;
  EXPECT_TRUE(absl::StrContains(stats.out, "curr_connections")) << stats.out;

  Result settings = Ctl({port_flag_, "settings"});
  EXPECT_EQ(settings.exit_code, 0) << settings.err;
  EXPECT_TRUE(absl::StrContains(settings.out, "maxconns")) << settings.out;

  Result latency = Ctl({port_flag_, "latency"});
  EXPECT_EQ(latency.exit_code, 0) << latency.err;
  EXPECT_TRUE(absl::StartsWith(latency.out, "family")) << latency.out;
  EXPECT_TRUE(absl::StrContains(latency.out, "\nget ")) << latency.out;

  Result workers = Ctl({port_flag_, "workers"});
  EXPECT_EQ(workers.exit_code, 0) << workers.err;
  EXPECT_TRUE(absl::StrContains(workers.out, "\n0 ")) << workers.out;
  EXPECT_TRUE(absl::StrContains(workers.out, "\n1 ")) << workers.out;

  Result conns = Ctl({port_flag_, "conns"});
  EXPECT_EQ(conns.exit_code, 0) << conns.err;
  EXPECT_TRUE(absl::StrContains(conns.out, "tcp:127.0.0.1:")) << conns.out;

  Result version = Ctl({port_flag_, "version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_TRUE(absl::StrContains(version.out, "memshard")) << version.out;
}

TEST_F(MemshardctlTest, FlushInvalidatesEverything) {
  auto client = server_->Connect();
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Set("k", "v"), "STORED");
  Result flush = Ctl({port_flag_, "flush"});
  EXPECT_EQ(flush.exit_code, 0) << flush.err;
  EXPECT_EQ(flush.out, "OK\n");
  EXPECT_EQ((*client)->Get("k"), std::nullopt);
  EXPECT_EQ(StatInt((*client)->Stats(), "cmd_flush"), 1);
}

TEST_F(MemshardctlTest, WatchPrintsFramesWithRates) {
  Result watch =
      Ctl({port_flag_, "--iterations=3", "--interval_ms=100", "watch"});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  size_t frames = 0;
  for (size_t at = watch.out.find("ops/s"); at != std::string::npos;
       at = watch.out.find("ops/s", at + 1)) {
    ++frames;
  }
  EXPECT_EQ(frames, 3u) << watch.out;
  EXPECT_TRUE(absl::StrContains(watch.out, "hit ratio")) << watch.out;
  EXPECT_TRUE(absl::StrContains(watch.out, "evictions")) << watch.out;
  // The later frames have rates (watch's own stats reads are not gets, so
  // the get rate is 0, not "-").
  EXPECT_TRUE(absl::StrContains(watch.out, "get 0  set 0")) << watch.out;
  EXPECT_TRUE(absl::StrContains(watch.out, "p99")) << watch.out;
}

TEST_F(MemshardctlTest, UnixSocket) {
  Result stats = Ctl({absl::StrCat("--unix_socket=", socket_), "stats"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_TRUE(absl::StrContains(stats.out, "threads")) << stats.out;
}

TEST(MemshardctlErrorsTest, UnreachableServerExitsOneWithAClearMessage) {
  absl::StatusOr<int> port = PickUnusedPort();
  ASSERT_TRUE(port.ok());
  Result r = Ctl({absl::StrCat("--port=", *port), "stats"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(absl::StrContains(
      r.err, absl::StrCat("cannot connect to 127.0.0.1:", *port)))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "Connection refused")) << r.err;

  Result unix = Ctl({"--unix_socket=/nonexistent/memshard.sock", "watch"});
  EXPECT_EQ(unix.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(unix.err, "cannot connect to unix:"))
      << unix.err;
}

TEST(MemshardctlErrorsTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Ctl({}).exit_code, 2);
  Result r = Ctl({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "unknown command")) << r.err;
}

TEST(MemshardctlErrorsTest, AgainstMemcached) {
  if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  auto memcached = MemcachedProcess::Start();
  ASSERT_TRUE(memcached.ok()) << memcached.status();
  const std::string port = absl::StrCat("--port=", (*memcached)->port());
  Result stats = Ctl({port, "stats"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_TRUE(absl::StrContains(stats.out, "libevent")) << stats.out;
  // memcached has no `stats latency`: a clear error, not a hang.
  Result latency = Ctl({port, "latency"});
  EXPECT_EQ(latency.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(latency.err, "ERROR")) << latency.err;
  Result watch = Ctl({port, "--iterations=1", "watch"});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_TRUE(absl::StrContains(watch.out, "no stats latency")) << watch.out;
}

}  // namespace
}  // namespace memshard
