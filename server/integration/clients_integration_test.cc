// Real clients from Debian against the real memshard binary, and against
// memcached to prove the expectations: pymemcache (its whole API, in
// pymemcache_client.py) and libmemcached-tools' memccapable -a (every ascii
// protocol test).

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

enum class Peer { kMemshard, kMemcached };

struct ProgramResult {
  int status = -1;     // waitpid(2) status
  std::string output;  // stdout and stderr
};

// Runs `argv` (no shell) with stdout+stderr to a file, killing it after
// `timeout`.
ProgramResult RunProgram(const std::vector<std::string>& argv,
                         absl::Duration timeout) {
  ProgramResult result;
  const std::string log = TestTempPath("program_log");
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) _exit(126);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& arg : argv) {
      args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (waitpid(pid, &result.status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &result.status, 0);
      result.output = "<killed: timed out>\n";
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  result.output += text.str();
  unlink(log.c_str());
  return result;
}

bool Exited0(const ProgramResult& result) {
  return WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0;
}

class ClientsTest : public ::testing::TestWithParam<Peer> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server;
    if (GetParam() == Peer::kMemcached) {
      if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
      server = MemcachedProcess::Start();
    } else {
      server = ServerProcess::StartMemshard({"--workers=2"});
    }
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<ServerProcess> server_;
};

INSTANTIATE_TEST_SUITE_P(Peers, ClientsTest,
                         ::testing::Values(Peer::kMemshard, Peer::kMemcached),
                         [](const ::testing::TestParamInfo<Peer>& info) {
                           return info.param == Peer::kMemshard ? "memshard"
                                                                : "memcached";
                         });

TEST_P(ClientsTest, PymemcacheWholeApi) {
  constexpr char kPython[] = "/usr/bin/python3";
  if (!Exited0(RunProgram({kPython, "-c", "import pymemcache"},
                          absl::Seconds(20)))) {
    GTEST_SKIP() << "python3-pymemcache is not installed";
  }
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string script =
      absl::StrCat(srcdir != nullptr ? srcdir : ".",
                   "/memshard/server/integration/pymemcache_client.py");
  ProgramResult result = RunProgram(
      {kPython, script, absl::StrCat(server_->port())}, absl::Seconds(60));
  EXPECT_TRUE(Exited0(result)) << DescribeWaitStatus(result.status) << "\n"
                               << result.output;
  EXPECT_TRUE(absl::StrContains(result.output, "PASS: ")) << result.output;
}

TEST_P(ClientsTest, MemccapableAsciiPassesEveryTest) {
  constexpr char kMemccapable[] = "/usr/bin/memccapable";
  if (access(kMemccapable, X_OK) != 0) {
    GTEST_SKIP() << "libmemcached-tools is not installed";
  }
  ProgramResult result =
      RunProgram({kMemccapable, "-a", "-h", "127.0.0.1", "-p",
                  absl::StrCat(server_->port()), "-t", "5"},
                 absl::Seconds(60));
  EXPECT_TRUE(Exited0(result)) << DescribeWaitStatus(result.status) << "\n"
                               << result.output;
  EXPECT_TRUE(absl::StrContains(result.output, "All tests passed"))
      << result.output;
  EXPECT_FALSE(absl::StrContains(result.output, "[FAIL]")) << result.output;
  // 27 ascii tests in libmemcached-tools 1.1.4; each prints "[pass]".
  int passes = 0;
  for (size_t at = result.output.find("[pass]"); at != std::string::npos;
       at = result.output.find("[pass]", at + 1)) {
    ++passes;
  }
  EXPECT_GE(passes, 27) << result.output;
}

}  // namespace
}  // namespace memshard
