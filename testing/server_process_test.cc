// ServerProcess mechanics against /bin/sh stand-ins; memshard itself is
// exercised by server/integration/.

#include "testing/server_process.h"

#include <signal.h>
#include <sys/wait.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

ServerProcess::Options Shell(const std::string& script,
                             const std::string& port_file) {
  ServerProcess::Options options;
  options.binary = "/bin/sh";
  options.args = {"-c", script};
  options.port_file = port_file;
  options.start_timeout = absl::Seconds(5);
  return options;
}

TEST(ServerProcessTest, ReadsThePortFileOnceComplete) {
  std::string port_file = TestTempPath("sp_port");
  // Written in two pieces: the fixture must not take "123" for the port.
  auto process =
      ServerProcess::Start(Shell(absl::StrCat("printf 123 > ", port_file,
                                              "; sleep 0.2; printf '45\\n' >> ",
                                              port_file, "; exec sleep 30"),
                                 port_file));
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ((*process)->port(), 12345);
  EXPECT_TRUE((*process)->IsRunning());
  EXPECT_GT((*process)->RssBytes(), 0);
}

TEST(ServerProcessTest, EarlyExitFailsWithTheChildsStderr) {
  std::string port_file = TestTempPath("sp_port");
  absl::Time start = absl::Now();
  auto process = ServerProcess::Start(
      Shell("echo 'bad flag --frobnicate' >&2; exit 3", port_file));
  ASSERT_FALSE(process.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  std::string message(process.status().message());
  EXPECT_NE(message.find("exited with status 3"), std::string::npos) << message;
  EXPECT_NE(message.find("bad flag --frobnicate"), std::string::npos)
      << message;
}

TEST(ServerProcessTest, MissingBinaryFailsClearly) {
  ServerProcess::Options options;
  options.binary = "/nonexistent/server";
  options.port_file = TestTempPath("sp_port");
  auto process = ServerProcess::Start(options);
  ASSERT_FALSE(process.ok());
  EXPECT_NE(process.status().message().find("execve /nonexistent/server"),
            std::string::npos)
      << process.status();
}

TEST(ServerProcessTest, NotReadyInTimeIsAnError) {
  std::string port_file = TestTempPath("sp_port");
  ServerProcess::Options options = Shell("exec sleep 30", port_file);
  options.start_timeout = absl::Milliseconds(300);
  auto process = ServerProcess::Start(options);
  ASSERT_FALSE(process.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(process.status())) << process.status();
}

TEST(ServerProcessTest, StopSendsSigterm) {
  std::string port_file = TestTempPath("sp_port");
  auto process = ServerProcess::Start(Shell(
      absl::StrCat("echo 1 > ", port_file, "; exec sleep 30"), port_file));
  ASSERT_TRUE(process.ok()) << process.status();
  pid_t pid = (*process)->pid();
  int status = (*process)->Stop();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
      << DescribeWaitStatus(status);
  EXPECT_EQ((*process)->pid(), -1);
  EXPECT_NE(kill(pid, 0), 0);  // Reaped: the pid is gone.
  EXPECT_EQ((*process)->Stop(), -1);
}

TEST(ServerProcessTest, StopEscalatesToSigkill) {
  std::string port_file = TestTempPath("sp_port");
  auto process = ServerProcess::Start(Shell(
      absl::StrCat("trap '' TERM; echo 1 > ", port_file, "; exec sleep 30"),
      port_file));
  ASSERT_TRUE(process.ok()) << process.status();
  absl::Time start = absl::Now();
  int status = (*process)->Stop(absl::Milliseconds(200));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << DescribeWaitStatus(status);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(ServerProcessTest, DestructorStopsTheChild) {
  std::string port_file = TestTempPath("sp_port");
  pid_t pid;
  {
    auto process = ServerProcess::Start(Shell(
        absl::StrCat("echo 1 > ", port_file, "; exec sleep 30"), port_file));
    ASSERT_TRUE(process.ok()) << process.status();
    pid = (*process)->pid();
    EXPECT_EQ(kill(pid, 0), 0);
  }
  EXPECT_NE(kill(pid, 0), 0);
}

TEST(ServerProcessTest, SanitizerReportInTheLogFailsTheTest) {
  std::string port_file = TestTempPath("sp_port");
  auto process = ServerProcess::Start(
      Shell(absl::StrCat("echo 'WARNING: ThreadSanitizer: data race' >&2; "
                         "echo 1 > ",
                         port_file, "; exec sleep 30"),
            port_file));
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_NONFATAL_FAILURE((*process)->Stop(), "sanitizer report");
}

TEST(ServerProcessTest, PickUnusedPortGivesABindablePort) {
  absl::StatusOr<int> port = PickUnusedPort();
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_GT(*port, 0);
  EXPECT_LT(*port, 65536);
}

}  // namespace
}  // namespace memshard
