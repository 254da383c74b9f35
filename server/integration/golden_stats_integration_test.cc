// Plays every golden stat-delta script (testing/golden_stats/*.txt) against
// the real memshard binary and against Debian's memcached, each on a fresh
// server: the stat changes each command family makes must be memcached's.

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/golden_stats/golden_stats.h"
#include "testing/memcached_process.h"
#include "testing/peer.h"
#include "testing/runfiles.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

constexpr char kScriptDir[] = "testing/golden_stats";

std::vector<std::string> ScriptNames() {
  return RunfileNames(kScriptDir, ".txt");
}

class GoldenStatsTest
    : public ::testing::TestWithParam<std::tuple<std::string, Peer>> {};

TEST_P(GoldenStatsTest, Script) {
  const auto& [file, peer] = GetParam();
  const absl::StatusOr<std::string> text =
      ReadRunfile(absl::StrCat(kScriptDir, "/", file));
  ASSERT_TRUE(text.ok()) << text.status();
  absl::StatusOr<golden_stats::Script> script =
      golden_stats::ParseScript(file, *text);
  ASSERT_TRUE(script.ok()) << script.status();

  golden_stats::PlayOptions options;
  if (peer == Peer::kMemcached) {
    if (!script->memshard_only.empty()) {
      GTEST_SKIP() << "memshard only: " << script->memshard_only;
    }
    if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
    options.memshard = false;
  }
  std::vector<std::string> memshard_args = {"--workers=2"};
  memshard_args.insert(memshard_args.end(), script->memshard_args.begin(),
                       script->memshard_args.end());
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      StartPeer(peer, memshard_args, script->memcached_args);
  ASSERT_TRUE(server.ok()) << server.status();
  const absl::Status played =
      golden_stats::PlayScript(*script, (*server)->port(), options);
  EXPECT_TRUE(played.ok()) << played;
}

TEST(GoldenStatsScriptsTest, ThereAreScripts) {
  EXPECT_GE(ScriptNames().size(), 5u)
      << "no scripts in " << RunfilePath(kScriptDir);
}

INSTANTIATE_TEST_SUITE_P(Scripts, GoldenStatsTest,
                         ::testing::Combine(::testing::ValuesIn(ScriptNames()),
                                            ::testing::ValuesIn(kPeers)),
                         ScriptPeerTestName);

}  // namespace
}  // namespace memshard
