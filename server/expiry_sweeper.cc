#include "server/expiry_sweeper.h"

#include "absl/time/time.h"

namespace memshard {

ExpirySweeper::ExpirySweeper(EventLoop* loop, cache::Store* store, int worker,
                             int workers)
    : loop_(loop),
      store_(store),
      first_(static_cast<uint32_t>(worker)),
      stride_(static_cast<uint32_t>(workers)),
      next_(first_) {
  loop_->AddEpochHook([this] { OnEpoch(); });
  ArmTick();
}

void ExpirySweeper::ArmTick() {
  // The timer's own iteration runs the epoch hook; nothing else to do.
  loop_->AddTimer(absl::Seconds(1), [this] { ArmTick(); });
}

void ExpirySweeper::OnEpoch() {
  const absl::Time now = loop_->now();
  if (now < next_step_) return;
  next_step_ = now + kMinStepInterval;
  Step();
}

size_t ExpirySweeper::Step() {
  if (first_ >= store_->stripe_count()) return 0;  // more workers than stripes
  size_t reclaimed =
      store_->SweepExpired(next_, 1, absl::ToUnixSeconds(loop_->now()),
                           kItemsPerEpoch, kVisitsPerStep);
  next_ += stride_;
  if (next_ >= store_->stripe_count()) next_ = first_;
  return reclaimed;
}

}  // namespace memshard
