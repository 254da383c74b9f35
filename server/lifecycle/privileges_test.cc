#include "server/lifecycle/privileges.h"

#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

TEST(PrivilegesTest, UnknownUserIsOneClearError) {
  auto user = LookUpUser("no-such-user-memshard");
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.status().message(),
            "--user=no-such-user-memshard: no such user");
}

TEST(PrivilegesTest, LooksUpByNameAndByUid) {
  auto by_uid = LookUpUser(std::to_string(geteuid()));
  ASSERT_TRUE(by_uid.ok()) << by_uid.status();
  EXPECT_EQ(by_uid->uid, geteuid());
  auto by_name = LookUpUser(by_uid->name);
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->uid, geteuid());
  // Already that user: nothing to do.
  EXPECT_TRUE(DropPrivileges(*by_name).ok());
}

TEST(PrivilegesTest, RootDropsForGood) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  auto nobody = LookUpUser("nobody");
  if (!nobody.ok()) GTEST_SKIP() << "no user nobody";
  // In a child: the test process itself stays root.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!DropPrivileges(*nobody).ok()) _exit(1);
    if (getuid() != nobody->uid || geteuid() != nobody->uid) _exit(2);
    if (getgid() != nobody->gid) _exit(3);
    if (setuid(0) == 0) _exit(4);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(PrivilegesTest, NonRootCannotBecomeSomebodyElse) {
  if (geteuid() == 0) GTEST_SKIP() << "runs as root";
  auto root = LookUpUser("root");
  ASSERT_FALSE(root.ok());
  EXPECT_TRUE(absl::StrContains(root.status().message(), "needs memshard"));
}

}  // namespace
}  // namespace memshard
