#include "server/auth/ascii_auth.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/byte_split.h"

namespace memshard {
namespace {

using ::testing::ElementsAre;

class AsciiAuthTest : public ::testing::Test {
 protected:
  AsciiAuthTest() : auth_(*Authenticator::FromText("user:pass\n")) {}

  // Replies, and "AUTH" after a successful one, as a connection would see
  // them; "CLOSE" ends the feed.
  std::vector<std::string> Feed(absl::string_view input) {
    auto step = [&](absl::string_view buffered) {
      SplitStep<std::string> s;
      size_t consumed = 99;
      const AsciiAuthResult r = AsciiAuthStep(buffered, *auth_, &consumed);
      if (r.status == AsciiAuthStatus::kIncomplete) {
        EXPECT_EQ(consumed, 0u);
        return s;
      }
      s.complete = true;
      if (r.status == AsciiAuthStatus::kClose) {
        s.outcome = "CLOSE";
        s.stop = true;
        return s;
      }
      s.outcome = absl::StrCat(r.reply, r.authenticated ? " AUTH" : "");
      s.consumed = consumed;
      return s;
    };
    EXPECT_TRUE(SameAtEverySplit(input, step));
    return FeedChunks({input}, step).outcomes;
  }

  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AsciiAuthTest, GoodAndBadCredentials) {
  EXPECT_THAT(Feed("set x 0 0 9\r\nuser pass\r\n"), ElementsAre("STORED AUTH"));
  EXPECT_THAT(Feed("set x 0 0 9\r\nuser pasS\r\n"),
              ElementsAre("CLIENT_ERROR authentication failure"));
  EXPECT_THAT(
      Feed("set x 0 0 9\r\nuser nope\r\nset x 1 2 9\r\nuser pass\r\n"),
      ElementsAre("CLIENT_ERROR authentication failure", "STORED AUTH"));
}

TEST_F(AsciiAuthTest, AnythingElseIsUnauthenticated) {
  EXPECT_THAT(Feed("get foo\r\nmg foo v\r\nset x 0 0\r\nset x 0 0 abc\r\n"),
              ElementsAre("CLIENT_ERROR unauthenticated",
                          "CLIENT_ERROR unauthenticated",
                          "CLIENT_ERROR unauthenticated",
                          "CLIENT_ERROR unauthenticated"));
}

TEST_F(AsciiAuthTest, MalformedPayloads) {
  EXPECT_THAT(Feed("set x 0 0 4\r\nuser\r\n"),
              ElementsAre("CLIENT_ERROR bad authentication token format"));
  EXPECT_THAT(Feed("set x 0 0 4\r\nuserXX"),
              ElementsAre("CLIENT_ERROR bad command line termination"));
}

TEST_F(AsciiAuthTest, HugeOrEndlessInputCloses) {
  EXPECT_THAT(Feed("set x 0 0 100000\r\n"), ElementsAre("CLOSE"));
  EXPECT_THAT(Feed(std::string(3000, 'a')), ElementsAre("CLOSE"));
}

}  // namespace
}  // namespace memshard
