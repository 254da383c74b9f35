// Plays every golden wire script (testing/golden/*.txt: the text protocol,
// and meta_*.txt for the meta protocol) against the real memshard binary and
// against Debian's memcached, each on a fresh server.
// The same expectations must hold on both: a script that fails on memcached
// is a wrong script, one that fails only on memshard is a memshard bug.
// Scripts marked "@memcached-only" record a known difference (memshard
// skips them, naming the reason); "@memshard-only" ones memcached skips.

#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/golden/golden_script.h"
#include "testing/memcached_process.h"
#include "testing/peer.h"
#include "testing/runfiles.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

constexpr char kScriptDir[] = "testing/golden";

std::vector<std::string> ScriptNames() {
  return RunfileNames(kScriptDir, ".txt");
}

class GoldenTest
    : public ::testing::TestWithParam<std::tuple<std::string, Peer>> {};

TEST_P(GoldenTest, Script) {
  const auto& [file, peer] = GetParam();
  const absl::StatusOr<std::string> text =
      ReadRunfile(absl::StrCat(kScriptDir, "/", file));
  ASSERT_TRUE(text.ok()) << text.status();
  absl::StatusOr<golden::Script> script = golden::ParseScript(file, *text);
  ASSERT_TRUE(script.ok()) << script.status();

  if (peer == Peer::kMemcached) {
    if (!script->memshard_only.empty()) {
      GTEST_SKIP() << "memshard only: " << script->memshard_only;
    }
    if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  } else {
    if (!script->memcached_only.empty()) {
      GTEST_SKIP() << "memshard differs: " << script->memcached_only;
    }
  }
  std::vector<std::string> memshard_args = {"--workers=2"};
  memshard_args.insert(memshard_args.end(), script->memshard_args.begin(),
                       script->memshard_args.end());
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      StartPeer(peer, memshard_args, script->memcached_args);
  ASSERT_TRUE(server.ok()) << server.status();
  absl::Status played = golden::PlayScript(*script, (*server)->port());
  EXPECT_TRUE(played.ok()) << played.message();
}

TEST(GoldenScriptsTest, AreFound) { EXPECT_GE(ScriptNames().size(), 10u); }

INSTANTIATE_TEST_SUITE_P(Scripts, GoldenTest,
                         ::testing::Combine(::testing::ValuesIn(ScriptNames()),
                                            ::testing::ValuesIn(kPeers)),
                         ScriptPeerTestName);

}  // namespace
}  // namespace memshard
