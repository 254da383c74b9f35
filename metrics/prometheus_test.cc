#include "metrics/prometheus.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "metrics/latency_histogram.h"
#include "metrics/promtool.h"

namespace memshard {
namespace {

using Type = PrometheusText::Type;

TEST(PrometheusTextTest, GroupsSamplesByFamilyInFirstUseOrder) {
  PrometheusText p;
  p.Add("a_total", Type::kCounter, "A things", "k=\"1\"", uint64_t{1});
  p.Add("b", Type::kGauge, "B level", "", int64_t{-2});
  p.Add("a_total", Type::kCounter, "ignored", "k=\"2\"", uint64_t{3});
  EXPECT_EQ(p.Finish(),
            "# HELP a_total A things\n"
            "# TYPE a_total counter\n"
            "a_total{k=\"1\"} 1\n"
            "a_total{k=\"2\"} 3\n"
            "# HELP b B level\n"
            "# TYPE b gauge\n"
            "b -2\n");
  EXPECT_EQ(p.Finish(), "") << "Finish() empties the writer";
}

TEST(PrometheusTextTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(PrometheusText::LabelValue("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
  PrometheusText p;
  p.Add("x", Type::kGauge, "line\\one\ntwo", "", 0.5);
  EXPECT_EQ(p.Finish(), "# HELP x line\\\\one\\ntwo\n# TYPE x gauge\nx 0.5\n");
}

TEST(PrometheusTextTest, HistogramBucketsAreCumulativeAndInSeconds) {
  auto h = std::make_unique<LatencyHistogram>();
  h->Record(500);                         // 0.5 us
  h->Record(3000);                        // 3 us
  h->Record(2000000);                     // 2 ms
  h->Record(120 * 1000 * 1000 * 1000LL);  // 120 s: only in +Inf
  PrometheusText p;
  const double bounds[] = {1e-6, 5e-6, 1e-3, 60};
  p.AddHistogram("lat_seconds", "Latency", "family=\"get\"", *h, bounds);
  EXPECT_EQ(p.Finish(),
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{family=\"get\",le=\"1e-06\"} 1\n"
            "lat_seconds_bucket{family=\"get\",le=\"5e-06\"} 2\n"
            "lat_seconds_bucket{family=\"get\",le=\"0.001\"} 2\n"
            "lat_seconds_bucket{family=\"get\",le=\"60\"} 3\n"
            "lat_seconds_bucket{family=\"get\",le=\"+Inf\"} 4\n"
            "lat_seconds_sum{family=\"get\"} 120.0020035\n"
            "lat_seconds_count{family=\"get\"} 4\n");
}

TEST(PrometheusTextTest, LatencyBoundsCoverOneMicrosecondToAMinute) {
  auto bounds = PrometheusText::LatencyBoundsSeconds();
  ASSERT_FALSE(bounds.empty());
  EXPECT_DOUBLE_EQ(bounds.front(), 1e-6);
  EXPECT_DOUBLE_EQ(bounds.back(), 60);
  for (size_t i = 1; i < bounds.size(); ++i)
    EXPECT_LT(bounds[i - 1], bounds[i]);
}

TEST(PrometheusTextTest, PromtoolAcceptsTheOutput) {
  if (PromtoolPath().empty()) GTEST_SKIP() << "promtool not installed";
  auto h = std::make_unique<LatencyHistogram>();
  for (int i = 1; i <= 1000; ++i) h->Record(i * 1000);
  PrometheusText p;
  p.Add("memcached_commands_total", Type::kCounter, "Commands",
        "command=\"get\",status=\"hit\"", uint64_t{7});
  p.Add("memcached_current_connections", Type::kGauge, "Open", "", int64_t{3});
  p.Add("memcached_version", Type::kGauge, "Version",
        "version=" + PrometheusText::LabelValue("1.6.0-memshard"), uint64_t{1});
  p.AddHistogram("memshard_request_duration_seconds", "Latency",
                 "family=\"get\"", *h, PrometheusText::LatencyBoundsSeconds());
  const absl::Status checked = PromtoolCheckMetrics(p.Finish());
  EXPECT_TRUE(checked.ok()) << checked;
}

TEST(PrometheusTextTest, PromtoolCatchesAMistake) {
  if (PromtoolPath().empty()) GTEST_SKIP() << "promtool not installed";
  // A counter without the _total suffix: the checker must notice, or the
  // test above proves nothing.
  PrometheusText p;
  p.Add("requests", Type::kCounter, "Requests", "", uint64_t{1});
  EXPECT_FALSE(PromtoolCheckMetrics(p.Finish()).ok());
}

}  // namespace
}  // namespace memshard
