// Plays the golden wire scripts (testing/golden/*.txt) against memshard in
// --mode=proxy and --mode=l1l2, each over a fresh Debian memcached: a proxy
// in front of memcached must answer as memcached does. Scripts about what
// only the server holding the items can know (its memory, its clock, its
// counters) are skipped, each with its reason below.

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
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

// Scripts that do not apply in front of a backend, and why.
const absl::flat_hash_map<std::string, std::string>& NotThroughAProxy() {
  static const auto* reasons =
      new absl::flat_hash_map<std::string, std::string>{
          {"stats.txt", "checks the server's own item and command counters"},
          {"stats_detail.txt",
           "stats detail counts nothing in proxy or l1l2 mode (STATS.md)"},
      };
  return *reasons;
}

std::vector<std::string> ScriptNames() {
  return RunfileNames(kScriptDir, ".txt");
}

class GoldenProxyTest
    : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(GoldenProxyTest, Script) {
  const auto& [file, mode] = GetParam();
  if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  const absl::StatusOr<std::string> text =
      ReadRunfile(absl::StrCat(kScriptDir, "/", file));
  ASSERT_TRUE(text.ok()) << text.status();
  absl::StatusOr<golden::Script> script = golden::ParseScript(file, *text);
  ASSERT_TRUE(script.ok()) << script.status();
  // Both kinds record what memshard's own parser does unlike memcached,
  // which a proxy's text clients meet too.
  if (!script->memshard_only.empty()) {
    GTEST_SKIP() << "memshard only: " << script->memshard_only;
  }
  if (!script->memcached_only.empty()) {
    GTEST_SKIP() << "memshard differs: " << script->memcached_only;
  }
  auto reason = NotThroughAProxy().find(file);
  if (reason != NotThroughAProxy().end()) GTEST_SKIP() << reason->second;
  absl::StatusOr<std::unique_ptr<ServerProcess>> backend =
      MemcachedProcess::Start(script->memcached_args);
  ASSERT_TRUE(backend.ok()) << backend.status();
  absl::StatusOr<std::unique_ptr<ServerProcess>> proxy =
      ServerProcess::StartMemshard(
          {"--workers=2", absl::StrCat("--mode=", mode),
           absl::StrCat("--backends=127.0.0.1:", (*backend)->port())});
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  absl::Status played = golden::PlayScript(*script, (*proxy)->port());
  EXPECT_TRUE(played.ok()) << played.message();
}

std::string Name(
    const ::testing::TestParamInfo<std::tuple<std::string, std::string>>&
        info) {
  return ScriptTestName(std::get<0>(info.param), std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Scripts, GoldenProxyTest,
                         ::testing::Combine(::testing::ValuesIn(ScriptNames()),
                                            ::testing::Values("proxy", "l1l2")),
                         Name);

}  // namespace
}  // namespace memshard
