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
    if (begin_ > 0) {
      Compact();
    } else {
      Reserve(capacity_ * 2);
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
  size_t n = end_ - begin_;
  size_t capacity = std::max(total, pool_->buffer_size());
  auto block = std::make_unique<char[]>(capacity);
  if (n > 0) memcpy(block.get(), data_ + begin_, n);
  Release();
  heap_ = std::move(block);
  data_ = heap_.get();
  capacity_ = capacity;
  begin_ = 0;
  end_ = n;
}

void InputBuffer::Consume(size_t n) {
  DCHECK_LE(n, end_ - begin_);
  begin_ += n;
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
  other->pooled_ = nullptr;
  other->data_ = nullptr;
  other->capacity_ = 0;
  other->begin_ = other->end_ = 0;
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
}

}  // namespace memshard
