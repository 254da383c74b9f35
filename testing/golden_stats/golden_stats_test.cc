#include "testing/golden_stats/golden_stats.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace memshard::golden_stats {
namespace {

TEST(GoldenStatsTest, ParsesEveryConstruct) {
  absl::StatusOr<Script> script = ParseScript("t", R"(# comment
@memshard-args --workers=1
== first
> set k 0 0 1\tx
< STORED
<~ VALUE
<* END
! reconnect
! sleep 0.5
= cmd_set +1
=! protocol_errors -2
= latency:get:count =3
)");
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_EQ(script->memshard_args, std::vector<std::string>{"--workers=1"});
  ASSERT_EQ(script->cases.size(), 1u);
  const Case& c = script->cases[0];
  EXPECT_EQ(c.name, "first");
  ASSERT_EQ(c.steps.size(), 6u);
  EXPECT_EQ(c.steps[0].kind, Step::Kind::kSend);
  EXPECT_EQ(c.steps[0].text, "set k 0 0 1\tx");
  EXPECT_EQ(c.steps[2].kind, Step::Kind::kExpectPrefix);
  EXPECT_EQ(c.steps[3].kind, Step::Kind::kSkipTo);
  EXPECT_EQ(c.steps[5].sleep, absl::Milliseconds(500));
  ASSERT_EQ(c.expectations.size(), 3u);
  EXPECT_EQ(c.expectations[0].name, "cmd_set");
  EXPECT_EQ(c.expectations[0].value, 1);
  EXPECT_TRUE(c.expectations[1].memshard_only);
  EXPECT_EQ(c.expectations[1].value, -2);
  EXPECT_EQ(c.expectations[2].group, "latency");
  EXPECT_EQ(c.expectations[2].name, "get:count");
  EXPECT_TRUE(c.expectations[2].exact);
}

TEST(GoldenStatsTest, RejectsMistakesWithTheirLine) {
  for (const char* bad :
       {"> before any case\n", "== c\n= cmd_set 1\n", "== c\n= cmd_set\n",
        "== c\n? what\n", "== c\n! sleep forever\n", ""}) {
    absl::StatusOr<Script> script = ParseScript("bad", bad);
    EXPECT_FALSE(script.ok()) << bad;
  }
  absl::StatusOr<Script> script = ParseScript("bad", "== c\n\n= x 1\n");
  ASSERT_FALSE(script.ok());
  EXPECT_TRUE(absl::StrContains(script.status().message(), "bad:3:"))
      << script.status();
}

}  // namespace
}  // namespace memshard::golden_stats
