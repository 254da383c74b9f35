// A short soak (25 s, 5 s phases) of memshard --workers=2
// --memory_limit_mb=64: RSS stays within limit x 1.10 + 32 MiB at every
// one-second sample, the churn really evicts, and memshard exits 0 on
// SIGTERM with no sanitizer report in its log. Under --config=asan the RSS
// bound is skipped (shadow memory and the quarantine make RSS meaningless)
// but the exit-time LeakSanitizer check still runs. tools/soak runs the same
// for 10 minutes.

#include "tools/soak/soak.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/server_process.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

namespace memshard::soak {
namespace {

TEST(SoakTest, ShortSoakStaysWithinTheRssBoundAndShutsDownClean) {
  SoakOptions options;
  options.duration = absl::Seconds(25);
  options.phase_length = absl::Seconds(5);
  options.memory_limit_mb = 64;
  options.check_rss = !kSanitized;
  auto server = ServerProcess::StartMemshard(
      {"--workers=2",
       absl::StrCat("--memory_limit_mb=", options.memory_limit_mb)});
  ASSERT_TRUE(server.ok()) << server.status();

  absl::StatusOr<SoakResult> result =
      RunSoak((*server)->port(), (*server)->pid(), options, stdout);
  ASSERT_TRUE(result.ok()) << result.status();
  std::printf("%s\n", result->Summary().c_str());
  EXPECT_TRUE(result->errors.empty()) << result->Summary();
  EXPECT_GT(result->evictions, 0) << "the churn should overfill the cache";
  EXPECT_LE(result->bytes, result->limit_maxbytes);
  EXPECT_GE(result->samples, 20);
  if (options.check_rss) {
    EXPECT_TRUE(result->rss_ok()) << result->Summary();
    EXPECT_LE(result->peak_rss, result->bound_bytes);
  }
  RecordProperty("peak_rss_mib", static_cast<int>(result->peak_rss >> 20));

  // ServerProcess::Stop also fails the test on a sanitizer report.
  const int status = (*server)->Stop(absl::Seconds(60));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeWaitStatus(status);
  EXPECT_EQ(FindSanitizerReport((*server)->ReadLog()), "");
}

TEST(SoakTest, FindsSanitizerReports) {
  EXPECT_EQ(FindSanitizerReport("I1128 started\nI1128 stopping\n"), "");
  EXPECT_NE(FindSanitizerReport("x\n==1==ERROR: LeakSanitizer: detected "
                                "memory leaks\n"),
            "");
  EXPECT_NE(FindSanitizerReport("a.cc:3:5: runtime error: signed overflow"),
            "");
}

TEST(SoakTest, ReadsOwnRss) {
  EXPECT_GT(ReadRss(getpid()), 1 << 20);
  EXPECT_EQ(ReadRss(-1), -1);
}

}  // namespace
}  // namespace memshard::soak
