#include "server/lifecycle/flagfile_check.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "gtest/gtest.h"

DEFINE_int32(test_port, 1, "a flag for the test");
DEFINE_bool(test_toggle, false, "a boolean flag for the test");

namespace memshard {
namespace {

std::string WriteFile(const std::string& name, const std::string& text) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string path =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name, "_", getpid());
  std::ofstream(path) << text;
  return path;
}

absl::Status Check(std::vector<std::string> args) {
  args.insert(args.begin(), "memshard");
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  return CheckFlagfiles(static_cast<int>(argv.size()), argv.data());
}

TEST(FlagfileCheckTest, AcceptsCommentsBlanksAndKnownFlags) {
  std::string path = WriteFile("good.flags",
                               "# a comment\n\n  --test_port=7  \n"
                               "-test_toggle\n--notest_toggle\n"
                               "--test_port\n");
  EXPECT_TRUE(Check({"--flagfile=" + path}).ok());
  EXPECT_TRUE(Check({"-flagfile", path}).ok());
  EXPECT_TRUE(Check({"--test_port=3"}).ok());  // no flagfile at all
}

TEST(FlagfileCheckTest, AnUnreadableFlagfileIsOneLine) {
  absl::Status s = Check({"--flagfile=/nonexistent/memshard.flags"});
  EXPECT_EQ(s.message(),
            "cannot read --flagfile=/nonexistent/memshard.flags: No such file "
            "or directory");
}

TEST(FlagfileCheckTest, AnUnknownFlagNamesFileAndLine) {
  std::string path = WriteFile("typo.flags", "--test_port=7\n--test_prot=8\n");
  absl::Status s = Check({"--flagfile=" + path});
  EXPECT_EQ(s.message(),
            absl::StrCat(path, " line 2: unknown flag --test_prot"));
  // "no" only negates booleans.
  path = WriteFile("noint.flags", "--notest_port\n");
  EXPECT_FALSE(Check({"--flagfile=" + path}).ok());
}

TEST(FlagfileCheckTest, ALineWithoutDashesIsAnError) {
  // gflags would read it as a program-name filter and ignore what follows.
  std::string path = WriteFile("nodash.flags", "test_port=7\n");
  absl::Status s = Check({"--flagfile=" + path});
  EXPECT_TRUE(absl::StrContains(s.message(), "line 1: expected --name=value"))
      << s;
}

TEST(FlagfileCheckTest, FollowsNestedFlagfilesAndStopsCycles) {
  std::string inner = WriteFile("inner.flags", "--bogus=1\n");
  std::string outer = WriteFile("outer.flags", "--flagfile=" + inner + "\n");
  absl::Status s = Check({"--flagfile=" + outer});
  EXPECT_TRUE(absl::StrContains(s.message(), "unknown flag --bogus")) << s;

  std::string loop = WriteFile("loop.flags", "");
  std::ofstream(loop) << "--flagfile=" << loop << "\n";
  s = Check({"--flagfile=" + loop});
  EXPECT_TRUE(absl::StrContains(s.message(), "nested")) << s;
}

}  // namespace
}  // namespace memshard
