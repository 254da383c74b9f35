#include "core/input_buffer.h"

#include <algorithm>
#include <cstring>

#include "glog/logging.h"

namespace memshard {

absl::Span<char> InputBuffer::WritableSpace() {
  if (data_ == nullptr) {
    pooled_ = pool_->Acquire();
    data_ = pooled_->data();
    capacity_ = pooled_->capacity();
    begin_ = end_ = 0;
  }
  if (end_ == capacity_) {
    const size_t used = end_ - begin_;
    // Room at the front is worth a memmove when it is half the buffer or
    // more, or when the awaited request fits once moved there.
    if (begin_ > 0 &&
        (used <= capacity_ / 2 || (expect_ > used && expect_ <= capacity_))) {
      Compact();
    } else {
      // Doubling keeps the copying linear in the bytes that arrive; a
      // request whose size is known gets no more than it needs, and up to
      // kMaxAhead more than has arrived at once, so a big value that is
      // really coming takes few steps (each a copy and fresh pages).
      size_t capacity = capacity_ * 2;
      if (expect_ > used) {
        capacity = std::min(expect_, std::max(capacity, used + kMaxAhead));
      }
      Grow(capacity);
    }
  }
  return absl::Span<char>(data_ + end_, capacity_ - end_);
}

void InputBuffer::Compact() {
  size_t n = end_ - begin_;
  if (n > 0 && begin_ > 0) memmove(data_, data_ + begin_, n);
  begin_ = 0;
  end_ = n;
}

void InputBuffer::Reserve(size_t total) {
  if (data_ != nullptr && total <= capacity_) {
    if (capacity_ - begin_ < total) Compact();
    return;
  }
  Grow(std::max(total, pool_->buffer_size()));
}

void InputBuffer::Grow(size_t capacity) {
  const size_t n = end_ - begin_;
  DCHECK_GE(capacity, n);
  // Not make_unique<char[]>(capacity): that zero-fills, touching (making
  // resident) every page of space no byte has arrived in yet.
  std::unique_ptr<char[]> block(new char[capacity]);
  if (n > 0) memcpy(block.get(), data_ + begin_, n);
  const size_t expect = expect_;
  Release();
  heap_ = std::move(block);
  data_ = heap_.get();
  capacity_ = capacity;
  begin_ = 0;
  end_ = n;
  expect_ = expect;
}

void InputBuffer::Consume(size_t n) {
  DCHECK_LE(n, end_ - begin_);
  begin_ += n;
  expect_ = 0;  // the front request, if any, is a new one
  if (begin_ != end_) return;
  if (keep_ && pooled_ != nullptr) {
    begin_ = end_ = 0;
  } else {
    Release();
  }
}

void InputBuffer::TakeFrom(InputBuffer* other) {
  DCHECK_EQ(pool_, other->pool_);
  if (other == this) return;
  Release();
  pooled_ = other->pooled_;
  heap_ = std::move(other->heap_);
  data_ = other->data_;
  capacity_ = other->capacity_;
  begin_ = other->begin_;
  end_ = other->end_;
  expect_ = other->expect_;
  other->pooled_ = nullptr;
  other->data_ = nullptr;
  other->capacity_ = 0;
  other->begin_ = other->end_ = 0;
  other->expect_ = 0;
}

void InputBuffer::Release() {
  if (pooled_ != nullptr) {
    pool_->Release(pooled_);
    pooled_ = nullptr;
  }
  heap_.reset();
  data_ = nullptr;
  capacity_ = 0;
  begin_ = end_ = 0;
  expect_ = 0;
}

}  // namespace memshard
