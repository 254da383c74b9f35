#include "server/admin/prefix_stats.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

TEST(PrefixStatsTest, CountsByPrefixInPrefixOrder) {
  PrefixStats stats;
  EXPECT_FALSE(stats.enabled());
  EXPECT_EQ(stats.Dump(), "END\r\n");
  stats.RecordSet("user:1");
  stats.RecordGet("user:1", /*hit=*/true);
  stats.RecordGet("user:2", /*hit=*/false);
  stats.RecordDelete("user:2");
  stats.RecordGet("a:b:c", /*hit=*/true);        // prefix "a": the first ':'
  stats.RecordSet(":x");                         // the empty prefix
  stats.RecordGet("nodelimiter", /*hit=*/true);  // not counted
  stats.RecordSet("nodelimiter");
  stats.RecordDelete("nodelimiter");
  stats.RecordSet(absl::string_view("a b:1"));     // a space: not counted
  stats.RecordSet(absl::string_view("x\r\ny:1"));  // nor a control byte
  EXPECT_EQ(stats.Dump(),
            "PREFIX  get 0 hit 0 set 1 del 0\r\n"
            "PREFIX a get 1 hit 1 set 0 del 0\r\n"
            "PREFIX user get 2 hit 1 set 1 del 1\r\n"
            "END\r\n");
  stats.Clear();
  EXPECT_EQ(stats.Dump(), "END\r\n");
}

TEST(PrefixStatsTest, EnabledIsAFlag) {
  PrefixStats stats;
  stats.set_enabled(true);
  EXPECT_TRUE(stats.enabled());
  stats.set_enabled(false);
  EXPECT_FALSE(stats.enabled());
}

TEST(PrefixStatsTest, ThreadsCountWithoutLosingAny) {
  PrefixStats stats;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&stats, t] {
      for (int i = 0; i < kPerThread; ++i) {
        stats.RecordGet(absl::StrCat("p", i % 2, ":", t), i % 3 == 0);
        if (i % 100 == 0) stats.Dump();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  // Per prefix: kThreads * kPerThread / 2 gets; hits where i % 3 == 0.
  int hits0 = 0, hits1 = 0;
  for (int i = 0; i < kPerThread; ++i) {
    if (i % 3 == 0) ++(i % 2 == 0 ? hits0 : hits1);
  }
  EXPECT_EQ(stats.Dump(),
            absl::StrCat("PREFIX p0 get ", kThreads * kPerThread / 2, " hit ",
                         kThreads * hits0, " set 0 del 0\r\n", "PREFIX p1 get ",
                         kThreads * kPerThread / 2, " hit ", kThreads * hits1,
                         " set 0 del 0\r\nEND\r\n"));
}

}  // namespace
}  // namespace memshard
