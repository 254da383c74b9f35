#pragma once

// LoopClock: an event loop's wall clock (CLOCK_REALTIME, nanoseconds since
// the Unix epoch), read through the TSC between vDSO reads.
//
// Thread-safety: none; one per loop, read by its owner thread.
//
// A loop reads the clock twice per request when each iteration serves one
// (S4's many mostly idle connections): its iteration time and the end of
// the request's latency. Through the vDSO each read is ~45 ns with warm
// caches and ~100 ns after the kernel's wakeup, read and write have evicted
// the vDSO's data and glibc's pointer to it (perf, S4); rdtsc is ~25 ns
// and touches no memory. So Now() extrapolates from the last vDSO read by
// the TSC, and reads the vDSO again (a rebase) once kRebaseInterval has
// passed, which also picks up steps and slewing of the wall clock. The
// first kCalibration of reads all go to the vDSO while the TSC's rate is
// measured against it; each rebase measures it again.
//
// The TSC is used only where the kernel uses it as its own clocksource
// (it then knows the TSC to be invariant and synchronized between CPUs);
// elsewhere every read goes to the vDSO.

#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace memshard {

class LoopClock {
 public:
  enum class Source { kAuto, kTsc, kVdso };

  // Ns between vDSO reads once calibrated.
  static constexpr int64_t kRebaseInterval = 10'000'000;
  // Ns of vDSO reads before the TSC's rate is first known.
  static constexpr int64_t kCalibration = 20'000'000;

  // kAuto: the TSC if the kernel's clocksource is "tsc" (read once per
  // process from sysfs), else the vDSO.
  explicit LoopClock(Source source = Source::kAuto);

  // Nanoseconds since the Unix epoch. Typically within tens of ns of the
  // vDSO's reading of the same instant, at worst ~10 us (the TSC's rate is
  // measured over each interval, from vDSO reads bracketed by rdtsc);
  // successive reads may step back by as much across a rebase.
  int64_t Now() {
    if (!use_tsc_) return VdsoNanos();
    const uint64_t tsc = ReadTsc();
    // Below base_tsc_ (never, on a synchronized TSC) wraps to large.
    const uint64_t ticks = tsc - base_tsc_;
    if (ticks >= rebase_after_ticks_) return Rebase();
    // No overflow: ticks * mult_ < kRebaseInterval << kMultShift.
    return base_ns_ + static_cast<int64_t>((ticks * mult_) >> kMultShift);
  }

  bool uses_tsc() const { return use_tsc_; }
  // Whether the TSC's rate is known (Now() extrapolates).
  bool calibrated() const { return mult_ != 0; }

  // Any thread: the vDSO's CLOCK_REALTIME (absl::Now()'s clock), in
  // nanoseconds since the Unix epoch. absl::Now() and
  // absl::GetCurrentTimeNanos() read the same clock through a longer
  // cycle-clock path: ~280 ns a call on our VM against ~110 ns for this.
  static int64_t VdsoNanos();
  // Whether the kernel's current clocksource is the TSC.
  static bool KernelUsesTsc();

 private:
  static constexpr int kMultShift = 32;  // mult_: ns per tick << 32

  static uint64_t ReadTsc() {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return 0;  // never called: use_tsc_ is false
#endif
  }
  // Reads the vDSO, measures the TSC's rate since the last rebase (or
  // calibration start), and extrapolates from this reading next.
  int64_t Rebase();

  bool use_tsc_;
  uint64_t base_tsc_ = 0;
  int64_t base_ns_ = 0;
  uint64_t mult_ = 0;  // 0 until calibrated
  // Ticks after base_tsc_ at which Now() rebases; 0 (every read) until
  // calibrated.
  uint64_t rebase_after_ticks_ = 0;
  // The reading the rate is next measured from.
  uint64_t rate_tsc_ = 0;
  int64_t rate_ns_ = 0;
  // Successive rate measurements more than 1% off mult_ (a wall-clock
  // step inside the interval); the second is believed.
  int rate_rejections_ = 0;
};

}  // namespace memshard
