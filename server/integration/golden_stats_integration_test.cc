// Plays every golden stat-delta script (testing/golden_stats/*.txt) against
// the real memshard binary and against Debian's memcached, each on a fresh
// server: the stat changes each command family makes must be memcached's.

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/golden_stats/golden_stats.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

enum class Peer { kMemshard, kMemcached };

std::string ScriptDir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "memshard",
                      "/testing/golden_stats");
}

std::vector<std::string> ScriptNames() {
  std::vector<std::string> names;
  DIR* dir = opendir(ScriptDir().c_str());
  if (dir == nullptr) return names;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (absl::EndsWith(name, ".txt")) names.push_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

std::string TestName(
    const ::testing::TestParamInfo<std::tuple<std::string, Peer>>& info) {
  std::string name = std::get<0>(info.param);
  name.resize(name.size() - 4);  // ".txt"
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return absl::StrCat(
      name, "_",
      std::get<1>(info.param) == Peer::kMemshard ? "memshard" : "memcached");
}

class GoldenStatsTest
    : public ::testing::TestWithParam<std::tuple<std::string, Peer>> {};

TEST_P(GoldenStatsTest, Script) {
  const auto& [file, peer] = GetParam();
  std::ifstream in(absl::StrCat(ScriptDir(), "/", file), std::ios::binary);
  ASSERT_TRUE(in.good()) << file;
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<golden_stats::Script> script =
      golden_stats::ParseScript(file, text.str());
  ASSERT_TRUE(script.ok()) << script.status();

  absl::StatusOr<std::unique_ptr<ServerProcess>> server;
  golden_stats::PlayOptions options;
  if (peer == Peer::kMemcached) {
    if (!script->memshard_only.empty()) {
      GTEST_SKIP() << "memshard only: " << script->memshard_only;
    }
    if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
    server = MemcachedProcess::Start(script->memcached_args);
    options.memshard = false;
  } else {
    std::vector<std::string> args = {"--workers=2"};
    args.insert(args.end(), script->memshard_args.begin(),
                script->memshard_args.end());
    server = ServerProcess::StartMemshard(args);
  }
  ASSERT_TRUE(server.ok()) << server.status();
  const absl::Status played =
      golden_stats::PlayScript(*script, (*server)->port(), options);
  EXPECT_TRUE(played.ok()) << played;
}

TEST(GoldenStatsScriptsTest, ThereAreScripts) {
  EXPECT_GE(ScriptNames().size(), 5u) << "no scripts in " << ScriptDir();
}

INSTANTIATE_TEST_SUITE_P(
    Scripts, GoldenStatsTest,
    ::testing::Combine(::testing::ValuesIn(ScriptNames()),
                       ::testing::Values(Peer::kMemshard, Peer::kMemcached)),
    TestName);

}  // namespace
}  // namespace memshard
