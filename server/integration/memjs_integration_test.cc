// memjs, the Node.js client from npm, against the real memshard binary over
// the binary protocol: without authentication, and with SASL PLAIN (good
// and bad credentials). memjs is installed by memjs_install.sh into a
// cached folder; the test skips, saying why, when npm is unavailable.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

struct Result {
  int status = -1;
  std::string output;
};

Result RunCommand(const std::vector<std::string>& argv,
                  const std::vector<std::string>& env, absl::Duration timeout) {
  Result result;
  const std::string log = TestTempPath("memjs_log");
  const std::string out = TestTempPath("memjs_out");
  const pid_t pid = fork();
  if (pid == 0) {
    const int err_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (err_fd < 0 || out_fd < 0) _exit(126);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const std::string& arg : argv) {
      args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    execvp(args[0], args.data());
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
  std::ifstream out_in(out);
  std::stringstream stdout_text;
  stdout_text << out_in.rdbuf();
  std::ifstream err_in(log);
  std::stringstream stderr_text;
  stderr_text << err_in.rdbuf();
  unlink(log.c_str());
  unlink(out.c_str());
  result.output = stdout_text.str() + "\n--- stderr ---\n" + stderr_text.str();
  return result;
}

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "memshard", "/", path);
}

int ExitCode(const Result& r) {
  return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
}

class MemjsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Result install = RunCommand(
        {"/bin/bash", Runfile("server/integration/memjs_install.sh")}, {},
        absl::Minutes(5));
    if (ExitCode(install) == 3) {
      GTEST_SKIP() << "memjs not installable (npm unavailable): "
                   << install.output;
    }
    ASSERT_EQ(ExitCode(install), 0) << install.output;
    std::string dir = install.output.substr(0, install.output.find('\n'));
    absl::StripAsciiWhitespace(&dir);
    node_path_ = absl::StrCat("NODE_PATH=", dir, "/node_modules");
  }

  Result Client(int port, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        "node", Runfile("server/integration/memjs_client.js"),
        absl::StrCat(port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv, {node_path_}, absl::Seconds(60));
  }

  std::string node_path_;
};

TEST_F(MemjsTest, BinaryProtocol) {
  auto server = ServerProcess::StartMemshard({"--workers=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const Result result = Client((*server)->port());
  EXPECT_EQ(ExitCode(result), 0) << result.output;
}

TEST_F(MemjsTest, SaslPlainGoodAndBadCredentials) {
  const std::string users = TestTempPath("memjs_users");
  std::ofstream(users) << "dave:hunter2\n";
  auto server = ServerProcess::StartMemshard(
      {"--workers=2", absl::StrCat("--sasl_password_file=", users)});
  ASSERT_TRUE(server.ok()) << server.status();
  const Result good = Client((*server)->port(), {"dave", "hunter2"});
  EXPECT_EQ(ExitCode(good), 0) << good.output;
  const Result bad =
      Client((*server)->port(), {"dave", "wrong", "--expect-auth-failure"});
  EXPECT_EQ(ExitCode(bad), 0) << bad.output;
  const Result anonymous = Client((*server)->port(), {"--expect-auth-failure"});
  EXPECT_EQ(ExitCode(anonymous), 0) << anonymous.output;
  std::remove(users.c_str());
}

}  // namespace
}  // namespace memshard
