#include "core/buffer_pool.h"

#include <algorithm>

#include "glog/logging.h"

namespace memshard {

BufferPool::BufferPool(size_t buffer_size) : buffer_size_(buffer_size) {
  CHECK_GT(buffer_size, 0u);
}

BufferPool::~BufferPool() {
  DCHECK_EQ(in_use_, 0u) << "buffers still borrowed at pool destruction";
  for (Buffer* b : free_) delete b;
}

Buffer* BufferPool::Acquire() {
  Buffer* b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    b = new Buffer(buffer_size_);
    ++allocated_;
  }
  ++in_use_;
  epoch_peak_ = std::max(epoch_peak_, in_use_);
  return b;
}

void BufferPool::Release(Buffer* buffer) {
  DCHECK(buffer != nullptr);
  DCHECK_EQ(buffer->capacity(), buffer_size_);
  DCHECK_GT(in_use_, 0u);
  --in_use_;
  free_.push_back(buffer);
}

void BufferPool::OnEpoch() {
  // Rise at once to a new peak; fall by 1/8 of the gap per epoch, so a burst
  // keeps its buffers for a few iterations and an idle worker returns them.
  if (epoch_peak_ >= target_) {
    target_ = epoch_peak_;
  } else {
    target_ -= (target_ - epoch_peak_ + 7) / 8;
  }
  epoch_peak_ = in_use_;
  uint64_t keep = target_ > in_use_ ? target_ - in_use_ : 0;
  while (free_.size() > keep) {
    delete free_.back();
    free_.pop_back();
    ++trimmed_;
  }
}

BufferPoolStats BufferPool::stats() const {
  return BufferPoolStats{in_use_, free_.size(), allocated_, trimmed_};
}

}  // namespace memshard
