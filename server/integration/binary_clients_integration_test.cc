// Real binary-protocol clients against the real memshard binary (and
// against memcached, to prove the expectations): libmemcached-tools'
// memccapable (-b, and every test), libmemcached (libmemcached-dev) in
// binary mode, with and without SASL PLAIN.

#include <fcntl.h>
#include <libmemcached/memcached.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/libmemcached_client.h"
#include "testing/memcached_process.h"
#include "testing/peer.h"
#include "testing/run_program.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

class MemccapableTest : public ::testing::TestWithParam<Peer> {};

TEST_P(MemccapableTest, BinaryAndAllTestsPass) {
  constexpr char kMemccapable[] = "/usr/bin/memccapable";
  if (access(kMemccapable, X_OK) != 0) GTEST_SKIP() << "no memccapable";
  if (GetParam() == Peer::kMemcached && !MemcachedProcess::IsInstalled()) {
    GTEST_SKIP() << "no memcached";
  }
  auto server = StartPeer(GetParam(), {"--workers=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string port = absl::StrCat((*server)->port());
  for (const char* mode : {"-b", ""}) {
    std::vector<std::string> argv = {kMemccapable, "-h", "127.0.0.1", "-p",
                                     port,         "-t", "5"};
    if (*mode != '\0') argv.push_back(mode);
    const ProgramResult result = RunProgram(argv, absl::Seconds(120));
    EXPECT_EQ(ExitCode(result), 0) << "memccapable " << mode << ":\n"
                                   << result.output;
    EXPECT_NE(result.output.find("All tests passed"), std::string::npos)
        << result.output;
  }
}

INSTANTIATE_TEST_SUITE_P(Peers, MemccapableTest, ::testing::ValuesIn(kPeers),
                         PeerTestName);

// --- libmemcached in binary mode ------------------------------------------

Memc BinaryClient(int port, bool noreply = false) {
  return NewMemc(port, MemcProtocol::kBinary, noreply);
}

memcached_return_t Set(memcached_st* memc, const std::string& key,
                       const std::string& value, uint32_t flags = 0) {
  return memcached_set(memc, key.data(), key.size(), value.data(), value.size(),
                       0, flags);
}

// The value, or "<miss>"; "<error ...>" on anything else.
std::string Get(memcached_st* memc, const std::string& key,
                uint32_t* flags_out = nullptr) {
  size_t length = 0;
  uint32_t flags = 0;
  memcached_return_t rc = MEMCACHED_SUCCESS;
  char* value =
      memcached_get(memc, key.data(), key.size(), &length, &flags, &rc);
  if (rc == MEMCACHED_NOTFOUND) return "<miss>";
  if (rc != MEMCACHED_SUCCESS) {
    free(value);
    return absl::StrCat("<error ", memcached_strerror(memc, rc), ">");
  }
  std::string result(value, length);
  free(value);
  if (flags_out != nullptr) *flags_out = flags;
  return result;
}

class LibmemcachedBinaryTest : public PeerTest {
 protected:
  LibmemcachedBinaryTest() : PeerTest({"--workers=2"}) {}

  void SetUp() override {
    PeerTest::SetUp();
    if (server_ == nullptr) return;
    memc_ = BinaryClient(server_->port());
  }
  Memc memc_;
};

TEST_P(LibmemcachedBinaryTest, StorageAndRetrieval) {
  memcached_st* m = memc_.get();
  ASSERT_EQ(Set(m, "k", "v", 17), MEMCACHED_SUCCESS);
  uint32_t flags = 0;
  EXPECT_EQ(Get(m, "k", &flags), "v");
  EXPECT_EQ(flags, 17u);
  // Binary add and replace report memcached's EEXISTS and ENOENT.
  EXPECT_EQ(memcached_add(m, "k", 1, "x", 1, 0, 0), MEMCACHED_DATA_EXISTS);
  EXPECT_EQ(memcached_add(m, "a", 1, "x", 1, 0, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_replace(m, "nope", 4, "x", 1, 0, 0), MEMCACHED_NOTFOUND);
  EXPECT_EQ(memcached_append(m, "k", 1, "+", 1, 0, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_prepend(m, "k", 1, "-", 1, 0, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get(m, "k"), "-v+");
  EXPECT_EQ(memcached_append(m, "nope", 4, "+", 1, 0, 0), MEMCACHED_NOTSTORED);
  EXPECT_EQ(memcached_delete(m, "k", 1, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_delete(m, "k", 1, 0), MEMCACHED_NOTFOUND);
  EXPECT_EQ(Get(m, "k"), "<miss>");
  EXPECT_EQ(memcached_touch(m, "a", 1, 100), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_touch(m, "nope", 4, 100), MEMCACHED_NOTFOUND);
}

TEST_P(LibmemcachedBinaryTest, QuietMultiGet) {
  memcached_st* m = memc_.get();
  std::vector<std::string> keys;
  for (int i = 0; i < 50; ++i) {
    keys.push_back(absl::StrCat("key", i));
    if (i % 2 == 0) {
      ASSERT_EQ(Set(m, keys.back(), absl::StrCat("value", i), i),
                MEMCACHED_SUCCESS);
    }
  }
  std::vector<const char*> key_ptrs;
  std::vector<size_t> key_lengths;
  for (const std::string& key : keys) {
    key_ptrs.push_back(key.data());
    key_lengths.push_back(key.size());
  }
  // Binary mget: GetKQ for every key, then a Noop.
  ASSERT_EQ(memcached_mget(m, key_ptrs.data(), key_lengths.data(), keys.size()),
            MEMCACHED_SUCCESS);
  int found = 0;
  memcached_return_t rc;
  while (memcached_result_st* result =
             memcached_fetch_result(m, nullptr, &rc)) {
    const std::string key(memcached_result_key_value(result),
                          memcached_result_key_length(result));
    const std::string value(memcached_result_value(result),
                            memcached_result_length(result));
    const int i = std::stoi(key.substr(3));
    EXPECT_EQ(i % 2, 0) << key;
    EXPECT_EQ(value, absl::StrCat("value", i));
    EXPECT_EQ(memcached_result_flags(result), static_cast<uint32_t>(i));
    EXPECT_NE(memcached_result_cas(result), 0u);
    memcached_result_free(result);
    ++found;
  }
  EXPECT_EQ(found, 25);
}

TEST_P(LibmemcachedBinaryTest, Cas) {
  memcached_st* m = memc_.get();
  ASSERT_EQ(Set(m, "c", "one"), MEMCACHED_SUCCESS);
  const char* key = "c";
  size_t length = 1;
  ASSERT_EQ(memcached_mget(m, &key, &length, 1), MEMCACHED_SUCCESS);
  memcached_return_t rc;
  memcached_result_st* result = memcached_fetch_result(m, nullptr, &rc);
  ASSERT_NE(result, nullptr);
  const uint64_t cas = memcached_result_cas(result);
  memcached_result_free(result);
  while ((result = memcached_fetch_result(m, nullptr, &rc)) != nullptr) {
    memcached_result_free(result);
  }
  EXPECT_EQ(memcached_cas(m, "c", 1, "two", 3, 0, 0, cas + 1),
            MEMCACHED_DATA_EXISTS);
  EXPECT_EQ(memcached_cas(m, "c", 1, "two", 3, 0, 0, cas), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_cas(m, "c", 1, "three", 5, 0, 0, cas),
            MEMCACHED_DATA_EXISTS);
  EXPECT_EQ(memcached_cas(m, "gone", 4, "x", 1, 0, 0, cas), MEMCACHED_NOTFOUND);
  EXPECT_EQ(Get(m, "c"), "two");
}

TEST_P(LibmemcachedBinaryTest, IncrementWithInitial) {
  memcached_st* m = memc_.get();
  uint64_t value = 0;
  EXPECT_EQ(memcached_increment_with_initial(m, "n", 1, 5, 100, 0, &value),
            MEMCACHED_SUCCESS);
  EXPECT_EQ(value, 100u);  // created with the initial value
  EXPECT_EQ(memcached_increment_with_initial(m, "n", 1, 5, 100, 0, &value),
            MEMCACHED_SUCCESS);
  EXPECT_EQ(value, 105u);
  EXPECT_EQ(memcached_decrement_with_initial(m, "n", 1, 200, 0, 0, &value),
            MEMCACHED_SUCCESS);
  EXPECT_EQ(value, 0u);
  EXPECT_EQ(memcached_increment(m, "n", 1, 7, &value), MEMCACHED_SUCCESS);
  EXPECT_EQ(value, 7u);
  EXPECT_EQ(memcached_increment(m, "missing", 7, 1, &value),
            MEMCACHED_NOTFOUND);
  ASSERT_EQ(Set(m, "text", "abc"), MEMCACHED_SUCCESS);
  EXPECT_NE(memcached_increment(m, "text", 4, 1, &value), MEMCACHED_SUCCESS);
}

TEST_P(LibmemcachedBinaryTest, NoreplyUsesQuietOpcodes) {
  Memc quiet = BinaryClient(server_->port(), /*noreply=*/true);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Set(quiet.get(), absl::StrCat("q", i), absl::StrCat(i)),
              MEMCACHED_SUCCESS);
  }
  EXPECT_EQ(memcached_delete(quiet.get(), "q0", 2, 0), MEMCACHED_SUCCESS);
  // A reply-waiting client sees every write (ordering across connections
  // is guaranteed once the quiet client's pipeline is flushed).
  EXPECT_EQ(memcached_flush_buffers(quiet.get()), MEMCACHED_SUCCESS);
  uint64_t value = 0;
  EXPECT_EQ(memcached_increment(quiet.get(), "q5", 2, 1, &value),
            MEMCACHED_SUCCESS);
  // A get is never quiet: once it answers, every earlier quiet request
  // on that connection has been executed.
  EXPECT_EQ(Get(quiet.get(), "q19"), "19");
  EXPECT_EQ(Get(memc_.get(), "q0"), "<miss>");
  EXPECT_EQ(Get(memc_.get(), "q19"), "19");
  EXPECT_EQ(Get(memc_.get(), "q5"), "6");
}

TEST_P(LibmemcachedBinaryTest, FlushVersionAndStats) {
  memcached_st* m = memc_.get();
  ASSERT_EQ(Set(m, "f", "v"), MEMCACHED_SUCCESS);
  EXPECT_EQ(memcached_flush(m, 0), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get(m, "f"), "<miss>");
  EXPECT_EQ(memcached_version(m), MEMCACHED_SUCCESS);
  memcached_return_t rc;
  memcached_stat_st* stats = memcached_stat(m, nullptr, &rc);
  ASSERT_EQ(rc, MEMCACHED_SUCCESS);
  EXPECT_GT(stats[0].pid, 0u);
  memcached_stat_free(m, stats);
}

INSTANTIATE_TEST_SUITE_P(Peers, LibmemcachedBinaryTest,
                         ::testing::ValuesIn(kPeers), PeerTestName);

TEST(LibmemcachedSaslTest, PlainAuthentication) {
  const std::string users = TestTempPath("libmemcached_users");
  std::ofstream(users) << "carol:s3cret\n";
  auto server = ServerProcess::StartMemshard(
      {"--workers=1", absl::StrCat("--sasl_password_file=", users)});
  ASSERT_TRUE(server.ok()) << server.status();

  Memc good = BinaryClient((*server)->port());
  ASSERT_EQ(memcached_set_sasl_auth_data(good.get(), "carol", "s3cret"),
            MEMCACHED_SUCCESS);
  EXPECT_EQ(Set(good.get(), "k", "v"), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get(good.get(), "k"), "v");

  Memc bad = BinaryClient((*server)->port());
  ASSERT_EQ(memcached_set_sasl_auth_data(bad.get(), "carol", "wrong"),
            MEMCACHED_SUCCESS);
  EXPECT_NE(Set(bad.get(), "k", "x"), MEMCACHED_SUCCESS);

  Memc anonymous = BinaryClient((*server)->port());
  EXPECT_NE(Set(anonymous.get(), "k", "y"), MEMCACHED_SUCCESS);
  EXPECT_EQ(Get(good.get(), "k"), "v");
  std::remove(users.c_str());
}

}  // namespace
}  // namespace memshard
