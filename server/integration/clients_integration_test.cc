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
#include "testing/peer.h"
#include "testing/run_program.h"
#include "testing/runfiles.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

bool Exited0(const ProgramResult& result) { return ExitCode(result) == 0; }

class ClientsTest : public PeerTest {
 protected:
  ClientsTest() : PeerTest({"--workers=2"}) {}
};

INSTANTIATE_TEST_SUITE_P(Peers, ClientsTest, ::testing::ValuesIn(kPeers),
                         PeerTestName);

TEST_P(ClientsTest, PymemcacheWholeApi) {
  constexpr char kPython[] = "/usr/bin/python3";
  if (!Exited0(RunProgram({kPython, "-c", "import pymemcache"},
                          absl::Seconds(20)))) {
    GTEST_SKIP() << "python3-pymemcache is not installed";
  }
  const std::string script =
      RunfilePath("server/integration/pymemcache_client.py");
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
