// server/admin/STATS.md documents every stat of the table; this keeps the two
// from drifting apart.

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "metrics/worker_metrics.h"

namespace memshard {
namespace {

TEST(StatsDocTest, EveryStatHasItsRow) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(absl::StrCat(srcdir != nullptr ? srcdir : ".",
                                "/memshard/server/admin/STATS.md"));
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  for (size_t i = 0; i < kNumStats; ++i) {
    const StatInfo& info = GetStatInfo(static_cast<Stat>(i));
    EXPECT_TRUE(absl::StrContains(doc, absl::StrCat("| `", info.name, "` |")))
        << "STATS.md lacks a row for " << info.name;
    if (!info.prometheus.empty()) {
      EXPECT_TRUE(absl::StrContains(doc, info.prometheus))
          << "STATS.md lacks " << info.prometheus;
    }
  }
  for (size_t f = 0; f < kNumLatencyFamilies; ++f) {
    EXPECT_TRUE(absl::StrContains(
        doc,
        absl::StrCat("`", LatencyFamilyInfo(static_cast<LatencyFamily>(f)).name,
                     "`")));
  }
}

}  // namespace
}  // namespace memshard
