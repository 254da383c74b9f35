// Plays every golden wire script (testing/golden/*.txt: the text protocol,
// and meta_*.txt for the meta protocol) against the real memshard binary and
// against Debian's memcached, each on a fresh server.
// The same expectations must hold on both: a script that fails on memcached
// is a wrong script, one that fails only on memshard is a memshard bug.
// Scripts marked "@memcached-only" record a known difference (memshard
// skips them, naming the reason); "@memshard-only" ones memcached skips.

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/golden/golden_script.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

enum class Peer { kMemshard, kMemcached };

void PrintTo(Peer peer, std::ostream* os) {
  *os << (peer == Peer::kMemshard ? "memshard" : "memcached");
}

std::string ScriptDir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "memshard",
                      "/testing/golden");
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

class GoldenTest
    : public ::testing::TestWithParam<std::tuple<std::string, Peer>> {};

TEST_P(GoldenTest, Script) {
  const auto& [file, peer] = GetParam();
  std::ifstream in(absl::StrCat(ScriptDir(), "/", file), std::ios::binary);
  ASSERT_TRUE(in.good()) << file;
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<golden::Script> script = golden::ParseScript(file, text.str());
  ASSERT_TRUE(script.ok()) << script.status();

  absl::StatusOr<std::unique_ptr<ServerProcess>> server;
  if (peer == Peer::kMemcached) {
    if (!script->memshard_only.empty()) {
      GTEST_SKIP() << "memshard only: " << script->memshard_only;
    }
    if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
    server = MemcachedProcess::Start(script->memcached_args);
  } else {
    if (!script->memcached_only.empty()) {
      GTEST_SKIP() << "memshard differs: " << script->memcached_only;
    }
    std::vector<std::string> args = {"--workers=2"};
    args.insert(args.end(), script->memshard_args.begin(),
                script->memshard_args.end());
    server = ServerProcess::StartMemshard(args);
  }
  ASSERT_TRUE(server.ok()) << server.status();
  absl::Status played = golden::PlayScript(*script, (*server)->port());
  EXPECT_TRUE(played.ok()) << played.message();
}

TEST(GoldenScriptsTest, AreFound) { EXPECT_GE(ScriptNames().size(), 10u); }

INSTANTIATE_TEST_SUITE_P(
    Scripts, GoldenTest,
    ::testing::Combine(::testing::ValuesIn(ScriptNames()),
                       ::testing::Values(Peer::kMemshard, Peer::kMemcached)),
    TestName);

}  // namespace
}  // namespace memshard
