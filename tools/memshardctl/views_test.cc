#include "tools/memshardctl/views.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace memshard::ctl {
namespace {

TEST(ViewsTest, StatsAreAligned) {
  EXPECT_EQ(FormatStats({{"pid", "12"}, {"curr_connections", "3"}}),
            "pid               12\n"
            "curr_connections  3\n");
}

TEST(ViewsTest, LatencyTableHasOneRowPerFamily) {
  const std::string table = FormatLatency({{"get:count", "10"},
                                           {"get:mean_us", "2.000"},
                                           {"get:p50_us", "1.500"},
                                           {"get:p90_us", "3.000"},
                                           {"get:p99_us", "9.000"},
                                           {"get:p999_us", "9.500"},
                                           {"get:max_us", "9.900"},
                                           {"set:count", "0"}});
  EXPECT_TRUE(absl::StartsWith(table, "family  count  mean_us")) << table;
  EXPECT_TRUE(absl::StrContains(
      table, "get     10     2.000    1.500   3.000   9.000   9.500     9.900"))
      << table;
  EXPECT_TRUE(absl::StrContains(table, "\nset     0      -")) << table;
}

TEST(ViewsTest, WorkersAndConnsTables) {
  const std::string workers = FormatWorkers({{"0:curr_connections", "2"},
                                             {"0:bytes_read", "2048"},
                                             {"0:buffer_bytes", "32768"},
                                             {"1:curr_connections", "5"}});
  EXPECT_TRUE(absl::StrContains(workers, "\n0       2")) << workers;
  EXPECT_TRUE(absl::StrContains(workers, "2.0 KiB")) << workers;
  EXPECT_TRUE(absl::StrContains(workers, "32.0 KiB")) << workers;
  EXPECT_TRUE(absl::StrContains(workers, "\n1       5")) << workers;

  const std::string conns = FormatConns({{"17:addr", "tcp:127.0.0.1:5000"},
                                         {"17:state", "conn_waiting"},
                                         {"17:secs_since_last_cmd", "4"},
                                         {"17:worker", "1"}});
  EXPECT_TRUE(absl::StrContains(
      conns, "17  1       tcp:127.0.0.1:5000  conn_waiting  4"))
      << conns;
}

Sample MakeSample(absl::Time at, int gets, int hits, int sets) {
  Sample s;
  s.at = at;
  s.stats = {{"version", "1.6.0-memshard-0.1"},
             {"uptime", "3700"},
             {"threads", "2"},
             {"cmd_get", std::to_string(gets)},
             {"get_hits", std::to_string(hits)},
             {"cmd_set", std::to_string(sets)},
             {"curr_connections", "7"},
             {"total_connections", "9"},
             {"rejected_connections", "0"},
             {"bytes", std::to_string(1 << 20)},
             {"limit_maxbytes", std::to_string(64 << 20)},
             {"curr_items", "100"},
             {"evictions", "0"}};
  s.latency = {{"get:count", "5"},
               {"get:p99_us", "12.500"},
               {"set:count", "0"},
               {"set:p99_us", "0.000"}};
  return s;
}

TEST(ViewsTest, WatchShowsRatesAfterTheFirstFrame) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  Sample first = MakeSample(t0, 100, 50, 10);
  const std::string frame1 = FormatWatch(nullptr, first, "127.0.0.1:1");
  EXPECT_TRUE(absl::StrContains(frame1, "ops/s      get -  set -")) << frame1;
  EXPECT_TRUE(absl::StrContains(frame1, "hit ratio  50.0% (since start)"))
      << frame1;
  EXPECT_TRUE(absl::StrContains(frame1, "uptime 1h01m")) << frame1;
  EXPECT_TRUE(
      absl::StrContains(frame1, "memory     1.0 MiB of 64.0 MiB (1.6%)"))
      << frame1;
  EXPECT_TRUE(absl::StrContains(frame1, "p99        get 12.500us")) << frame1;
  EXPECT_FALSE(absl::StrContains(frame1, "set 0.000us")) << "idle family";

  Sample second = MakeSample(t0 + absl::Seconds(2), 300, 200, 14);
  const std::string frame2 = FormatWatch(&first, second, "127.0.0.1:1");
  EXPECT_TRUE(absl::StrContains(frame2, "ops/s      get 100  set 2")) << frame2;
  EXPECT_TRUE(absl::StrContains(frame2, "hit ratio  75.0% (last interval)"))
      << frame2;
  EXPECT_TRUE(absl::StrContains(frame2, "conns      7 open, 9 accepted"))
      << frame2;
}

TEST(ViewsTest, WatchWithoutLatencySaysSo) {
  Sample s = MakeSample(absl::Now(), 0, 0, 0);
  s.latency.clear();
  const std::string frame = FormatWatch(nullptr, s, "x");
  EXPECT_TRUE(absl::StrContains(frame, "no stats latency")) << frame;
  EXPECT_TRUE(absl::StrContains(frame, "hit ratio  -")) << frame;
}

}  // namespace
}  // namespace memshard::ctl
