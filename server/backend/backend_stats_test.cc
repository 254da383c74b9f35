#include "server/backend/backend_stats.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace memshard {
namespace backend {
namespace {

TEST(RoundTripHistogramTest, BucketsAreOrderedAndNarrow) {
  EXPECT_EQ(RoundTripHistogram::BucketIndex(0), 0u);
  EXPECT_EQ(RoundTripHistogram::BucketIndex(15), 15u);
  size_t last = 0;
  for (uint64_t v = 1; v < (uint64_t{1} << 30); v = v * 9 / 8 + 1) {
    size_t i = RoundTripHistogram::BucketIndex(v);
    ASSERT_GE(i, last);
    ASSERT_LT(i, RoundTripHistogram::kBuckets);
    uint64_t lower = RoundTripHistogram::BucketLower(i);
    ASSERT_LE(lower, v);
    ASSERT_GT(lower + lower / 16 + 1, v) << v;
    last = i;
  }
}

TEST(BackendStatsRegistryTest, SumsWorkersAndShowsTheWorstState) {
  BackendStatsRegistry registry(2, 2);
  for (int i = 0; i < 98; ++i) {
    registry.at(0, 1).RecordRoundTrip(absl::Microseconds(100));
  }
  registry.at(1, 1).RecordRoundTrip(absl::Milliseconds(50));
  registry.at(1, 1).RecordRoundTrip(absl::Milliseconds(50));
  registry.at(0, 1).AddRequest();
  registry.at(1, 1).AddRequest();
  registry.at(1, 1).AddTimeout();
  registry.at(0, 1).AddInFlight(3);
  registry.at(1, 1).SetState(BackendState::kEjected);
  registry.at(1, 1).AddEjection();

  BackendSummary s = registry.Summarize(1);
  EXPECT_EQ(s.requests, 2u);
  EXPECT_EQ(s.timeouts, 1u);
  EXPECT_EQ(s.ejections, 1u);
  EXPECT_EQ(s.in_flight, 3);
  EXPECT_EQ(s.state, BackendState::kEjected);
  EXPECT_EQ(s.rtt_count, 100u);
  EXPECT_NEAR(static_cast<double>(s.rtt_p50_us), 100, 5);
  EXPECT_NEAR(static_cast<double>(s.rtt_p99_us), 50000, 50000 / 16);
  EXPECT_EQ(registry.Summarize(0).state, BackendState::kUp);

  std::vector<BackendAddress> addresses(2);
  addresses[0].host = "127.0.0.1";
  addresses[0].port = 1;
  addresses[1].host = "/tmp/s";
  std::string text = FormatBackendStats(registry, addresses);
  EXPECT_TRUE(absl::StrContains(text, "STAT backend:0:address 127.0.0.1:1\r\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "STAT backend:1:address /tmp/s\r\n"));
  EXPECT_TRUE(absl::StrContains(text, "STAT backend:1:state ejected\r\n"));
  EXPECT_TRUE(absl::StrContains(text, "STAT backend:1:timeouts 1\r\n"));
  EXPECT_TRUE(absl::StrContains(text, "STAT backend:1:in_flight 3\r\n"));
}

}  // namespace
}  // namespace backend
}  // namespace memshard
