#include "core/loop_clock.h"

#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace memshard {
namespace {

// Extrapolation may be off by the TSC rate's error over a rebase interval;
// far under this.
constexpr int64_t kToleranceNs = 200'000;

// Reads `clock` for `duration`, each reading between two vDSO readings.
void ExpectTracksTheVdso(LoopClock& clock, absl::Duration duration) {
  const absl::Time end = absl::Now() + duration;
  int64_t reads = 0;
  while (absl::Now() < end) {
    const int64_t before = LoopClock::VdsoNanos();
    const int64_t now = clock.Now();
    const int64_t after = LoopClock::VdsoNanos();
    ASSERT_GE(now, before - kToleranceNs) << "read " << reads;
    ASSERT_LE(now, after + kToleranceNs) << "read " << reads;
    ++reads;
    if (reads % 64 == 0) absl::SleepFor(absl::Microseconds(200));
  }
  EXPECT_GT(reads, 100);
}

TEST(LoopClockTest, VdsoIsTheWallClock) {
  const int64_t before = absl::ToUnixNanos(absl::Now());
  const int64_t vdso = LoopClock::VdsoNanos();
  const int64_t after = absl::ToUnixNanos(absl::Now());
  // absl::Now() interpolates the TSC between kernel readings: allow it a
  // little disagreement with the kernel's clock.
  EXPECT_GE(vdso, before - 1000000);
  EXPECT_LE(vdso, after + 1000000);
}

TEST(LoopClockTest, VdsoSourceReadsTheVdso) {
  LoopClock clock(LoopClock::Source::kVdso);
  EXPECT_FALSE(clock.uses_tsc());
  ExpectTracksTheVdso(clock, absl::Milliseconds(50));
  EXPECT_FALSE(clock.calibrated());
}

// The TSC source, where the kernel trusts the TSC (else skipped).
class TscLoopClockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!LoopClock::KernelUsesTsc()) {
      GTEST_SKIP() << "the kernel's clocksource is not the TSC";
    }
  }
  LoopClock clock_{LoopClock::Source::kTsc};
};

TEST_F(TscLoopClockTest, CalibratesAndTracksTheWallClock) {
  EXPECT_TRUE(clock_.uses_tsc());
  EXPECT_FALSE(clock_.calibrated());
  // Past calibration and through several rebases.
  ExpectTracksTheVdso(clock_, absl::Milliseconds(150));
  EXPECT_TRUE(clock_.calibrated());
}

TEST_F(TscLoopClockTest, SurvivesALongPause) {
  ExpectTracksTheVdso(clock_, absl::Milliseconds(40));
  ASSERT_TRUE(clock_.calibrated());
  // Many rebase intervals without a read: the first read rebases.
  absl::SleepFor(absl::Milliseconds(120));
  ExpectTracksTheVdso(clock_, absl::Milliseconds(30));
}

TEST(LoopClockTest, AutoUsesTheTscWhereTheKernelDoes) {
  LoopClock clock;
#if defined(__x86_64__)
  EXPECT_EQ(clock.uses_tsc(), LoopClock::KernelUsesTsc());
#else
  EXPECT_FALSE(clock.uses_tsc());
#endif
}

}  // namespace
}  // namespace memshard
