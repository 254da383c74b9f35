#include "server/auth/authenticator.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace memshard {
namespace {

std::string TempPath(const char* name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

TEST(AuthenticatorTest, ChecksUserAndPassword) {
  auto auth = Authenticator::FromText("alice:secret\r\nbob:pa:ss\n\n");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->Check("alice", "secret"));
  EXPECT_TRUE((*auth)->Check("bob", "pa:ss"));  // after the first ':'
  EXPECT_FALSE((*auth)->Check("alice", "secreT"));
  EXPECT_FALSE((*auth)->Check("alice", "secret "));
  EXPECT_FALSE((*auth)->Check("alice", ""));
  EXPECT_FALSE((*auth)->Check("carol", "secret"));
  EXPECT_FALSE((*auth)->Check("", ""));
}

TEST(AuthenticatorTest, RejectsInvalidFiles) {
  EXPECT_FALSE(Authenticator::FromText("").ok());
  EXPECT_FALSE(Authenticator::FromText("alice\n").ok());
  EXPECT_FALSE(Authenticator::FromText(":nobody\n").ok());
  EXPECT_FALSE(Authenticator::FromFile(TempPath("does-not-exist")).ok());
}

TEST(AuthenticatorTest, ReloadKeepsTheOldListOnFailure) {
  const std::string path = TempPath("auth_reload");
  WriteFile(path, "alice:one\n");
  auto auth = Authenticator::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->Check("alice", "one"));
  WriteFile(path, "alice:two\n");
  ASSERT_TRUE((*auth)->Reload().ok());
  EXPECT_FALSE((*auth)->Check("alice", "one"));
  EXPECT_TRUE((*auth)->Check("alice", "two"));
  WriteFile(path, "garbage\n");
  EXPECT_FALSE((*auth)->Reload().ok());
  EXPECT_TRUE((*auth)->Check("alice", "two"));
  std::remove(path.c_str());
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0", 2), "a"));
}

TEST(SaslPlainTest, Parses) {
  // The views point into the message: keep each one alive while used.
  absl::string_view user, password;
  const std::string plain("\0u\0p", 4);
  EXPECT_TRUE(ParseSaslPlain(plain, &user, &password));
  EXPECT_EQ(user, "u");
  EXPECT_EQ(password, "p");
  const std::string with_authzid("authz\0u\0", 8);
  EXPECT_TRUE(ParseSaslPlain(with_authzid, &user, &password));
  EXPECT_EQ(user, "u");
  EXPECT_EQ(password, "");
  EXPECT_FALSE(ParseSaslPlain("u p", &user, &password));
  const std::string no_password("\0u", 2);
  EXPECT_FALSE(ParseSaslPlain(no_password, &user, &password));
  const std::string no_user("\0\0p", 3);
  EXPECT_FALSE(ParseSaslPlain(no_user, &user, &password));
  const std::string three_nuls("\0u\0p\0", 5);
  EXPECT_FALSE(ParseSaslPlain(three_nuls, &user, &password));
}

}  // namespace
}  // namespace memshard
