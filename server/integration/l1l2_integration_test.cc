// memshard --mode=l1l2: the embedded store as L1 in front of a real
// memcached as L2, with Rend's rules (server/orca/proxy_orca.h). L1's
// content is observed by changing L2 behind memshard's back: a stale answer
// through memshard can only have come from L1.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace {

class L1L2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  }

  // Starts memcached (with `l2_args`) as L2 and memshard (with `extra`).
  void Start(const std::vector<std::string>& extra = {},
             const std::vector<std::string>& l2_args = {}) {
    auto m = MemcachedProcess::Start(l2_args);
    ASSERT_TRUE(m.ok()) << m.status();
    l2_ = *std::move(m);
    auto d = l2_->Connect();
    ASSERT_TRUE(d.ok());
    direct_ = *std::move(d);
    std::vector<std::string> args = {
        "--workers=2", "--mode=l1l2",
        absl::StrCat("--backends=127.0.0.1:", l2_->port())};
    args.insert(args.end(), extra.begin(), extra.end());
    auto memshard = ServerProcess::StartMemshard(args);
    ASSERT_TRUE(memshard.ok()) << memshard.status();
    memshard_ = *std::move(memshard);
    auto c = memshard_->Connect();
    ASSERT_TRUE(c.ok());
    client_ = *std::move(c);
  }

  std::unique_ptr<ServerProcess> l2_;
  std::unique_ptr<BlockingClient> direct_;  // to L2, behind memshard
  std::unique_ptr<ServerProcess> memshard_;
  std::unique_ptr<BlockingClient> client_;  // through memshard
};

// get: L1 miss, L2 hit, L1 filled with L2's remaining TTL.
TEST_F(L1L2Test, ReadMissFillsL1WithL2sRemainingTtl) {
  Start();
  ASSERT_EQ(direct_->Set("k", "from-l2", 3, 3), "STORED");
  EXPECT_EQ(client_->Get("k"), "from-l2");
  // L2 changes; memshard still answers from L1.
  ASSERT_EQ(direct_->Set("k", "changed", 3, 3), "STORED");
  EXPECT_EQ(client_->Get("k"), "from-l2");
  ASSERT_TRUE(client_->Send("get k\r\n"));
  EXPECT_EQ(client_->ReadLine(), "VALUE k 3 7");  // flags came along
  client_->ReadLine();
  client_->ReadLine();
  // L2's TTL was 3 s: after it, L1's copy is gone too (and so is L2's).
  // 2.5 s past it, as memcached's once-a-second clock can fall behind.
  absl::SleepFor(absl::Milliseconds(5500));
  EXPECT_EQ(client_->Get("k"), std::nullopt);
  // A key without expiry is filled without expiry.
  ASSERT_EQ(direct_->Set("forever", "f"), "STORED");
  EXPECT_EQ(client_->Get("forever"), "f");
  ASSERT_EQ(direct_->Delete("forever"), "DELETED");
  EXPECT_EQ(client_->Get("forever"), "f");
}

TEST_F(L1L2Test, WriteOnlyFillDoesNotFillOnRead) {
  Start({"--l1_fill=write_only"});
  ASSERT_EQ(direct_->Set("k", "v1"), "STORED");
  EXPECT_EQ(client_->Get("k"), "v1");
  ASSERT_EQ(direct_->Set("k", "v2"), "STORED");
  EXPECT_EQ(client_->Get("k"), "v2");  // not cached in L1
  // Writes refresh L1 by replace only: k is not in L1, so still not cached.
  EXPECT_EQ(client_->Set("k", "v3"), "STORED");
  EXPECT_EQ(direct_->Get("k"), "v3");
  ASSERT_EQ(direct_->Set("k", "v4"), "STORED");
  EXPECT_EQ(client_->Get("k"), "v4");
}

