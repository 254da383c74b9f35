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
#include "testing/run_program.h"
#include "testing/runfiles.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

// stdout first: the install script prints its folder on stdout's first
// line.
ProgramResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env,
                         absl::Duration timeout) {
  ProgramOptions options;
  options.env = env;
  options.stdout_first = true;
  return RunProgram(argv, timeout, options);
}

class MemjsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ProgramResult install = RunCommand(
        {"/bin/bash", RunfilePath("server/integration/memjs_install.sh")}, {},
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

  ProgramResult Client(int port, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        "node", RunfilePath("server/integration/memjs_client.js"),
        absl::StrCat(port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv, {node_path_}, absl::Seconds(60));
  }

  std::string node_path_;
};

TEST_F(MemjsTest, BinaryProtocol) {
  auto server = ServerProcess::StartMemshard({"--workers=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const ProgramResult result = Client((*server)->port());
  EXPECT_EQ(ExitCode(result), 0) << result.output;
}

TEST_F(MemjsTest, SaslPlainGoodAndBadCredentials) {
  const std::string users = TestTempPath("memjs_users");
  std::ofstream(users) << "dave:hunter2\n";
  auto server = ServerProcess::StartMemshard(
      {"--workers=2", absl::StrCat("--sasl_password_file=", users)});
  ASSERT_TRUE(server.ok()) << server.status();
  const ProgramResult good = Client((*server)->port(), {"dave", "hunter2"});
  EXPECT_EQ(ExitCode(good), 0) << good.output;
  const ProgramResult bad =
      Client((*server)->port(), {"dave", "wrong", "--expect-auth-failure"});
  EXPECT_EQ(ExitCode(bad), 0) << bad.output;
  const ProgramResult anonymous =
      Client((*server)->port(), {"--expect-auth-failure"});
  EXPECT_EQ(ExitCode(anonymous), 0) << anonymous.output;
  std::remove(users.c_str());
}

}  // namespace
}  // namespace memshard
