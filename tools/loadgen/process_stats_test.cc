#include "tools/loadgen/process_stats.h"

#include <unistd.h>

#include "gtest/gtest.h"

namespace memshard {
namespace loadgen {
namespace {

TEST(ProcessStatsTest, ParsesUtimePlusStime) {
  // A command name with spaces and parentheses, as the kernel allows.
  const char stat[] =
      "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 "
      "250 50 0 0 20 0 3 0 100 1000000 500 18446744073709551615";
  absl::StatusOr<int64_t> micros = ParseProcStatCpuMicros(stat, 100);
  ASSERT_TRUE(micros.ok()) << micros.status();
  EXPECT_EQ(*micros, (250 + 50) * 10000);
  EXPECT_FALSE(ParseProcStatCpuMicros("garbage", 100).ok());
  EXPECT_FALSE(ParseProcStatCpuMicros("1 (x) S 1 2", 100).ok());
}

TEST(ProcessStatsTest, ReadsOwnCpuAndRss) {
  absl::StatusOr<int64_t> before = ReadProcessCpuMicros(getpid());
  ASSERT_TRUE(before.ok()) << before.status();
  // Burn 100 ms of CPU (CPU time, not wall time: the machine may be busy).
  const int64_t self_start = SelfCpuMicros();
  volatile uint64_t sink = 0;
  while (SelfCpuMicros() - self_start < 100000) sink = sink + 1;
  absl::StatusOr<int64_t> after = ReadProcessCpuMicros(getpid());
  ASSERT_TRUE(after.ok());
  EXPECT_GE(*after - *before, 50000);
  EXPECT_GE(SelfCpuMicros(), *after - 20000);

  absl::StatusOr<int64_t> rss = ReadProcessRssKb(getpid());
  ASSERT_TRUE(rss.ok()) << rss.status();
  EXPECT_GT(*rss, 100);
  EXPECT_FALSE(ReadProcessRssKb(-5).ok());
}

TEST(ProcessStatsTest, RaisesTheFdLimitToTheHardLimit) {
  absl::StatusOr<uint64_t> limit = RaiseFdLimit();
  ASSERT_TRUE(limit.ok()) << limit.status();
  EXPECT_GE(*limit, 1024u);
}

}  // namespace
}  // namespace loadgen
}  // namespace memshard