// set: L2 first, then L1; the reply is L2's.
TEST_F(L1L2Test, SetWritesL2ThenL1) {
  Start();
  EXPECT_EQ(client_->Set("s", "mine", 7, 100), "STORED");
  EXPECT_EQ(direct_->Get("s"), "mine");
  ASSERT_EQ(direct_->Set("s", "behind-our-back"), "STORED");
  EXPECT_EQ(client_->Get("s"), "mine");  // from L1
  // L2 refuses (add of a present key): L1 must not keep a guess.
  ASSERT_EQ(direct_->Set("a", "l2"), "STORED");
  EXPECT_EQ(client_->Command("add a 0 0 2\r\nl1"), "NOT_STORED");
  EXPECT_EQ(client_->Get("a"), "l2");
  // gets bypasses L1 (the CAS is L2's) and cas goes through.
  ASSERT_TRUE(client_->Send("gets s\r\n"));
  std::string line = client_->ReadLine();
  ASSERT_TRUE(absl::StartsWith(line, "VALUE s 0 15 ")) << line;
  EXPECT_EQ(client_->ReadLine(), "behind-our-back");
  EXPECT_EQ(client_->ReadLine(), "END");
  EXPECT_EQ(client_->Command(
                absl::StrCat("cas s 0 0 3 ", line.substr(13), "\r\ncas")),
            "STORED");
  EXPECT_EQ(client_->Get("s"), "cas");
  // append: L2 decides, L1 is invalidated.
  EXPECT_EQ(client_->Command("append s 0 0 1\r\n!"), "STORED");
  EXPECT_EQ(client_->Get("s"), "cas!");
  // incr: same.
  EXPECT_EQ(client_->Set("n", "1"), "STORED");
  EXPECT_EQ(client_->Get("n"), "1");
  EXPECT_EQ(client_->Command("incr n 4"), "5");
  EXPECT_EQ(client_->Get("n"), "5");
}

// If L1 cannot take the value, it is invalidated, and the reply is L2's.
TEST_F(L1L2Test, L1FailureInvalidatesL1) {
  // L2 takes items up to 2 MB; L1's whole budget is 1 MB.
  Start({"--memory_limit_mb=1", "--max_item_size=2097152"}, {"-I", "2m"});
  EXPECT_EQ(client_->Set("big", "small"), "STORED");
  EXPECT_EQ(client_->Get("big"), "small");  // in L1 now
  const std::string big(1536 * 1024, 'b');
  EXPECT_EQ(client_->Set("big", big), "STORED");
  const std::optional<std::string> in_l2 = direct_->Get("big");
  ASSERT_TRUE(in_l2.has_value());
  EXPECT_EQ(in_l2->size(), big.size());
  EXPECT_TRUE(*in_l2 == big);
  ASSERT_EQ(direct_->Set("big", "l2-only"), "STORED");
  // Not the stale "small" (nor the big value): L1 dropped the key.
  const std::optional<std::string> got = client_->Get("big");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->substr(0, 10), "l2-only");
}

// delete and touch go to both; L2's answer decides.
TEST_F(L1L2Test, DeleteAndTouchGoToBoth) {
  Start();
  EXPECT_EQ(client_->Set("d", "x"), "STORED");
  EXPECT_EQ(client_->Delete("d"), "DELETED");
  EXPECT_EQ(direct_->Get("d"), std::nullopt);
  EXPECT_EQ(client_->Get("d"), std::nullopt);
  // Only in L1 (L2 lost it): L2 says NOT_FOUND, and L1 is cleared too.
  EXPECT_EQ(client_->Set("d", "x"), "STORED");
  ASSERT_EQ(direct_->Delete("d"), "DELETED");
  EXPECT_EQ(client_->Delete("d"), "NOT_FOUND");
  EXPECT_EQ(client_->Get("d"), std::nullopt);

  // TTL 3 and a sleep 2.5 s past it: memcached's once-a-second clock can
  // fall behind and catch up at once on a loaded machine.
  EXPECT_EQ(client_->Set("t", "x", 0, 3), "STORED");
  EXPECT_EQ(client_->Command("touch t 100"), "TOUCHED");
  absl::SleepFor(absl::Milliseconds(5500));
  EXPECT_EQ(direct_->Get("t"), "x");  // L2 touched
  ASSERT_EQ(direct_->Set("t", "l2"), "STORED");
  EXPECT_EQ(client_->Get("t"), "x");  // L1 touched too (still cached)
  EXPECT_EQ(client_->Command("touch nope 100"), "NOT_FOUND");
}

