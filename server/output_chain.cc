#include "server/output_chain.h"

#include <limits.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "glog/logging.h"

namespace memshard {
namespace {
constexpr int kMaxIov = 256;
constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;

// send(2) and sendmsg(2) without glibc's wrappers: those are thread
// cancellation points, which costs two atomic read-modify-writes around
// every call (about 1.5% of a worker's CPU at one small reply per call).
// Workers are never cancelled. Same results and errno.
ssize_t SendNoCancel(int fd, const char* data, size_t size) {
  return syscall(SYS_sendto, fd, data, size, kSendFlags, nullptr, 0);
}
ssize_t SendmsgNoCancel(int fd, const msghdr* msg) {
  return syscall(SYS_sendmsg, fd, msg, kSendFlags);
}

}  // namespace

char* OutputChain::Tail(size_t* room) {
  if (tail_ == tail_end_) {
    Buffer* b = pool_->Acquire();
    buffers_.push_back(b);
    tail_ = b->data();
    tail_end_ = tail_ + b->capacity();
    tail_is_last_ = false;
  }
  *room = static_cast<size_t>(tail_end_ - tail_);
  return tail_;
}

void OutputChain::AppendSlow(absl::string_view bytes) {
  while (!bytes.empty()) {
    size_t room;
    char* dst = Tail(&room);
    size_t n = std::min(room, bytes.size());
    memcpy(dst, bytes.data(), n);
    bytes.remove_prefix(n);
    CommitAppend(n);
  }
}

char* OutputChain::PrepareAppend(size_t max) {
  if (max > pool_->buffer_size()) return nullptr;
  size_t room;
  char* dst = Tail(&room);
  if (room < max) {
    // Start a new buffer; the rest of this one stays unused.
    tail_ = tail_end_;
    dst = Tail(&room);
  }
  return dst;
}

void OutputChain::CommitAppend(size_t n) {
  if (n == 0) return;
  if (tail_is_last_) {
    segments_[segment_count_ - 1].size += n;
  } else {
    PushSegment(tail_, n, cache::ItemRef());
    tail_is_last_ = true;
  }
  tail_ += n;
  pending_ += n;
}

void OutputChain::PushSegment(const char* data, size_t size,
                              cache::ItemRef item) {
  if (segment_count_ == segment_capacity_) {
    if (segments_ == nullptr) {
      segment_buffer_ = pool_->Acquire();
      segments_ = reinterpret_cast<Segment*>(segment_buffer_->data());
      segment_capacity_ = segment_buffer_->capacity() / sizeof(Segment);
    } else {
      // Rare: a huge multiget still unsent. Move to a bigger heap array.
      size_t capacity = segment_capacity_ * 2;
      auto bigger = std::make_unique<Segment[]>(capacity);
      for (size_t i = head_; i < segment_count_; ++i) {
        bigger[i - head_] = std::move(segments_[i]);
      }
      size_t live = segment_count_ - head_;
      DestroySegments(/*keep_array=*/false);
      segment_count_ = live;
      head_ = 0;
      heap_segments_ = std::move(bigger);
      segments_ = heap_segments_.get();
      segment_capacity_ = capacity;
    }
  }
  Segment* s = segments_ + segment_count_;
  if (heap_segments_) {
    *s = Segment{data, size, std::move(item)};
  } else {
    new (s) Segment{data, size, std::move(item)};
  }
  ++segment_count_;
}

void OutputChain::AppendItem(cache::ItemRef item, absl::string_view bytes) {
  if (bytes.empty()) return;
  if (bytes.size() <= kCopyValueMax) {
    Append(bytes);  // `item` is dropped on return, after the copy
    return;
  }
  pending_ += bytes.size();
  PushSegment(bytes.data(), bytes.size(), std::move(item));
  tail_is_last_ = false;
}

OutputChain::FlushResult OutputChain::Flush(int fd, size_t* written) {
  *written = 0;
  while (pending_ > 0) {
    ssize_t n;
    if (segment_count_ - head_ == 1) {
      // One piece (the usual small reply): send() spares the kernel the
      // msghdr and iovec copies of sendmsg().
      n = SendNoCancel(fd, segments_[head_].data, segments_[head_].size);
    } else {
      iovec iov[kMaxIov];
      int count = 0;
      for (size_t i = head_; i < segment_count_ && count < kMaxIov; ++i) {
        iov[count].iov_base = const_cast<char*>(segments_[i].data);
        iov[count].iov_len = segments_[i].size;
        ++count;
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      n = SendmsgNoCancel(fd, &msg);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return FlushResult::kBlocked;
      return FlushResult::kError;
    }
    *written += n;
    // All of it (the usual case): Clear() below drops every segment.
    if (static_cast<size_t>(n) == pending_) break;
    Advance(static_cast<size_t>(n));
  }
  Clear();
  return FlushResult::kDone;
}

void OutputChain::Advance(size_t n) {
  pending_ -= n;
  while (n > 0) {
    Segment& s = segments_[head_];
    if (n < s.size) {
      s.data += n;
      s.size -= n;
      return;
    }
    n -= s.size;
    s.item = cache::ItemRef();  // drop the reference as soon as it is sent
    ++head_;
  }
  if (head_ == segment_count_) tail_is_last_ = false;
}

void OutputChain::DestroySegments(bool keep_array) {
  // Pooled arrays hold placement-new'd segments; heap arrays own theirs.
  if (!heap_segments_) {
    for (size_t i = 0; i < segment_count_; ++i) segments_[i].~Segment();
    if (keep_array) return;
  }
  if (segment_buffer_ != nullptr) {
    pool_->Release(segment_buffer_);
    segment_buffer_ = nullptr;
  }
  heap_segments_.reset();
  segments_ = nullptr;
  segment_capacity_ = 0;
}

void OutputChain::Clear() {
  if (!keep_) {
    ReleaseAll();
    return;
  }
  // A shared chain keeps its pooled segment array and first buffer for the
  // next reply; anything grown past them goes back.
  DestroySegments(/*keep_array=*/segment_buffer_ != nullptr);
  segment_count_ = 0;
  head_ = 0;
  while (buffers_.size() > 1) {
    pool_->Release(buffers_.back());
    buffers_.pop_back();
  }
  if (buffers_.empty()) {
    tail_ = tail_end_ = nullptr;
  } else {
    tail_ = buffers_.front()->data();
    tail_end_ = tail_ + buffers_.front()->capacity();
  }
  tail_is_last_ = false;
  pending_ = 0;
}

void OutputChain::ReleaseAll() {
  DestroySegments(/*keep_array=*/false);
  segment_count_ = 0;
  head_ = 0;
  for (Buffer* b : buffers_) pool_->Release(b);
  buffers_.clear();
  tail_ = tail_end_ = nullptr;
  tail_is_last_ = false;
  pending_ = 0;
}

void OutputChain::TakeFrom(OutputChain* other) {
  DCHECK_EQ(pool_, other->pool_);
  DCHECK(empty());
  if (other == this) return;
  ReleaseAll();
  segment_buffer_ = std::exchange(other->segment_buffer_, nullptr);
  heap_segments_ = std::move(other->heap_segments_);
  segments_ = std::exchange(other->segments_, nullptr);
  segment_capacity_ = std::exchange(other->segment_capacity_, 0);
  segment_count_ = std::exchange(other->segment_count_, 0);
  head_ = std::exchange(other->head_, 0);
  buffers_.swap(other->buffers_);
  tail_ = std::exchange(other->tail_, nullptr);
  tail_end_ = std::exchange(other->tail_end_, nullptr);
  tail_is_last_ = std::exchange(other->tail_is_last_, false);
  pending_ = std::exchange(other->pending_, 0);
}

std::string OutputChain::PendingForTest() const {
  std::string out;
  for (size_t i = head_; i < segment_count_; ++i) {
    out.append(segments_[i].data, segments_[i].size);
  }
  return out;
}

}  // namespace memshard
