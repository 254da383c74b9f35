#include "core/loop_clock.h"

#include <time.h>

#include <fstream>
#include <string>

namespace memshard {
namespace {

// A rate is measured over at most this long: past it (a loop asleep for
// minutes), the next interval measures afresh.
constexpr int64_t kMaxRateSpan = 10'000'000'000;

// A vDSO read bracketed by TSC reads further apart than this (~10 us at up
// to 5 GHz) was interrupted; Rebase() tries again, a few times.
constexpr uint64_t kMaxBracketTicks = 50'000;
constexpr int kBracketTries = 4;

}  // namespace

LoopClock::LoopClock(Source source) {
#if defined(__x86_64__)
  use_tsc_ =
      source == Source::kTsc || (source == Source::kAuto && KernelUsesTsc());
#else
  use_tsc_ = false;
#endif
}

int64_t LoopClock::VdsoNanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool LoopClock::KernelUsesTsc() {
  static const bool uses_tsc = [] {
    std::ifstream in(
        "/sys/devices/system/clocksource/clocksource0/current_clocksource");
    std::string name;
    return static_cast<bool>(in >> name) && name == "tsc";
  }();
  return uses_tsc;
}

int64_t LoopClock::Rebase() {
  // The TSC halfway through the vDSO read stands for its instant: the
  // tightest of a few brackets, in case a read was preempted.
  uint64_t tsc = 0;
  int64_t ns = 0;
  uint64_t best_width = ~uint64_t{0};
  for (int i = 0; i < kBracketTries && best_width > kMaxBracketTicks; ++i) {
    const uint64_t before = ReadTsc();
    const int64_t read_ns = VdsoNanos();
    const uint64_t width = ReadTsc() - before;
    if (width < best_width) {
      best_width = width;
      tsc = before + width / 2;
      ns = read_ns;
    }
  }
  const int64_t span_ns = ns - rate_ns_;
  const int64_t needed = mult_ == 0 ? kCalibration : kRebaseInterval;
  if (rate_tsc_ == 0 || tsc <= rate_tsc_ || span_ns < 0 ||
      span_ns > kMaxRateSpan) {
    rate_tsc_ = tsc;  // start (or restart) measuring from here
    rate_ns_ = ns;
  } else if (span_ns >= needed) {
    const uint64_t mult = static_cast<uint64_t>(
        (static_cast<unsigned __int128>(span_ns) << kMultShift) /
        (tsc - rate_tsc_));
    const uint64_t tolerance = mult_ / 100;
    if (mult_ == 0 ||
        (mult + tolerance >= mult_ && mult <= mult_ + tolerance) ||
        ++rate_rejections_ >= 2) {
      if (mult != 0) mult_ = mult;
      rate_rejections_ = 0;
    }
    rate_tsc_ = tsc;
    rate_ns_ = ns;
  }
  base_tsc_ = tsc;
  base_ns_ = ns;
  if (mult_ != 0) {
    rebase_after_ticks_ = static_cast<uint64_t>(
        (static_cast<unsigned __int128>(kRebaseInterval) << kMultShift) /
        mult_);
  }
  return ns;
}

}  // namespace memshard