// gat: L2 decides and refreshes L1.
TEST_F(L1L2Test, GatGoesToBoth) {
  Start();
  ASSERT_EQ(direct_->Set("g", "v", 0, 3), "STORED");  // slack as above
  ASSERT_TRUE(client_->Send("gat 100 g\r\n"));
  EXPECT_EQ(client_->ReadLine(), "VALUE g 0 1");
  EXPECT_EQ(client_->ReadLine(), "v");
  EXPECT_EQ(client_->ReadLine(), "END");
  absl::SleepFor(absl::Milliseconds(5500));
  EXPECT_EQ(direct_->Get("g"), "v");
  ASSERT_EQ(direct_->Set("g", "l2"), "STORED");
  EXPECT_EQ(client_->Get("g"), "v");  // filled by gat with the new TTL
}

// Pipelined requests of one client keep read-your-writes across L1 and L2.
TEST_F(L1L2Test, PipelinedWriteThenReadSeesTheWrite) {
  Start();
  EXPECT_EQ(client_->Set("p", "old"), "STORED");
  EXPECT_EQ(client_->Get("p"), "old");  // cached in L1
  ASSERT_TRUE(
      client_->Send("set p 0 0 3\r\nnew\r\nget p\r\ndelete p\r\nget p\r\n"));
  EXPECT_EQ(client_->ReadLine(), "STORED");
  EXPECT_EQ(client_->ReadLine(), "VALUE p 0 3");
  EXPECT_EQ(client_->ReadLine(), "new");
  EXPECT_EQ(client_->ReadLine(), "END");
  EXPECT_EQ(client_->ReadLine(), "DELETED");
  EXPECT_EQ(client_->ReadLine(), "END");
}

// A multiget of many keys, some only in L1 (L2 lost them), some only in L2,
// goes a window at a time: L1 answers its keys, L2 the rest, every value in
// request order; L2's hits fill L1.
TEST_F(L1L2Test, MultigetOfManyKeysMixesL1AndL2InOrder) {
  Start();
  constexpr int kKeys = 900;
  auto value_of = [](int i) {
    return std::string(3000 + i, static_cast<char>('a' + i % 26));
  };
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = absl::StrCat("w:", i);
    if (i % 2 == 0) {
      ASSERT_EQ(client_->Set(key, value_of(i)), "STORED");  // L1 and L2
      if (i % 4 == 0) {
        ASSERT_EQ(direct_->Delete(key), "DELETED");  // L1 only
      }
    } else {
      ASSERT_EQ(direct_->Set(key, value_of(i)), "STORED");  // L2 only
    }
  }
  std::string get = "get";
  for (int i = 0; i < kKeys; ++i) absl::StrAppend(&get, " w:", i);
  for (int round = 0; round < 2; ++round) {  // the second: all from L1
    ASSERT_TRUE(client_->Send(absl::StrCat(get, "\r\n")));
    for (int i = 0; i < kKeys; ++i) {
      const std::string value = value_of(i);
      ASSERT_EQ(client_->ReadLine(),
                absl::StrCat("VALUE w:", i, " 0 ", value.size()))
          << "round " << round;
      ASSERT_EQ(client_->ReadExactly(value.size() + 2), value + "\r\n");
    }
    EXPECT_EQ(client_->ReadLine(), "END");
  }
  // Filled from L2 on the first round: L1 answers though L2 lost it.
  ASSERT_EQ(direct_->Delete("w:1"), "DELETED");
  EXPECT_EQ(client_->Get("w:1"), value_of(1));
}

// With L2 down, L1 hits still answer; misses and writes report the error.
TEST_F(L1L2Test, L2DownL1HitsStillServe) {
  Start({"--backend_timeout_ms=300"});
  EXPECT_EQ(client_->Set("h", "cached"), "STORED");
  l2_->Stop();
  EXPECT_EQ(client_->Get("h"), "cached");
  EXPECT_TRUE(
      absl::StartsWith(client_->Command("get other"), "SERVER_ERROR backend"));
  EXPECT_TRUE(absl::StartsWith(client_->Command("set h 0 0 1\r\nx"),
                               "SERVER_ERROR backend"));
  // The failed write invalidated L1: no stale value either.
  EXPECT_TRUE(
      absl::StartsWith(client_->Command("get h"), "SERVER_ERROR backend"));
}

}  // namespace
}  // namespace memshard
