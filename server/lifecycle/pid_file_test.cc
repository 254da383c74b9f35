#include "server/lifecycle/pid_file.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

std::string TempPath(const std::string& name) {
  const char* tmp = getenv("TEST_TMPDIR");
  return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name, "_", getpid());
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(PidFileTest, WritesThePidAndRemovesItOnDestruction) {
  std::string path = TempPath("pid");
  {
    auto pid_file = PidFile::Create(path, 4242);
    ASSERT_TRUE(pid_file.ok()) << pid_file.status();
    EXPECT_EQ(Read(path), "4242\n");
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

TEST(PidFileTest, LeavesAFileThatASuccessorRewrote) {
  std::string path = TempPath("pid_successor");
  {
    auto pid_file = PidFile::Create(path, 4242);
    ASSERT_TRUE(pid_file.ok()) << pid_file.status();
    std::ofstream(path) << "999\n";
  }
  EXPECT_EQ(Read(path), "999\n");
  unlink(path.c_str());
}

TEST(PidFileTest, AnUnwritablePathIsOneClearError) {
  auto pid_file = PidFile::Create("/nonexistent-dir/memshard.pid", 1);
  ASSERT_FALSE(pid_file.ok());
  EXPECT_TRUE(absl::StartsWith(pid_file.status().message(),
                               "--pid_file=/nonexistent-dir/memshard.pid: "))
      << pid_file.status();
}

}  // namespace
}  // namespace memshard
